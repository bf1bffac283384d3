//! What tests need of the machine: temporary directories and Debian
//! packages; and bytes that differ from one offset to the next.

use std::process::Command;

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("wschat-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    /// Writes `contents` to `rel` inside the directory, creating parents.
    pub fn write(&self, rel: &str, contents: &[u8]) -> std::path::PathBuf {
        let p = self.path.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Makes sure the Debian package `package` is installed, judged by the file
/// `path` it provides: installs it with apt-get when it is missing and the
/// tests run as root (as `.ci/run` does), and otherwise fails with the
/// command to run. A test that needs a system tool is never skipped.
pub fn require_debian_package(path: &str, package: &str) {
    let install = format!("apt-get update && apt-get install -y {package}");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !std::path::Path::new(path).exists() && root {
        let installed = Command::new("sh")
            .args(["-c", &install])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        assert!(installed, "{install} failed");
    }
    assert!(
        std::path::Path::new(path).exists(),
        "{path} not found: install it with: {install}"
    );
}

/// `len` bytes that differ from one offset to the next (xorshift from
/// `seed`), so that a byte in the wrong place shows.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
