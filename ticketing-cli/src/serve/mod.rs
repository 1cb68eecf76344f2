//! `ticketing serve`: the seed's HTTP API over the core (docs/contract.md §HTTP API).
//!
//! Where things are: [`router`] (routes, handlers, the OpenAPI document), [`dto`] (the only
//! place that knows the API's JSON shapes, and the strict body/query parsers), [`error`] (core
//! error → status and `{"result","message","code"}` body), [`auth`] (where a token may come
//! from), [`observe`] (request id, one log line per request, metrics recording) and
//! [`metrics`] (Prometheus text). This file starts the server: validates flags, opens the
//! database, binds, runs the sweeper and shuts down gracefully.
//!
//! The core's calls are synchronous: reads run on a small pool of read threads
//! ([`ReadPool`]), never on a runtime worker; writes start there and their answers (the
//! commit, and under the redis strategy the locks) are awaited without holding a thread
//! ([`write`]). The hot catalogue reads are answered from memory on the event loop while the
//! database is unchanged (`ticketing_core::Memo`).

mod auth;
mod dto;
mod error;
mod limits;
mod metrics;
mod observe;
mod request_log;
mod router;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use ticketing_core::admin::NewConcert;
use ticketing_core::{Answer, Memo, Money, Ticketing};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::options::Switch;
use crate::{GlobalArgs, UsageError};

pub use error::ApiError;

/// How often the background sweeper expires run-out holds and tokens (a hold's seat is back
/// within one second of `heldUntil` even with no traffic; reads never wait for it).
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_FOR: Duration = Duration::from_secs(10);

/// Flags of `ticketing serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "TICKETING_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Add a demo concert (2 dates × 50 seats) when the database has no concert yet.
    #[arg(long)]
    pub demo: bool,
    /// Worker threads of the async runtime (default: one per core).
    #[arg(long, env = "TICKETING_WORKERS")]
    pub workers: Option<usize>,
    /// Threads that run read-only core calls (default: one per core).
    #[arg(long, env = "TICKETING_READ_THREADS")]
    pub read_threads: Option<usize>,
    /// Rate limits on token issue and reserve (off: benchmarks, load tests).
    #[arg(long, env = "TICKETING_RATE_LIMIT", value_enum, default_value_t = Switch::On)]
    pub rate_limit: Switch,
    /// Token issues and reserves a second from one client address.
    #[arg(long, env = "TICKETING_RATE_LIMIT_IP", default_value_t = NonZeroU32::new(2000).expect("not zero"))]
    pub rate_limit_ip: NonZeroU32,
    /// Token issues, and reserves, a minute from one user.
    #[arg(long, env = "TICKETING_RATE_LIMIT_USER", default_value_t = NonZeroU32::new(60).expect("not zero"))]
    pub rate_limit_user: NonZeroU32,
    /// This node's name among the service's nodes: the `node` label of `/metrics` (default:
    /// this machine's host name and the bound port, HOST:PORT).
    #[arg(long, env = "TICKETING_NODE_ID")]
    pub node_id: Option<String>,
}

/// The state every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub ticketing: Ticketing,
    pub metrics: Arc<metrics::Metrics>,
    pub reads: ReadPool,
    /// The encoded `available-dates` answers, by concert.
    pub dates: Arc<Memo<Result<Bytes, ApiError>>>,
    /// The encoded `available-seats` answers, by date.
    pub seats: Arc<Memo<Result<Bytes, ApiError>>>,
    /// `None` with `--rate-limit off`.
    pub limits: Option<Arc<limits::RateLimits>>,
    /// One line per request, written off the request path.
    pub log: request_log::RequestLog,
}

/// Runs `ticketing serve` until SIGINT or SIGTERM.
///
/// Everything the user can get wrong is refused before the database is opened (so a refusal
/// leaves no new file): the settings, the address (resolved and bound first), Redis (dialled
/// before the store is created, by the core).
pub fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let config = global.config()?;
    if args.workers == Some(0) {
        return Err(UsageError("--workers must be at least 1".into()).into());
    }
    let read_threads = match args.read_threads {
        Some(0) => return Err(UsageError("--read-threads must be at least 1".into()).into()),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("ticketing-http");
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let runtime = builder.build().context("cannot start the async runtime")?;
    let listener = runtime.block_on(listen(&args.addr))?;
    // The core's errors name the file or service and the cause; their kind sets the exit code.
    let ticketing = Ticketing::open(config)?;
    if let Some(max_active) = global.max_active {
        store_max_active(&ticketing, max_active)?;
    }
    if args.demo {
        add_demo_concert(&ticketing)?;
    }
    let limits = (args.rate_limit == Switch::On)
        .then(|| Arc::new(limits::RateLimits::new(args.rate_limit_ip, args.rate_limit_user)));
    let (log, log_writer) = request_log::RequestLog::start().context("cannot start the request log")?;
    let outcome = runtime.block_on(serve(
        ticketing.clone(),
        listener,
        read_threads,
        limits,
        log,
        args.node_id,
    ));
    // Let blocking calls still running finish, then close the database (the writer thread
    // commits what it has and checkpoints the WAL when the last handle goes), and write the
    // request lines still queued.
    runtime.shutdown_timeout(DRAIN_FOR);
    drop(ticketing);
    log_writer.finish();
    outcome?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `--max-active` (or `TICKETING_MAX_ACTIVE`): the one setting `serve` stores, at start-up, and
/// says so when it changes the database's value.
fn store_max_active(ticketing: &Ticketing, max_active: u32) -> anyhow::Result<()> {
    let before = ticketing
        .queue_state()
        .context("cannot read the queue settings")?
        .max_active;
    if before != max_active {
        ticketing.set_max_active(max_active)?;
        tracing::info!(from = before, to = max_active, "max-active changed by --max-active");
    }
    Ok(())
}

/// Resolves and binds `addr`; a bad or busy address is the user's to fix.
async fn listen(addr: &str) -> anyhow::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| UsageError(format!("--addr `{addr}` is not a usable HOST:PORT: {e}")))?
        .collect();
    let listener = bind(&addrs)
        .await
        .map_err(|e| UsageError(format!("cannot listen on {addr}: {e}")))?;
    Ok(listener)
}

