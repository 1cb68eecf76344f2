//! Start-up settings. Front ends parse flags into a [`Config`] once; the core never reads the
//! environment itself.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How contended writes (seat hold, charge, use, pay) are protected. Chosen once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// Take SQLite's write lock first (`BEGIN IMMEDIATE`), then read-decide-write. Never
    /// conflicts; waits instead.
    Pessimistic,
    /// Read with a `version`, write `WHERE version = ?`. Seat and payment races fail fast;
    /// charge and use retry once after a jittered backoff, reading inside the writer's
    /// transaction (so the retry cannot lose again: bounded by construction).
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
    /// At most this many ACTIVE tokens at once. `None` keeps what the database has (100 on a
    /// new database); `Some` stores it at start-up. Operators may change it while running.
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
            db_timeout: Duration::from_secs(5),
            strategy: StrategyKind::Optimistic,
            redis_url: None,
            max_active: None,
            token_ttl: Duration::from_secs(10 * 60),
            waiting_ttl: Duration::from_secs(5 * 60),
            hold_ttl: Duration::from_secs(5 * 60),
            max_holds: 4,
            durability: Durability::Full,
            lock_lease: Duration::from_secs(5),
            contention_bound: Duration::from_secs(10),
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

/// The queue's size when a database is created.
pub const DEFAULT_MAX_ACTIVE: u32 = 100;
