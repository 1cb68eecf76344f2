//! Output — the only place that writes it: the terminal table (stdout), `--json FILE` (a
//! contract: dedicated DTOs below, shape checked by a test) and `--report DIR` (one
//! self-contained HTML page with inline SVG plots, no scripts, no network).
//!
//! Every latency is measured from the request's intended start (open loop: no coordinated
//! omission). A figure's ratio is `figure / best strategy's figure`, where best is the highest
//! successes and successes per second, and the lowest conflicts, rejections, retries, errors
//! and latencies; so 1.00 is best and the ratio says how far off the others are. Attempts (the
//! request count, attempts per second) are shown but never ranked: a strategy that settles a
//! race sooner leaves fewer users trying, which is not slowness.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::ValueEnum as _;
use serde::Serialize;
use ticketing_core::Money;

use super::baseline::Baseline;
use super::charts::{self, Compared, Figure, Kind};
use super::check::Check;
use super::driver::Driver;
use super::metrics::{Op, OpStats, Outcome, Stats};
use super::scenario::Scenario;
use super::{RunResult, ScenarioResult, SimulateArgs};
use crate::UsageError;

/// The name of the successes-per-second figure among the ratios (and its `ratioToBest` key).
const OK_RATE: &str = "okPerSecond";

/// The percentiles reported.
const QUANTILES: [(&str, f64); 4] = [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999)];

/// The seed's own columns for a single-operation race.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedRow {
    /// The operation raced.
    pub operation: &'static str,
    /// Final balance of the wallet involved ("최종 사용자 포인트"), when there is one.
    pub final_points: Option<f64>,
    /// Successes.
    pub successes: u64,
    /// Failures.
    pub failures: u64,
    /// From the first request's intended start to the last one's end, ms.
    pub total_ms: f64,
    /// Total time / requests, ms — how the seed computes its average.
    pub average_ms: f64,
}

