//! `ticketing simulate`: runs scenarios with many virtual users against the core (in-process,
//! one fresh database per strategy: temporary, kept where `--db` says, or a scratch schema
//! when `--db` is a PostgreSQL URL) or a running service (`--target URL[,URL…]`: one node or
//! several, its data set up through `--db`), then checks the invariants of docs/contract.md
//! §Invariants and the scenario's expectations (docs/contract.md §Simulator).
//!
//! Where things are: [`scenario`] (the TOML format and the shipped scenarios), [`expr`]
//! (expectations and descriptions relative to the load), [`journey`]
//! (virtual users), [`pace`] (arrivals on time), [`driver`] (in-process | HTTP), [`metrics`] (the one aggregator that owns
//! the histograms and time series), [`check`] (invariants and expectations), [`baseline`] (raw
//! SQLite commit rate), [`report`] (the only writer of output: table, `--json`, `--report`
//! HTML) with [`charts`] (its SVG plots), [`live`]
//! (what the aggregator publishes for `--tui`) and [`screen`] (the `--tui` view, which only
//! reads). This file picks the targets, sets each run up, paces arrivals and collects results.

mod baseline;
mod charts;
mod check;
mod driver;
mod expr;
mod journey;
mod live;
#[cfg(test)]
mod live_tests;
mod metrics;
mod pace;
mod report;
mod scenario;
mod screen;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use ticketing_core::admin::NewConcert;
use ticketing_core::{Config, ContentionSnapshot, Durability, Money, StrategyKind, Ticketing, TokenStatus};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::options::StrategyChoice;
use crate::{GlobalArgs, UsageError};
use check::Check;
use driver::{Driver, HttpDriver, NodeUrl, Spread};
use journey::{Prepared, RunContext};
use live::{Live, Phase, RunLive, RunState};
use metrics::{Aggregator, Stats};
use scenario::{Journey, Scenario, ScenarioError};
use screen::Screen;

/// Flags of `ticketing simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario files, or names of shipped scenarios (default: sold-out-rush). The strategies
    /// run are `--strategy`'s: `all`, or a list like `pessimistic,optimistic`; without
    /// `--strategy`, every available one.
    pub scenarios: Vec<String>,
    /// Drive a running server over HTTP instead of the in-process core, e.g. http://127.0.0.1:8080;
    /// or several nodes of one service (`ticketing serve` processes on one database), separated
    /// by commas: the virtual users are spread over them (see `--spread`) and the figures are
    /// shown per node as well as in total. With `--db`, the service's database: the scenario's
    /// concerts are added there first.
    #[arg(long, value_name = "URL[,URL…]", value_delimiter = ',')]
    pub target: Vec<NodeUrl>,
    /// How the requests are spread over `--target`'s nodes: `user` (each user's requests all
    /// go to one node; users take the nodes in turn) or `request` (each request goes to the
    /// next node in turn). Needs `--target`; with one node, every request goes to it.
    #[arg(long, value_enum, default_value_t, requires = "target")]
    pub spread: Spread,
    /// With `--db`: replace the databases it names when they exist already (without it the
    /// command refuses and writes nothing, so a kept run is never lost by accident).
    #[arg(long)]
    pub replace_db: bool,
    /// Seed of the users' random choices (same seed, same choices).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with SVG plots into this directory.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Run this many users instead of the scenario's (scale a scenario down or up).
    #[arg(long)]
    pub users: Option<u64>,
    /// Most requests in flight at once over HTTP (connections). In process every virtual user
    /// is a task and its writes are awaited, so nothing there needs a bound.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Skip the raw SQLite commit-rate baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Show the runs live in a terminal view (progress, throughput, latency); `q` cancels.
    /// The tables print when the view is left.
    #[arg(long)]
    pub tui: bool,
    /// Panic in the live view after this long (to check that the terminal is given back).
    #[arg(long, hide = true, value_parser = crate::parse_duration)]
    pub panic_after: Option<Duration>,
}

