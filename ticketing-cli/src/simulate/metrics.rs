//! The metrics aggregator. Virtual users only send [`Event`]s over a channel; one aggregator
//! thread owns every histogram and counter (no locks on the hot path, nothing shared), and the
//! progress bar and the `--tui` screen only read what the aggregator tells them (the screen
//! through a [`Publisher`]'s periodic copies).
//!
//! Latency is `end − intended start`: from the moment the request was due (the user's scheduled
//! arrival, or the end of its previous step plus think time), not the moment it was sent, to
//! the moment the last byte of its answer arrived (in process: the core answered), before the
//! client decodes it. A request that waited behind a slow one is charged for the wait (no
//! coordinated omission).

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use super::live::{Publisher, PUBLISH_EVERY};

/// Width of one bucket of the throughput-over-time series.
pub const TIMELINE_BUCKET: Duration = Duration::from_millis(100);

/// An operation a virtual user performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// Issue a queue token.
    Token,
    /// Poll the token's status while waiting.
    Status,
    /// List a concert's dates with seats.
    Dates,
    /// List a date's seats.
    Seats,
    /// Hold a seat.
    Reserve,
    /// Charge the wallet.
    Charge,
    /// Use points from the wallet.
    Use,
    /// Pay a hold.
    Pay,
    /// Give the token up.
    Leave,
}

impl Op {
    /// Every operation, in journey order.
    pub const ALL: [Op; 9] = [
        Op::Token,
        Op::Status,
        Op::Dates,
        Op::Seats,
        Op::Reserve,
        Op::Charge,
        Op::Use,
        Op::Pay,
        Op::Leave,
    ];

    /// The name used in tables, JSON and scenario expectations.
    pub fn name(self) -> &'static str {
        match self {
            Op::Token => "token",
            Op::Status => "status",
            Op::Dates => "dates",
            Op::Seats => "seats",
            Op::Reserve => "reserve",
            Op::Charge => "charge",
            Op::Use => "use",
            Op::Pay => "pay",
            Op::Leave => "leave",
        }
    }

    /// The operation named `s`.
    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// Lost a race: 409 (seat taken, already paid, version conflict, lock not acquired).
    Conflict,
    /// Refused by a business rule or auth: another 4xx (insufficient balance, token expired…).
    Rejected,
    /// A server error, a transport failure or an internal error.
    Error,
}

/// What a virtual user reports.
#[derive(Debug)]
pub enum Event {
    /// One request finished.
    Request {
        op: Op,
        outcome: Outcome,
        /// A repeat of a failed attempt (another seat after a conflict).
        retry: bool,
        /// Intended start, since the run's start.
        intended: Duration,
        /// When the simulator sent it, since the run's start: after `intended` by however late
        /// the simulator itself was (a timer, a busy worker), which the latency includes.
        sent: Duration,
        /// End, since the run's start.
        end: Duration,
        /// The failure's machine code (`SEAT_UNAVAILABLE`, `HTTP_503`…); `None` on success.
        code: Option<String>,
        /// The node it went to, by place in `--target`'s list (0 in process).
        node: usize,
    },
    /// A user arrived, queued, left the queue or ended, at `at` since the run's start.
    User { at: Duration, change: UserChange },
    /// A payment succeeded (client-side history for the HTTP invariants).
    Paid {
        user: i64,
        reservation: i64,
        seat: i64,
        cents: i64,
    },
    /// Money moved in a wallet by a successful charge (+) or use/payment (−).
    Money { user: i64, cents: i64 },
    /// Money may or may not have moved: a wallet request ended in an error with no answer.
    MoneyUnknown { user: i64 },
    /// A user finished its journey.
    UserDone(UserEnd),
}

/// A step of a user through the system, for the users-over-time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// Its journey began.
    Arrived,
    /// Its token came back WAITING.
    Queued,
    /// It stopped waiting (admitted, or gave up while waiting).
    LeftQueue,
    /// Its journey ended.
    Ended,
}

