//! A `wasi:http/incoming-handler` whose behaviour the request path chooses,
//! so one component covers every way a handler can answer:
//!
//! - `/`: 200 with the body `ok`;
//! - `/status/NNN`: status NNN with a short body;
//! - `/trap`: traps before answering;
//! - `/no-response`: returns without setting a response;
//! - `/abort`: sets a 200 response, then drops its body without finishing it;
//! - `/chunks/N`: 200 with N separate 1 KiB writes (more than a host buffers);
//! - `/echo`: 200 with `METHOD PATH headers=N body=BYTES`;
//! - `/outgoing`: makes an outgoing request to http://example.com/ and
//!   answers 200 with `outgoing: <the error code or status>`.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

wasip2::http::proxy::export!(Probe);

struct Probe;

impl wasip2::exports::http::incoming_handler::Guest for Probe {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        match path.as_str() {
            "/trap" => panic!("asked to trap"),
            "/no-response" => {}
            "/abort" => {
                let response = OutgoingResponse::new(Fields::new());
                let body = response.body().unwrap();
                ResponseOutparam::set(out, Ok(response));
                let stream = body.write().unwrap();
                stream.blocking_write_and_flush(b"partial").unwrap();
                drop(stream);
                drop(body);
            }
            "/echo" => {
                let method = match request.method() {
                    Method::Get => "GET".to_string(),
                    Method::Post => "POST".to_string(),
                    Method::Put => "PUT".to_string(),
                    Method::Delete => "DELETE".to_string(),
                    other => format!("{other:?}"),
                };
                let headers = request.headers().entries().len();
                let mut bytes = 0usize;
                if let Ok(body) = request.consume() {
                    let stream = body.stream().unwrap();
                    while let Ok(chunk) = stream.blocking_read(65536) {
                        bytes += chunk.len();
                    }
                }
                let text = format!("{method} {path} headers={headers} body={bytes}");
                answer(out, 200, &[text.as_bytes()]);
            }
            "/outgoing" => {
                let req = OutgoingRequest::new(Fields::new());
                req.set_scheme(Some(&Scheme::Http)).unwrap();
                req.set_authority(Some("example.com")).unwrap();
                req.set_path_with_query(Some("/")).unwrap();
                let text = match outgoing_handler::handle(req, None) {
                    Err(e) => format!("outgoing: {e:?}"),
                    Ok(future) => {
                        future.subscribe().block();
                        match future.get() {
                            Some(Ok(Ok(resp))) => format!("outgoing: status {}", resp.status()),
                            Some(Ok(Err(e))) => format!("outgoing: {e:?}"),
                            other => format!("outgoing: {other:?}"),
                        }
                    }
                };
                answer(out, 200, &[text.as_bytes()]);
            }
            p if p.starts_with("/status/") => {
                let status = p["/status/".len()..].parse().unwrap_or(500);
                answer(out, status, &[b"status"]);
            }
            p if p.starts_with("/chunks/") => {
                let n: usize = p["/chunks/".len()..].parse().unwrap_or(1);
                let chunk = [b'x'; 1024];
                let chunks: Vec<&[u8]> = (0..n).map(|_| &chunk[..]).collect();
                answer(out, 200, &chunks);
            }
            _ => answer(out, 200, &[b"ok"]),
        }
    }
}

/// Answers `status` with the body written as one write per piece.
fn answer(out: ResponseOutparam, status: u16, pieces: &[&[u8]]) {
    let response = OutgoingResponse::new(Fields::new());
    response.set_status_code(status).unwrap();
    let body = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().unwrap();
    for piece in pieces {
        stream.blocking_write_and_flush(piece).unwrap();
    }
    drop(stream);
    OutgoingBody::finish(body, None).unwrap();
}
