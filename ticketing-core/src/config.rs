//! Start-up settings: the one place for their defaults ([`Config::new`] and the `DEFAULT_*`
//! constants front ends show in their help) and their validation ([`Config::validate`]).
//! Front ends parse flags into a [`Config`] once; the core never reads the environment itself.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;

/// How contended writes (seat hold, charge, use, pay) are protected. Chosen once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StrategyKind {
    /// Lock first, then read-decide-write: SQLite's write lock (`BEGIN IMMEDIATE`), or on
    /// PostgreSQL the contended rows (`SELECT … FOR UPDATE`). Never conflicts; waits instead.
    Pessimistic,
    /// Read with a `version`, write `WHERE version = ?`. Seat and payment races fail fast;
    /// charge and use retry once after a jittered backoff, reading inside the writer's
    /// transaction (so the retry cannot lose again: bounded by construction). The default.
    #[default]
    Optimistic,
    /// A per-resource lease lock in Redis with a fencing number checked on write.
    Redis,
}

impl StrategyKind {
    /// Every strategy, in the order reports list them.
    pub const ALL: [StrategyKind; 3] = [StrategyKind::Pessimistic, StrategyKind::Optimistic, StrategyKind::Redis];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Pessimistic => "pessimistic",
            StrategyKind::Optimistic => "optimistic",
            StrategyKind::Redis => "redis",
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StrategyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pessimistic" => Ok(StrategyKind::Pessimistic),
            "optimistic" => Ok(StrategyKind::Optimistic),
            "redis" => Ok(StrategyKind::Redis),
            other => Err(format!(
                "unknown strategy `{other}` (expected pessimistic, optimistic or redis)"
            )),
        }
    }
}

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged write survives `kill -9` and power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives `kill -9`; the last commits may be lost on power loss.
    Normal,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            other => Err(format!("unknown durability `{other}` (expected full or normal)")),
        }
    }
}

/// Which database the service runs on: an SQLite file (the embedded default) or a PostgreSQL
/// database (for several nodes). Chosen once, from `--db`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Database {
    /// An SQLite database file; created and migrated when missing.
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL; its schema is created or migrated when missing.
    Postgres(String),
}

impl Database {
    /// A `postgres://` / `postgresql://` URL names PostgreSQL; anything else is an SQLite path.
    pub fn parse(text: &str) -> Database {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Database::Postgres(text.trim().to_string())
        } else {
            Database::Sqlite(PathBuf::from(text))
        }
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }
}

