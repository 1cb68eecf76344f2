//! PostgreSQL: a connection pool, writer threads, migrations.
//!
//! Every write is a `READ COMMITTED` transaction, run whole on one pooled connection by one of
//! the writer threads (as many as the pool has connections, so a write never waits for a
//! thread while a connection is free, and no async runtime is needed in the core: the
//! `postgres` crate drives each connection itself). Writes queued on the same contended rows
//! share one transaction and commit, each in its own savepoint (`write_queue`); the queue's
//! writes (token issue, status, leave), which all take the queue row first, are committed in
//! batches by one queue writer per node (`queue_loop`). Several transactions write at once — of
//! this process and of every other node — so a rule that checks and then writes names the row
//! that makes it safe: the contended row's `version` (optimistic), its `FOR UPDATE` lock
//! (pessimistic, taken by the strategy before the rule reads), the queue's settings row for
//! admission and token issue, the user's token row for `max-holds`. `READ COMMITTED` suits
//! that: a statement that waited for a row lock sees the winner's commit and re-checks its
//! `WHERE`, so a version guard loses cleanly instead of failing with a serialization error.
//! Reads run in `REPEATABLE READ, READ ONLY` transactions: one snapshot across the statements
//! of a read (a token's place counts several rows), and no lock taken.
//!
//! Nothing waits without a bound: a request waits at most `db_timeout` for a connection or a
//! writer, and at most `contention_bound` for a row lock (`lock_timeout`); then it fails with
//! `DB_UNAVAILABLE` or a contention error. A connection the server closed is dropped from the
//! pool and replaced on demand, so a node recovers by itself when the database is back.

pub(crate) mod listen;
mod schema;
pub(crate) mod scratch;
mod write_queue;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::conn::PgConn;
use super::{Conn, DbStats, Hooks, WriteJob};
use crate::clock::SyncedClock;
use crate::config::{Config, Durability};
use crate::error::{Error, Result};
use write_queue::{Grouping, WriteQueue};

/// A PostgreSQL database: its pool and the writer threads.
pub(crate) struct PgStore {
    pool: r2d2::Pool<Manager>,
    /// Writes for the writers (`None` when read-only).
    jobs: Option<Arc<WriteQueue>>,
    /// The queue's writes (unguarded jobs), for the queue writer.
    queue_jobs: Option<Arc<WriteQueue>>,
    writers: Vec<JoinHandle<()>>,
    /// The database as people name it (no password), for messages.
    shown: String,
    /// Threads waiting for a pooled connection now.
    waiting: Arc<AtomicI64>,
    /// Writes that committed with an earlier one on the same rows.
    grouped: Arc<AtomicU64>,
    /// What the listening connection has seen (admissions, the clock's round trip).
    seen: Arc<listen::Seen>,
    /// Listens for admissions and keeps the clock (not on a read-only store).
    _listener: Option<listen::Listener>,
}

/// Opens pooled connections with this service's session settings.
#[derive(Clone)]
pub(crate) struct Manager {
    config: postgres::Config,
    durability: Durability,
    lock_timeout: Duration,
    read_only: bool,
}

impl Manager {
    fn new(url: &str, config: &Config, read_only: bool) -> Result<Manager> {
        let mut pg: postgres::Config = url
            .parse()
            .map_err(|e| Error::invalid("db", format!("cannot read the PostgreSQL URL {}: {e}", config.db)))?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.db_timeout);
        }
        pg.keepalives(true).keepalives_idle(Duration::from_secs(10));
        Ok(Manager {
            config: pg,
            durability: config.durability,
            lock_timeout: config.contention_bound,
            read_only,
        })
    }
}

impl Manager {
    /// A connection outside the pool, with the same session settings.
    fn connect_plain(&self) -> Result<PgConn> {
        Ok(r2d2::ManageConnection::connect(self)?)
    }
}

