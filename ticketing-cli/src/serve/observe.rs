//! One middleware around every request: a request id (the client's `x-request-id` when it
//! sends a sane one), one log line (request id, method, path, status, latency; the code and
//! cause of every 4xx/5xx; written by [`super::request_log`] off the request path), and the
//! metrics of [`super::metrics`].
//!
//! The query string is never logged: it may carry a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ErrorCause;
use super::request_log::{Line, RequestLog};
use super::AppState;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Numbers requests of this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The middleware: see the module docs.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let _in_flight = state.metrics.in_flight();
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.to_str().is_ok())
        .cloned()
        .unwrap_or_else(|| {
            let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            HeaderValue::from_str(&format!("{n:08x}")).unwrap_or(HeaderValue::from_static("0"))
        });
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());

    let mut response = next.run(request).await;

    let latency = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .record(route.as_deref().unwrap_or("unmatched"), &method, status, latency);
    let cause = response.extensions().get::<ErrorCause>();
    if RequestLog::enabled(status, cause.is_some()) {
        state.log.send(Line {
            at: SystemTime::now(),
            request_id: id.clone(),
            method,
            path,
            status,
            latency,
            error: cause.map(|e| (e.code, e.cause.clone())),
        });
    }
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}