/// Shown to people: the path, or the URL without its password.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end]
        .rfind('@')
        .and_then(|at| rest[..at].find(':').map(|colon| (colon, at)))
    {
        Some((colon, at)) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

impl From<&str> for Database {
    fn from(text: &str) -> Database {
        Database::parse(text)
    }
}

impl From<String> for Database {
    fn from(text: String) -> Database {
        Database::parse(&text)
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Database {
        Database::Sqlite(path)
    }
}

impl From<&PathBuf> for Database {
    fn from(path: &PathBuf) -> Database {
        Database::Sqlite(path.clone())
    }
}

impl From<&std::path::Path> for Database {
    fn from(path: &std::path::Path) -> Database {
        Database::Sqlite(path.to_path_buf())
    }
}

/// Everything the core needs to open a database and run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The database: an SQLite file or a PostgreSQL URL.
    pub db: Database,
    /// PostgreSQL: the most connections this process opens (readers and writers together).
    /// A request uses one at a time. Unused on SQLite.
    pub db_pool: u32,
    /// PostgreSQL: how long a request waits for a pooled connection, or for the database to
    /// answer, before it fails with `DB_UNAVAILABLE`.
    pub db_timeout: Duration,
    /// The concurrency-control strategy.
    pub strategy: StrategyKind,
    /// Redis URL, required by [`StrategyKind::Redis`].
    pub redis_url: Option<String>,
    /// At most this many ACTIVE tokens at once. `None` keeps what the database has
    /// ([`DEFAULT_MAX_ACTIVE`] on a new one); `Some` is stored by [`crate::Ticketing::open`], so
    /// a front end sets it only when the operator asked for that change (a read-only open
    /// ignores it). Operators may change it while running.
    pub max_active: Option<u32>,
    /// An ACTIVE token dies this long after admission.
    pub token_ttl: Duration,
    /// A WAITING token dies when its holder has not asked for its status for this long.
    pub waiting_ttl: Duration,
    /// A seat hold lasts this long.
    pub hold_ttl: Duration,
    /// A user holds at most this many seats at once.
    pub max_holds: u32,
    /// Commit durability.
    pub durability: Durability,
    /// Redis lease for a lock (how long a holder may take before its lock lapses).
    pub lock_lease: Duration,
    /// How long a waiting lock (wallet) or an optimistic retry loop may take before giving up.
    pub contention_bound: Duration,
}

impl Config {
    /// Default settings on `db` (a path or a PostgreSQL URL).
    pub fn new(db: impl Into<Database>) -> Config {
        Config {
            db: db.into(),
            db_pool: DEFAULT_DB_POOL,
            db_timeout: DEFAULT_DB_TIMEOUT,
            strategy: StrategyKind::default(),
            redis_url: None,
            max_active: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            waiting_ttl: DEFAULT_WAITING_TTL,
            hold_ttl: DEFAULT_HOLD_TTL,
            max_holds: DEFAULT_MAX_HOLDS,
            durability: Durability::Full,
            lock_lease: Duration::from_secs(5),
            contention_bound: Duration::from_secs(10),
        }
    }

    /// Checks every setting; the error names the setting (as its flag) and the problem. Opening
    /// a [`crate::Ticketing`] checks this first, so a bad setting is refused before any file
    /// is created or any service is dialled.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_holds == 0 {
            return Err(Error::invalid("max-holds", "--max-holds must be at least 1"));
        }
        if self.db_pool == 0 {
            return Err(Error::invalid("db-pool", "--db-pool must be at least 1"));
        }
        if self.db_timeout.is_zero() {
            return Err(Error::invalid("db-timeout", "--db-timeout must be longer than 0"));
        }
        if let Some(n) = self.max_active {
            check_max_active(n)?;
        }
        for (name, d) in [
            ("token-ttl", self.token_ttl),
            ("waiting-ttl", self.waiting_ttl),
            ("hold-ttl", self.hold_ttl),
        ] {
            if d.is_zero() {
                return Err(Error::invalid(name, format!("--{name} must be longer than 0")));
            }
        }
        match (self.strategy, self.redis_url.as_deref()) {
            (StrategyKind::Redis, None) => Err(Error::invalid(
                "redis-url",
                "the redis strategy needs --redis-url (or TICKETING_REDIS_URL)",
            )),
            // Parsed without connecting: a typo is refused even by commands that never dial.
            // (The URL is not repeated: it may carry a password.)
            (_, Some(url)) => redis::Client::open(url).map(drop).map_err(|e| {
                Error::invalid(
                    "redis-url",
                    format!("--redis-url is not a Redis URL like redis://127.0.0.1:6379: {e}"),
                )
            }),
            (_, None) => Ok(()),
        }
    }

    /// The same config with another strategy.
    pub fn with_strategy(mut self, strategy: StrategyKind) -> Config {
        self.strategy = strategy;
        self
    }
}

/// PostgreSQL connections per process unless `--db-pool` says otherwise: enough to keep a
/// 2-core database server busy (it commits about as fast with 16 writers as with 64), few
/// enough that several nodes fit in the server's default `max_connections` of 100.
pub const DEFAULT_DB_POOL: u32 = 16;
/// How long a request waits for a PostgreSQL connection (or answer) before `DB_UNAVAILABLE`.
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks a new max-active: at least 1 (0 would stop admission, which is what pausing is for,
/// and pausing says so) and at most [`MAX_MAX_ACTIVE`].
pub fn check_max_active(n: u32) -> Result<(), Error> {
    if n == 0 {
        return Err(Error::invalid(
            "max-active",
            "max-active must be at least 1; to stop admitting waiters, pause the queue \
             (`ticketing admin queue pause`)",
        ));
    }
    if n > MAX_MAX_ACTIVE {
        return Err(Error::invalid(
            "max-active",
            format!("max-active must be at most {MAX_MAX_ACTIVE}"),
        ));
    }
    Ok(())
}

/// The queue's size when a database is created.
pub const DEFAULT_MAX_ACTIVE: u32 = 100;
/// The largest max-active an operator may set.
pub const MAX_MAX_ACTIVE: u32 = 1_000_000;
/// How long an admitted token lives.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a waiting token lives without a status check.
pub const DEFAULT_WAITING_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a seat hold lasts.
pub const DEFAULT_HOLD_TTL: Duration = Duration::from_secs(5 * 60);
/// Most seats one user may hold at once.
pub const DEFAULT_MAX_HOLDS: u32 = 4;