impl SimulateArgs {
    /// `--target` as given (the nodes joined by commas), for the reports.
    pub fn target_text(&self) -> Option<String> {
        (!self.target.is_empty()).then(|| join_nodes(&self.target))
    }
}

fn join_nodes(nodes: &[NodeUrl]) -> String {
    nodes.iter().map(NodeUrl::to_string).collect::<Vec<_>>().join(",")
}

/// Where one run's requests go.
#[derive(Debug, Clone)]
enum Target {
    Core(StrategyKind),
    /// The nodes of one service (at least one).
    Http(Vec<NodeUrl>),
}

impl Target {
    fn label(&self) -> String {
        match self {
            Target::Core(s) => s.name().to_string(),
            Target::Http(nodes) => format!("http {}", join_nodes(nodes)),
        }
    }

    /// The service's nodes over HTTP; none in process.
    fn nodes(&self) -> &[NodeUrl] {
        match self {
            Target::Core(_) => &[],
            Target::Http(nodes) => nodes,
        }
    }
}

/// Figures of one run (one scenario on one strategy or server).
pub struct RunResult {
    /// `pessimistic`, `optimistic`, `redis` or `http URL[,URL…]`.
    pub label: String,
    /// The service's nodes over HTTP, in `--target`'s order (`stats.nodes` follows it); none
    /// in process.
    pub nodes: Vec<NodeUrl>,
    /// Aggregated figures.
    pub stats: Stats,
    /// From the first arrival to the last user's end.
    pub wall: Duration,
    /// The core's lost-race counters (in-process).
    pub contention: Option<ContentionSnapshot>,
    /// Invariants and expectations.
    pub checks: Vec<Check>,
    /// The seed's columns, for single-operation scenarios.
    pub seed_row: Option<report::SeedRow>,
}

impl RunResult {
    /// All checks hold.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// One scenario's runs.
pub struct ScenarioResult {
    /// The scenario as run (after `--users`).
    pub scenario: Arc<Scenario>,
    /// One per target.
    pub runs: Vec<RunResult>,
}

/// The scenarios and targets of one command, validated.
struct Plan {
    durability: Durability,
    scenarios: Vec<Arc<Scenario>>,
    targets: Vec<Target>,
    dbs: RunDbs,
}

/// Where each run's database is.
#[derive(Debug, Clone)]
enum RunDbs {
    /// No `--db`: a temporary database per run, removed at the end.
    Temporary,
    /// `--db PATH`: one database per strategy (and per scenario when several run), kept.
    Kept {
        db: PathBuf,
        per_scenario: bool,
        replace: bool,
    },
    /// `--target` with `--db PATH`: the server's database, where the setup is created.
    Server(ticketing_core::Database),
    /// `--db postgres://…` (in process): a scratch schema per run, dropped at the end.
    Postgres(String),
}

impl RunDbs {
    /// From `--db` and `--replace-db`: refuses, before anything is written, a kept database
    /// that exists already (unless replacing) or whose directory does not, and a server
    /// database that does not exist.
    fn new(
        global: &GlobalArgs,
        args: &SimulateArgs,
        scenarios: &[Arc<Scenario>],
        targets: &[Target],
    ) -> Result<RunDbs, UsageError> {
        if !global.db_given {
            if args.replace_db {
                return Err(UsageError("--replace-db goes with --db PATH".into()));
            }
            return Ok(RunDbs::Temporary);
        }
        if let ticketing_core::Database::Postgres(url) = ticketing_core::Database::parse(&global.db) {
            return Ok(if args.target.is_empty() {
                RunDbs::Postgres(url)
            } else {
                RunDbs::Server(ticketing_core::Database::Postgres(url))
            });
        }
        let db = PathBuf::from(&global.db);
        if !args.target.is_empty() {
            if !db.is_file() {
                return Err(UsageError(format!(
                    "--db {}: no such database; with --target, --db names the running server's database, where the scenario's concerts are added",
                    db.display()
                )));
            }
            return Ok(RunDbs::Server(ticketing_core::Database::from(db)));
        }
        let dbs = RunDbs::Kept {
            db,
            per_scenario: scenarios.len() > 1,
            replace: args.replace_db,
        };
        let mut paths: Vec<PathBuf> = Vec::new();
        for s in scenarios {
            for t in targets {
                if let Target::Core(strategy) = t {
                    let path = dbs.kept(s, *strategy).unwrap_or_default();
                    if paths.contains(&path) {
                        return Err(UsageError(format!(
                            "scenario {} is named twice: with --db every run needs a database of its own",
                            s.name
                        )));
                    }
                    paths.push(path);
                }
            }
        }
        for path in &paths {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(UsageError(format!("--db: no directory {}", dir.display())));
            }
        }
        let existing: Vec<String> = paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() && !args.replace_db {
            return Err(UsageError(format!(
                "{} already exist{}: pass --replace-db to replace {}, or name another --db",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" },
                if existing.len() == 1 { "it" } else { "them" },
            )));
        }
        Ok(dbs)
    }

