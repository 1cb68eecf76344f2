//! `ticketing`: the HTTP API (`serve`), the operator TUI (`tui`), the concurrency simulator
//! (`simulate`) and scriptable operator commands (`admin`), all over `ticketing-core`.
//!
//! This file only parses flags, lowers them into a validated [`ticketing_core::Config`] and
//! dispatches. Exit codes: 0 success, 1 a check failed, 2 bad usage.

mod admin;
mod serve;
mod simulate;
mod tui;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use ticketing_core::{Config, Durability, StrategyKind};

/// Concert ticketing: waiting queue, seat holds, wallet and payments under heavy contention.
#[derive(Debug, Parser)]
#[command(name = "ticketing", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Settings shared by every subcommand; accepted before or after it.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// SQLite database file (created and migrated when missing). `simulate` keeps one per
    /// strategy beside it (`run.db` → `run.pessimistic.db`); with `--target`, the server's.
    #[arg(long, global = true, env = "TICKETING_DB", default_value = "./ticketing.db")]
    pub db: PathBuf,
    /// `--db` (or `TICKETING_DB`) was given rather than defaulted: `simulate` keeps its
    /// databases only where the user asked for them.
    #[arg(skip)]
    pub db_given: bool,
    /// Concurrency control for contended writes: pessimistic, optimistic (the default) or redis.
    /// `simulate` also takes `all` or a comma list, and runs every available one when it is unset.
    #[arg(long, global = true, env = "TICKETING_STRATEGY")]
    pub strategy: Option<String>,
    /// Redis URL for the redis strategy, e.g. redis://127.0.0.1:6379.
    #[arg(long, global = true, env = "TICKETING_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Most tokens ACTIVE at once (kept in the database; default 100 on a new one).
    #[arg(long, global = true, env = "TICKETING_MAX_ACTIVE")]
    pub max_active: Option<u32>,
    /// How long an admitted token lives, e.g. 10m.
    #[arg(long, global = true, env = "TICKETING_TOKEN_TTL", value_parser = parse_duration, default_value = "10m")]
    pub token_ttl: Duration,
    /// How long a waiting token lives without a status check, e.g. 5m.
    #[arg(long, global = true, env = "TICKETING_WAITING_TTL", value_parser = parse_duration, default_value = "5m")]
    pub waiting_ttl: Duration,
    /// How long a seat hold lasts, e.g. 5m.
    #[arg(long, global = true, env = "TICKETING_HOLD_TTL", value_parser = parse_duration, default_value = "5m")]
    pub hold_ttl: Duration,
    /// Most seats one user may hold at once.
    #[arg(long, global = true, env = "TICKETING_MAX_HOLDS", default_value_t = 4)]
    pub max_holds: u32,
    /// Commit durability: full (survives power loss) or normal (survives a crash).
    #[arg(long, global = true, env = "TICKETING_DURABILITY", default_value = "full")]
    pub durability: String,
}

impl GlobalArgs {
    /// The strategy named by `--strategy`.
    pub fn strategy(&self) -> Result<StrategyKind, UsageError> {
        self.strategy
            .as_deref()
            .map_or(Ok(StrategyKind::Optimistic), |s| s.parse().map_err(UsageError))
    }

    /// The core configuration these flags describe, validated.
    pub fn config(&self) -> Result<Config, UsageError> {
        let strategy = self.strategy()?;
        if strategy == StrategyKind::Redis && self.redis_url.is_none() {
            return Err(UsageError(
                "the redis strategy needs --redis-url (or TICKETING_REDIS_URL)".into(),
            ));
        }
        if self.max_holds == 0 {
            return Err(UsageError("--max-holds must be at least 1".into()));
        }
        let mut config = Config::new(&self.db);
        config.strategy = strategy;
        config.redis_url = self.redis_url.clone();
        config.max_active = self.max_active;
        config.token_ttl = self.token_ttl;
        config.waiting_ttl = self.waiting_ttl;
        config.hold_ttl = self.hold_ttl;
        config.max_holds = self.max_holds;
        config.durability = self.durability.parse::<Durability>().map_err(UsageError)?;
        Ok(config)
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

/// A usage mistake found after parsing (bad value, missing setting): exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(serve::ServeArgs),
    /// The operator terminal UI.
    Tui(tui::TuiArgs),
    /// Run a concurrency scenario with many virtual users and report latencies and invariants.
    Simulate(simulate::SimulateArgs),
    /// Scriptable operator commands.
    Admin(admin::AdminArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.global.db_given = db_given(&matches);
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Tui(args) => tui::run(&cli.global, args),
        Command::Simulate(args) => simulate::run(&cli.global, args),
        Command::Admin(args) => admin::run(&cli.global, args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if is_usage(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Whether `--db` came from the command line or the environment, before or after the
/// subcommand (a global flag given after it is recorded in the subcommand's matches).
fn db_given(matches: &ArgMatches) -> bool {
    let given = |m: &ArgMatches| {
        matches!(
            m.value_source("db"),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    given(matches) || matches.subcommand().is_some_and(|(_, sub)| given(sub))
}

/// Usage errors exit 2: ours, and the core's invalid-input errors about settings.
fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<UsageError>().is_some()
            || matches!(
                cause.downcast_ref::<ticketing_core::Error>(),
                Some(ticketing_core::Error::InvalidInput { .. })
            )
    })
}
