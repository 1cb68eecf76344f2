//! `GET /metrics` in the Prometheus text format, written by hand: request counts and latency
//! histograms by route, method and status (recorded by [`super::observe`]), and, read from the
//! core at scrape time, the queue, seats by status and the strategy's lost-race counters; and
//! how the memoized catalogue reads were answered (memory or database).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::Method;
use ticketing_core::{Database, MemoCounts, NodeStats, Ticketing};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters of one (route, method, status).
struct Series {
    route: Box<str>,
    method: Method,
    status: u16,
    count: AtomicU64,
    sum_micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

/// The HTTP metrics of this process.
#[derive(Default)]
pub struct Metrics {
    /// This node's name among the service's nodes (`--node-id`): the `node` label.
    node: String,
    // A short list scanned linearly: the API has a dozen routes and a handful of statuses.
    series: RwLock<Vec<Arc<Series>>>,
    in_flight: AtomicI64,
}

impl Metrics {
    /// Metrics of the node named `node`.
    pub fn new(node: String) -> Metrics {
        Metrics {
            node,
            ..Metrics::default()
        }
    }

    /// Records one finished request.
    pub fn record(&self, route: &str, method: &Method, status: u16, latency: Duration) {
        let series = self.series_of(route, method, status);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        series.count.fetch_add(1, Ordering::Relaxed);
        series.sum_micros.fetch_add(micros, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            series.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One more request in flight until the guard drops.
    pub fn in_flight(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn series_of(&self, route: &str, method: &Method, status: u16) -> Arc<Series> {
        let find = |list: &[Arc<Series>]| {
            list.iter()
                .find(|s| s.status == status && s.method == method && &*s.route == route)
                .cloned()
        };
        if let Some(s) = find(&self.series.read().unwrap_or_else(|p| p.into_inner())) {
            return s;
        }
        let mut list = self.series.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = find(&list) {
            return s;
        }
        let s = Arc::new(Series {
            route: route.into(),
            method: method.clone(),
            status,
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            buckets: Default::default(),
        });
        list.push(s.clone());
        s
    }

    /// The whole exposition: HTTP series, then the core's state (a blocking call: run it on
    /// the blocking pool).
    pub fn render(&self, ticketing: &Ticketing, memos: &[(&str, MemoCounts)]) -> ticketing_core::Result<String> {
        let mut out = String::with_capacity(8 * 1024);
        self.render_http(&mut out);
        render_core(&mut out, ticketing, &escape(&self.node))?;
        render_node(&mut out, &ticketing.node_stats(), &escape(&self.node));
        render_memos(&mut out, memos);
        Ok(out)
    }

    fn render_http(&self, out: &mut String) {
        let mut list: Vec<Arc<Series>> = self.series.read().unwrap_or_else(|p| p.into_inner()).clone();
        list.sort_by(|a, b| (&a.route, a.method.as_str(), a.status).cmp(&(&b.route, b.method.as_str(), b.status)));
        let _ = writeln!(
            out,
            "# HELP ticketing_http_requests_total HTTP requests answered, by route, method and status.\n\
             # TYPE ticketing_http_requests_total counter"
        );
        for s in &list {
            let _ = writeln!(
                out,
                "ticketing_http_requests_total{{{}}} {}",
                labels(s),
                s.count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ticketing_http_request_duration_seconds Time from request to response, by route, method and status.\n\
             # TYPE ticketing_http_request_duration_seconds histogram"
        );
        for s in &list {
            let labels = labels(s);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(&s.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "ticketing_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "ticketing_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}\n\
                 ticketing_http_request_duration_seconds_sum{{{labels}}} {}\n\
                 ticketing_http_request_duration_seconds_count{{{labels}}} {count}",
                s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP ticketing_http_requests_in_flight Requests being answered now.\n\
             # TYPE ticketing_http_requests_in_flight gauge\n\
             ticketing_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
    }
}

/// Counts a request as in flight while alive.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn labels(s: &Series) -> String {
    format!(
        "route=\"{}\",method=\"{}\",status=\"{}\"",
        escape(&s.route),
        s.method,
        s.status
    )
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render_core(out: &mut String, t: &Ticketing, node: &str) -> ticketing_core::Result<()> {
    let q = t.queue_state()?;
    let backend = match t.config().db {
        Database::Sqlite(_) => "sqlite",
        Database::Postgres(_) => "postgres",
    };
    let _ = writeln!(
        out,
        "# HELP ticketing_info The running node: its name, database and concurrency-control strategy.\n\
         # TYPE ticketing_info gauge\n\
         ticketing_info{{node=\"{node}\",backend=\"{backend}\",strategy=\"{}\"}} 1\n\
         # HELP ticketing_queue_waiting Live WAITING tokens.\n\
         # TYPE ticketing_queue_waiting gauge\n\
         ticketing_queue_waiting {}\n\
         # HELP ticketing_queue_active Live ACTIVE tokens.\n\
         # TYPE ticketing_queue_active gauge\n\
         ticketing_queue_active {}\n\
         # HELP ticketing_queue_max_active Most tokens ACTIVE at once.\n\
         # TYPE ticketing_queue_max_active gauge\n\
         ticketing_queue_max_active {}\n\
         # HELP ticketing_queue_paused 1 while admission is paused.\n\
         # TYPE ticketing_queue_paused gauge\n\
         ticketing_queue_paused {}\n\
         # HELP ticketing_queue_admitted_last_minute Tokens admitted in the last minute.\n\
         # TYPE ticketing_queue_admitted_last_minute gauge\n\
         ticketing_queue_admitted_last_minute {}",
        t.strategy(),
        q.waiting,
        q.active,
        q.max_active,
        u8::from(q.paused),
        q.admitted_last_minute,
    );
    let (mut available, mut held, mut sold) = (0u64, 0u64, 0u64);
    for concert in t.sales()? {
        for d in concert.dates {
            available += u64::from(d.available);
            held += u64::from(d.held);
            sold += u64::from(d.sold);
        }
    }
    let _ = writeln!(
        out,
        "# HELP ticketing_seats Seats by status, over every date.\n\
         # TYPE ticketing_seats gauge\n\
         ticketing_seats{{status=\"AVAILABLE\"}} {available}\n\
         ticketing_seats{{status=\"HELD\"}} {held}\n\
         ticketing_seats{{status=\"SOLD\"}} {sold}"
    );
    let c = t.contention();
    let _ = writeln!(
        out,
        "# HELP ticketing_lock_conflicts_total Writes refused because another request changed the row first.\n\
         # TYPE ticketing_lock_conflicts_total counter\n\
         ticketing_lock_conflicts_total {}\n\
         # HELP ticketing_lock_retries_total Optimistic retries of charge and use.\n\
         # TYPE ticketing_lock_retries_total counter\n\
         ticketing_lock_retries_total {}\n\
         # HELP ticketing_lock_waits_total Lock acquisitions that had to wait (redis).\n\
         # TYPE ticketing_lock_waits_total counter\n\
         ticketing_lock_waits_total {}\n\
         # HELP ticketing_lock_failures_total Lock acquisitions that failed (redis).\n\
         # TYPE ticketing_lock_failures_total counter\n\
         ticketing_lock_failures_total {}",
        c.conflicts, c.retries, c.lock_waits, c.lock_failures
    );
    Ok(())
}

/// What an operator of several nodes watches per node: the database pool and round trip, the
/// admission notifications, the clock offset, the lock service's round trips. Each series
/// carries the `node` label; absent series mean "not on this backend or strategy".
fn render_node(out: &mut String, s: &NodeStats, node: &str) {
    let mut gauge = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{node}\"}} {value}"
        );
    };
    if let Some(db) = s.db {
        gauge(
            "ticketing_db_pool_size",
            "gauge",
            "Most connections the pool opens (--db-pool).",
            db.pool_size.to_string(),
        );
        gauge(
            "ticketing_db_pool_in_use",
            "gauge",
            "Pooled connections in use now.",
            db.pool_open.saturating_sub(db.pool_idle).to_string(),
        );
        gauge(
            "ticketing_db_pool_idle",
            "gauge",
            "Open pooled connections no one is using.",
            db.pool_idle.to_string(),
        );
        gauge(
            "ticketing_db_pool_waiting",
            "gauge",
            "Reads and writes waiting for a pooled connection now.",
            db.pool_waiting.to_string(),
        );
        gauge(
            "ticketing_db_writes_queued",
            "gauge",
            "Writes queued for a writer thread.",
            db.writes_queued.to_string(),
        );
        if let Some(rtt) = db.round_trip {
            gauge(
                "ticketing_db_round_trip_seconds",
                "gauge",
                "The last round trip to the database (its clock, read once a second).",
                format!("{:.6}", rtt.as_secs_f64()),
            );
        }
        gauge(
            "ticketing_db_writes_grouped_total",
            "counter",
            "Writes that shared a commit with an earlier write on the same rows (group commit).",
            db.writes_grouped.to_string(),
        );
        gauge(
            "ticketing_db_notifications_total",
            "counter",
            "Admission notifications received from the database (LISTEN/NOTIFY).",
            db.notifications.to_string(),
        );
        gauge(
            "ticketing_db_reconnects_total",
            "counter",
            "Times the listening connection was made again after losing the database.",
            db.reconnects.to_string(),
        );
    }
    if let Some(offset) = s.clock_offset_ms {
        gauge(
            "ticketing_clock_offset_seconds",
            "gauge",
            "How far the database's clock, which expiry is decided by, is ahead of this machine's.",
            format!("{:.3}", offset as f64 / 1e3),
        );
    }
    if let Some((count, total)) = s.redis_round_trips {
        gauge(
            "ticketing_redis_round_trips_total",
            "counter",
            "Round trips of the lock pipeline to Redis.",
            count.to_string(),
        );
        gauge(
            "ticketing_redis_round_trip_seconds_total",
            "counter",
            "Time spent in those round trips (divide by the count for the mean).",
            format!("{:.6}", total.as_secs_f64()),
        );
    }
}

/// How the memoized reads were answered: from memory or by the database.
fn render_memos(out: &mut String, memos: &[(&str, MemoCounts)]) {
    out.push_str(
        "# HELP ticketing_read_answers_total Memoized catalogue reads by where they were answered: memory \
         (nothing committed since the answer was read) or database.\n\
         # TYPE ticketing_read_answers_total counter\n",
    );
    for (read, c) in memos {
        let _ = writeln!(
            out,
            "ticketing_read_answers_total{{read=\"{read}\",from=\"memory\"}} {}\n\
             ticketing_read_answers_total{{read=\"{read}\",from=\"database\"}} {}",
            c.from_memory, c.from_database
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.record("/api/reserve", &Method::POST, 200, Duration::from_micros(300));
        m.record("/api/reserve", &Method::POST, 200, Duration::from_millis(3));
        m.record("/api/reserve", &Method::POST, 409, Duration::from_millis(3));
        let mut out = String::new();
        m.render_http(&mut out);
        let l = r#"route="/api/reserve",method="POST",status="200""#;
        assert!(
            out.contains(&format!("ticketing_http_requests_total{{{l}}} 2")),
            "{out}"
        );
        assert!(out.contains(&format!(
            "ticketing_http_request_duration_seconds_bucket{{{l},le=\"0.0005\"}} 1"
        )));
        assert!(out.contains(&format!(
            "ticketing_http_request_duration_seconds_bucket{{{l},le=\"0.005\"}} 2"
        )));
        assert!(out.contains(&format!(
            "ticketing_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 2"
        )));
        assert!(out.contains(r#"ticketing_http_requests_total{route="/api/reserve",method="POST",status="409"} 1"#));
    }
}
