//! The command line: clap types and their lowering into the core's [`Config`]. Defaults and
//! validation are the core's (`ticketing_core::config`); this file only names the flags, their
//! environment variables and their typed values (so `--help` lists the possible ones).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ticketing_core::config::{
    DEFAULT_DB_POOL, DEFAULT_DB_TIMEOUT, DEFAULT_HOLD_TTL, DEFAULT_MAX_HOLDS, DEFAULT_TOKEN_TTL, DEFAULT_WAITING_TTL,
};
use ticketing_core::{Config, Durability, StrategyKind};

use crate::failure::UsageError;
use crate::{admin, serve, simulate, tui};

/// Concert ticketing: waiting queue, seat holds, wallet and payments under heavy contention.
#[derive(Debug, Parser)]
#[command(name = "ticketing", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(serve::ServeArgs),
    /// The operator terminal UI.
    Tui(tui::TuiArgs),
    /// Run a concurrency scenario with many virtual users and report latencies and invariants.
    Simulate(simulate::SimulateArgs),
    /// Scriptable operator commands.
    Admin(admin::AdminArgs),
}

/// Settings shared by every subcommand; accepted before or after it.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The database: an SQLite file or a postgres://… URL. Writing commands create and migrate
    /// it when missing; read commands never create or change it. `simulate` keeps one per
    /// strategy beside it (`run.db` → `run.pessimistic.db`); with `--target`, the server's.
    #[arg(long, global = true, env = "TICKETING_DB", default_value = "ticketing.db")]
    pub db: String,
    /// `--db` (or `TICKETING_DB`) was given rather than defaulted: `simulate` keeps its
    /// databases only where the user asked for them.
    #[arg(skip)]
    pub db_given: bool,
    /// PostgreSQL: the most database connections this process opens.
    #[arg(long, global = true, env = "TICKETING_DB_POOL", default_value_t = DEFAULT_DB_POOL)]
    pub db_pool: u32,
    /// PostgreSQL: how long a request waits for a connection or an unanswering database before
    /// it fails with 503 DB_UNAVAILABLE, e.g. 5s.
    #[arg(long, global = true, env = "TICKETING_DB_TIMEOUT", default_value_t = HumanDuration(DEFAULT_DB_TIMEOUT))]
    pub db_timeout: HumanDuration,
    /// Concurrency control for contended writes (default optimistic). `simulate` also takes
    /// `all` or a comma list, and runs every available one when it is unset.
    #[arg(long, global = true, env = "TICKETING_STRATEGY", value_enum, value_delimiter = ',')]
    pub strategy: Vec<StrategyChoice>,
    /// Redis URL for the redis strategy, e.g. redis://127.0.0.1:6379.
    #[arg(long, global = true, env = "TICKETING_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Most tokens ACTIVE at once, stored by `serve` at start-up (it logs the change); other
    /// commands leave the database's value alone (change it with `admin queue set-max-active`).
    /// A new database starts at 100; `simulate` uses it for scenarios that set none.
    #[arg(long, global = true, env = "TICKETING_MAX_ACTIVE")]
    pub max_active: Option<u32>,
    /// How long an admitted token lives, e.g. 10m.
    #[arg(long, global = true, env = "TICKETING_TOKEN_TTL", default_value_t = HumanDuration(DEFAULT_TOKEN_TTL))]
    pub token_ttl: HumanDuration,
    /// How long a waiting token lives without a status check, e.g. 5m.
    #[arg(long, global = true, env = "TICKETING_WAITING_TTL", default_value_t = HumanDuration(DEFAULT_WAITING_TTL))]
    pub waiting_ttl: HumanDuration,
    /// How long a seat hold lasts, e.g. 5m.
    #[arg(long, global = true, env = "TICKETING_HOLD_TTL", default_value_t = HumanDuration(DEFAULT_HOLD_TTL))]
    pub hold_ttl: HumanDuration,
    /// Most seats one user may hold at once.
    #[arg(long, global = true, env = "TICKETING_MAX_HOLDS", default_value_t = DEFAULT_MAX_HOLDS)]
    pub max_holds: u32,
    /// Commit durability.
    #[arg(long, global = true, env = "TICKETING_DURABILITY", value_enum, default_value_t = DurabilityArg::Full)]
    pub durability: DurabilityArg,
}

