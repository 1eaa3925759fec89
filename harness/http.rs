//! Serving one HTTP request to a `wasi:http/incoming-handler` component
//! through `wasmtime-wasi-http`, the crate behind `wasmtime serve`.
//!
//! `handle` is called synchronously, like `wasi:cli/run`: an async call would
//! keep a fiber stack in every store that has served a request, and a live
//! instance would then cost a pooled stack and its guard-page mappings. The
//! response body is buffered (up to [`BUFFER_CHUNKS`] writes) and read by the
//! serving thread when `handle` returns; a handler that writes more is read
//! by a rescuer thread while it runs (see [`Rescuer`]), so it never waits for
//! a reader that is not reading.
//!
//! Outgoing HTTP is refused: `wasi:http/outgoing-handler.handle` gives the
//! component `error-code.HTTP-request-denied`, as the sandbox refuses sockets.

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

/// The synthetic request every instance is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// The method, such as `GET`.
    pub method: String,
    /// The path and query, such as `/`.
    pub path: String,
    /// Headers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<u8>,
}

impl Default for RequestSpec {
    fn default() -> Self {
        RequestSpec {
            method: "GET".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

impl RequestSpec {
    /// `GET /` style, for reports.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.method, self.path);
        if !self.headers.is_empty() {
            s.push_str(&format!(" with {} header(s)", self.headers.len()));
        }
        if !self.body.is_empty() {
            s.push_str(&format!(" and a {}-byte body", self.body.len()));
        }
        s
    }

    /// Checks that the request can be built: a valid method, path and
    /// headers.
    ///
    /// # Errors
    ///
    /// One line naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.build().map(|_| ())
    }

    /// The request as `hyper` takes it. The authority is `localhost`.
    fn build(&self) -> Result<http::Request<Full<Bytes>>, String> {
        let method = http::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("`{}` is not an HTTP method", self.method))?;
        if !self.path.starts_with('/') {
            return Err(format!(
                "the request path `{}` must start with /",
                self.path
            ));
        }
        let uri: http::Uri = format!("http://localhost{}", self.path)
            .parse()
            .map_err(|e| format!("the request path `{}` is not valid: {e}", self.path))?;
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in &self.headers {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("`{k}` is not a valid header name"))?;
            let value = http::HeaderValue::from_str(v)
                .map_err(|_| format!("the value of header `{k}` is not valid"))?;
            b = b.header(name, value);
        }
        b.body(Full::new(Bytes::from(self.body.clone())))
            .map_err(|e| format!("the request cannot be built: {e}"))
    }
}

/// What one request got back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// The status code.
    pub status: u16,
    /// The number of response headers.
    pub headers: usize,
    /// Bytes of body received (all of them, including those not kept).
    pub body_bytes: u64,
    /// The first bytes of the body, up to the output limit.
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// Why serving a request did not give a successful response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeError {
    /// The host could not build the request resources.
    #[error("the host could not build the request: {0}")]
    Host(String),
    /// `handle` returned without calling `response-outparam.set`.
    #[error("the handler returned without calling response-outparam.set")]
    NoResponse,
    /// The handler answered with an error instead of a response.
    #[error("the handler answered with an error instead of a response: {0}")]
    ErrorResponse(String),
    /// The response body was dropped without being finished.
    #[error("the response body was aborted (outgoing-body dropped without finish): {0}")]
    BodyAborted(String),
    /// The handler returned with the body neither finished nor dropped.
    #[error("the response body was not finished when the handler returned")]
    BodyUnfinished,
    /// A status other than 2xx.
    #[error(
        "the handler answered {status} ({reason}), not 2xx; a failed request is not counted as a fast success"
    )]
    Status {
        /// The status code.
        status: u16,
        /// Its canonical reason.
        reason: String,
    },
}

/// The hooks every store gets: outgoing HTTP refused.
#[derive(Debug, Default)]
pub struct Hooks;

impl WasiHttpHooks for Hooks {
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        BUFFER_CHUNKS
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        drop(request);
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Bodies up to this many distinct writes are buffered without a reader, so a
/// handler that writes its body in pieces never waits for one.
const BUFFER_CHUNKS: usize = 63;

/// How often the rescuer looks for a body nobody is reading.
const RESCUE_SCAN: Duration = Duration::from_millis(10);

/// One serving thread's response: what `response-outparam.set` left, and who
/// is reading its body. Reused for every request the thread serves.
struct Slot {
    state: Mutex<State>,
    read: Condvar,
    /// Set when the handler has returned: nothing more will be written.
    returned: AtomicBool,
    /// Counts requests, so the rescuer can tell a stuck body from a new one.
    generation: AtomicU64,
}

enum State {
    /// No response set yet.
    Idle,
    /// A response was set; its body has not been read.
    Set {
        body: HyperOutgoingBody,
        status: u16,
        headers: usize,
        limit: usize,
        generation: u64,
    },
    /// The rescuer is reading the body while the handler still runs.
    Rescuing,
    /// The outcome, once known.
    Done(Result<Served, ServeError>),
}

thread_local! {
    static SLOT: std::cell::RefCell<Option<Arc<Slot>>> = const { std::cell::RefCell::new(None) };
}

/// This thread's slot, registered with the rescuer on first use.
fn slot() -> Arc<Slot> {
    SLOT.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                let slot = Arc::new(Slot {
                    state: Mutex::new(State::Idle),
                    read: Condvar::new(),
                    returned: AtomicBool::new(false),
                    generation: AtomicU64::new(0),
                });
                rescuer().register(&slot);
                slot
            })
            .clone()
    })
}