fn pool(manager: Manager, size: u32, config: &Config) -> r2d2::Pool<Manager> {
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(config.db_timeout)
        .test_on_check_out(false)
        .build_unchecked(manager)
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        let mut client = self.config.connect(postgres::NoTls)?;
        // `full`: a commit returns once its WAL is flushed to disk (survives power loss);
        // `normal`: once it is in the server's WAL buffer (survives this process crashing,
        // and the server's crash loses at most the last fraction of a second).
        let synchronous = match self.durability {
            Durability::Full => "on",
            Durability::Normal => "off",
        };
        client.batch_execute(&format!(
            "SET synchronous_commit = {synchronous}; SET lock_timeout = {}; SET idle_in_transaction_session_timeout = 60000;
             SET default_transaction_read_only = {}",
            self.lock_timeout.as_millis().max(1),
            if self.read_only { "on" } else { "off" }
        ))?;
        Ok(PgConn::new(client))
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        conn.ping()
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.is_closed()
    }
}

impl PgStore {
    /// Connects, creates or migrates the schema (once, even when several processes start
    /// together), starts the writers and the listening connection, which keeps `clock` (when
    /// given) on the database's.
    pub fn open(url: &str, config: &Config, hooks: Hooks, clock: Option<Arc<SyncedClock>>) -> Result<PgStore> {
        off_runtime(|| PgStore::open_here(url, config, hooks, clock))
    }

    fn open_here(url: &str, config: &Config, hooks: Hooks, clock: Option<Arc<SyncedClock>>) -> Result<PgStore> {
        let manager = Manager::new(url, config, false)?;
        {
            use r2d2::ManageConnection;
            let first = manager
                .connect()
                .map_err(|e| unreachable_db(&config.db.to_string(), &e))?;
            schema::migrate(&first)?;
        }
        let hooks = Arc::new(hooks);
        let seen = Arc::new(listen::Seen::default());
        // Admissions are published by the listener from here on, and by a writer right after a
        // commit that admitted: a writer does not read the queue after every commit.
        let listener = listen::start(manager.clone(), hooks.clone(), clock, seen.clone())?;
        let size = config.db_pool.max(2);
        let pool = pool(manager, size, config);
        let waiting = Arc::new(AtomicI64::new(0));
        let grouped = Arc::new(AtomicU64::new(0));
        let jobs = Arc::new(WriteQueue::default());
        let queue_jobs = Arc::new(WriteQueue::default());
        let mut writers = Vec::new();
        {
            let (pool, queue_jobs, hooks, waiting, timeout) = (
                pool.clone(),
                queue_jobs.clone(),
                hooks.clone(),
                waiting.clone(),
                config.db_timeout,
            );
            writers.push(
                std::thread::Builder::new()
                    .name("ticketing-pg-queue".into())
                    .spawn(move || queue_loop(&pool, &queue_jobs, &hooks, &waiting, timeout))
                    .map_err(|e| Error::Internal(format!("cannot start the queue writer: {e}")))?,
            );
        }
        for n in 0..size {
            let (pool, jobs, hooks, waiting, grouped, timeout) = (
                pool.clone(),
                jobs.clone(),
                hooks.clone(),
                waiting.clone(),
                grouped.clone(),
                config.db_timeout,
            );
            writers.push(
                std::thread::Builder::new()
                    .name(format!("ticketing-pg-writer-{n}"))
                    .spawn(move || write_loop(&pool, &jobs, &hooks, &waiting, &grouped, timeout))
                    .map_err(|e| Error::Internal(format!("cannot start a writer thread: {e}")))?,
            );
        }
        Ok(PgStore {
            pool,
            jobs: Some(jobs),
            queue_jobs: Some(queue_jobs),
            writers,
            shown: config.db.to_string(),
            waiting,
            grouped,
            seen,
            _listener: Some(listener),
        })
    }

