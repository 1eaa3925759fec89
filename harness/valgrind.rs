//! Valgrind client requests, written out here so that building siteboss needs
//! no valgrind headers and running it needs no valgrind.
//!
//! A client request is a magic instruction sequence that does nothing on a
//! real CPU (it rotates a register by a multiple of its width and exchanges a
//! register with itself) and that Valgrind's JIT recognises and turns into a
//! call into the tool. The sequences and request numbers are those of
//! `valgrind/valgrind.h` and `valgrind/callgrind.h` (Valgrind 3.x; they have
//! not changed since 3.7). Outside Valgrind every request returns its default.
//!
//! Only x86_64 and aarch64 are supported; elsewhere [`running_on_valgrind`]
//! is false and the counting phase says so.

/// `VG_USERREQ__RUNNING_ON_VALGRIND`.
const RUNNING_ON_VALGRIND: usize = 0x1001;

/// `VG_USERREQ_TOOL_BASE('C','T')`: callgrind's first request.
const CALLGRIND_BASE: usize = ((b'C' as usize) << 24) | ((b'T' as usize) << 16);
/// `CALLGRIND_ZERO_STATS`.
const ZERO_STATS: usize = CALLGRIND_BASE + 1;
/// `CALLGRIND_TOGGLE_COLLECT`.
const TOGGLE_COLLECT: usize = CALLGRIND_BASE + 2;
/// `CALLGRIND_DUMP_STATS_AT`.
const DUMP_STATS_AT: usize = CALLGRIND_BASE + 3;
/// `CALLGRIND_START_INSTRUMENTATION`.
const START_INSTRUMENTATION: usize = CALLGRIND_BASE + 4;

/// Whether this build can issue client requests at all.
pub const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn request(default: usize, args: &[usize; 6]) -> usize {
    let result;
    // SAFETY: natively the sequence rotates rdi by 128 bits in all (a no-op
    // on its value; flags are clobbered, which `asm!` assumes) and exchanges
    // rbx with itself. Under Valgrind it reads the six words at rax and puts
    // the reply in rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") default => result,
            in("rax") args.as_ptr(),
            options(nostack),
        );
    }
    result
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn request(default: usize, args: &[usize; 6]) -> usize {
    let result;
    // SAFETY: natively the sequence rotates x12 by 128 bits in all and ORs
    // x10 with itself; under Valgrind it reads the six words at x4 and puts
    // the reply in x3.
    unsafe {
        std::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            inout("x3") default => result,
            in("x4") args.as_ptr(),
            out("x12") _,
            options(nostack),
        );
    }
    result
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
fn request(default: usize, _args: &[usize; 6]) -> usize {
    default
}

#[inline(always)]
fn call(code: usize, arg1: usize) -> usize {
    let args = [code, arg1, 0, 0, 0, 0];
    let r = request(0, &args);
    // Keep the argument block alive and written until the request has read it.
    std::hint::black_box(&args);
    r
}

/// Whether this process runs under Valgrind (any tool).
pub fn running_on_valgrind() -> bool {
    call(RUNNING_ON_VALGRIND, 0) != 0
}

/// Callgrind: turn instrumentation on (with `--instr-atstart=no`, code runs
/// uninstrumented and fast until this is called).
#[inline(always)]
pub fn start_instrumentation() {
    call(START_INSTRUMENTATION, 0);
}

/// Callgrind: zero every counter.
#[inline(always)]
pub fn zero_stats() {
    call(ZERO_STATS, 0);
}

/// Callgrind: switch the calling thread's collection on or off (with
/// `--collect-atstart=no` it starts off).
#[inline(always)]
pub fn toggle_collect() {
    call(TOGGLE_COLLECT, 0);
}

/// Callgrind: write the counters so far to a new dump file whose
/// `desc: Trigger: Client Request: <label>` line names it.
pub fn dump_stats_at(label: &std::ffi::CStr) {
    call(DUMP_STATS_AT, label.as_ptr() as usize);
}

#[cfg(test)]
mod tests {
    #[test]
    fn outside_valgrind_requests_are_no_ops() {
        // The test binary does not run under Valgrind: every request returns
        // its default and changes nothing.
        assert!(!super::running_on_valgrind());
        super::zero_stats();
        super::toggle_collect();
        super::toggle_collect();
        super::dump_stats_at(c"ignored");
        let x = std::hint::black_box(41) + 1;
        assert_eq!(x, 42);
    }
}