    /// The kept database of `strategy`'s run of `scenario`, if `--db` keeps them.
    fn kept(&self, scenario: &Scenario, strategy: StrategyKind) -> Option<PathBuf> {
        match self {
            RunDbs::Kept { db, per_scenario, .. } => Some(strategy_db(
                db,
                per_scenario.then_some(scenario.name.as_str()),
                strategy,
            )),
            RunDbs::Temporary | RunDbs::Server(_) | RunDbs::Postgres(_) => None,
        }
    }
}

/// The database `--db DB` names for `strategy`'s run (of `scenario`, when one command runs
/// several): `run.db` → `run.pessimistic.db`, `run.hot-seat.pessimistic.db`. The one place a
/// `--db` argument becomes a strategy's database, so another kind of database (a server URL,
/// a schema per strategy) is added here.
fn strategy_db(db: &Path, scenario: Option<&str>, strategy: StrategyKind) -> PathBuf {
    let mut name = db
        .file_stem()
        .map_or_else(|| "ticketing".to_string(), |s| s.to_string_lossy().into_owned());
    if let Some(scenario) = scenario {
        // A scenario's name is free text: keep it a plain file-name part.
        let part: String = scenario
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        name = format!("{name}.{part}");
    }
    name = format!("{name}.{}", strategy.name());
    if let Some(ext) = db.extension() {
        name = format!("{name}.{}", ext.to_string_lossy());
    }
    db.with_file_name(name)
}

/// Removes an SQLite database and its side files (`-wal`, `-shm`), for `--replace-db`.
fn remove_db(path: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::Error::new(e).context(format!("cannot replace {}", Path::new(&file).display())))
            }
            _ => {}
        }
    }
    Ok(())
}

impl Plan {
    /// Every run, pending, as the live view lists them.
    fn runs_live(&self) -> Vec<RunLive> {
        let mut runs = Vec::new();
        for (i, s) in self.scenarios.iter().enumerate() {
            for t in &self.targets {
                runs.push(RunLive {
                    scenario_index: i,
                    scenario: s.name.clone(),
                    label: t.label(),
                    users: s.load.users,
                    ..RunLive::default()
                });
            }
        }
        runs
    }
}

/// Where the text output goes: stdout at once, or kept until the live view gives the
/// terminal back.
struct Out {
    deferred: Option<String>,
}

impl Out {
    fn text(&mut self, text: &str) {
        match &mut self.deferred {
            Some(kept) => kept.push_str(text),
            None => print!("{text}"),
        }
    }

    fn line(&mut self, line: &str) {
        self.text(line);
        self.text("\n");
    }
}

/// What the runs gave.
struct Simulated {
    results: Vec<ScenarioResult>,
    baseline: Option<baseline::Baseline>,
    /// `q` in the live view stopped the runs.
    cancelled: bool,
}

/// The live view asked the runs to stop.
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled from the live view")
    }
}

impl std::error::Error for Cancelled {}