/// How a journey ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEnd {
    /// Paid for a seat (ticket journeys) or finished its operations.
    Done,
    /// Found nothing left to hold.
    SoldOut,
    /// Stopped on a failure (conflicts exhausted, rejected, error).
    GaveUp,
}

/// Figures of one operation.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Requests.
    pub count: u64,
    /// Successes.
    pub ok: u64,
    /// Lost races.
    pub conflicts: u64,
    /// Other refusals.
    pub rejected: u64,
    /// Client retries (another attempt after a failure).
    pub retries: u64,
    /// Server or transport errors.
    pub errors: u64,
    /// Latency from intended start, microseconds.
    pub latency: Histogram<u64>,
    /// First intended start and last end, for throughput.
    pub first_start: Duration,
    /// Last end.
    pub last_end: Duration,
    /// Completions per [`TIMELINE_BUCKET`] (the live view's).
    pub timeline: Vec<u32>,
    /// Failures by class and machine code (`(Conflict, "SEAT_UNAVAILABLE")` → 491).
    pub codes: BTreeMap<(Outcome, String), u64>,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            count: 0,
            ok: 0,
            conflicts: 0,
            rejected: 0,
            retries: 0,
            errors: 0,
            latency: latency_histogram(),
            first_start: Duration::MAX,
            last_end: Duration::ZERO,
            timeline: Vec::new(),
            codes: BTreeMap::new(),
        }
    }

    /// Failures of any kind.
    pub fn failed(&self) -> u64 {
        self.count - self.ok
    }

    /// Attempts (requests of any outcome) per second over the span this operation was in
    /// flight.
    pub fn throughput(&self) -> f64 {
        self.per_second(self.count)
    }

    /// Successful operations per second over the same span: what strategies are ranked by
    /// (attempts depend on how many users were still racing, not on how fast a strategy is).
    pub fn ok_throughput(&self) -> f64 {
        self.per_second(self.ok)
    }

    fn per_second(&self, n: u64) -> f64 {
        let span = self.last_end.saturating_sub(self.first_start).as_secs_f64();
        if n == 0 {
            0.0
        } else {
            n as f64 / span.max(0.001)
        }
    }

    /// Latency at `q` (0..1), in milliseconds.
    pub fn ms_at(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// Counts one request that took `micros` from its intended start.
    fn record(
        &mut self,
        outcome: Outcome,
        retry: bool,
        intended: Duration,
        end: Duration,
        micros: u64,
        code: Option<&str>,
    ) {
        self.count += 1;
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Conflict => self.conflicts += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Error => self.errors += 1,
        }
        self.retries += u64::from(retry);
        self.latency.saturating_record(micros);
        if let Some(code) = code {
            *self.codes.entry((outcome, code.to_string())).or_default() += 1;
        }
        self.first_start = self.first_start.min(intended);
        self.last_end = self.last_end.max(end);
        let bucket = (end.as_millis() / TIMELINE_BUCKET.as_millis()) as usize;
        if self.timeline.len() <= bucket {
            self.timeline.resize(bucket + 1, 0);
        }
        self.timeline[bucket] += 1;
    }
}

/// An empty latency histogram: 1 µs to 1 hour, 3 significant figures.
pub fn latency_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 3_600_000_000, 3) {
        Ok(h) => h,
        // The bounds are constants that hdrhistogram accepts; this arm is never taken.
        Err(_) => Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid")),
    }
}

/// Width of the time series' first intervals. The aggregator widens them as the run goes on
/// (see [`Timeline::coarsen`]), so a 5 ms race and a 3-minute rush both get a readable plot.
const FIRST_INTERVAL: Duration = Duration::from_millis(1);

/// Most intervals a series keeps; past this, neighbours are merged into wider intervals.
pub const MAX_INTERVALS: usize = 200;

/// One operation's requests that ended within one interval.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Successes.
    pub ok: u32,
    /// Lost races (409).
    pub conflicts: u32,
    /// Other refusals and errors.
    pub failed: u32,
    /// Latency from intended start, microseconds (2 significant figures: a plot's resolution;
    /// auto-resized, so an interval of fast requests stays a few KB).
    pub latency: Histogram<u32>,
}

