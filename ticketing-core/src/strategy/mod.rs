//! How a contended write is guarded. Every use case is written once as two halves:
//! `decide` reads what it needs and applies the business rule, producing a plan (which carries
//! the `version`s it read); `apply` writes the plan, each contended row written
//! `WHERE version = ?` (and, under Redis, only when no newer fence has written). The strategy
//! decides where each half runs and what a lost race does:
//!
//! - pessimistic: both halves inside the writer's `BEGIN IMMEDIATE` transaction — the write
//!   lock is held from the first read, so a version never mismatches and nobody conflicts;
//! - optimistic: `decide` on a reader snapshot, `apply` in the writer; a version mismatch is a
//!   conflict — seat and payment races fail at once; charge and use retry once, deciding again
//!   inside the writer's transaction (that read sees the winner's write, so it cannot lose
//!   again);
//! - redis: a per-resource lease lock in Redis around both halves; the lock's fencing number is
//!   checked and recorded by the write.

pub(crate) mod redis_lock;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, StrategyKind};
use crate::error::{Error, Result};
use crate::store::{params, Answer, BatchKey, Conn, Store};

/// A contended resource: the unit a strategy locks or versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Resource {
    Seat(i64),
    Wallet(i64),
    Reservation(i64),
}

impl Resource {
    /// The id of the row that stands for the resource (a seat, a reservation, a wallet's user).
    fn key(self) -> i64 {
        match self {
            Resource::Seat(id) | Resource::Wallet(id) | Resource::Reservation(id) => id,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Seat(id) => write!(f, "seat:{id}"),
            Resource::Wallet(id) => write!(f, "wallet:{id}"),
            Resource::Reservation(id) => write!(f, "reservation:{id}"),
        }
    }
}

/// What a request does when another holds or changed its resource first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnLostRace {
    /// Give up at once with a 409: someone else got the seat / paid the reservation.
    FailFast,
    /// Wait or retry (with jittered backoff) until the configured bound.
    Wait,
}

/// The fencing numbers a write must respect (Redis only; empty otherwise).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fences(Vec<(Resource, i64)>);

impl Fences {
    /// The fence granted for `res`, if the strategy uses fences.
    pub fn of(&self, res: Resource) -> Option<i64> {
        self.0.iter().find(|(r, _)| *r == res).map(|(_, f)| *f)
    }
}

/// Counters of lost races, exposed to metrics and the simulator.
#[derive(Debug, Default)]
pub struct ContentionStats {
    conflicts: AtomicU64,
    retries: AtomicU64,
    lock_waits: AtomicU64,
    lock_failures: AtomicU64,
}

/// A copy of the core's contention counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentionSnapshot {
    /// Writes refused because another changed the row first (version or fence).
    pub conflicts: u64,
    /// Optimistic retries of charge and use.
    pub retries: u64,
    /// Lock acquisitions that had to wait (Redis).
    pub lock_waits: u64,
    /// Lock acquisitions that failed (taken and fail-fast, or wait bound passed).
    pub lock_failures: u64,
}