    /// Opens the database for reading only: no migration, no writer; every session is
    /// `default_transaction_read_only`, so not even a bug could write. The schema must be this
    /// build's. `clock` (when given) is set to the database's once.
    pub fn open_read_only(url: &str, config: &Config, clock: Option<Arc<SyncedClock>>) -> Result<PgStore> {
        off_runtime(|| {
            use r2d2::ManageConnection;
            let manager = Manager::new(url, config, true)?;
            let first = manager
                .connect()
                .map_err(|e| unreachable_db(&config.db.to_string(), &e))?;
            schema::check(&first, &config.db.to_string())?;
            let seen = Arc::new(listen::Seen::default());
            listen::sync_clock(&first, clock.as_deref(), &seen)?;
            Ok(PgStore {
                pool: pool(manager, config.db_pool.max(2), config),
                jobs: None,
                queue_jobs: None,
                writers: Vec::new(),
                shown: config.db.to_string(),
                waiting: Arc::default(),
                grouped: Arc::default(),
                seen,
                _listener: None,
            })
        })
    }

    /// The pool, the writers' queue and what the listener saw, now.
    pub fn stats(&self) -> DbStats {
        let state = self.pool.state();
        let micros = self.seen.round_trip_micros.load(Ordering::Relaxed);
        DbStats {
            pool_size: self.pool.max_size(),
            pool_open: state.connections,
            pool_idle: state.idle_connections,
            pool_waiting: u64::try_from(self.waiting.load(Ordering::Relaxed)).unwrap_or(0),
            writes_queued: [&self.jobs, &self.queue_jobs]
                .iter()
                .map(|q| q.as_ref().map_or(0, |q| q.len() as u64))
                .sum(),
            round_trip: (micros > 0).then(|| Duration::from_micros(micros)),
            writes_grouped: self.grouped.load(Ordering::Relaxed),
            notifications: self.seen.notifications.load(Ordering::Relaxed),
            reconnects: self.seen.reconnects.load(Ordering::Relaxed),
        }
    }

    /// A pooled connection, counted as waited for until it comes.
    fn connection(&self, timeout: Duration) -> Result<r2d2::PooledConnection<Manager>> {
        checkout(&self.pool, &self.waiting, timeout)
    }

    /// Runs `f` in a `REPEATABLE READ, READ ONLY` transaction on a pooled connection.
    pub fn read<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        off_runtime(|| self.read_here(f))
    }

    fn read_here<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        let conn = self.connection(self.pool.connection_timeout())?;
        conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        let result = f(&Conn::Postgres(&conn));
        let end = conn.batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
        let value = result?;
        end?;
        Ok(value)
    }

    /// Queues a write for the next free writer; the queue's (unguarded) writes for the queue
    /// writer.
    pub fn submit_job(&self, job: Box<dyn WriteJob>) -> Result<()> {
        let to = if job.guarded() { &self.jobs } else { &self.queue_jobs };
        let queue = to
            .as_ref()
            .ok_or_else(|| Error::Setup(format!("{} was opened read-only", self.shown)))?;
        if queue.push(job) {
            Ok(())
        } else {
            Err(Error::Internal("the writer threads have stopped".into()))
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        for queue in [self.jobs.take(), self.queue_jobs.take()].into_iter().flatten() {
            queue.close();
        }
        for writer in self.writers.drain(..) {
            let _ = writer.join();
        }
    }
}

/// Most writes on one key one transaction takes. Each runs in a savepoint, a subtransaction
/// that keeps its id until the commit, and PostgreSQL tracks up to 64 of them per transaction
/// before every other session's snapshots get slower.
const MAX_KEY_BATCH: usize = 32;

