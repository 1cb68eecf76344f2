//! [`Ticketing`]: the service over one database — opening it, its settings and counters. The
//! use cases are its methods, one module per family under `crate::usecase` (each holding the
//! rule and its statements). Every front end calls these methods and nothing else.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SyncedClock, SystemClock, Timestamp};
use crate::config::{Config, Database, StrategyKind};
use crate::error::Result;
use crate::memo::TokenMemo;
use crate::queue::{self, AdmissionRate, AdmissionWatch, Refreshes};
use crate::store::{self, Conn, DbStats, Hooks, Store};
use crate::strategy::{ContentionSnapshot, Strategy};

/// A fault-injection point between two writes: with the `failpoints` feature a test can make it
/// fail or panic (`fail::cfg`); without it, it compiles to nothing.
macro_rules! fault_point {
    ($name:literal) => {
        fail::fail_point!($name, |_| Err($crate::error::Error::Internal(
            concat!("injected fault at ", $name).into()
        )))
    };
}
pub(crate) use fault_point;

/// Every fault point, for tests that visit them all.
pub const FAULT_POINTS: &[&str] = &[
    "reserve:after-insert",
    "reserve:after-seat",
    "wallet:after-balance",
    "pay:after-reservation",
    "pay:after-seat",
    "pay:after-wallet",
    "pay:after-ledger",
    "pay:after-payment",
    "pay:after-token",
];

pub(crate) struct Inner {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub store: Store,
    pub strategy: Strategy,
    pub admissions: Arc<AdmissionRate>,
    pub watch: Arc<AdmissionWatch>,
    pub refreshes: Arc<Refreshes>,
    /// ACTIVE tokens as the last memoized read saw them (see [`Memo`]).
    pub tokens: TokenMemo,
    /// The clock kept on the database's, when `clock` is it (PostgreSQL, wall clock).
    pub synced: Option<Arc<SyncedClock>>,
}

/// What an operator of several nodes watches on one of them (`/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStats {
    /// The database connections (PostgreSQL; `None` on SQLite).
    pub db: Option<DbStats>,
    /// How far the database's clock, which this node decides by, is ahead of the machine's.
    pub clock_offset_ms: Option<i64>,
    /// The lock service's round trips so far: count and total time (redis strategy).
    pub redis_round_trips: Option<(u64, Duration)>,
}

/// The clock a node opened on `config` decides by: PostgreSQL's, kept by the store.
fn database_clock(config: &Config) -> Option<Arc<SyncedClock>> {
    matches!(config.db, Database::Postgres(_)).then(|| Arc::new(SyncedClock::default()))
}

/// The ticketing service over one database. Cheap to clone; share it across threads.
#[derive(Clone)]
pub struct Ticketing {
    pub(crate) inner: Arc<Inner>,
}

impl Ticketing {
    /// Opens the database of `config` (creating and migrating it when missing) on the wall
    /// clock — on PostgreSQL, the database server's clock, so that every node decides expiry
    /// by the same clock whatever its own says (see [`CLOCK_BOUND`](crate::CLOCK_BOUND)).
    pub fn open(config: Config) -> Result<Ticketing> {
        match database_clock(&config) {
            Some(synced) => Ticketing::open_on(config, synced.clone(), Some(synced)),
            None => Ticketing::open_with_clock(config, Arc::new(SystemClock)),
        }
    }

    /// Opens with an injected clock (tests use [`crate::ManualClock`]).
    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Ticketing> {
        Ticketing::open_on(config, clock, None)
    }

    fn open_on(config: Config, clock: Arc<dyn Clock>, synced: Option<Arc<SyncedClock>>) -> Result<Ticketing> {
        config.validate()?;
        // Redis is dialled before the store opens: an unreachable Redis leaves no new database
        // file behind. (Its lock namespace comes from the database's path, not from the file.)
        let strategy = Strategy::new(&config)?;
        let watch = Arc::new(AdmissionWatch::default());
        let refreshes = Arc::new(Refreshes::new(clock.clone(), config.waiting_ttl));
        let publish = {
            let watch = watch.clone();
            move |c: &Conn<'_>| {
                if let Ok(s) = queue::settings(c) {
                    watch.publish(s.admitted_through);
                }
            }
        };
        // Leaves free their slot in the job and leave the admission to the end of the batch:
        // one walk of the queue admits the next waiter of every leave in it.
        let admit = {
            let (clock, ttl) = (clock.clone(), config.token_ttl);
            move |c: &Conn<'_>| {
                if store::take_admit_due() {
                    queue::admit(c, queue::lock(c)?, clock.now(), ttl)?;
                }
                Ok(())
            }
        };
        let hooks = Hooks {
            before_commit: Box::new(admit),
            after_commit: Box::new(publish),
        };
        let store = Store::open(&config, hooks, synced.clone())?;
        let t = Ticketing {
            inner: Arc::new(Inner {
                config,
                clock,
                store,
                strategy,
                admissions: Arc::default(),
                watch,
                refreshes,
                tokens: TokenMemo::default(),
                synced,
            }),
        };
        if let Some(max) = t.inner.config.max_active {
            t.set_max_active(max)?;
        }
        Ok(t)
    }

    /// Opens the existing database of `config` for reading only (operator reads: `admin`
    /// listings, the console until an action): nothing is created, migrated or written,
    /// `config.max_active` is ignored, and no lock service is dialled. Every write fails with
    /// [`Error::Setup`]. A missing file, a file that is not a database, or one without this
    /// build's schema is an [`Error::Setup`] naming it.
    pub fn open_read_only(config: Config) -> Result<Ticketing> {
        config.validate()?;
        let synced = database_clock(&config);
        let clock: Arc<dyn Clock> = match &synced {
            Some(synced) => synced.clone(),
            None => Arc::new(SystemClock),
        };
        let store = Store::open_read_only(&config, synced.clone())?;
        // Reads never take locks; the strategy's only use here is to refuse writes, and the
        // store does that already.
        let strategy = Strategy::new(&config.clone().with_strategy(StrategyKind::Optimistic))?;
        Ok(Ticketing {
            inner: Arc::new(Inner {
                refreshes: Arc::new(Refreshes::new(clock.clone(), config.waiting_ttl)),
                config,
                clock,
                store,
                strategy,
                admissions: Arc::default(),
                watch: Arc::default(),
                tokens: TokenMemo::default(),
                synced,
            }),
        })
    }

    /// Checks that the services `config` names can be used, without opening the database:
    /// under the redis strategy, that Redis answers and takes the lock scripts. Front ends
    /// that open the database later (or read-only first) call it to refuse at start-up.
    pub fn check_services(config: &Config) -> Result<()> {
        config.validate()?;
        Strategy::new(config).map(drop)
    }

    /// The settings this service runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The strategy in use.
    pub fn strategy(&self) -> StrategyKind {
        self.inner.strategy.kind()
    }

    /// Lost-race counters since start.
    pub fn contention(&self) -> ContentionSnapshot {
        self.inner.strategy.stats.snapshot()
    }

    /// This node's connections and clock, now.
    pub fn node_stats(&self) -> NodeStats {
        NodeStats {
            db: self.store().stats(),
            clock_offset_ms: self.inner.synced.as_ref().map(|c| c.offset_ms()),
            redis_round_trips: self.inner.strategy.redis_round_trips(),
        }
    }

    /// Now, by the injected clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn token_ttl(&self) -> Duration {
        self.inner.config.token_ttl
    }
}