/// The seed's columns of a run, for single-operation scenarios.
pub async fn seed_row(scenario: &Scenario, stats: &Stats, driver: &Driver) -> Option<SeedRow> {
    let op = scenario.journey.seed_op()?;
    let s = stats.ops.get(&op)?;
    let final_points = match scenario.journey.seed_wallet(&scenario.load) {
        Some(user) => driver.balance(user).await.ok().map(Money::as_f64),
        None => None,
    };
    let total_ms = s.last_end.saturating_sub(s.first_start).as_secs_f64() * 1000.0;
    Some(SeedRow {
        operation: op.name(),
        final_points,
        successes: s.ok,
        failures: s.failed(),
        total_ms,
        average_ms: total_ms / s.count.max(1) as f64,
    })
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

/// A rate per second: whole numbers from 10 up, two decimals below (a race of one success
/// over a second is 0.52/s, not 1).
fn fmt_rate(per_s: f64) -> String {
    if per_s >= 10.0 {
        format!("{per_s:.0}")
    } else {
        format!("{per_s:.2}")
    }
}

/// Reservation throughput of a run (reserve requests per second while reserving).
fn reserve_rate(run: &RunResult) -> Option<f64> {
    run.stats.ops.get(&Op::Reserve).map(OpStats::throughput)
}

// ----- ratios ----------------------------------------------------------------------------------

/// Which way a figure is better.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

fn ratio(value: f64, all: &[f64], better: Better) -> Option<f64> {
    let best = match better {
        Better::Higher => all.iter().copied().fold(f64::MIN, f64::max),
        Better::Lower => all.iter().copied().fold(f64::MAX, f64::min),
    };
    if best == 0.0 {
        return (value == 0.0).then_some(1.0);
    }
    Some(value / best)
}

/// Each figure of an operation, with its direction.
fn figures(s: &OpStats) -> Vec<(&'static str, f64, Better)> {
    let mut f = vec![
        ("ok", s.ok as f64, Better::Higher),
        ("conflicts", s.conflicts as f64, Better::Lower),
        ("rejected", s.rejected as f64, Better::Lower),
        ("retries", s.retries as f64, Better::Lower),
        ("errors", s.errors as f64, Better::Lower),
        (OK_RATE, s.ok_throughput(), Better::Higher),
    ];
    for (name, q) in QUANTILES {
        f.push((name, s.ms_at(q), Better::Lower));
    }
    f.push(("max", s.latency.max() as f64 / 1000.0, Better::Lower));
    f
}

/// Ratios to best of every figure of `op` in run `i` among `runs`.
fn ratios(runs: &[RunResult], op: Op, i: usize) -> Vec<(&'static str, Option<f64>)> {
    let Some(mine) = runs[i].stats.ops.get(&op) else {
        return Vec::new();
    };
    let others: Vec<Vec<(&'static str, f64, Better)>> =
        runs.iter().filter_map(|r| r.stats.ops.get(&op)).map(figures).collect();
    figures(mine)
        .into_iter()
        .enumerate()
        .map(|(k, (name, value, better))| {
            let all: Vec<f64> = others.iter().map(|f| f[k].1).collect();
            (name, ratio(value, &all, better))
        })
        .collect()
}

// ----- the measured summary --------------------------------------------------------------------

/// One line of the measured summary: an item of the seed's comparison table, one cell per run.
pub struct SummaryRow {
    /// What is compared.
    pub item: String,
    /// Its value for each run, in run order.
    pub cells: Vec<String>,
}

/// The writes whose time the summary compares (the seed's use cases).
const TIMED: [Op; 4] = [Op::Reserve, Op::Charge, Op::Use, Op::Pay];

/// The seed's comparison table (performance, consistency, deadlocks, how lost races are
/// handled), filled in from the runs instead of by opinion.
pub fn summary(runs: &[RunResult]) -> Vec<SummaryRow> {
    let row = |item: String, cell: &dyn Fn(&RunResult) -> String| SummaryRow {
        item,
        cells: runs.iter().map(cell).collect(),
    };
    let mut rows = Vec::new();
    for op in TIMED {
        if !runs.iter().any(|r| r.stats.ops.contains_key(&op)) {
            continue;
        }
        let stat = |r: &RunResult| r.stats.ops.get(&op).cloned();
        rows.push(row(format!("performance: {} time p50 / p99", op.name()), &|r| {
            stat(r).map_or("-".into(), |s| {
                format!("{} / {}", fmt_ms(s.ms_at(0.5)), fmt_ms(s.ms_at(0.99)))
            })
        }));
        rows.push(row(format!("performance: {} ok/s (attempts/s)", op.name()), &|r| {
            stat(r).map_or("-".into(), |s| {
                format!("{} ({})", fmt_rate(s.ok_throughput()), fmt_rate(s.throughput()))
            })
        }));
    }
    rows.push(row("consistency: every invariant held".into(), &|r| {
        let invariants: Vec<&Check> = r.checks.iter().filter(|c| c.kind == "invariant").collect();
        let failed: Vec<&str> = invariants.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
        if failed.is_empty() {
            format!("yes ({} of {})", invariants.len(), invariants.len())
        } else {
            format!("NO: {}", failed.join(", "))
        }
    }));
    rows.push(row("deadlocks: lock waits / lock failures".into(), &|r| {
        r.contention.map_or("n/a over HTTP".into(), |c| {
            format!("{} / {}", c.lock_waits, c.lock_failures)
        })
    }));
    rows.push(row("deadlocks: server errors (5xx) seen".into(), &|r| {
        let errors: u64 = r.stats.ops.values().map(|s| s.errors).sum();
        let mut codes: Vec<String> = Vec::new();
        for s in r.stats.ops.values() {
            for (outcome, code) in s.codes.keys() {
                if *outcome == Outcome::Error && !codes.contains(code) {
                    codes.push(code.clone());
                }
            }
        }
        if codes.is_empty() {
            errors.to_string()
        } else {
            format!("{errors} ({})", codes.join(", "))
        }
    }));
    rows.push(row("lost races: conflicts (409)".into(), &|r| {
        r.stats.ops.values().map(|s| s.conflicts).sum::<u64>().to_string()
    }));
    rows.push(row("lost races: client retries / core retries".into(), &|r| {
        let client: u64 = r.stats.ops.values().map(|s| s.retries).sum();
        r.contention
            .map_or(format!("{client} / n/a"), |c| format!("{client} / {}", c.retries))
    }));
    rows.push(row("the simulator late: p50 / p99 / max".into(), &|r| {
        let late = lateness(r);
        format!("{} / {} / {}", fmt_ms(late.p50), fmt_ms(late.p99), fmt_ms(late.max))
    }));
    rows
}

// ----- the terminal ----------------------------------------------------------------------------

/// One scenario's results as the terminal shows them.
pub fn scenario_text(result: &ScenarioResult, baseline: Option<&Baseline>) -> String {
    let mut out = String::new();
    let s = &result.scenario;
    let runs = &result.runs;
    let _ = writeln!(
        out,
        "\n== {} — {} users, arrival {}{} ==",
        s.name,
        s.load.users,
        s.load.arrival_text(),
        s.queue
            .max_active
            .map_or(String::new(), |m| format!(", max-active {m}"))
    );
    if let Some(line) = s.description.lines().next() {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "latency = end − intended start (open loop, no coordinated omission); ×ratio = figure / best strategy's\n"
    );
    let _ = writeln!(
        out,
        "{:<28} {:>9} {:>8} {:>9} {:>8} {:>11} {:>12}  checks",
        "strategy", "wall", "done", "sold-out", "gave-up", "reserve/s", "of baseline"
    );
    for run in runs {
        let rate = reserve_rate(run);
        let frac = match (rate, baseline) {
            (Some(r), Some(b)) => format!("{:.0}%", 100.0 * r / b.commits_per_second),
            _ => "-".into(),
        };
        let failed = run.checks.iter().filter(|c| !c.ok).count();
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>8} {:>9} {:>8} {:>11} {:>12}  {}",
            run.label,
            fmt_ms(run.wall.as_secs_f64() * 1000.0),
            run.stats.done,
            run.stats.sold_out,
            run.stats.gave_up,
            rate.map_or("-".into(), |r| format!("{r:.0}")),
            frac,
            if failed == 0 {
                format!("PASS ({})", run.checks.len())
            } else {
                format!("FAIL ({failed} of {})", run.checks.len())
            }
        );
    }

    let _ = writeln!(
        out,
        "\nsummary, measured (the seed's comparison table, filled in from this run)"
    );
    let header = SummaryRow {
        item: "item".into(),
        cells: runs.iter().map(|r| r.label.clone()).collect(),
    };
    for row in std::iter::once(header).chain(summary(runs)) {
        let mut line = format!("{:<42}", row.item);
        for cell in &row.cells {
            let _ = write!(line, " {cell:<30}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }

    let many = runs.len() > 1;
    let _ = writeln!(
        out,
        "\n{:<8} {:<28} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>15} {:>10} {:>15} {:>15} {:>15} {:>15} {:>15}",
        "op",
        "strategy",
        "count",
        "ok",
        "conflict",
        "reject",
        "retry",
        "errors",
        "ok/s",
        "attempts/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max"
    );
    for op in Op::ALL {
        for (i, run) in runs.iter().enumerate() {
            let Some(st) = run.stats.ops.get(&op) else { continue };
            let r = ratios(runs, op, i);
            let cell = |text: String, name: &str| -> String {
                match (many, r.iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v)) {
                    (true, Some(v)) => format!("{text} ×{v:.2}"),
                    _ => text,
                }
            };
            let mut line = format!(
                "{:<8} {:<28} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>15} {:>10}",
                op.name(),
                run.label,
                st.count,
                st.ok,
                st.conflicts,
                st.rejected,
                st.retries,
                st.errors,
                cell(fmt_rate(st.ok_throughput()), OK_RATE),
                fmt_rate(st.throughput())
            );
            for (name, q) in QUANTILES {
                let _ = write!(line, " {:>15}", cell(fmt_ms(st.ms_at(q)), name));
            }
            let _ = write!(line, " {:>15}", cell(fmt_ms(st.latency.max() as f64 / 1000.0), "max"));
            let _ = writeln!(out, "{line}");
        }
    }

    for run in runs.iter().filter(|r| r.nodes.len() > 1) {
        let _ = writeln!(
            out,
            "\nper node of {} (the requests above by the node they went to; errors = 5xx and transport)",
            run.label
        );
        let _ = writeln!(
            out,
            "{:<32} {:>8} {:>7} {:>8} {:>7} {:>6} {:>10} {:>10}",
            "node", "requests", "ok", "conflict", "reject", "errors", "p50", "p99"
        );
        for (node, st) in run.nodes.iter().zip(&run.stats.nodes) {
            let _ = writeln!(
                out,
                "{:<32} {:>8} {:>7} {:>8} {:>7} {:>6} {:>10} {:>10}",
                node.to_string(),
                st.count,
                st.ok,
                st.conflicts,
                st.rejected,
                st.errors,
                fmt_ms(st.ms_at(0.5)),
                fmt_ms(st.ms_at(0.99))
            );
        }
    }

    if runs.iter().any(|r| r.seed_row.is_some()) {
        let _ = writeln!(
            out,
            "\nthe seed's columns (average time = total time / requests, as the seed computes it)"
        );
        let _ = writeln!(
            out,
            "{:<28} {:>13} {:>10} {:>9} {:>11} {:>13}",
            "strategy", "final points", "successes", "failures", "total time", "average time"
        );
        for run in runs {
            if let Some(row) = &run.seed_row {
                let _ = writeln!(
                    out,
                    "{:<28} {:>13} {:>10} {:>9} {:>11} {:>13}",
                    run.label,
                    row.final_points.map_or("-".into(), |p| format!("{p:.1}")),
                    row.successes,
                    row.failures,
                    fmt_ms(row.total_ms),
                    fmt_ms(row.average_ms)
                );
            }
        }
    }

    let _ = writeln!(out);
    for run in runs {
        for c in run.checks.iter().filter(|c| !c.ok) {
            let _ = writeln!(out, "FAIL {} · {} {}: {}", run.label, c.kind, c.name, c.detail);
        }
    }
    out
}

// ----- JSON ------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    version: u32,
    seed: u64,
    target: Option<String>,
    /// `--spread`, with `--target`.
    spread: Option<String>,
    latency_measured_from: &'static str,
    ratio: &'static str,
    baseline: Option<&'a Baseline>,
    scenarios: Vec<JsonScenario<'a>>,
    ok: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonScenario<'a> {
    name: &'a str,
    description: &'a str,
    users: u64,
    arrival: String,
    runs: Vec<JsonRun<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRun<'a> {
    strategy: &'a str,
    ok: bool,
    wall_seconds: f64,
    users: JsonUsers,
    reservations_per_second: Option<f64>,
    fraction_of_baseline: Option<f64>,
    contention: Option<JsonContention>,
    operations: Vec<JsonOp>,
    checks: &'a [Check],
    seed: Option<&'a SeedRow>,
    /// Over HTTP, the requests by the node they went to, in `--target`'s order.
    nodes: Option<Vec<JsonNode>>,
    /// How late the simulator sent requests after their intended start (inside every latency).
    late_ms: JsonLate,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonLate {
    p50: f64,
    p99: f64,
    max: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonNode {
    url: String,
    requests: u64,
    ok: u64,
    /// 409: lost races.
    conflicts: u64,
    /// Other 4xx.
    rejected: u64,
    /// 5xx and transport failures.
    errors: u64,
    latency_ms: JsonLatency,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonUsers {
    done: u64,
    sold_out: u64,
    gave_up: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonContention {
    conflicts: u64,
    retries: u64,
    lock_waits: u64,
    lock_failures: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonOp {
    op: &'static str,
    count: u64,
    ok: u64,
    conflicts: u64,
    rejected: u64,
    retries: u64,
    errors: u64,
    /// Attempts per second.
    throughput: f64,
    /// Successes per second.
    ok_per_second: f64,
    latency_ms: JsonLatency,
    ratio_to_best: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct JsonLatency {
    p50: f64,
    p90: f64,
    p99: f64,
    #[serde(rename = "p99.9")]
    p999: f64,
    max: f64,
    mean: f64,
}

/// Refuses output paths that cannot be written, before anything runs: a bad `--json` or
/// `--report` path found only after a long run would lose the run. Creates nothing that stays
/// (a probe file in the target directory is removed at once).
pub fn check_outputs(json: Option<&Path>, report: Option<&Path>) -> Result<(), UsageError> {
    if let Some(file) = json {
        let shown = file.display();
        let refuse = |why: String| UsageError(format!("cannot write --json {shown}: {why}"));
        if file.is_dir() {
            return Err(refuse("it is a directory".into()));
        }
        if file.exists() {
            // Opening for writing without truncating changes nothing.
            std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .map_err(|e| refuse(e.to_string()))?;
        } else {
            let dir = match file.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            probe_dir(dir).map_err(refuse)?;
        }
    }
    if let Some(dir) = report {
        let refuse = |why: String| UsageError(format!("cannot write --report {}: {why}", dir.display()));
        // The directory is created when missing: its nearest existing ancestor must take it.
        let existing = dir.ancestors().find(|a| a.as_os_str().is_empty() || a.exists());
        let existing = match existing {
            Some(a) if a.as_os_str().is_empty() => Path::new("."),
            Some(a) => a,
            None => Path::new("."),
        };
        probe_dir(existing).map_err(refuse)?;
    }
    Ok(())
}

/// Can a file be created in `dir`?
fn probe_dir(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    tempfile::Builder::new()
        .prefix(".ticketing-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Writes `--json FILE`.
pub fn write_json(
    path: &Path,
    results: &[ScenarioResult],
    baseline: Option<&Baseline>,
    args: &SimulateArgs,
) -> anyhow::Result<()> {
    let report = JsonReport {
        version: 1,
        seed: args.seed,
        target: args.target_text(),
        spread: (!args.target.is_empty())
            .then(|| args.spread.to_possible_value())
            .flatten()
            .map(|v| v.get_name().to_string()),
        latency_measured_from: "intended start (open loop: no coordinated omission)",
        ratio: "figure / best strategy's figure (best = highest ok, okPerSecond; lowest conflicts, rejected, retries, errors, latencies); attempts (count, throughput) are not ranked",
        baseline,
        scenarios: results.iter().map(|r| json_scenario(r, baseline)).collect(),
        ok: results.iter().all(|r| r.runs.iter().all(RunResult::ok)),
    };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(path, text + "\n").map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

fn json_scenario<'a>(r: &'a ScenarioResult, baseline: Option<&Baseline>) -> JsonScenario<'a> {
    JsonScenario {
        name: &r.scenario.name,
        description: &r.scenario.description,
        users: r.scenario.load.users,
        arrival: r.scenario.load.arrival_text(),
        runs: r
            .runs
            .iter()
            .enumerate()
            .map(|(i, run)| JsonRun {
                strategy: &run.label,
                ok: run.ok(),
                wall_seconds: run.wall.as_secs_f64(),
                users: JsonUsers {
                    done: run.stats.done,
                    sold_out: run.stats.sold_out,
                    gave_up: run.stats.gave_up,
                },
                reservations_per_second: reserve_rate(run),
                fraction_of_baseline: reserve_rate(run).zip(baseline).map(|(r, b)| r / b.commits_per_second),
                contention: run.contention.map(|c| JsonContention {
                    conflicts: c.conflicts,
                    retries: c.retries,
                    lock_waits: c.lock_waits,
                    lock_failures: c.lock_failures,
                }),
                operations: run
                    .stats
                    .ops
                    .iter()
                    .map(|(op, s)| JsonOp {
                        op: op.name(),
                        count: s.count,
                        ok: s.ok,
                        conflicts: s.conflicts,
                        rejected: s.rejected,
                        retries: s.retries,
                        errors: s.errors,
                        throughput: s.throughput(),
                        ok_per_second: s.ok_throughput(),
                        latency_ms: json_latency(s),
                        ratio_to_best: ratios(&r.runs, *op, i)
                            .into_iter()
                            .map(|(k, v)| {
                                (
                                    k.to_string(),
                                    v.map_or(serde_json::Value::Null, serde_json::Value::from),
                                )
                            })
                            .collect(),
                    })
                    .collect(),
                checks: &run.checks,
                seed: run.seed_row.as_ref(),
                nodes: (!run.nodes.is_empty()).then(|| {
                    run.nodes
                        .iter()
                        .zip(&run.stats.nodes)
                        .map(|(node, s)| JsonNode {
                            url: node.to_string(),
                            requests: s.count,
                            ok: s.ok,
                            conflicts: s.conflicts,
                            rejected: s.rejected,
                            errors: s.errors,
                            latency_ms: json_latency(s),
                        })
                        .collect()
                }),
                late_ms: lateness(run),
            })
            .collect(),
    }
}

/// How late the simulator sent a run's requests after their intended start, in milliseconds
/// (the summary's row and `lateMs`).
fn lateness(run: &RunResult) -> JsonLate {
    JsonLate {
        p50: run.stats.late_ms_at(0.5),
        p99: run.stats.late_ms_at(0.99),
        max: run.stats.late_ms_at(1.0),
    }
}

fn json_latency(s: &OpStats) -> JsonLatency {
    JsonLatency {
        p50: s.ms_at(0.5),
        p90: s.ms_at(0.9),
        p99: s.ms_at(0.99),
        p999: s.ms_at(0.999),
        max: s.latency.max() as f64 / 1000.0,
        mean: s.latency.mean() / 1000.0,
    }
}

// ----- HTML ------------------------------------------------------------------------------------

/// `s` with HTML's special characters escaped.
pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes `--report DIR/index.html` and returns its path.
pub fn write_html(
    dir: &Path,
    results: &[ScenarioResult],
    baseline: Option<&Baseline>,
    args: &SimulateArgs,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let page = dir.join("index.html");
    let html = html_page(results, baseline, args)?;
    std::fs::write(&page, html).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", page.display()))?;
    Ok(page)
}

/// The report page: tables, then the charts (inline SVG; no script, nothing fetched).
fn html_page(results: &[ScenarioResult], baseline: Option<&Baseline>, args: &SimulateArgs) -> anyhow::Result<String> {
    let mut h = String::new();
    h.push_str(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ticketing simulate report</title>",
    );
    h.push_str(
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0;font-size:13px}\
         td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
         .fail{color:#b00}.pass{color:#070}.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}\
         figure svg{display:block;border:1px solid #ddd}small{color:#555}</style></head><body>",
    );
    h.push_str("<h1>ticketing simulate</h1>");
    let _ = write!(
        h,
        "<p>Seed {}{}. Latency is measured from each request's <em>intended</em> start (open loop: no coordinated omission). \
         Ratios (×) compare like with like: a figure over the best strategy's (successes per second, not attempts).</p>",
        args.seed,
        args.target_text().map_or(String::new(), |t| format!(", target {}", esc(&t)))
    );
    if let Some(b) = baseline {
        let _ = write!(
            h,
            "<p>Baseline: raw SQLite commit rate <b>{:.0}/s</b> for <code>{}</code> (durability {}, one statement per transaction).</p>",
            b.commits_per_second,
            esc(b.statement),
            b.durability
        );
    }
    for r in results {
        scenario_html(&mut h, r)?;
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

fn scenario_html(h: &mut String, r: &ScenarioResult) -> anyhow::Result<()> {
    let s = &r.scenario;
    let _ = write!(
        h,
        "<h2>{}</h2><p>{} users, arrival {}. {}</p>",
        esc(&s.name),
        s.load.users,
        esc(&s.load.arrival_text()),
        esc(&s.description)
    );
    h.push_str("<table><tr><th>strategy</th><th>wall</th><th>done</th><th>sold out</th><th>gave up</th><th>reserve attempts/s</th><th>checks</th></tr>");
    for run in &r.runs {
        let failed: Vec<&Check> = run.checks.iter().filter(|c| !c.ok).collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&run.label),
            fmt_ms(run.wall.as_secs_f64() * 1000.0),
            run.stats.done,
            run.stats.sold_out,
            run.stats.gave_up,
            reserve_rate(run).map_or("-".into(), |v| format!("{v:.0}")),
            if failed.is_empty() { "pass" } else { "fail" },
            if failed.is_empty() {
                format!("PASS ({})", run.checks.len())
            } else {
                failed
                    .iter()
                    .map(|c| esc(&format!("{}: {}", c.name, c.detail)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        );
    }
    h.push_str("</table>");

    h.push_str("<h3>Summary, measured</h3><p><small>The seed's comparison table, filled in from this run.</small></p><table class=\"summary\"><tr><th>item</th>");
    for run in &r.runs {
        let _ = write!(h, "<th>{}</th>", esc(&run.label));
    }
    h.push_str("</tr>");
    for row in summary(&r.runs) {
        let _ = write!(h, "<tr><td>{}</td>", esc(&row.item));
        for cell in &row.cells {
            let _ = write!(h, "<td>{}</td>", esc(cell));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");

    h.push_str("<h3>Operations</h3><table><tr><th>op</th><th>strategy</th><th>count</th><th>ok</th><th>conflicts</th><th>rejected</th><th>retries</th><th>errors</th><th>ok/s</th><th>attempts/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    for op in Op::ALL {
        for (i, run) in r.runs.iter().enumerate() {
            let Some(st) = run.stats.ops.get(&op) else { continue };
            let rs = ratios(&r.runs, op, i);
            let rat = |name: &str| {
                rs.iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, v)| *v)
                    .filter(|_| r.runs.len() > 1)
                    .map_or(String::new(), |v| format!(" <small>×{v:.2}</small>"))
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td>",
                op.name(),
                esc(&run.label),
                st.count,
                st.ok,
                st.conflicts,
                st.rejected,
                st.retries,
                st.errors,
                fmt_rate(st.ok_throughput()),
                rat(OK_RATE),
                fmt_rate(st.throughput()),
            );
            for (name, q) in QUANTILES {
                let _ = write!(h, "<td>{}{}</td>", fmt_ms(st.ms_at(q)), rat(name));
            }
            let _ = write!(
                h,
                "<td>{}{}</td></tr>",
                fmt_ms(st.latency.max() as f64 / 1000.0),
                rat("max")
            );
        }
    }
    h.push_str("</table>");

    for run in r.runs.iter().filter(|r| r.nodes.len() > 1) {
        let _ = write!(
            h,
            "<h3>Per node · {}</h3><p><small>The requests above by the node they went to.</small></p>\
             <table><tr><th>node</th><th>requests</th><th>ok</th><th>conflicts (409)</th><th>rejected (other 4xx)</th>\
             <th>errors (5xx, transport)</th><th>p50</th><th>p99</th></tr>",
            esc(&run.label)
        );
        for (node, st) in run.nodes.iter().zip(&run.stats.nodes) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&node.to_string()),
                st.count,
                st.ok,
                st.conflicts,
                st.rejected,
                st.errors,
                fmt_ms(st.ms_at(0.5)),
                fmt_ms(st.ms_at(0.99))
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h3>Strategies side by side</h3><div class=\"charts\">");
    for op in Op::ALL {
        let compared: Vec<Compared> = r
            .runs
            .iter()
            .filter_map(|run| {
                run.stats.ops.get(&op).map(|st| Compared {
                    label: run.label.clone(),
                    ok_per_s: st.ok_throughput(),
                    attempts_per_s: st.throughput(),
                    p50: st.ms_at(0.5),
                    p99: st.ms_at(0.99),
                })
            })
            .collect();
        if compared.is_empty() {
            continue;
        }
        let title = format!("{} · {}: strategies side by side", s.name, op.name());
        h.push_str(
            &Figure {
                kind: Kind::Comparison,
                strategy: None,
                op: Some(op),
                svg: charts::comparison(&title, &compared)?,
            }
            .html(),
        );
    }
    h.push_str("</div>");

    for run in &r.runs {
        let label = &run.label;
        let tl = &run.stats.timeline;
        let _ = write!(
            h,
            "<h3>{} · {}</h3><p><small>Intervals of {}; latency of the requests that ended in each.</small></p><div class=\"charts\">",
            esc(&s.name),
            esc(label),
            fmt_ms(tl.width.as_secs_f64() * 1000.0)
        );
        let title = format!("{} · {label}: users over time", s.name);
        h.push_str(
            &Figure {
                kind: Kind::Users,
                strategy: Some(label.clone()),
                op: None,
                svg: charts::users_over_time(&title, tl)?,
            }
            .html(),
        );
        h.push_str("</div>");
        for (op, st) in &run.stats.ops {
            let _ = write!(h, "<h4>{} · {}</h4><div class=\"charts\">", esc(label), op.name());
            let series = tl.ops.get(op).map_or(&[][..], Vec::as_slice);
            let name = format!("{label} · {}", op.name());
            let figures = [
                (
                    Kind::LatencyOverTime,
                    charts::latency_over_time(&format!("{name}: latency over time"), tl, series)?,
                ),
                (
                    Kind::ThroughputOverTime,
                    charts::throughput_over_time(&format!("{name}: throughput over time"), tl, series)?,
                ),
                (
                    Kind::Percentiles,
                    charts::percentiles(&format!("{name}: latency by percentile"), st)?,
                ),
                (
                    Kind::Outcomes,
                    charts::outcomes(&format!("{name}: outcomes by code"), st)?,
                ),
            ];
            for (kind, svg) in figures {
                h.push_str(
                    &Figure {
                        kind,
                        strategy: Some(label.clone()),
                        op: Some(*op),
                        svg,
                    }
                    .html(),
                );
            }
            h.push_str("</div>");
        }
    }
    Ok(())
}