/// A writer: takes the next write and every other queued on the same contended rows, runs them
/// in one transaction on a pooled connection, commits, answers.
fn write_loop(
    pool: &r2d2::Pool<Manager>,
    jobs: &WriteQueue,
    hooks: &Hooks,
    waiting: &AtomicI64,
    grouped: &AtomicU64,
    timeout: Duration,
) {
    let grouping = Grouping::SameKey { max: MAX_KEY_BATCH };
    serve_writes(
        pool,
        jobs,
        grouping,
        hooks,
        waiting,
        timeout,
        |conn, batch, hooks| match batch {
            [one] => run_one(conn, one.as_mut(), hooks),
            _ => {
                let commit = run_key_batch(conn, batch, hooks);
                if commit.is_ok() {
                    grouped.fetch_add(batch.len() as u64 - 1, Ordering::Relaxed);
                }
                commit
            }
        },
    );
}

/// Most queue writes one transaction takes.
const MAX_QUEUE_BATCH: usize = 256;

/// The queue writer: takes every queue write waiting (up to [`MAX_QUEUE_BATCH`]) and runs them
/// in one transaction, as SQLite's writer does with every write. Each of them takes the queue
/// row first (`queue::lock`), so one at a time per database is all PostgreSQL could run anyway:
/// a batch takes the row once and commits once for all of them, instead of each node's writers
/// queueing on the row lock one commit at a time (a token rush was ~750 issues/s that way,
/// and several nodes made it worse: 16 waiting connections each). Batches of two nodes never
/// deadlock: every queue write locks the queue row before any token row.
fn queue_loop(pool: &r2d2::Pool<Manager>, jobs: &WriteQueue, hooks: &Hooks, waiting: &AtomicI64, timeout: Duration) {
    let grouping = Grouping::Any { max: MAX_QUEUE_BATCH };
    serve_writes(pool, jobs, grouping, hooks, waiting, timeout, run_queue_batch);
}

/// The loop of a writer thread: takes the next batch of writes from `jobs` as `grouping` says,
/// runs them with `run` on one pooled connection, and answers each with the outcome. A write
/// that waited longer than `timeout` for a writer or a connection fails with `DB_UNAVAILABLE`
/// instead: the database is not keeping up or not answering.
fn serve_writes(
    pool: &r2d2::Pool<Manager>,
    jobs: &WriteQueue,
    grouping: Grouping,
    hooks: &Hooks,
    waiting: &AtomicI64,
    timeout: Duration,
    run: impl Fn(&PgConn, &mut [Box<dyn WriteJob>], &Hooks) -> Result<()>,
) {
    while let Some(taken) = jobs.take(grouping) {
        let oldest = taken.jobs.iter().map(|q| q.at).min().unwrap_or_else(Instant::now);
        let mut batch: Vec<Box<dyn WriteJob>> = taken.jobs.into_iter().map(|q| q.job).collect();
        let waited = oldest.elapsed();
        let commit = if waited > timeout {
            Err(Error::DbUnavailable(format!(
                "no database connection became free within {} ms",
                waited.as_millis()
            )))
        } else {
            checkout(pool, waiting, timeout - waited).and_then(|conn| {
                let commit = run(&conn, &mut batch, hooks);
                // A commit that admitted someone wakes this node's waiters before it is
                // answered (the other nodes hear of it by the notification).
                if super::take_admitted() && commit.is_ok() {
                    (hooks.after_commit)(&Conn::Postgres(&conn));
                }
                commit
            })
        };
        // The key's next writes may go once this batch's fate is known (before the callers
        // are answered: a caller's next write on the same rows finds the key free).
        jobs.done(taken.key);
        for job in batch {
            job.finish(commit.clone());
        }
    }
}

/// Writes on the same contended rows in one transaction, each in a savepoint: one that fails
/// is rolled back to its savepoint (its rows and its row locks released) and fails alone; the
/// rest commit together. They run in the order they were queued, so each decides on the
/// writes before it, as if they had committed one after another. A failure to roll back (the
/// connection is gone) fails the batch.
fn run_key_batch(conn: &PgConn, batch: &mut [Box<dyn WriteJob>], hooks: &Hooks) -> Result<()> {
    conn.batch("BEGIN")?;
    let c = Conn::Postgres(conn);
    let ran = batch.iter_mut().try_for_each(|job| {
        conn.batch("SAVEPOINT job")?;
        if job.run(&c) {
            // Kept (released at the commit): a RELEASE would be one more round trip each.
            Ok(())
        } else {
            conn.batch("ROLLBACK TO job")
        }
    });
    match ran {
        Ok(()) => commit(conn, hooks),
        Err(e) => {
            roll_back(conn);
            Err(e)
        }
    }
}