/// Runs `ticketing simulate`.
pub fn run(global: &GlobalArgs, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(global, &args)?;
    if args.tui && !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        return Err(UsageError("--tui needs a terminal (stdin and stdout)".into()).into());
    }
    let mut out = Out {
        deferred: args.tui.then(String::new),
    };
    // Held for the whole command: only the screen ever sends `true`.
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let (live, screen) = if args.tui {
        let (live, board) = Live::new(plan.runs_live());
        let screen = Screen::start(board, cancel_tx.clone(), args.panic_after)?;
        (Some(live), Some(screen))
    } else {
        (None, None)
    };
    let outcome = execute(global, &args, &plan, live.as_ref(), cancel_rx, &mut out);
    let left = match screen {
        Some(screen) => {
            if let Some(live) = &live {
                match &outcome {
                    Ok(s) => live.set_phase(Phase::Finished {
                        ok: !s.cancelled && all_ok(&s.results),
                    }),
                    Err(e) => live.set_phase(Phase::Failed(format!("{e:#}"))),
                }
            }
            Some(screen.finish())
        }
        None => None,
    };
    drop(cancel_tx);
    // The terminal is ours again: what was kept prints now.
    if let Some(kept) = out.deferred.take() {
        print!("{kept}");
    }
    let simulated = outcome?;
    if let Some(Err(e)) = left {
        return Err(e);
    }
    if simulated.cancelled {
        println!(
            "CANCELLED from the live view after {} of {} scenarios; no --json or --report written",
            simulated.results.len(),
            plan.scenarios.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    let ok = all_ok(&simulated.results);
    if let Some(path) = &args.json {
        report::write_json(path, &simulated.results, simulated.baseline.as_ref(), &args)?;
    }
    if let Some(dir) = &args.report {
        let page = report::write_html(dir, &simulated.results, simulated.baseline.as_ref(), &args)?;
        println!("report: {}", page.display());
    }
    println!(
        "{}",
        if ok {
            "PASS: every invariant and expectation holds"
        } else {
            "FAIL: see the failed checks above"
        }
    );
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn all_ok(results: &[ScenarioResult]) -> bool {
    results.iter().all(|r| r.runs.iter().all(RunResult::ok))
}

/// Validates the flags and loads the scenarios.
fn plan(global: &GlobalArgs, args: &SimulateArgs) -> anyhow::Result<Plan> {
    let durability: Durability = global.durability.into();
    // The flags themselves first: a scenario's own settings must not hide a bad flag.
    global.validate_on(StrategyKind::Optimistic)?;
    if args.concurrency == 0 || args.concurrency > 4096 {
        return Err(UsageError("--concurrency must be between 1 and 4096".into()).into());
    }
    // Each URL is checked as clap parses it (`NodeUrl`); what needs the whole list is here.
    for (i, node) in args.target.iter().enumerate() {
        if args.target[..i].iter().any(|n| n.same_as(node)) {
            return Err(UsageError(format!("--target names {node} twice: each node once")).into());
        }
    }
    let names = if args.scenarios.is_empty() {
        vec![scenario::DEFAULT.to_string()]
    } else {
        args.scenarios.clone()
    };
    let mut scenarios = Vec::new();
    for name in &names {
        let mut s = Scenario::load(name).map_err(|ScenarioError(m)| UsageError(m))?;
        if let Some(users) = args.users {
            s = s.with_users(users).map_err(|ScenarioError(m)| UsageError(m))?;
        }
        if let Some(m) = s.queue.max_active.filter(|_| !args.target.is_empty()) {
            eprintln!(
                "note: {}: over HTTP the server's own queue settings apply (start it with --max-active {m} to match the scenario)",
                s.name
            );
        }
        scenarios.push(Arc::new(s));
    }
    let targets = if args.target.is_empty() {
        strategies(global)?.into_iter().map(Target::Core).collect()
    } else {
        vec![Target::Http(args.target.clone())]
    };
    // Everything the user can get wrong is refused here, before any run: every run's settings,
    // the lock service, the output paths.
    for scenario in &scenarios {
        for target in &targets {
            if let Target::Core(strategy) = target {
                let config = core_config(global, durability, scenario, *strategy, global.db.as_str().into());
                config.validate().map_err(UsageError::from)?;
            }
        }
    }
    if targets.iter().any(|t| matches!(t, Target::Core(StrategyKind::Redis))) {
        let config = global.config_on(StrategyKind::Redis);
        Ticketing::check_services(&config)?;
    }
    report::check_outputs(args.json.as_deref(), args.report.as_deref())?;
    let dbs = RunDbs::new(global, args, &scenarios, &targets)?;
    Ok(Plan {
        durability,
        scenarios,
        targets,
        dbs,
    })
}

/// Measures the baseline and runs every scenario on every target, in order; stops early when
/// `cancel` turns true.
fn execute(
    global: &GlobalArgs,
    args: &SimulateArgs,
    plan: &Plan,
    live: Option<&Live>,
    cancel: watch::Receiver<bool>,
    out: &mut Out,
) -> anyhow::Result<Simulated> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()).min(4))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let workdir = tempfile::Builder::new()
        .prefix("ticketing-simulate-")
        .tempdir()
        .context("cannot create a temporary directory")?;

    let baseline = if args.no_baseline || !args.target.is_empty() {
        None
    } else {
        Some(baseline::measure(
            workdir.path(),
            plan.durability,
            Duration::from_millis(300),
        )?)
    };
    if let Some(b) = &baseline {
        out.line(&format!(
            "baseline: raw SQLite commit rate {:.0}/s for the conditional seat update (durability {}, one statement per transaction)",
            b.commits_per_second, b.durability
        ));
    }

    let mut results = Vec::new();
    let mut index = 0;
    for scenario in &plan.scenarios {
        let mut runs = Vec::new();
        for target in &plan.targets {
            let this = Live::run_of(live, index);
            index += 1;
            let run = run_one(
                &runtime,
                global,
                args,
                plan,
                scenario,
                target,
                workdir.path(),
                this,
                cancel.clone(),
            );
            let run = match run {
                Ok(run) => run,
                Err(e) if e.is::<Cancelled>() => {
                    return Ok(Simulated {
                        results,
                        baseline,
                        cancelled: true,
                    })
                }
                Err(e) => return Err(e.context(format!("scenario {} on {}", scenario.name, target.label()))),
            };
            if let Some((live, i)) = this {
                live.set_state(i, RunState::Done { ok: run.ok() });
            }
            runs.push(run);
        }
        let result = ScenarioResult {
            scenario: scenario.clone(),
            runs,
        };
        out.text(&report::scenario_text(&result, baseline.as_ref()));
        let kept: Vec<String> = plan
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Core(strategy) => plan.dbs.kept(scenario, *strategy),
                Target::Http(_) => None,
            })
            .map(|p| p.display().to_string())
            .collect();
        if !kept.is_empty() {
            out.line(&format!(
                "databases kept: {} (open one with `ticketing admin check --db FILE` or `ticketing tui --db FILE`)",
                kept.join(", ")
            ));
        }
        results.push(result);
    }
    Ok(Simulated {
        results,
        baseline,
        cancelled: false,
    })
}