impl Interval {
    fn new() -> Interval {
        Interval {
            ok: 0,
            conflicts: 0,
            failed: 0,
            latency: Histogram::new(2).unwrap_or_else(|_| unreachable!("2 significant figures is valid")),
        }
    }

    /// Requests of any outcome.
    pub fn count(&self) -> u32 {
        self.ok + self.conflicts + self.failed
    }

    fn absorb(&mut self, other: &Interval) {
        self.ok += other.ok;
        self.conflicts += other.conflicts;
        self.failed += other.failed;
        // Both auto-resize, so adding cannot run out of range.
        let _ = self.latency.add(&other.latency);
    }
}

/// Users in the system during one interval (the most seen at once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Arrived, not ended, not waiting in the queue.
    pub active: u32,
    /// Holding a WAITING token.
    pub waiting: u32,
}

/// The time series of a run, by interval of the run's time; every series shares one width.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Width of one interval.
    pub width: Duration,
    /// Requests by the interval they ended in, per operation.
    pub ops: BTreeMap<Op, Vec<Interval>>,
    /// Users in the system per interval.
    pub users: Vec<Occupancy>,
    /// Users now: arrived and not ended, and of those, waiting.
    in_system: u32,
    waiting: u32,
}

impl Timeline {
    fn new() -> Timeline {
        Timeline {
            width: FIRST_INTERVAL,
            ops: BTreeMap::new(),
            users: Vec::new(),
            in_system: 0,
            waiting: 0,
        }
    }

    /// The interval `at` falls in, widening intervals until it is within [`MAX_INTERVALS`].
    fn index(&mut self, at: Duration) -> usize {
        loop {
            let i = (at.as_micros() / self.width.as_micros()) as usize;
            if i < MAX_INTERVALS {
                return i;
            }
            self.coarsen();
        }
    }

    /// Merges neighbouring intervals: ×2 from a width starting with 1, else ×5, so widths stay
    /// round (1, 2, 10, 20, 100, 200 ms, 1 s…) and every new interval is whole old ones.
    fn coarsen(&mut self) {
        let mut lead = self.width.as_micros();
        while lead >= 10 {
            lead /= 10;
        }
        let factor = if lead == 1 { 2 } else { 5 };
        self.width *= factor as u32;
        for series in self.ops.values_mut() {
            let mut merged: Vec<Interval> = Vec::with_capacity(series.len().div_ceil(factor));
            for (i, interval) in series.iter().enumerate() {
                if i % factor == 0 {
                    merged.push(interval.clone());
                } else if let Some(last) = merged.last_mut() {
                    last.absorb(interval);
                }
            }
            *series = merged;
        }
        self.users = self
            .users
            .chunks(factor)
            .map(|c| Occupancy {
                active: c.iter().map(|o| o.active).max().unwrap_or(0),
                waiting: c.iter().map(|o| o.waiting).max().unwrap_or(0),
            })
            .collect();
    }

    fn request(&mut self, op: Op, outcome: Outcome, end: Duration, micros: u64) {
        let i = self.index(end);
        let series = self.ops.entry(op).or_default();
        if series.len() <= i {
            series.resize_with(i + 1, Interval::new);
        }
        let interval = &mut series[i];
        match outcome {
            Outcome::Ok => interval.ok += 1,
            Outcome::Conflict => interval.conflicts += 1,
            Outcome::Rejected | Outcome::Error => interval.failed += 1,
        }
        let _ = interval.latency.record(micros);
    }

    fn user(&mut self, at: Duration, change: UserChange) {
        let i = self.index(at);
        // Intervals with no change hold the count as it was. Events from different users can
        // arrive a little out of order; the plot shows counts to an interval's precision.
        let now = self.occupancy();
        if self.users.len() <= i {
            self.users.resize(i + 1, now);
        }
        match change {
            UserChange::Arrived => self.in_system += 1,
            UserChange::Queued => self.waiting += 1,
            UserChange::LeftQueue => self.waiting = self.waiting.saturating_sub(1),
            UserChange::Ended => self.in_system = self.in_system.saturating_sub(1),
        }
        let now = self.occupancy();
        let peak = &mut self.users[i];
        peak.active = peak.active.max(now.active);
        peak.waiting = peak.waiting.max(now.waiting);
    }