async fn serve(
    ticketing: Ticketing,
    listener: TcpListener,
    read_threads: usize,
    limits: Option<Arc<limits::RateLimits>>,
    log: request_log::RequestLog,
    node_id: Option<String>,
) -> anyhow::Result<()> {
    let local = listener.local_addr().context("cannot read the bound address")?;
    let node = node_id.unwrap_or_else(|| format!("{}:{}", host_name(), local.port()));
    // Scripts and tests read this line to learn the port when `--addr` asked for port 0.
    println!("listening on http://{local}");
    tracing::info!(%local, node, strategy = %ticketing.strategy(), "listening");

    let state = AppState {
        ticketing: ticketing.clone(),
        metrics: Arc::new(metrics::Metrics::new(node)),
        log,
        reads: ReadPool::start(read_threads)?,
        dates: Arc::default(),
        seats: Arc::default(),
        limits: limits.clone(),
    };
    if let Some(limits) = limits {
        // Keys idle long enough to be back at a full burst are forgotten, so memory stays flat.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.forget_idle();
            }
        });
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(sweep_loop(ticketing, stop_rx));
    let app = router::router(state);
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await;
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    served.context("the HTTP server failed")
}

/// This machine's host name (Linux), or `localhost`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

async fn bind(addrs: &[SocketAddr]) -> std::io::Result<TcpListener> {
    let mut last = std::io::Error::new(std::io::ErrorKind::InvalidInput, "the address resolves to nothing");
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Expires run-out holds and tokens and admits waiters, a few times a second.
async fn sweep_loop(ticketing: Ticketing, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let t = ticketing.clone();
        match tokio::task::spawn_blocking(move || t.sweep()).await {
            Ok(Ok(report)) => {
                if report != ticketing_core::SweepReport::default() {
                    tracing::debug!(
                        holds_expired = report.holds_expired,
                        tokens_expired = report.tokens_expired,
                        admitted = report.admitted,
                        "swept"
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!(code = e.code(), cause = %e, "sweep failed"),
            Err(e) => tracing::error!(cause = %e, "sweep panicked"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(cause = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(cause = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only the "listening on" line.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// The demo concert `--demo` adds to an empty database.
fn add_demo_concert(ticketing: &Ticketing) -> anyhow::Result<()> {
    if !ticketing.concerts().context("cannot read concerts")?.is_empty() {
        return Ok(());
    }
    let created = ticketing
        .add_concert(NewConcert {
            title: "Demo Concert".into(),
            dates: vec!["2026-12-24".into(), "2026-12-25".into()],
            seats: 50,
            price: Money::from_units(50_000),
        })
        .context("cannot add the demo concert")?;
    tracing::info!(
        concert_id = created.concert_id,
        "added the demo concert: 2 dates × 50 seats at 50000"
    );
    Ok(())
}

/// Runs a core write: its start (a token check, the optimistic strategy's read) on the read
/// pool, then awaits its answer without holding any thread, so a burst of writes costs no
/// more threads than a burst of reads and they all share the writer's group commits. Under
/// the redis strategy the answer is the locked sequence itself: awaiting it asks Redis through
/// the lock driver, decides on a snapshot and awaits the commit.
pub(crate) async fn write<T, F>(s: &AppState, start: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Ticketing) -> ticketing_core::Result<Answer<T>> + Send + 'static,
{
    let t = s.ticketing.clone();
    let answer = s.reads.run(move || start(&t)).await?;
    answer.await.map_err(ApiError::from)
}

type Job = Box<dyn FnOnce() + Send>;

/// A few threads for the core's read-only calls (seats, dates, concerts, balance, status).
///
/// Reads are short and CPU-bound: with tokio's blocking pool, 256 concurrent requests mean
/// up to 256 threads and a context switch per hand-off. A pool of one thread per core keeps
/// the hand-offs cheap (a busy thread takes the next job without sleeping) and the reader
/// connections few. Writes start here too and await their commit off-thread ([`write`]).
#[derive(Clone)]
pub(crate) struct ReadPool {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl ReadPool {
    fn start(threads: usize) -> anyhow::Result<ReadPool> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("ticketing-read-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        // Every sender is gone: the server has stopped.
                        Err(_) => return,
                    }
                })
                .context("cannot start a read thread")?;
        }
        Ok(ReadPool { jobs: tx })
    }

    /// Runs a read-only core call on the pool. A panic in the core becomes a 500.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> ticketing_core::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::internal("the read pool has stopped"))?;
        match rx.await {
            Ok(Ok(result)) => result.map_err(ApiError::from),
            Ok(Err(_)) => Err(ApiError::internal("a core read panicked")),
            Err(_) => Err(ApiError::internal("the read pool dropped a job")),
        }
    }
}