/// The strategies to run: `--strategy`'s (`all` or a comma list) when given on the command line
/// or in `TICKETING_STRATEGY`, else every available one. Redis is available only with a Redis
/// URL; `all` says so when it skips it.
fn strategies(global: &GlobalArgs) -> Result<Vec<StrategyKind>, UsageError> {
    if global.strategy.is_empty() || global.strategy.contains(&StrategyChoice::All) {
        let mut list = vec![StrategyKind::Pessimistic, StrategyKind::Optimistic];
        if global.redis_url.is_some() {
            list.push(StrategyKind::Redis);
        } else {
            eprintln!("note: skipping the redis strategy: no --redis-url (or TICKETING_REDIS_URL) given");
        }
        return Ok(list);
    }
    let mut list = Vec::new();
    for kind in global.strategy.iter().filter_map(|c| c.kind()) {
        if !list.contains(&kind) {
            list.push(kind);
        }
    }
    Ok(list)
}

fn core_config(
    global: &GlobalArgs,
    durability: Durability,
    scenario: &Scenario,
    strategy: StrategyKind,
    db: ticketing_core::Database,
) -> Config {
    let q = &scenario.queue;
    let mut config = global.config_on(strategy);
    config.db = db;
    // Each run's database is new: its max-active is the scenario's (or the flag's) to set.
    config.max_active = q.max_active.or(global.max_active);
    config.token_ttl = q.token_ttl.unwrap_or(config.token_ttl);
    config.waiting_ttl = q.waiting_ttl.unwrap_or(config.waiting_ttl);
    config.hold_ttl = q.hold_ttl.unwrap_or(config.hold_ttl);
    config.max_holds = q.max_holds.unwrap_or(config.max_holds);
    config.durability = durability;
    config
}