    fn occupancy(&self) -> Occupancy {
        Occupancy {
            active: self.in_system.saturating_sub(self.waiting),
            waiting: self.waiting,
        }
    }
}

/// Client-side history, for invariants over HTTP.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Every successful payment: (user, reservation, seat, cents).
    pub paid: Vec<(i64, i64, i64, i64)>,
    /// Net money moved per user by successful requests, in cents.
    pub moved: BTreeMap<i64, i64>,
    /// Users with a wallet request of unknown outcome.
    pub unknown: Vec<i64>,
}

/// Everything the aggregator gathered.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Per operation (only those that ran).
    pub ops: BTreeMap<Op, OpStats>,
    /// The same requests per node, one per node of `--target` in its order (one in process).
    pub nodes: Vec<OpStats>,
    /// Journeys by ending.
    pub done: u64,
    /// Users who found it sold out.
    pub sold_out: u64,
    /// Users who gave up.
    pub gave_up: u64,
    /// Client-side history.
    pub history: History,
    /// Time series for the report's plots.
    pub timeline: Timeline,
    /// How late the simulator sent each request after its intended start, microseconds: its
    /// own share of every latency (see [`Stats::late_ms_at`]).
    pub send_lag: Histogram<u64>,
}

impl Stats {
    /// The simulator's own lateness at `q` (0..1), in milliseconds: how long after its
    /// intended start a request was sent. Every latency counts it (a late generator and a
    /// stalled server look alike from the client); this tells them apart.
    pub fn late_ms_at(&self, q: f64) -> f64 {
        self.send_lag.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The aggregator thread.
pub struct Aggregator {
    handle: JoinHandle<Stats>,
}

impl Aggregator {
    /// Starts the aggregator of a run on `nodes` nodes; `progress` counts finished users;
    /// `live`, when given, receives a copy of the figures every [`PUBLISH_EVERY`] and at the end.
    pub fn start(
        progress: ProgressBar,
        live: Option<Publisher>,
        nodes: usize,
    ) -> std::io::Result<(Sender<Event>, Aggregator)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("simulate-metrics".into())
            .spawn(move || aggregate(rx, progress, live, nodes))?;
        Ok((tx, Aggregator { handle }))
    }

    /// Waits for every sender to be dropped, then returns the figures.
    pub fn finish(self) -> anyhow::Result<Stats> {
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the metrics aggregator panicked"))
    }
}

fn aggregate(rx: Receiver<Event>, progress: ProgressBar, live: Option<Publisher>, nodes: usize) -> Stats {
    let mut stats = Stats {
        ops: BTreeMap::new(),
        // Every node has its row, even one no request reached.
        nodes: std::iter::repeat_with(OpStats::new).take(nodes.max(1)).collect(),
        done: 0,
        sold_out: 0,
        gave_up: 0,
        history: History::default(),
        timeline: Timeline::new(),
        send_lag: latency_histogram(),
    };
    let Some(live) = live else {
        for event in rx {
            record(&mut stats, event, &progress);
        }
        return stats;
    };
    let mut published = Instant::now();
    live.publish(&stats);
    loop {
        match rx.recv_timeout(PUBLISH_EVERY) {
            Ok(event) => record(&mut stats, event, &progress),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if published.elapsed() >= PUBLISH_EVERY {
            live.publish(&stats);
            published = Instant::now();
        }
    }
    live.publish(&stats);
    stats
}

fn record(stats: &mut Stats, event: Event, progress: &ProgressBar) {
    match event {
        Event::Request {
            op,
            outcome,
            retry,
            intended,
            sent,
            end,
            code,
            node,
        } => {
            let micros = u64::try_from(end.saturating_sub(intended).as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let late = u64::try_from(sent.saturating_sub(intended).as_micros()).unwrap_or(u64::MAX);
            stats.send_lag.saturating_record(late);
            let code = code.as_deref();
            stats
                .ops
                .entry(op)
                .or_insert_with(OpStats::new)
                .record(outcome, retry, intended, end, micros, code);
            if stats.nodes.len() <= node {
                stats.nodes.resize_with(node + 1, OpStats::new);
            }
            stats.nodes[node].record(outcome, retry, intended, end, micros, code);
            stats.timeline.request(op, outcome, end, micros);
        }
        Event::Paid {
            user,
            reservation,
            seat,
            cents,
        } => stats.history.paid.push((user, reservation, seat, cents)),
        Event::Money { user, cents } => *stats.history.moved.entry(user).or_default() += cents,
        Event::MoneyUnknown { user } => stats.history.unknown.push(user),
        Event::User { at, change } => stats.timeline.user(at, change),
        Event::UserDone(end) => {
            match end {
                UserEnd::Done => stats.done += 1,
                UserEnd::SoldOut => stats.sold_out += 1,
                UserEnd::GaveUp => stats.gave_up += 1,
            }
            progress.inc(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Intervals widen by round steps as the run grows, and merging loses no request.
    #[test]
    fn intervals_widen_roundly_and_keep_every_request() {
        let mut t = Timeline::new();
        t.request(Op::Reserve, Outcome::Ok, Duration::from_micros(500), 400);
        assert_eq!(t.width, ms(1));
        t.request(Op::Reserve, Outcome::Conflict, ms(150), 2_000);
        assert_eq!(t.width, ms(1), "150 intervals of 1 ms fit");
        t.request(Op::Reserve, Outcome::Conflict, ms(350), 3_000);
        assert_eq!(t.width, ms(2));
        t.request(Op::Pay, Outcome::Rejected, ms(1_900), 9_000);
        assert_eq!(t.width, ms(10));
        t.request(Op::Reserve, Outcome::Ok, ms(3_000), 1_000);
        assert_eq!(t.width, ms(20));
        t.request(Op::Reserve, Outcome::Ok, ms(7_000), 1_000);
        assert_eq!(t.width, ms(100));
        let reserve = &t.ops[&Op::Reserve];
        assert!(reserve.len() <= MAX_INTERVALS);
        assert_eq!(reserve.iter().map(|i| i.ok).sum::<u32>(), 3);
        assert_eq!(reserve.iter().map(|i| i.conflicts).sum::<u32>(), 2);
        assert_eq!(reserve.iter().map(|i| i.latency.len()).sum::<u64>(), 5);
        // 0.5 ms, 150 ms and 350 ms now share the intervals [0, 100 ms) and [100, 200 ms)…
        assert_eq!((reserve[0].ok, reserve[1].conflicts, reserve[3].conflicts), (1, 1, 1));
        assert_eq!((reserve[30].ok, reserve[70].ok), (1, 1));
        assert_eq!(t.ops[&Op::Pay][19].failed, 1);
    }

    /// Users over time: each interval holds the most users seen at once, and intervals without
    /// a change carry the count on.
    #[test]
    fn users_over_time_count_active_and_waiting() {
        let mut t = Timeline::new();
        for _ in 0..3 {
            t.user(ms(0), UserChange::Arrived);
        }
        t.user(ms(1), UserChange::Queued);
        t.user(ms(1), UserChange::Queued);
        t.user(ms(5), UserChange::LeftQueue);
        t.user(ms(8), UserChange::Ended);
        let o = |active, waiting| Occupancy { active, waiting };
        assert_eq!(t.users[0], o(3, 0));
        // At 1 ms: 3 active, then 2 active and 1 waiting, then 1 and 2: the most of each.
        assert_eq!(t.users[1], o(3, 2));
        assert_eq!(t.users[3], o(1, 2), "carried on");
        assert_eq!(t.users[5], o(2, 2));
        assert_eq!(t.users[7], o(2, 1), "carried on");
        assert_eq!(t.users[8], o(2, 1));
        assert_eq!(t.occupancy(), Occupancy { active: 1, waiting: 1 });
    }
}
