//! What `--tui` shows, as data: the aggregator copies a small summary of its figures into a
//! [`Board`] every [`PUBLISH_EVERY`] through a `tokio::sync::watch` channel, and the screen
//! (`simulate/screen.rs`) reads the latest one. Users still send only to the aggregator; the
//! aggregator still owns the histograms; nothing here is on a user's path.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::metrics::{Op, OpStats, Stats, TIMELINE_BUCKET};

/// How often the aggregator publishes while a run goes.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// Throughput buckets kept per operation (the last minute at 100 ms a bucket): a screen is
/// narrower than that.
pub const TIMELINE_KEEP: usize = 600;

/// Everything the live view shows: every planned run, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    /// One per scenario × strategy (or server), in the order they run.
    pub runs: Vec<RunLive>,
    /// Whether the whole command is still going.
    pub phase: Phase,
}

/// Where the whole command is.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Phase {
    /// Runs are going.
    #[default]
    Running,
    /// Every run ended; `ok` when every check held.
    Finished {
        /// Every invariant and expectation held.
        ok: bool,
    },
    /// A run stopped with an error (the command prints it once the terminal is back).
    Failed(String),
}

/// Where one run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RunState {
    /// Not started.
    #[default]
    Pending,
    /// Creating the concerts, wallets and tokens it needs.
    Setup,
    /// Virtual users are arriving or on their way.
    Running,
    /// Users are done; reading final state and checking invariants.
    Checking,
    /// Ended; `ok` when every check held.
    Done {
        /// Every check held.
        ok: bool,
    },
}

/// One run as the screen sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLive {
    /// Index of its scenario among the command's scenarios.
    pub scenario_index: usize,
    /// The scenario's name.
    pub scenario: String,
    /// `pessimistic`, `optimistic`, `redis` or `http URL`.
    pub label: String,
    /// Users the run will have.
    pub users: u64,
    /// Where it is.
    pub state: RunState,
    /// Since the run's start.
    pub elapsed: Duration,
    /// Journeys that ended in a payment (or finished their operations).
    pub done: u64,
    /// Users who found nothing left.
    pub sold_out: u64,
    /// Users who gave up.
    pub gave_up: u64,
    /// The operations that ran so far, in journey order.
    pub ops: Vec<OpLive>,
}

impl RunLive {
    /// Users whose journey ended, however it ended.
    pub fn finished(&self) -> u64 {
        self.done + self.sold_out + self.gave_up
    }
}

/// One operation's figures so far.
#[derive(Debug, Clone, PartialEq)]
pub struct OpLive {
    /// Which.
    pub op: Op,
    /// Requests.
    pub count: u64,
    /// Successes.
    pub ok: u64,
    /// Lost races.
    pub conflicts: u64,
    /// Other refusals.
    pub rejected: u64,
    /// Server or transport errors.
    pub errors: u64,
    /// Requests per second over the span it was in flight.
    pub throughput: f64,
    /// Latency from intended start, ms: p50, p90, p99, p99.9, max.
    pub ms: [f64; 5],
    /// Index (since the run's start) of the first bucket in `timeline`.
    pub timeline_start: usize,
    /// Completions per [`TIMELINE_BUCKET`], the last [`TIMELINE_KEEP`] buckets at most.
    pub timeline: Vec<u32>,
}

impl OpLive {
    /// A summary of the aggregator's figures for `op`.
    pub fn of(op: Op, s: &OpStats) -> OpLive {
        let start = s.timeline.len().saturating_sub(TIMELINE_KEEP);
        OpLive {
            op,
            count: s.count,
            ok: s.ok,
            conflicts: s.conflicts,
            rejected: s.rejected,
            errors: s.errors,
            throughput: s.throughput(),
            ms: [
                s.ms_at(0.50),
                s.ms_at(0.90),
                s.ms_at(0.99),
                s.ms_at(0.999),
                s.latency.max() as f64 / 1000.0,
            ],
            timeline_start: start,
            timeline: s.timeline[start..].to_vec(),
        }
    }

    /// Completions in bucket `b` (counted from the run's start).
    pub fn in_bucket(&self, b: usize) -> u32 {
        b.checked_sub(self.timeline_start)
            .and_then(|i| self.timeline.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// The board's one writer side: created with every planned run, then updated by the command
/// (states, phase) and by each run's aggregator (figures).
#[derive(Clone)]
pub struct Live {
    tx: watch::Sender<Board>,
}

impl Live {
    /// A board with `runs` planned (all pending), and a reader of it.
    pub fn new(runs: Vec<RunLive>) -> (Live, watch::Receiver<Board>) {
        let (tx, rx) = watch::channel(Board {
            runs,
            phase: Phase::Running,
        });
        (Live { tx }, rx)
    }

    /// Moves run `run` to `state`.
    pub fn set_state(&self, run: usize, state: RunState) {
        self.tx.send_modify(|b| {
            if let Some(r) = b.runs.get_mut(run) {
                r.state = state;
            }
        });
    }

    /// Sets the whole command's phase.
    pub fn set_phase(&self, phase: Phase) {
        self.tx.send_modify(|b| b.phase = phase);
    }

    /// `live` paired with run `run`, when there is a live view.
    pub fn run_of(live: Option<&Live>, run: usize) -> Option<(&Live, usize)> {
        live.map(|l| (l, run))
    }

    /// The publisher for run `run`, whose clock started at `t0`.
    pub fn publisher(&self, run: usize, t0: Instant) -> Publisher {
        Publisher {
            live: self.clone(),
            run,
            t0,
        }
    }
}

/// What one run's aggregator publishes through.
pub struct Publisher {
    live: Live,
    run: usize,
    t0: Instant,
}

impl Publisher {
    /// Copies the figures so far into the board.
    pub fn publish(&self, stats: &Stats) {
        let ops: Vec<OpLive> = stats.ops.iter().map(|(op, s)| OpLive::of(*op, s)).collect();
        let elapsed = Instant::now().saturating_duration_since(self.t0);
        self.live.tx.send_modify(|b| {
            if let Some(r) = b.runs.get_mut(self.run) {
                r.elapsed = elapsed;
                r.done = stats.done;
                r.sold_out = stats.sold_out;
                r.gave_up = stats.gave_up;
                r.ops = ops;
            }
        });
    }
}

/// Index of the bucket `elapsed` falls in.
pub fn bucket_of(elapsed: Duration) -> usize {
    (elapsed.as_millis() / TIMELINE_BUCKET.as_millis()) as usize
}