fn progress_bar(users: u64, label: &str, live: bool) -> ProgressBar {
    if live || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(users);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:32} [{elapsed_precise}] {wide_bar} {pos}/{len} users ({per_sec})")
    {
        bar.set_style(style);
    }
    bar.set_message(label.to_string());
    bar
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    runtime: &Runtime,
    global: &GlobalArgs,
    args: &SimulateArgs,
    plan: &Plan,
    scenario: &Arc<Scenario>,
    target: &Target,
    workdir: &Path,
    live: Option<(&Live, usize)>,
    mut cancel: watch::Receiver<bool>,
) -> anyhow::Result<RunResult> {
    if let Some((live, i)) = live {
        live.set_state(i, RunState::Setup);
    }
    let (driver, core, concert_ids, _db_dir) = match target {
        Target::Core(strategy) => {
            let (db, dir, scratch) = match (&plan.dbs, plan.dbs.kept(scenario, *strategy)) {
                // On PostgreSQL each strategy runs in a schema of its own, dropped after the run.
                (RunDbs::Postgres(url), _) => {
                    let schema = ticketing_core::ScratchSchema::create(url, &format!("simulate_{strategy}"))?;
                    eprintln!(
                        "{strategy}: PostgreSQL schema {} (dropped after the run)",
                        schema.name()
                    );
                    (ticketing_core::Database::parse(schema.url()), None, Some(schema))
                }
                (_, Some(path)) => {
                    if let RunDbs::Kept { replace: true, .. } = plan.dbs {
                        remove_db(&path)?;
                    }
                    (ticketing_core::Database::from(path), None, None)
                }
                (_, None) => {
                    let dir = tempfile::Builder::new().prefix(strategy.name()).tempdir_in(workdir)?;
                    (
                        ticketing_core::Database::from(dir.path().join("ticketing.db")),
                        Some(dir),
                        None,
                    )
                }
            };
            let config = core_config(global, plan.durability, scenario, *strategy, db.clone());
            let t = Ticketing::open(config).with_context(|| format!("cannot open the database {db}"))?;
            let ids = add_concerts(&t, scenario)?;
            (Driver::InProcess(t.clone()), Some(t), ids, Some((dir, scratch)))
        }
        Target::Http(nodes) => {
            let http = HttpDriver::new(nodes.clone(), args.spread, args.concurrency)?;
            let ids = match &plan.dbs {
                RunDbs::Server(db) => {
                    // The server's own settings (queue size, strategy) stay as they are:
                    // only the scenario's concerts are added, next to whatever is there.
                    let mut config = Config::new(db.clone());
                    config.durability = plan.durability;
                    let t =
                        Ticketing::open(config).with_context(|| format!("cannot open the server's database {db}"))?;
                    add_concerts(&t, scenario)?
                }
                RunDbs::Temporary | RunDbs::Kept { .. } | RunDbs::Postgres(_) => {
                    runtime.block_on(http_concerts(&http, scenario))?
                }
            };
            (http.first_node(), None, ids, None)
        }
    };
    let work = drive(args, scenario, target, driver, core.as_ref(), concert_ids, live);
    // Dropping the run's future on cancel aborts its users (their JoinSet goes with it).
    let result = runtime.block_on(async {
        tokio::select! {
            r = work => r,
            () = cancelled(&mut cancel) => Err(Cancelled.into()),
        }
    });
    drop(core);
    result
}