impl ContentionStats {
    /// Reads the counters.
    pub fn snapshot(&self) -> ContentionSnapshot {
        ContentionSnapshot {
            conflicts: self.conflicts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            lock_waits: self.lock_waits.load(Ordering::Relaxed),
            lock_failures: self.lock_failures.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_lock_wait(&self) {
        self.lock_waits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_lock_failure(&self) {
        self.lock_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a use case's final result: a contention error is a lost race.
    fn count<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(Error::Contention { .. }) = &result {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

/// Runs `f` in a nested savepoint: when it fails, what it wrote is undone and the enclosing
/// write may try again.
fn in_savepoint<T>(c: &Conn<'_>, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
    c.exec("SAVEPOINT attempt")?;
    match f(c) {
        Ok(v) => {
            c.exec("RELEASE attempt")?;
            Ok(v)
        }
        Err(e) => {
            c.exec("ROLLBACK TO attempt")?;
            c.exec("RELEASE attempt")?;
            Err(e)
        }
    }
}

/// Runs `f` with no savepoint of its own, for a write on one contended row; true when it
/// changed no row. A lost race there is found by that row's guarded write (`expect_one_row`),
/// which changed nothing, so the attempt may simply be made again — three round trips less
/// each time than [`in_savepoint`] on PostgreSQL, where charges of one wallet retry in every
/// batch. Should an attempt ever lose its race after changing rows, it is not retried: the
/// conflict stands and the write's transaction (or its batch savepoint) undoes it.
fn bare_attempt<T>(c: &Conn<'_>, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> (Result<T>, bool) {
    let before = c.changes();
    let outcome = f(c);
    let clean = c.changes() == before;
    (outcome, clean)
}

/// Pessimistic on PostgreSQL: locks the contended rows, in the order given (every use case
/// lists a reservation before a wallet), before `decide` reads them, so the rule decides on
/// rows no one else can change until the commit. A wallet that does not exist yet is created
/// empty first so that there is a row to lock (it is rolled back with the write if the write
/// fails). On SQLite the writer's `BEGIN IMMEDIATE` has locked everything already.
fn lock_rows(c: &Conn<'_>, resources: &[(Resource, OnLostRace)]) -> Result<()> {
    if !c.is_postgres() {
        return Ok(());
    }
    for &(res, _) in resources {
        let sql = match res {
            Resource::Seat(_) => "SELECT 1 FROM seats WHERE id = ?1 FOR UPDATE",
            Resource::Reservation(_) => "SELECT 1 FROM reservations WHERE id = ?1 FOR UPDATE",
            Resource::Wallet(_) => "SELECT 1 FROM wallets WHERE user_id = ?1 FOR UPDATE",
        };
        let locked = c.prepare_cached(sql)?.exists(params![res.key()])?;
        if !locked && matches!(res, Resource::Wallet(_)) {
            // The wallet's first charge: create it empty, then lock it (a creator racing us
            // makes the insert a no-op; the lock then waits for its commit).
            c.prepare_cached(
                "INSERT INTO wallets (user_id, balance, version) VALUES (?1, 0, 0) ON CONFLICT (user_id) DO NOTHING",
            )?
            .execute(params![res.key()])?;
            c.prepare_cached(sql)?.exists(params![res.key()])?;
        }
    }
    Ok(())
}

/// The strategy chosen at start-up.
pub(crate) struct Strategy {
    kind: StrategyKind,
    locks: Option<Arc<redis_lock::RedisLocks>>,
    bound: Duration,
    pub stats: Arc<ContentionStats>,
}

impl Strategy {
    pub fn new(config: &Config) -> Result<Strategy> {
        let locks = match config.strategy {
            StrategyKind::Redis => {
                let url = config
                    .redis_url
                    .as_deref()
                    .ok_or_else(|| Error::invalid("redis-url", "the redis strategy needs --redis-url"))?;
                Some(Arc::new(redis_lock::RedisLocks::connect(
                    url,
                    &config.db,
                    config.lock_lease,
                    config.contention_bound,
                )?))
            }
            _ => None,
        };
        Ok(Strategy {
            kind: config.strategy,
            locks,
            bound: config.contention_bound,
            stats: Arc::default(),
        })
    }

    pub fn kind(&self) -> StrategyKind {
        self.kind
    }

    /// The lock service's round trips so far (count, total time); `None` without Redis.
    pub fn redis_round_trips(&self) -> Option<(u64, Duration)> {
        self.locks.as_ref().map(|l| l.round_trips.total())
    }

    /// Starts one use case on its contended `resources`: pessimistic and optimistic return as
    /// soon as the write is queued (the optimistic `decide` runs here, on a reader snapshot);
    /// redis returns at once with the whole locked sequence still to run as the answer is
    /// polled (see [`Strategy::locked`]).
    pub fn start<P, T, D, A>(
        &self,
        store: &Store,
        resources: &[(Resource, OnLostRace)],
        decide: D,
        apply: A,
    ) -> Result<Answer<T>>
    where
        P: Send + 'static,
        T: Send + 'static,
        D: Fn(&Conn<'_>) -> Result<P> + Send + Clone + 'static,
        A: Fn(&Conn<'_>, P, &Fences) -> Result<T> + Send + Clone + 'static,
    {
        let stats = self.stats.clone();
        match self.kind {
            StrategyKind::Pessimistic => {
                let resources = resources.to_vec();
                store.submit_keyed(Some(batch_key(&resources)), move |c| {
                    lock_rows(c, &resources)?;
                    let plan = decide(c)?;
                    stats.count(apply(c, plan, &Fences::default()))
                })
            }
            StrategyKind::Optimistic => {
                let plan = store.read(|c| decide(c))?;
                let resources = resources.to_vec();
                let bound = self.bound;
                // Grouped only where the writes after the first also commit (a wallet's charges,
                // a keyed payment's replays): where the first resource fails fast, the batch
                // would only run the losers' doomed checks one after another instead of side
                // by side (seed-reserve: 7.7–10.2 ms grouped, 5.4–8.6 ms not).
                let key =
                    (resources.first().map(|(_, how)| *how) == Some(OnLostRace::Wait)).then(|| batch_key(&resources));
                store.submit_keyed(key, move |c| {
                    if !resources.iter().any(|(_, how)| *how == OnLostRace::Wait) {
                        return stats.count(apply(c, plan, &Fences::default()));
                    }
                    let started = Instant::now();
                    // One attempt: the given plan, or (a retry) a new decision inside this
                    // transaction; and whether its lost race left nothing to undo.
                    let attempt = |c: &Conn<'_>, plan: Option<P>| {
                        let work = |c: &Conn<'_>| {
                            let plan = match plan {
                                Some(plan) => plan,
                                None => decide(c)?,
                            };
                            apply(c, plan, &Fences::default())
                        };
                        if resources.len() == 1 {
                            bare_attempt(c, work)
                        } else {
                            (in_savepoint(c, work), true)
                        }
                    };
                    let (mut outcome, mut clean) = attempt(c, Some(plan));
                    loop {
                        match outcome {
                            // A lost race on a resource that waits (a wallet): decide again inside
                            // the write's transaction. On SQLite that read sees the winner's write
                            // and no one else writes meanwhile, so the retry cannot lose again: N
                            // contenders on one wallet cost N + 1 rounds of work in one or two
                            // commits. On PostgreSQL another node may win again; the retry loops,
                            // bounded by the contention bound.
                            Err(Error::Contention { resource, .. })
                                if clean && waits_on(&resources, &resource) && started.elapsed() < bound =>
                            {
                                stats.retries.fetch_add(1, Ordering::Relaxed);
                                (outcome, clean) = attempt(c, None);
                            }
                            other => return stats.count(other),
                        }
                    }
                })
            }
            StrategyKind::Redis => {
                let locked = self.locked(store.clone(), resources.to_vec(), decide, apply);
                Ok(Answer::later(async move { stats.count(locked.await) }))
            }
        }
    }

    /// The redis strategy's sequence: take every lock (before the database is read, so a
    /// request that fails here changed nothing), decide on a snapshot, write with the locks'
    /// fences, release. Nothing in it blocks a thread: Redis is asked by the lock driver and
    /// the commit is awaited, so the caller's event loop runs it (only the decide read runs
    /// inline). Dropping it midway gives back every lock taken.
    fn locked<P, T, D, A>(
        &self,
        store: Store,
        resources: Vec<(Resource, OnLostRace)>,
        decide: D,
        apply: A,
    ) -> impl std::future::Future<Output = Result<T>> + Send + 'static
    where
        P: Send + 'static,
        T: Send + 'static,
        D: Fn(&Conn<'_>) -> Result<P> + Send + Clone + 'static,
        A: Fn(&Conn<'_>, P, &Fences) -> Result<T> + Send + Clone + 'static,
    {
        let (locks, stats, bound) = (self.locks.clone(), self.stats.clone(), self.bound);
        async move {
            let locks = locks.ok_or(Error::LockUnavailable)?;
            let mut held = Held {
                locks: locks.clone(),
                leases: Vec::with_capacity(resources.len()),
            };
            let mut fences = Fences::default();
            for &(res, how) in &resources {
                let lease = locks.acquire(res, how, stats.clone()).await?;
                fences.0.push((res, lease.fence));
                held.leases.push(lease);
            }
            #[cfg(feature = "test-hooks")]
            test_hooks::pause_point(
                test_hooks::Point::AfterAcquire,
                held.leases.iter().map(|l| l.key.as_str()),
            );
            let started = Instant::now();
            loop {
                let plan = store.read(|c| decide(c))?;
                #[cfg(feature = "test-hooks")]
                test_hooks::pause_point(
                    test_hooks::Point::BeforeApply,
                    held.leases.iter().map(|l| l.key.as_str()),
                );
                let (apply, fences) = (apply.clone(), fences.clone());
                match store.submit(move |c| apply(c, plan, &fences))?.await {
                    // A version moved under the lock: a writer that takes no lock (the sweep, an
                    // operator) or a holder whose lease lapsed wrote without a newer fence. We
                    // still hold the lock, so a waiting resource decides again; a stale fence
                    // means our own lease lapsed, and that is never retried.
                    Err(Error::Contention {
                        resource,
                        code: "CONFLICT",
                    }) if waits_on(&resources, &resource) && started.elapsed() < bound => {
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                    }
                    // The locks go back as `held` drops: after the commit, or whenever the
                    // request is dropped.
                    other => return other,
                }
            }
        }
    }

    /// The Redis key of the lock on `resource` (e.g. `seat:3`), when the strategy is redis.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn lock_key(&self, resource: &str) -> Option<String> {
        self.locks.as_ref().map(|l| l.lock_key(resource))
    }
}

/// Leases taken; released (without waiting for Redis) when dropped, however the request ends.
struct Held {
    locks: Arc<redis_lock::RedisLocks>,
    leases: Vec<redis_lock::Lease>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for lease in self.leases.drain(..).rev() {
            self.locks.release(lease);
        }
    }
}

/// The key of a write on `resources`: writes on the same rows share a transaction and a
/// commit on PostgreSQL (see `store::postgres::write_queue`). Under redis the lock lets one
/// write per resource through at a time, so there is nothing to group.
fn batch_key(resources: &[(Resource, OnLostRace)]) -> BatchKey {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (res, _) in resources {
        res.hash(&mut hasher);
    }
    BatchKey(hasher.finish())
}

/// True when a lost race on `resource` (by its name, e.g. `wallet:7`) is waited out.
fn waits_on(resources: &[(Resource, OnLostRace)], resource: &str) -> bool {
    resources
        .iter()
        .any(|(r, how)| *how == OnLostRace::Wait && r.to_string() == resource)
}

/// Exponential backoff with full jitter, capped at a few milliseconds: contenders spread out
/// instead of colliding again in lockstep.
pub(crate) struct Backoff {
    ceiling: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            ceiling: Duration::from_micros(200),
        }
    }

    /// The next pause: uniform in `[0, ceiling)`, the ceiling doubling up to 20 ms.
    pub fn next(&mut self) -> Duration {
        let micros = u64::try_from(self.ceiling.as_micros()).unwrap_or(u64::MAX).max(1);
        self.ceiling = (self.ceiling * 2).min(Duration::from_millis(20));
        Duration::from_micros(rand::random_range(0..micros))
    }
}

/// Checks the outcome of a guarded `UPDATE`: zero rows means the row's version (or a newer
/// fence) moved on since `decide` read it.
pub(crate) fn expect_one_row(changed: usize, res: Resource, conn: &Conn<'_>, fences: &Fences) -> Result<()> {
    if changed == 1 {
        return Ok(());
    }
    if let Some(mine) = fences.of(res) {
        let (table, key) = match res {
            Resource::Seat(id) => ("seats", id),
            Resource::Wallet(id) => ("wallets", id),
            Resource::Reservation(id) => ("reservations", id),
        };
        let key_col = if table == "wallets" { "user_id" } else { "id" };
        let written: Option<i64> = conn
            .prepare_cached(&format!("SELECT fence FROM {table} WHERE {key_col} = ?1"))?
            .query_opt(params![key], |r| r.get(0))?;
        if written.is_some_and(|w| w > mine) {
            return Err(Error::Contention {
                resource: res.to_string(),
                code: "STALE_FENCE",
            });
        }
    }
    Err(Error::conflict(res.to_string()))
}