/// A value of `--strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyChoice {
    /// Lock first (SQLite's write lock; on PostgreSQL the contended rows); never conflicts, waits instead.
    Pessimistic,
    /// Versioned rows: a lost race fails fast or retries once.
    Optimistic,
    /// A lease lock per resource in Redis, with a fencing number (needs --redis-url).
    Redis,
    /// Every available strategy (`simulate` only).
    All,
}

impl StrategyChoice {
    /// The core's strategy; `None` for `all`.
    pub fn kind(self) -> Option<StrategyKind> {
        match self {
            StrategyChoice::Pessimistic => Some(StrategyKind::Pessimistic),
            StrategyChoice::Optimistic => Some(StrategyKind::Optimistic),
            StrategyChoice::Redis => Some(StrategyKind::Redis),
            StrategyChoice::All => None,
        }
    }
}

/// A value of `--durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// An acknowledged write survives kill -9 and power loss (synchronous=FULL).
    Full,
    /// Survives kill -9; the last commits may be lost on power loss (synchronous=NORMAL).
    Normal,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Durability {
        match d {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Normal => Durability::Normal,
        }
    }
}

/// On or off (`--rate-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// A duration written for humans: `90s`, `5m`, `1h 30m`, `250ms`; at least a millisecond.
/// Shown the same way (`--help` prints the core's defaults through it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A human duration of at least one millisecond: `90s`, `5m`, `1h 30m`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 90s or 5m: {e}"))?;
    if d.is_zero() {
        return Err(format!("`{s}` must be longer than zero"));
    }
    Ok(d)
}

impl GlobalArgs {
    /// The one strategy `--strategy` names (serve, tui, admin); optimistic when unset.
    pub fn strategy(&self) -> Result<StrategyKind, UsageError> {
        match self.strategy.as_slice() {
            [] => Ok(StrategyKind::default()),
            [one] => one
                .kind()
                .ok_or_else(|| UsageError("--strategy all is for `simulate`; this command runs one strategy".into())),
            _ => Err(UsageError(
                "a list of strategies is for `simulate`; this command runs one strategy".into(),
            )),
        }
    }

    /// The core configuration these flags describe, on `strategy`, with the core's settings
    /// not validated yet (see [`GlobalArgs::config`]). `max_active` is left unset: only the
    /// commands that store it set it.
    pub fn config_on(&self, strategy: StrategyKind) -> Config {
        let mut config = Config::new(self.db.as_str());
        config.db_pool = self.db_pool;
        config.db_timeout = self.db_timeout.0;
        config.strategy = strategy;
        config.redis_url = self.redis_url.clone();
        config.token_ttl = self.token_ttl.0;
        config.waiting_ttl = self.waiting_ttl.0;
        config.hold_ttl = self.hold_ttl.0;
        config.max_holds = self.max_holds;
        config.durability = self.durability.into();
        config
    }

    /// Validates every setting these flags give, `--max-active` included (0 is refused by
    /// every command, even those that do not store it), on `strategy`.
    pub fn validate_on(&self, strategy: StrategyKind) -> Result<(), UsageError> {
        Config {
            max_active: self.max_active,
            ..self.config_on(strategy)
        }
        .validate()
        .map_err(UsageError::from)
    }

    /// The validated configuration of serve, tui and admin. `--max-active` is left out:
    /// `serve` stores it itself, and no other command changes a setting it was not asked to.
    pub fn config(&self) -> Result<Config, UsageError> {
        let strategy = self.strategy()?;
        self.validate_on(strategy)?;
        Ok(self.config_on(strategy))
    }
}
