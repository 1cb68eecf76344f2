//! The request log: one line per request, formatted and written off the request path.
//!
//! A request hands a few fields (its id, method, path, status, latency, and the code and cause
//! of a refusal) to a bounded queue and goes on; one thread of its own formats the lines and
//! writes them to stderr, many per `write`. Through `tracing`'s formatter on the request's
//! own thread, the line cost `GET /health` about a quarter of its throughput (47,600 → 34,400
//! requests/s, wrk -t2 -c256 on 2 cores); the figures after the change are in
//! docs/http-benchmarks.md.
//!
//! The filter is still `RUST_LOG`'s: a line is queued only when its level is enabled for this
//! module (`RUST_LOG=warn` keeps refusals and failures, drops the 2xx lines). The format is
//! `tracing`'s (`<RFC 3339 time> <LEVEL> <message> key=value…`), so the log reads as one.
//! If the writer falls behind by [`QUEUE`] lines, further lines are counted and dropped
//! rather than slowing requests; the count is logged once it can be.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, Method};

/// Lines waiting for the writer at most.
const QUEUE: usize = 64 * 1024;

/// One request's line, before formatting.
pub struct Line {
    pub at: SystemTime,
    pub request_id: HeaderValue,
    pub method: Method,
    /// The path without its query (a query may carry a token).
    pub path: String,
    pub status: u16,
    pub latency: Duration,
    /// A refusal's or failure's code and cause.
    pub error: Option<(&'static str, String)>,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct RequestLog {
    lines: SyncSender<Line>,
    dropped: Arc<AtomicU64>,
}

impl RequestLog {
    /// Starts the writer thread.
    pub fn start() -> std::io::Result<RequestLog> {
        let (lines, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = dropped.clone();
        std::thread::Builder::new()
            .name("ticketing-log".into())
            .spawn(move || write_loop(&rx, &seen))?;
        Ok(RequestLog { lines, dropped })
    }

    /// Whether a line of this status would be written (`RUST_LOG`): 5xx at ERROR, other
    /// refusals at WARN, the rest at INFO.
    pub fn enabled(status: u16, refused: bool) -> bool {
        if status >= 500 {
            tracing::enabled!(tracing::Level::ERROR)
        } else if refused {
            tracing::enabled!(tracing::Level::WARN)
        } else {
            tracing::enabled!(tracing::Level::INFO)
        }
    }

    /// Queues `line` for the writer (never waits).
    pub fn send(&self, line: Line) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.lines.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_loop(lines: &Receiver<Line>, dropped: &AtomicU64) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let mut text = String::with_capacity(256);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut reported = 0;
    // Block for the first line, then take whatever else is there before one write.
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(line) = next {
            text.clear();
            format_line(&mut text, &line, ansi);
            let _ = out.write_all(text.as_bytes());
            next = lines.try_recv().ok();
        }
        let lost = dropped.load(Ordering::Relaxed);
        if lost > reported {
            let _ = writeln!(
                out,
                "{}  WARN request log fell behind: {} lines dropped so far",
                now_text(SystemTime::now()),
                lost
            );
            reported = lost;
        }
        let _ = out.flush();
    }
}

fn format_line(text: &mut String, line: &Line, ansi: bool) {
    use std::fmt::Write as _;
    let (level, message) = match (&line.error, line.status) {
        (_, 500..) => ("ERROR", "request failed"),
        (Some(_), _) => (" WARN", "request refused"),
        (None, _) => (" INFO", "request"),
    };
    let level = match (ansi, level) {
        (false, l) => l.to_string(),
        (true, "ERROR") => "\x1b[31mERROR\x1b[0m".to_string(),
        (true, " WARN") => "\x1b[33m WARN\x1b[0m".to_string(),
        (true, l) => format!("\x1b[32m{l}\x1b[0m"),
    };
    let _ = write!(
        text,
        "{} {level} {message} request_id={} method={} path={:?} status={} latency_ms={:.3}",
        now_text(line.at),
        line.request_id.to_str().unwrap_or_default(),
        line.method,
        line.path,
        line.status,
        line.latency.as_secs_f64() * 1e3,
    );
    if let Some((code, cause)) = &line.error {
        let _ = write!(text, " code={code:?} cause={cause}");
    }
    text.push('\n');
}

/// `2026-11-30T07:40:00.123456Z`, as `tracing`'s formatter writes it.
fn now_text(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_like_the_rest_of_the_log() {
        let mut text = String::new();
        format_line(
            &mut text,
            &Line {
                at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_798_138_800_000),
                request_id: HeaderValue::from_static("0000002a"),
                method: Method::POST,
                path: "/api/pay".into(),
                status: 401,
                latency: Duration::from_micros(1_250),
                error: Some(("TOKEN_EXPIRED", "the token has expired".into())),
            },
            false,
        );
        assert_eq!(
            text,
            "2026-12-24T19:00:00.000000Z  WARN request refused request_id=0000002a method=POST path=\"/api/pay\" \
             status=401 latency_ms=1.250 code=\"TOKEN_EXPIRED\" cause=the token has expired\n"
        );
    }
}