/// Adds the setup's concerts; their ids, in the setup's order.
fn add_concerts(t: &Ticketing, scenario: &Scenario) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::new();
    for c in &scenario.setup.concerts {
        let created = t
            .add_concert(NewConcert {
                title: c.title.clone(),
                dates: c.dates.clone(),
                seats: c.seats,
                price: c.price,
            })
            .with_context(|| format!("cannot add the concert `{}`", c.title))?;
        ids.push(created.concert_id);
    }
    Ok(ids)
}

/// Resolves once `cancel` turns true (never, if its sender is gone without doing so).
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn http_concerts(http: &HttpDriver, scenario: &Scenario) -> anyhow::Result<Vec<i64>> {
    let have = http
        .concerts()
        .await
        .map_err(|f| anyhow::anyhow!("GET /api/concerts: {}", f.message))?;
    let mut ids = Vec::new();
    for c in &scenario.setup.concerts {
        let Some((id, _)) = have.iter().rev().find(|(_, title)| *title == c.title) else {
            let dates: Vec<String> = c.dates.iter().map(|d| format!("--date {d}")).collect();
            return Err(UsageError(format!(
                "the server has no concert titled `{}`: pass the server's database as --db PATH and the simulator adds it, or add it yourself:\n  ticketing admin concert add --title '{}' {} --seats {} --price {}",
                c.title,
                c.title,
                dates.join(" "),
                c.seats,
                c.price
            ))
            .into());
        };
        ids.push(*id);
    }
    Ok(ids)
}

async fn drive(
    args: &SimulateArgs,
    scenario: &Arc<Scenario>,
    target: &Target,
    driver: Driver,
    core: Option<&Ticketing>,
    concert_ids: Vec<i64>,
    live: Option<(&Live, usize)>,
) -> anyhow::Result<RunResult> {
    setup_wallets(&driver, scenario).await?;
    let prepared = prepare(&driver, scenario, &concert_ids).await?;
    let before = core.map(Ticketing::contention);
    let bar = progress_bar(
        scenario.load.users,
        &format!("{} · {}", scenario.name, target.label()),
        live.is_some(),
    );
    let t0 = Instant::now() + Duration::from_millis(5);
    let publisher = live.map(|(live, i)| {
        live.set_state(i, RunState::Running);
        live.publisher(i, t0.into_std())
    });
    let (events, aggregator) = Aggregator::start(bar.clone(), publisher, target.nodes().len())?;
    let ctx = Arc::new(RunContext {
        driver: driver.clone(),
        scenario: scenario.clone(),
        concert_ids: concert_ids.clone(),
        t0,
        seed: args.seed,
        events,
        prepared,
        max_active: scenario
            .queue
            .max_active
            .unwrap_or(ticketing_core::config::DEFAULT_MAX_ACTIVE),
    });
    let mut users = JoinSet::new();
    pace::pace(
        scenario.load.users,
        |i| t0 + scenario.load.arrival_of(i),
        |i, arrival, go| {
            users.spawn(journey::run_user(ctx.clone(), i, arrival, go));
        },
    )
    .await;
    while let Some(joined) = users.join_next().await {
        joined.context("a virtual user panicked")?;
    }
    let wall = t0.elapsed();
    drop(ctx);
    let stats = tokio::task::spawn_blocking(move || aggregator.finish()).await??;
    bar.finish_and_clear();
    if let Some((live, i)) = live {
        live.set_state(i, RunState::Checking);
    }
    let contention = core.map(|t| {
        let after = t.contention();
        let b = before.unwrap_or_default();
        ContentionSnapshot {
            conflicts: after.conflicts - b.conflicts,
            retries: after.retries - b.retries,
            lock_waits: after.lock_waits - b.lock_waits,
            lock_failures: after.lock_failures - b.lock_failures,
        }
    });

    let finals = check::read_finals(&driver, core, scenario, &concert_ids, &stats).await?;
    let checks = match core {
        Some(t) => {
            let (t, s, st) = (t.clone(), scenario.clone(), stats.clone());
            tokio::task::spawn_blocking(move || check::evaluate(&s, &st, &finals, Some(&t))).await??
        }
        None => check::evaluate(scenario, &stats, &finals, None)?,
    };
    let seed_row = report::seed_row(scenario, &stats, &driver).await;
    Ok(RunResult {
        label: target.label(),
        nodes: target.nodes().to_vec(),
        stats,
        wall,
        contention,
        checks,
        seed_row,
    })
}

