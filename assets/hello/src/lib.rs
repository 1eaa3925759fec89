//! The hello-world WASI 0.2 component that every siteboss figure is measured on.
//!
//! It exports `wasi:cli/run` and writes `Hello, world!\n` to `wasi:cli/stdout`.
//! It is `no_std` and calls the WASI interfaces directly instead of going
//! through Rust's std, so an instance touches as little memory as a real
//! compiled component can: no allocator, no argument or environment parsing,
//! no stdout buffer.

#![no_std]

wasip2::cli::command::export!(Hello);

struct Hello;

impl wasip2::exports::cli::run::Guest for Hello {
    fn run() -> Result<(), ()> {
        let stdout = wasip2::cli::stdout::get_stdout();
        stdout
            .blocking_write_and_flush(b"Hello, world!\n")
            .map_err(|_| ())
    }
}

/// The allocator behind the bindings' `cabi_realloc`, which the host would call
/// only to pass a list or string into the guest. `run` takes none and the
/// stdout calls return none, so it is never called; if it were, it traps
/// loudly instead of handing out memory.
struct NoAlloc;

unsafe impl core::alloc::GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::arch::wasm32::unreachable()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}

#[global_allocator]
static ALLOCATOR: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