/// Forgets this thread's slot (after a rescued body timed out), so a late
/// result can never be taken for the next request's.
fn abandon_slot() {
    SLOT.with(|s| s.borrow_mut().take());
}

/// A thread that reads a response body nobody is reading.
///
/// The serving thread reads the body itself, after `handle` returns: no
/// thread hand-off per request. A handler that writes more than
/// [`BUFFER_CHUNKS`] pieces before returning would then wait for a reader
/// forever; the rescuer finds such a body (still unread after one to two
/// scans) and reads it while the handler runs.
struct Rescuer {
    slots: Mutex<Vec<std::sync::Weak<Slot>>>,
    parked: AtomicBool,
    thread: std::thread::Thread,
}

fn rescuer() -> &'static Rescuer {
    static RESCUER: OnceLock<Rescuer> = OnceLock::new();
    RESCUER.get_or_init(|| {
        let thread = std::thread::Builder::new()
            .name("siteboss-http-rescuer".into())
            .spawn(|| rescue_loop(rescuer()))
            .expect("cannot start the HTTP body rescuer thread");
        Rescuer {
            slots: Mutex::new(Vec::new()),
            parked: AtomicBool::new(false),
            thread: thread.thread().clone(),
        }
    })
}

impl Rescuer {
    fn register(&self, slot: &Arc<Slot>) {
        lock(&self.slots).push(Arc::downgrade(slot));
    }