/// Starting balances: the named wallets, and every user of the load when `setup.balance` is set.
async fn setup_wallets(driver: &Driver, scenario: &Scenario) -> anyhow::Result<()> {
    let mut grants: Vec<(i64, Money)> = scenario.setup.wallets.clone();
    if let Some(b) = scenario.setup.balance {
        let first = scenario.load.first_user;
        grants.extend((0..scenario.load.users as i64).map(|i| (first + i, b)));
    }
    let mut tasks = JoinSet::new();
    for chunk in grants.chunks(256) {
        let chunk = chunk.to_vec();
        let driver = driver.clone();
        tasks.spawn(async move {
            for (user, amount) in chunk {
                driver
                    .charge(user, amount)
                    .await
                    .map_err(|f| anyhow::anyhow!("setting up the balance of user {user}: {}", f.message))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// An admitted token for `user` (waits for admission; the race's users all fit in max-active).
async fn admitted_token(driver: &Driver, user: i64) -> anyhow::Result<String> {
    let fail = |f: driver::Failure| anyhow::anyhow!("preparing user {user}: {}", f.message);
    let mut info = driver.issue_token(user).await.map_err(fail)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while info.status == TokenStatus::Waiting && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        info = driver.token_status(&info.token).await.map_err(fail)?;
    }
    anyhow::ensure!(
        info.status == TokenStatus::Active,
        "preparing user {user}: token not admitted (is max-active at least the number of racing users?)"
    );
    Ok(info.token)
}

/// Sets up the seed's single-operation races: admitted tokens for the reserve race; a held seat
/// for the pay race; one admitted token and the first date for a read-only `seats` load.
async fn prepare(driver: &Driver, scenario: &Scenario, concert_ids: &[i64]) -> anyhow::Result<Prepared> {
    let mut prepared = Prepared::default();
    let (concert, seat) = match scenario.journey {
        Journey::Reserve { concert, seat } | Journey::Pay { concert, seat } => (concert, seat),
        Journey::Seats { concert, .. } => (concert, 1),
        _ => return Ok(prepared),
    };
    let first = scenario.load.first_user;
    let probe = admitted_token(driver, first).await?;
    let concert_id = concert_ids.get(concert).copied().unwrap_or(1);
    let fail = |f: driver::Failure| anyhow::anyhow!("preparing the race: {}", f.message);
    let dates = driver.dates(&probe, concert_id).await.map_err(fail)?;
    let date = dates
        .first()
        .context("preparing the race: the concert has no date with seats")?;
    let seats = driver.seats(&probe, date.option_id).await.map_err(fail)?;
    let seat_id = *seats
        .get(seat as usize - 1)
        .context("preparing the race: the seat is not available")?;
    prepared.target = Some((date.option_id, seat_id));
    if let Journey::Seats { .. } = scenario.journey {
        prepared.tokens.push(probe);
    } else if let Journey::Pay { .. } = scenario.journey {
        let hold = driver
            .reserve(&probe, first, date.option_id, seat_id)
            .await
            .map_err(fail)?;
        prepared.hold = Some((probe, hold.reservation_id, hold.price));
    } else {
        prepared.tokens.push(probe);
        for i in 1..scenario.load.users as i64 {
            prepared.tokens.push(admitted_token(driver, first + i).await?);
        }
    }
    Ok(prepared)
}