/// One batch of queue writes in one transaction. A write that fails before changing anything
/// (its checks) fails alone; one that fails on a database error aborts the transaction, and the
/// whole batch fails with its error, as when a commit fails.
fn run_queue_batch(conn: &PgConn, batch: &mut [Box<dyn WriteJob>], hooks: &Hooks) -> Result<()> {
    conn.batch("BEGIN")?;
    let c = Conn::Postgres(conn);
    for job in batch.iter_mut() {
        if job.run(&c) {
            continue;
        }
        // Still usable? A savepoint is refused once a statement has failed (25P02).
        if conn.batch("SAVEPOINT probe; RELEASE probe").is_err() {
            roll_back(conn);
            return Err(job
                .error()
                .unwrap_or_else(|| Error::Internal("a queue write failed; its batch was rolled back".into())));
        }
    }
    commit(conn, hooks)
}

/// One write's transaction: `Ok` when it committed, or when the job failed and was rolled back
/// (the job reports its own error); `Err` when the commit failed.
fn run_one(conn: &PgConn, job: &mut dyn WriteJob, hooks: &Hooks) -> Result<()> {
    conn.batch("BEGIN")?;
    let c = Conn::Postgres(conn);
    if !job.run(&c) {
        // The job's error says what went wrong.
        roll_back(conn);
        return Ok(());
    }
    commit(conn, hooks)
}

/// The writers' last step before a commit ([`Hooks::before_commit`]), then the commit; rolled
/// back when either fails.
fn commit(conn: &PgConn, hooks: &Hooks) -> Result<()> {
    let end = (hooks.before_commit)(&Conn::Postgres(conn)).and_then(|()| conn.batch("COMMIT"));
    if end.is_err() {
        roll_back(conn);
    }
    end
}

/// Rolls the open transaction back, and with it what its writes asked of this writer thread
/// (an admission before the commit, a publish after it). A rollback that fails means the
/// connection is gone, and the pool drops it.
fn roll_back(conn: &PgConn) {
    let _ = conn.batch("ROLLBACK");
    super::take_admit_due();
    super::take_admitted();
}

/// Runs `f`, which talks to PostgreSQL, from wherever the caller is. The `postgres` client
/// blocks on a small runtime of its own, and tokio refuses that on a thread that is running a
/// runtime's tasks (an async front end's event loop, where the redis strategy's locked
/// sequence reads): there the thread first hands its other tasks to the runtime's other
/// workers (`block_in_place`). Elsewhere it is a plain call.
pub(crate) fn off_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A pooled connection within `timeout`, or `DB_UNAVAILABLE`; `waiting` counts the callers
/// still waiting for one.
fn checkout(
    pool: &r2d2::Pool<Manager>,
    waiting: &AtomicI64,
    timeout: Duration,
) -> Result<r2d2::PooledConnection<Manager>> {
    waiting.fetch_add(1, Ordering::Relaxed);
    let conn = pool.get_timeout(timeout);
    waiting.fetch_sub(1, Ordering::Relaxed);
    conn.map_err(|e| Error::DbUnavailable(format!("no database connection within the timeout: {e}")))
}

/// At start-up an unreachable database is the operator's to fix (exit 2), like an unreachable
/// Redis; once running, it is a 503 `DB_UNAVAILABLE` that passes when the database is back.
fn unreachable_db(db: &str, e: &postgres::Error) -> Error {
    let cause = std::error::Error::source(e).map_or_else(|| e.to_string(), |c| c.to_string());
    Error::Setup(format!("cannot reach PostgreSQL at {db}: {cause}"))
}
