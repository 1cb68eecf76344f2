//! The request log: one line per request, formatted and written off the request path.
//!
//! A request hands a few fields (its id, method, path, status, latency, and the code and cause
//! of a refusal) to a bounded queue and goes on; one thread of its own wakes every
//! [`WRITE_EVERY`], formats what is queued and writes it to stderr in one `write`. The thread
//! sleeps on a timer, not on the queue, so no request ever wakes it (a system call each), and the
//! time stamp's date and time are formatted once a second. Through `tracing`'s formatter on the request's
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
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, Method};

/// Lines waiting for the writer at most.
const QUEUE: usize = 64 * 1024;
/// How often the writer writes what has been queued (a line shows up at most this late).
const WRITE_EVERY: Duration = Duration::from_millis(20);

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
    /// Starts the writer thread. It stops once every `RequestLog` clone is gone, after
    /// writing what they queued: [`LogWriter::finish`] waits for that.
    pub fn start() -> std::io::Result<(RequestLog, LogWriter)> {
        let (lines, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = dropped.clone();
        let thread = std::thread::Builder::new()
            .name("ticketing-log".into())
            .spawn(move || write_loop(&rx, &seen))?;
        Ok((RequestLog { lines, dropped }, LogWriter(thread)))
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

/// The writer thread, to wait for at shutdown.
pub struct LogWriter(std::thread::JoinHandle<()>);

impl LogWriter {
    /// Waits (a second at most) for the thread to write the last lines and stop: it stops once
    /// every sender is gone, so at shutdown nothing a request queued is lost.
    pub fn finish(self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !self.0.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.0.is_finished() {
            let _ = self.0.join();
        }
    }
}

fn write_loop(lines: &Receiver<Line>, dropped: &AtomicU64) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let mut text = Vec::with_capacity(64 * 1024);
    let mut clock = SecondText::default();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut reported = 0;
    loop {
        // Wake on a timer, not per line: a sender then never has a sleeping thread to wake (a
        // system call on the request path), and each wake-up writes everything queued at once.
        loop {
            match lines.try_recv() {
                Ok(line) => format_line(&mut text, &mut clock, &line, ansi),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let _ = out.write_all(&text);
                    let _ = out.flush();
                    return;
                }
            }
            if text.len() >= 60 * 1024 {
                let _ = out.write_all(&text);
                text.clear();
            }
        }
        let lost = dropped.load(Ordering::Relaxed);
        if lost > reported {
            let now = SystemTime::now();
            text.extend_from_slice(clock.of(now).as_bytes());
            let _ = writeln!(
                text,
                ".000000Z  WARN request log fell behind: {lost} lines dropped so far"
            );
            reported = lost;
        }
        if !text.is_empty() {
            let _ = out.write_all(&text);
            let _ = out.flush();
            text.clear();
        }
        std::thread::sleep(WRITE_EVERY);
    }
}

/// `2026-11-30T07:40:00` of the current second, formatted once a second.
#[derive(Default)]
struct SecondText {
    second: u64,
    text: String,
}

impl SecondText {
    fn of(&mut self, at: SystemTime) -> &str {
        let second = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = chrono::DateTime::<chrono::Utc>::from(at)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string();
        }
        &self.text
    }
}

fn format_line(text: &mut Vec<u8>, clock: &mut SecondText, line: &Line, ansi: bool) {
    let (level, message) = match (&line.error, line.status) {
        (_, 500..) => (if ansi { "\x1b[31mERROR\x1b[0m" } else { "ERROR" }, "request failed"),
        (Some(_), _) => (if ansi { "\x1b[33m WARN\x1b[0m" } else { " WARN" }, "request refused"),
        (None, _) => (if ansi { "\x1b[32m INFO\x1b[0m" } else { " INFO" }, "request"),
    };
    let micros = line
        .at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros());
    let latency = line.latency.as_micros();
    text.extend_from_slice(clock.of(line.at).as_bytes());
    let _ = write!(
        text,
        ".{micros:06}Z {level} {message} request_id={} method={} path=",
        line.request_id.to_str().unwrap_or_default(),
        line.method.as_str(),
    );
    quoted(text, &line.path);
    let _ = write!(
        text,
        " status={} latency_ms={}.{:03}",
        line.status,
        latency / 1000,
        latency % 1000
    );
    if let Some((code, cause)) = &line.error {
        let _ = write!(text, " code=\"{code}\" cause={cause}");
    }
    text.push(b'\n');
}

/// `"value"`, escaped as `{:?}` escapes it (a path rarely needs it: then it is copied).
fn quoted(text: &mut Vec<u8>, value: &str) {
    if value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
        text.push(b'"');
        text.extend_from_slice(value.as_bytes());
        text.push(b'"');
    } else {
        let _ = write!(text, "{value:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_like_the_rest_of_the_log() {
        let mut text = Vec::new();
        format_line(
            &mut text,
            &mut SecondText::default(),
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
            String::from_utf8(text).unwrap(),
            "2026-12-24T19:00:00.000000Z  WARN request refused request_id=0000002a method=POST path=\"/api/pay\" \
             status=401 latency_ms=1.250 code=\"TOKEN_EXPIRED\" cause=the token has expired\n"
        );
    }

    #[test]
    fn a_path_is_quoted_as_debug_quotes_it() {
        for path in ["/api/pay", "/api/1/available-seats", "/a\"b", "/caf\u{e9}", "/a\\b c"] {
            let mut text = Vec::new();
            quoted(&mut text, path);
            assert_eq!(String::from_utf8(text).unwrap(), format!("{path:?}"));
        }
    }
}
