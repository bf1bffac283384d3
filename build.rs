//! Embeds every file under `www/` into the binary, so `wschat` serves its
//! page from any working directory, each with its `ETag` computed here.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read when the script runs, not when it was compiled: a checkout that
    // moved (or a target directory copied from another one) must embed its
    // own `www/`, not the one the script was first built in.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo");
    let root = Path::new(&manifest_dir).join("www");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Files of `www/`: path relative to it, bytes, ETag.\npub static FILES: &[(&str, &[u8], &str)] = &[\n",
    );
    for (rel, abs) in &files {
        println!("cargo:rerun-if-changed={abs}");
        let bytes = std::fs::read(abs).unwrap();
        let etag = format!("\"{:016x}\"", fnv1a(&bytes));
        writeln!(out, "    ({rel:?}, include_bytes!({abs:?}), {etag:?}),").unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("www_files.rs");
    std::fs::write(dest, out).unwrap();
}

/// FNV-1a, 64 bits; `http::etag` computes the same for `--www` files.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            files.push((
                rel.to_string_lossy().replace('\\', "/"),
                path.display().to_string(),
            ));
        }
    }
}
