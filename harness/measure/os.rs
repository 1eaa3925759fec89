//! Readings of this process and this machine from `/proc`, and child-process
//! accounting from `wait4`.

use std::time::Duration;

/// The host page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

/// Resident memory of this process, in bytes.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page_size())
        .unwrap_or(0)
}

/// The machine's CPU time so far, all CPUs, in clock ticks: `(stolen,
/// total)` from the first line of `/proc/stat`. Stolen time is what the
/// hypervisor gave to other guests while this one had work to run.
pub fn cpu_ticks() -> Option<(u64, u64)> {
    parse_cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// [`cpu_ticks`] from the text of `/proc/stat`.
pub fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal; guest time is already
    // inside user and nice.
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    (ticks.len() == 8).then(|| (ticks[7], ticks.iter().sum()))
}

/// The share of all CPU time the hypervisor stole between two
/// [`cpu_ticks`] readings, or `None` when no tick passed.
pub fn steal_share(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let total = after.1.checked_sub(before.1)?;
    (total > 0).then(|| after.0.saturating_sub(before.0) as f64 / total as f64)
}

/// Minor page faults of this whole process so far (`getrusage(RUSAGE_SELF)`).
pub fn minor_faults() -> u64 {
    rusage(libc::RUSAGE_SELF).map_or(0, |r| r.ru_minflt as u64)
}

/// Minor page faults of the calling thread so far (`getrusage(RUSAGE_THREAD)`).
pub fn thread_minor_faults() -> u64 {
    rusage(libc::RUSAGE_THREAD).map_or(0, |r| r.ru_minflt as u64)
}

fn rusage(who: libc::c_int) -> Option<libc::rusage> {
    // SAFETY: getrusage writes one rusage into the zeroed struct it is given.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        (libc::getrusage(who, &mut r) == 0).then_some(r)
    }
}

/// The number of memory mappings of this process (lines of `/proc/self/maps`).
///
/// Counted through a small fixed buffer: near the mapping limit the file is
/// megabytes long, and reading it whole would grow the very resident memory
/// the concurrency phase is stopping on.
pub fn mapping_count() -> u64 {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open("/proc/self/maps") else {
        return 0;
    };
    let mut buf = [0u8; 16 << 10];
    let mut lines = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return lines,
            Ok(n) => lines += buf[..n].iter().filter(|&&c| c == b'\n').count() as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return lines,
        }
    }
}

/// Virtual memory size of this process, in bytes.
pub fn virtual_bytes() -> u64 {
    status_kib("VmSize:").map(|k| k * 1024).unwrap_or(0)
}

fn status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The `kB` field `key` (such as `Pss:` or `MemAvailable:`) of
/// `/proc/PID/smaps_rollup` or `/proc/meminfo` text, in bytes.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes: what the kernel says can
/// still be allocated without swapping.
pub fn available_bytes() -> Option<u64> {
    meminfo("MemAvailable:")
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
pub fn total_bytes() -> Option<u64> {
    meminfo("MemTotal:")
}

/// A `/proc/meminfo` line's value, converted from KiB to bytes.
fn meminfo(key: &str) -> Option<u64> {
    kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, key)
}

/// The soft `RLIMIT_AS` of this process, or `None` when unlimited.
pub fn address_space_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(lim.rlim_cur)
    }
}

/// The user address space of this process, in bytes: two to the power of
/// the width of the top of its stack, the highest user mapping (128 TiB on
/// x86-64, where the kernel keeps mappings below 47 bits unless asked even
/// with 5-level paging; 256 TiB on arm64 with 48-bit addresses; 512 GiB on a
/// 39-bit arm64 kernel). Without a stack line in `/proc/self/maps`, from
/// the address of this call's own stack frame, which lies as high.
pub fn user_address_space() -> u64 {
    static SPACE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SPACE.get_or_init(|| {
        let here = 0u8;
        std::fs::read_to_string("/proc/self/maps")
            .ok()
            .and_then(|m| address_space_from_maps(&m))
            .or_else(|| space_above(std::ptr::from_ref(&here) as u64 + 1))
            .unwrap_or(1 << 47)
    })
}

/// Two to the power of the width of `end - 1`: the address space that holds
/// an address just below `end`.
fn space_above(end: u64) -> Option<u64> {
    let bits = 64 - end.checked_sub(1)?.leading_zeros();
    (bits < 64).then(|| 1u64 << bits)
}

/// [`user_address_space`] from the text of `/proc/self/maps`.
pub fn address_space_from_maps(maps: &str) -> Option<u64> {
    // The sixth field is the path; a file whose name ends in "[stack]" is
    // not the stack.
    let line = maps
        .lines()
        .find(|l| l.split_whitespace().nth(5) == Some("[stack]"))?;
    let range = line.split_whitespace().next()?;
    space_above(u64::from_str_radix(range.split_once('-')?.1, 16).ok()?)
}

/// How a child process ended, and what it cost.
#[derive(Debug, Clone)]
pub struct ChildExit {
    /// The exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Spawn to reaped exit.
    pub wall: Duration,
    /// Peak resident memory, in bytes.
    pub peak_rss: u64,
}

impl ChildExit {
    /// How it ended, for a message: `exit status 127` or `signal 9`.
    pub fn status(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("signal {sig}"),
            (None, None) => "no exit status".into(),
        }
    }
}

