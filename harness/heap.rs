//! The process's heap allocator: mimalloc by default, or glibc's malloc (the
//! system allocator) with `SITEBOSS_MALLOC=system`.
//!
//! Every store, instance and WASI context Wasmtime builds is a few dozen heap
//! blocks, so the host's allocator is part of what an instance costs. Against
//! glibc's malloc, mimalloc 2 filled 1,000,000 live instances on two threads
//! in x0.67 the time and tore them down in x0.61 (one thread: x0.92, x0.77),
//! with 0.7% less memory per instance and x0.94 the instructions per
//! lifecycle (README, "Round 2", has the commands).
//! It is built with `no_thp`: mimalloc then does not `madvise(MADV_HUGEPAGE)`
//! its arenas. With that call, on this host's THP mode `madvise`, a fresh
//! process's peak resident memory doubled (18.7 -> 38.9 MB) and building
//! the engine took x1.75 as long, as each first touch of the heap faulted in
//! and zeroed 2 MiB. On a host whose THP mode is `always` the kernel may
//! still back the arenas with huge pages. The choice is made once, at the first allocation, from
//! the environment, so one binary can measure both and the child processes
//! it spawns inherit the same one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that picks the allocator.
pub const ENV: &str = "SITEBOSS_MALLOC";
const ENV_C: &CStr = c"SITEBOSS_MALLOC";

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// The allocator `SITEBOSS_MALLOC` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// mimalloc, linked into this binary (the default).
    Mimalloc,
    /// The C library's `malloc` (glibc's on Linux).
    System,
}

/// Reads a `SITEBOSS_MALLOC` value: unset or empty is mimalloc.
///
/// # Errors
///
/// Names the accepted values when `value` is none of them.
pub fn parse(value: Option<&[u8]>) -> Result<Choice, String> {
    match value {
        None | Some(b"" | b"mimalloc") => Ok(Choice::Mimalloc),
        Some(b"system") => Ok(Choice::System),
        Some(other) => Err(format!(
            "{ENV}={:?} is not an allocator: use `mimalloc` (the default) or `system` (the C library's malloc)",
            String::from_utf8_lossy(other)
        )),
    }
}

/// The global allocator that dispatches to the chosen heap.
pub struct Heap;

#[inline]
fn choice() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNDECIDED => decide(),
        c => c,
    }
}

#[cold]
fn decide() -> u8 {
    // SAFETY: getenv neither allocates nor keeps the pointer. The first
    // allocation comes before any thread is spawned or any variable is set
    // (std's own start-up or the first read of the environment in `main`).
    let raw = unsafe { libc::getenv(ENV_C.as_ptr()) };
    // SAFETY: a non-null getenv result is a NUL-terminated string.
    let value = (!raw.is_null()).then(|| unsafe { CStr::from_ptr(raw) }.to_bytes());
    // No allocation here (it would recurse): an unknown value falls back to
    // the default, and `main` rejects it with `parse`.
    let c = if value == Some(b"system") {
        SYSTEM
    } else {
        // Before mimalloc's first allocation: reserve address space for its
        // heap 64 MiB at a time instead of 1 GiB, which under an `RLIMIT_AS`
        // took a gigabyte from what the pool and linear memories may reserve.
        // mimalloc read its options from the environment in its constructor,
        // so this overrides a user's MIMALLOC_ARENA_RESERVE.
        // SAFETY: sets one integer option; no allocation.
        unsafe { mi_option_set(MI_OPTION_ARENA_RESERVE, ARENA_RESERVE_KIB) };
        MIMALLOC
    };
    match CHOICE.compare_exchange(UNDECIDED, c, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => c,
        Err(first) => first,
    }
}

