//! A minimal `wasi:http/proxy` component: every request is answered with
//! status 200, `content-type: text/plain` and the body `Hello, world!\n`.
//!
//! Like `assets/hello`, it is `no_std` and calls the WASI interfaces directly
//! through the `wasip2` bindings: no allocator, no request parsing, no body
//! buffer. The request is not read; it is dropped when `handle` returns.

#![no_std]

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(HttpHello);

struct HttpHello;

impl wasip2::exports::http::incoming_handler::Guest for HttpHello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::new();
        ok(headers.append("content-type", b"text/plain"));
        // A new outgoing-response has status 200.
        let response = OutgoingResponse::new(headers);
        let body = ok(response.body());
        ResponseOutparam::set(response_out, Ok(response));
        let out = ok(body.write());
        ok(out.blocking_write_and_flush(b"Hello, world!\n"));
        // The stream is a child of the body: drop it before finishing.
        drop(out);
        ok(OutgoingBody::finish(body, None));
    }
}

/// The value of `r`, or a trap. The host only fails these calls when it is
/// shutting the request down; a trap says so loudly, and unlike `unwrap` it
/// pulls in no formatting code.
fn ok<T, E>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(_) => core::arch::wasm32::unreachable(),
    }
}

/// The canonical ABI's allocator export, which wit-component requires here
/// because one import (`outgoing-body.finish`) can return strings inside its
/// `error-code`. The host calls it only to pass a list or string into the
/// guest: `handle` receives two handles, and the calls it makes return lists
/// or strings only inside an error, after which `ok` traps anyway. So it is
/// never called, and if it were, it traps loudly instead of handing out
/// memory. (On `wasm32-wasip2` wit-bindgen leaves `cabi_realloc` to the C
/// library, which a `no_std` crate does not link.)
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(_: *mut u8, _: usize, _: usize, _: usize) -> *mut u8 {
    core::arch::wasm32::unreachable()
}

/// The Rust allocator behind the bindings' owned strings and lists, which
/// `handle` never creates: it traps if it is ever used.
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
