//! CPU time from /proc, for the benches that say what a run cost: a whole
//! process's, or one thread's of it.

/// User + system CPU seconds process `pid` (or `self`) has used so far.
#[allow(dead_code)] // not every bench times a whole process
pub fn cpu_seconds(pid: &str) -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// CPU seconds of the threads of process `pid` whose name starts with
/// `name` (the server's hubs, `hub-`, say).
#[allow(dead_code)] // not every bench times a thread
pub fn thread_cpu_seconds(pid: u32, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    // A prefix: `hub-` sums every hub thread.
    let comm = format!("({name}");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter(|stat| stat.contains(&comm))
        .map(|stat| stat_cpu_seconds(&stat))
        .sum()
}

/// Fields 14 and 15 of a `/proc/…/stat` line (utime, stime) in seconds.
fn stat_cpu_seconds(stat: &str) -> f64 {
    // The command name (field 2) is in parentheses and may hold spaces:
    // count from the last ')'. utime and stime are then the 12th and 13th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / per_second as f64
}