// SAFETY: each call goes to one allocator, and the choice never changes once
// made, so a block is always freed by the allocator that gave it.
unsafe impl GlobalAlloc for Heap {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe {
            if choice() == SYSTEM {
                System.alloc(layout)
            } else {
                mimalloc::MiMalloc.alloc(layout)
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe {
            if choice() == SYSTEM {
                System.alloc_zeroed(layout)
            } else {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe {
            if choice() == SYSTEM {
                System.dealloc(ptr, layout)
            } else {
                mimalloc::MiMalloc.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        unsafe {
            if choice() == SYSTEM {
                System.realloc(ptr, layout, new_size)
            } else {
                mimalloc::MiMalloc.realloc(ptr, layout, new_size)
            }
        }
    }
}

/// Maps `bytes` of address space (`MAP_NORESERVE`: RAM is taken only as it
/// is touched) advised for transparent huge pages, and hands it to mimalloc
/// as an arena (`mi_manage_os_memory`, mimalloc's documented API for memory
/// it did not map), which it allocates from once the arenas it already has
/// are full. The region is never unmapped. Only when mimalloc is the heap:
/// the concurrency phase's fills call it (`measure::density`); the other
/// phases keep 4 KiB pages, on which a fresh process starts faster (see the
/// module's note on `no_thp`).
pub fn huge_page_arena(bytes: usize) -> Result<(), String> {
    if choice() != MIMALLOC {
        return Err(format!(
            "the heap is the C library's malloc ({ENV}=system), to which a region cannot be given"
        ));
    }
    // SAFETY: a fresh anonymous mapping; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "mmap of {bytes} bytes failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: advises the mapping just made.
    let advised = if unsafe { libc::madvise(p, bytes, libc::MADV_HUGEPAGE) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "madvise(MADV_HUGEPAGE) failed: {}",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: the region is mapped, readable, writable and zero; once
    // mimalloc has it, it is never unmapped.
    let handed = advised.and_then(|()| {
        if unsafe { mi_manage_os_memory(p, bytes, true, false, true, -1) } {
            Ok(())
        } else {
            Err("mimalloc refused the region".into())
        }
    });
    if handed.is_err() {
        // SAFETY: nothing was given the region; unmap what was mapped.
        unsafe { libc::munmap(p, bytes) };
    }
    handed
}

unsafe extern "C" {
    fn mi_manage_os_memory(
        start: *mut libc::c_void,
        size: usize,
        is_committed: bool,
        is_large: bool,
        is_zero: bool,
        numa_node: libc::c_int,
    ) -> bool;
    fn mi_version() -> libc::c_int;
    fn mi_option_set(option: libc::c_int, value: libc::c_long);
    #[cfg(test)]
    fn mi_option_get(option: libc::c_int) -> libc::c_long;
}

/// `mi_option_arena_reserve` in mimalloc 2.3's `mi_option_t` (include/mimalloc.h).
const MI_OPTION_ARENA_RESERVE: libc::c_int = 23;

/// The address space mimalloc reserves for its heap at a time, in KiB: two
/// of its 32 MiB segments. Later reservations double every 8 arenas.
const ARENA_RESERVE_KIB: libc::c_long = 64 * 1024;

/// The heap this process allocates from, for reports: `mimalloc 2.3.2`, or
/// `glibc malloc 2.36 (SITEBOSS_MALLOC=system)`. A process that does not
/// install [`Heap`] as its global allocator (unit tests) never decides, and
/// uses the C library's malloc whatever the environment says.
pub fn describe() -> String {
    match CHOICE.load(Ordering::Relaxed) {
        MIMALLOC => {
            // SAFETY: mi_version only returns a constant.
            let v = unsafe { mi_version() };
            format!("mimalloc {}.{}.{}", v / 10000, v / 100 % 100, v % 100)
        }
        SYSTEM => format!("{} ({ENV}=system)", system_malloc()),
        _ => format!("{} (siteboss::heap::Heap not installed)", system_malloc()),
    }
}

fn system_malloc() -> String {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) };
        format!("glibc malloc {}", v.to_string_lossy())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        "the C library's malloc".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_name_an_allocator_or_are_refused() {
        assert_eq!(parse(None), Ok(Choice::Mimalloc));
        assert_eq!(parse(Some(b"")), Ok(Choice::Mimalloc));
        assert_eq!(parse(Some(b"mimalloc")), Ok(Choice::Mimalloc));
        assert_eq!(parse(Some(b"system")), Ok(Choice::System));
        let e = parse(Some(b"jemalloc")).unwrap_err();
        assert!(e.contains("SITEBOSS_MALLOC=\"jemalloc\""), "{e}");
        assert!(e.contains("`system`"), "{e}");
    }

    #[test]
    fn the_variable_and_the_mimalloc_option_are_the_ones_linked() {
        assert_eq!(ENV_C.to_str(), Ok(ENV));
        // `MI_OPTION_ARENA_RESERVE` is an index into the linked mimalloc's
        // option enum: its default (1 GiB, in KiB) shows it is the right one.
        // This test process does not install `Heap`, so nothing has set it.
        // SAFETY: reads one option.
        let reserve = unsafe { mi_option_get(MI_OPTION_ARENA_RESERVE) };
        assert_eq!(reserve, 1 << 20, "arena_reserve default in KiB");
        // SAFETY: returns a constant.
        let v = unsafe { mi_version() };
        assert_eq!(
            v / 100,
            203,
            "mimalloc 2.3.x, whose enum the index is from: {v}"
        );
    }

    #[test]
    fn a_process_without_the_heap_names_the_c_library_malloc() {
        let d = describe();
        assert!(d.ends_with("(siteboss::heap::Heap not installed)"), "{d}");
        assert!(!d.starts_with("mimalloc"), "{d}");
    }
}
