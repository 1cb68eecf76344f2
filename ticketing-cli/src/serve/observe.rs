//! One middleware around every request: a request id (the client's `x-request-id` when it
//! sends a sane one), one log line (request id, method, path, status, latency; the code and
//! cause of every 4xx/5xx), and the metrics of [`super::metrics`].
//!
//! The query string is never logged: it may carry a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ErrorCause;
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
    let request_id = id.to_str().unwrap_or_default();
    let latency_ms = Millis(latency.as_secs_f64() * 1e3);
    match response.extensions().get::<ErrorCause>() {
        Some(e) if status >= 500 => tracing::error!(
            request_id, %method, path, status, %latency_ms, code = e.code, cause = %e.cause, "request failed"
        ),
        Some(e) => tracing::warn!(
            request_id, %method, path, status, %latency_ms, code = e.code, cause = %e.cause, "request refused"
        ),
        None => tracing::info!(request_id, %method, path, status, %latency_ms, "request"),
    }
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

/// Milliseconds shown to the microsecond.
struct Millis(f64);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}", self.0)
    }
}