/// Waits for `child`, returning its status, wall time and peak RSS.
///
/// The wait blocks (no polling, so a millisecond child is timed to the
/// microsecond). A watchdog thread kills the child with `SIGKILL` when
/// `timeout` passes or the run is interrupted; the result then says so.
///
/// # Errors
///
/// Fails when the child cannot be waited for.
pub fn wait_child(
    child: &std::process::Child,
    started: std::time::Instant,
    timeout: Duration,
) -> std::io::Result<ChildExit> {
    let pid = child.id() as libc::pid_t;
    let watch = watchdog::watch(pid, started + timeout);
    // Wait for the exit without reaping, so the watchdog can never signal a
    // reused pid: the pid stays ours until the wait4 below.
    loop {
        // SAFETY: all-zero is a valid siginfo_t; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer; pid is our child.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let wall = started.elapsed();
    drop(watch);
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero is a valid rusage; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointers; the child has exited and is not yet reaped.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc != pid {
        return Err(std::io::Error::last_os_error());
    }
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Ok(ChildExit {
        code,
        signal,
        wall,
        peak_rss: usage.ru_maxrss as u64 * 1024,
    })
}

/// One thread that kills watched children past their deadline, or all of
/// them when the run is interrupted.
mod watchdog {
    use std::sync::{Condvar, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    struct Watched {
        pid: libc::pid_t,
        deadline: Instant,
    }

    struct Shared {
        watched: Mutex<Vec<Watched>>,
        changed: Condvar,
    }

    fn shared() -> &'static Shared {
        static SHARED: OnceLock<&'static Shared> = OnceLock::new();
        SHARED.get_or_init(|| {
            let s: &'static Shared = Box::leak(Box::new(Shared {
                watched: Mutex::new(Vec::new()),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("siteboss-watchdog".into())
                .spawn(move || run(s))
                .expect("spawning the child-process watchdog thread");
            s
        })
    }

    fn run(s: &'static Shared) {
        let mut watched = s.watched.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let interrupted = crate::interrupt::requested();
            for w in watched.iter_mut() {
                if interrupted || w.deadline <= now {
                    // SAFETY: the pid is an unreaped child of ours (see wait_child).
                    unsafe { libc::kill(w.pid, libc::SIGKILL) };
                    w.deadline = now + Duration::from_secs(3600);
                }
            }
            let next = watched
                .iter()
                .map(|w| w.deadline.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_secs(3600))
                .min(Duration::from_millis(50));
            watched = s
                .changed
                .wait_timeout(watched, next)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Unwatches its pid when dropped.
    pub struct Guard(libc::pid_t);

    pub fn watch(pid: libc::pid_t, deadline: Instant) -> Guard {
        let s = shared();
        s.watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Watched { pid, deadline });
        s.changed.notify_one();
        Guard(pid)
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            shared()
                .watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|w| w.pid != self.0);
        }
    }
}

/// Restores the thread's previous CPU affinity when dropped.
pub struct Pinned {
    previous: Option<libc::cpu_set_t>,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(set) = self.previous.take() {
            // SAFETY: `set` is a valid cpu_set_t read by sched_getaffinity.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        }
    }
}

/// Pins the calling thread to the highest-numbered CPU it may run on, until
/// the returned guard is dropped.
///
/// Single-threaded phases are timed on one CPU so the scheduler cannot move
/// them (and their warm caches) mid-round; the last CPU because device
/// interrupts usually land on CPU 0. When pinning is not possible this does
/// nothing.
pub fn pin_to_last_cpu() -> Pinned {
    // SAFETY: all-zero is a valid (empty) cpu_set_t; the calls fill or read it.
    unsafe {
        let mut current: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut current) != 0 {
            return Pinned { previous: None };
        }
        let Some(last) = (0..libc::CPU_SETSIZE as usize)
            .rev()
            .find(|&c| libc::CPU_ISSET(c, &current))
        else {
            return Pinned { previous: None };
        };
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(last, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            return Pinned { previous: None };
        }
        Pinned {
            previous: Some(current),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Instant;

    // wait_child reaps the child itself (wait4), which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    fn ended(script: &str) -> ChildExit {
        let started = Instant::now();
        let child = Command::new("sh").args(["-c", script]).spawn().unwrap();
        wait_child(&child, started, Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn the_address_space_is_read_from_the_top_of_the_stack() {
        let maps = |stack: &str| {
            format!(
                "00400000-00401000 r-xp 00000000 fd:01 1 /bin/x\n{stack} rw-p 00000000 00:00 0                          [stack]\n"
            )
        };
        // x86-64 (47 bits), arm64 with 48-bit and with 39-bit addresses.
        let x86 = maps("7ffc8e1b4000-7ffc8e1d5000");
        assert_eq!(address_space_from_maps(&x86), Some(1 << 47));
        let arm48 = maps("ffffd3a1e000-ffffd3a3f000");
        assert_eq!(address_space_from_maps(&arm48), Some(1 << 48));
        let arm39 = maps("7fe1b2c000-7fe1b4d000");
        assert_eq!(address_space_from_maps(&arm39), Some(1 << 39));
        assert_eq!(address_space_from_maps("no stack here\n"), None);
        let named = "7ffc8e1b4000-7ffc8e1d5000 r--p 00000000 fd:01 2 /tmp/x [stack]\n";
        assert_eq!(address_space_from_maps(named), None);
        assert_eq!(address_space_from_maps(&maps("zz-yy")), None);
        // This process: the space that holds its own stack frames.
        let here = user_address_space();
        let frame = 0u8;
        assert_eq!(
            Some(here),
            space_above(std::ptr::from_ref(&frame) as u64 + 1)
        );
    }

    #[test]
    fn a_childs_end_is_named_as_a_status_or_a_signal() {
        let exit = ended("exit 3");
        assert_eq!((exit.code, exit.signal), (Some(3), None));
        assert_eq!(exit.status(), "exit status 3");
        let killed = ended("kill -9 $$");
        assert_eq!((killed.code, killed.signal), (None, Some(libc::SIGKILL)));
        assert_eq!(killed.status(), "signal 9");
    }
}