    /// Called when a response is set: wakes the rescuer if it parked.
    fn wake(&self) {
        if self.parked.swap(false, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

fn rescue_loop(r: &'static Rescuer) {
    // A body seen unread at one scan and still unread, same request, at the
    // next is stuck.
    let mut seen: Vec<(usize, u64)> = Vec::new();
    let mut quiet_scans = 0u32;
    loop {
        std::thread::sleep(RESCUE_SCAN);
        let slots: Vec<Arc<Slot>> = {
            let mut list = lock(&r.slots);
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(std::sync::Weak::upgrade).collect()
        };
        let mut unread = Vec::new();
        for slot in &slots {
            let key = Arc::as_ptr(slot) as usize;
            let mut state = lock(&slot.state);
            let State::Set { generation, .. } = &*state else {
                continue;
            };
            let generation = *generation;
            unread.push((key, generation));
            if !seen.contains(&(key, generation)) {
                continue;
            }
            let State::Set {
                body,
                status,
                headers,
                limit,
                ..
            } = std::mem::replace(&mut *state, State::Rescuing)
            else {
                unreachable!()
            };
            drop(state);
            let outcome = read_body(body, status, headers, limit, || {
                if slot.returned.load(Ordering::Acquire) {
                    true
                } else {
                    std::thread::sleep(Duration::from_micros(50));
                    false
                }
            });
            *lock(&slot.state) = State::Done(outcome);
            slot.read.notify_all();
        }
        quiet_scans = if unread.is_empty() {
            quiet_scans + 1
        } else {
            0
        };
        seen = unread;
        // Idle for a second: park until the next response is set.
        if quiet_scans >= 100 {
            r.parked.store(true, Ordering::Release);
            let busy = slots
                .iter()
                .any(|s| matches!(*lock(&s.state), State::Set { .. }));
            if busy {
                r.parked.store(false, Ordering::Release);
            } else {
                std::thread::park();
                r.parked.store(false, Ordering::Release);
            }
            quiet_scans = 0;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The request's response as it arrives.
pub struct Pending {
    slot: Arc<Slot>,
}

/// Creates the request and response-outparam resources in `view`.
///
/// The response body is read after the handler returns, by the serving
/// thread; see [`Rescuer`] for a handler that writes more than is buffered.
///
/// # Errors
///
/// [`ServeError::Host`] when the request cannot be built.
pub fn prepare(
    view: &mut wasmtime_wasi_http::WasiHttpCtxView<'_>,
    spec: &RequestSpec,
    output_limit: usize,
) -> Result<
    (
        wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
        wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostResponseOutparam>,
        Pending,
    ),
    ServeError,
> {
    let request = spec.build().map_err(ServeError::Host)?;
    let slot = slot();
    *lock(&slot.state) = State::Idle;
    slot.returned.store(false, Ordering::Release);
    let generation = slot.generation.fetch_add(1, Ordering::AcqRel) + 1;
    let req = view
        .new_incoming_request(Scheme::Http, request)
        .map_err(|e| ServeError::Host(e.to_string()))?;
    let set = Arc::clone(&slot);
    let out = view
        .new_response_outparam_from_callback(move |response| {
            let state = match response {
                Err(code) => State::Done(Err(ServeError::ErrorResponse(format!("{code:?}")))),
                Ok(response) => State::Set {
                    status: response.status().as_u16(),
                    headers: response.headers().len(),
                    body: response.into_body(),
                    limit: output_limit,
                    generation,
                },
            };
            *lock(&set.state) = state;
            rescuer().wake();
        })
        .map_err(|e| ServeError::Host(e.to_string()))?;
    Ok((req, out, Pending { slot }))
}

impl Pending {
    /// After `handle` returned: the response, once its body is read.
    /// `timeout` bounds the wait for a body the rescuer is reading.
    pub fn finish(self, timeout: Duration) -> Result<Served, ServeError> {
        self.slot.returned.store(true, Ordering::Release);
        let deadline = std::time::Instant::now() + timeout;
        let mut state = lock(&self.slot.state);
        loop {
            match std::mem::replace(&mut *state, State::Idle) {
                State::Idle => return Err(ServeError::NoResponse),
                State::Done(outcome) => return outcome,
                State::Set {
                    body,
                    status,
                    headers,
                    limit,
                    ..
                } => {
                    drop(state);
                    // The handler has returned: what is not there now never
                    // will be.
                    return read_body(body, status, headers, limit, || true);
                }
                State::Rescuing => {
                    *state = State::Rescuing;
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        drop(state);
                        abandon_slot();
                        return Err(ServeError::BodyUnfinished);
                    }
                    state = self
                        .slot
                        .read
                        .wait_timeout(state, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}

/// Reads `body` to its end without a waker. When no frame is ready,
/// `give_up()` says whether the writer is gone (true: the body is unfinished)
/// or may still write (false: poll again).
fn read_body(
    mut body: HyperOutgoingBody,
    status: u16,
    headers: usize,
    limit: usize,
    mut give_up: impl FnMut() -> bool,
) -> Result<Served, ServeError> {
    let mut c = Collected::new(limit);
    let mut cx = Context::from_waker(Waker::noop());
    let mut writer_gone = false;
    while !c.done {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(f) => c.take(f),
            // Once the writer has returned, one more poll sees all it wrote.
            Poll::Pending if writer_gone => {
                c.error.get_or_insert(ServeError::BodyUnfinished);
                break;
            }
            Poll::Pending => writer_gone = give_up(),
        }
    }
    if let Some(e) = c.error {
        return Err(e);
    }
    if !(200..300).contains(&status) {
        return Err(ServeError::Status {
            status,
            reason: http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("unknown")
                .to_owned(),
        });
    }
    Ok(Served {
        status,
        headers,
        body_bytes: c.total,
        body: c.kept,
    })
}

type Frame = Option<Result<http_body::Frame<Bytes>, wasmtime_wasi_http::Error>>;

struct Collected {
    kept: Vec<u8>,
    limit: usize,
    total: u64,
    done: bool,
    error: Option<ServeError>,
}

impl Collected {
    fn new(limit: usize) -> Self {
        Collected {
            kept: Vec::new(),
            limit,
            total: 0,
            done: false,
            error: None,
        }
    }

    fn take(&mut self, frame: Frame) {
        match frame {
            None => self.done = true,
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    self.total += data.len() as u64;
                    let room = self.limit.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&data[..room.min(data.len())]);
                }
            }
            Some(Err(e)) => {
                self.done = true;
                self.error = Some(ServeError::BodyAborted(format!("{e:?}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_before_any_measuring() {
        assert!(RequestSpec::default().validate().is_ok());
        let bad = |f: fn(&mut RequestSpec)| {
            let mut r = RequestSpec::default();
            f(&mut r);
            r.validate().unwrap_err()
        };
        assert!(bad(|r| r.method = "GE T".into()).contains("not an HTTP method"));
        assert!(bad(|r| r.path = "index.html".into()).contains("must start with /"));
        assert!(
            bad(|r| r.headers.push(("bad header".into(), "x".into())))
                .contains("not a valid header name")
        );
        assert_eq!(
            RequestSpec {
                method: "POST".into(),
                path: "/api".into(),
                headers: vec![("a".into(), "b".into())],
                body: b"{}".to_vec()
            }
            .describe(),
            "POST /api with 1 header(s) and a 2-byte body"
        );
    }
}
