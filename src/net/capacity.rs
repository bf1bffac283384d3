//! How many connections this process can hold on this machine.
//!
//! Each WebSocket costs one thread and one file descriptor, and a client
//! that falls behind briefly costs a second thread (its backlog writer).
//! Thread limits are not all visible to `pthread_create`: when a new
//! thread's signal stack cannot be mapped (`vm.max_map_count`), the standard
//! library aborts the whole process. So at start the server reads every
//! limit that binds, works out how many connections fit, and lowers
//! `--max-connections` to that, saying which limit to raise. Connections
//! beyond it get 503; the process never aborts.

use crate::logs as log;

use std::fs;

/// Memory mappings per thread: its stack and guard page, and the standard
/// library's signal stack and guard page, plus one for allocator arenas
/// and other growth.
const MAPS_PER_THREAD: usize = 5;

/// Threads the server runs besides connections and backlog writers
/// (accept, dispatcher, signals, main), with room to spare.
const OWN_THREADS: usize = 16;

/// File descriptors kept free for the listener, logging and the like.
const SPARE_FDS: usize = 32;

/// Of the threads available, the share kept for backlog writers.
const WRITER_SHARE: usize = 4;

/// What the machine allows this process.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    /// Connections that can be open at once.
    pub connections: usize,
    /// Backlog writers that can run at once.
    pub writers: usize,
    /// The limit that binds `connections`, and how to raise it.
    pub bound_by: Limit,
}

/// One of the machine's limits, as connections it allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub name: &'static str,
    pub remedy: &'static str,
    /// Connections this limit alone allows.
    pub connections: usize,
}

/// The limits as read from the system; `None` where unlimited or unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    pub open_files: Option<usize>,
    pub open_now: usize,
    pub max_map_count: Option<usize>,
    pub maps_now: usize,
    pub pid_max: Option<usize>,
    pub threads_max: Option<usize>,
    /// Threads running on the whole machine (they share `pid_max` and
    /// `threads-max`).
    pub threads_now: usize,
    /// `RLIMIT_NPROC`, when it applies (it does not to root).
    pub nproc: Option<usize>,
}

impl Readings {
    /// Reads the limits of this process and machine. Raises the soft
    /// open-file limit to the hard one first, as servers commonly do (the
    /// soft default of 1,024 is meant for programs that use `select`).
    pub fn of_this_process() -> Readings {
        if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
            log::debug!("cannot raise the open-file limit: {e}");
        }
        let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let root = fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false);
        Readings {
            open_files: soft_limit(&limits, "Max open files"),
            open_now: fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
            max_map_count: read_number("/proc/sys/vm/max_map_count"),
            maps_now: fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count()),
            pid_max: read_number("/proc/sys/kernel/pid_max"),
            threads_max: read_number("/proc/sys/kernel/threads-max"),
            threads_now: threads_on_machine().unwrap_or(0),
            nproc: if root {
                None
            } else {
                soft_limit(&limits, "Max processes")
            },
        }
    }

    /// Connections and backlog writers that fit, reserving a thread and a
    /// descriptor for each of `handshakes` connections that may be refused
    /// while over the cap.
    pub fn capacity(&self, handshakes: usize) -> Capacity {
        let thread_limits = [
            (
                "vm.max_map_count",
                "sysctl -w vm.max_map_count=262144",
                self.max_map_count
                    .map(|m| m.saturating_sub(self.maps_now) / MAPS_PER_THREAD),
            ),
            (
                "kernel.pid_max",
                "sysctl -w kernel.pid_max=4194304",
                self.pid_max.map(|m| m.saturating_sub(self.threads_now)),
            ),
            (
                "kernel.threads-max",
                "sysctl -w kernel.threads-max=4194304",
                self.threads_max.map(|m| m.saturating_sub(self.threads_now)),
            ),
            (
                "the process limit (RLIMIT_NPROC)",
                "ulimit -u, or LimitNPROC= in the service unit",
                self.nproc.map(|m| m.saturating_sub(self.threads_now)),
            ),
        ];
        let mut limits = Vec::new();
        let mut writers = usize::MAX;
        for (name, remedy, threads) in thread_limits {
            let Some(threads) = threads else { continue };
            let threads = threads.saturating_sub(OWN_THREADS);
            let for_writers = (threads / WRITER_SHARE).max(1);
            writers = writers.min(for_writers);
            limits.push(Limit {
                name,
                remedy,
                connections: threads.saturating_sub(for_writers + handshakes),
            });
        }
        if let Some(files) = self.open_files {
            limits.push(Limit {
                name: "the open-file limit (RLIMIT_NOFILE)",
                remedy: "ulimit -n, or LimitNOFILE= in the service unit",
                connections: files.saturating_sub(self.open_now + SPARE_FDS + handshakes),
            });
        }
        let bound_by = limits
            .into_iter()
            .min_by_key(|l| l.connections)
            .unwrap_or(Limit {
                name: "nothing",
                remedy: "",
                connections: usize::MAX,
            });
        Capacity {
            connections: bound_by.connections,
            writers: if writers == usize::MAX { 4096 } else { writers },
            bound_by,
        }
    }
}

/// The soft column of a line of `/proc/self/limits`.
fn soft_limit(limits: &str, name: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

fn read_number(path: &str) -> Option<usize> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// All threads on the machine: the fourth field of `/proc/loadavg`
/// (`running/total`).
fn threads_on_machine() -> Option<usize> {
    let loadavg = fs::read_to_string("/proc/loadavg").ok()?;
    let field = loadavg.split_whitespace().nth(3)?;
    field.split_once('/')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock() -> Readings {
        Readings {
            open_files: Some(20_000),
            open_now: 10,
            max_map_count: Some(65_530),
            maps_now: 100,
            pid_max: Some(32_768),
            threads_max: Some(190_000),
            threads_now: 300,
            nproc: None,
        }
    }

    #[test]
    fn stock_limits_bind_on_memory_maps() {
        let c = stock().capacity(128);
        assert_eq!(c.bound_by.name, "vm.max_map_count");
        // 13,086 threads: a quarter for writers, 128 for refused handshakes.
        assert_eq!(c.connections, 13_070 - 3_267 - 128);
        assert_eq!(c.writers, 3_267);
    }

    #[test]
    fn raised_sysctls_leave_open_files_binding() {
        let r = Readings {
            max_map_count: Some(262_144),
            pid_max: Some(4_194_304),
            ..stock()
        };
        let c = r.capacity(128);
        assert_eq!(c.bound_by.name, "the open-file limit (RLIMIT_NOFILE)");
        assert_eq!(c.connections, 20_000 - 10 - 32 - 128);
        assert!(c.connections >= 19_000);
    }

    #[test]
    fn parses_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             unlimited            unlimited            processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1024));
        assert_eq!(soft_limit(limits, "Max processes"), None);
    }
}
