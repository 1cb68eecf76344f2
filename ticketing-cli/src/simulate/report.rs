//! Output — the only place that writes it: the terminal table (stdout), `--json FILE` (a
//! contract: dedicated DTOs below, shape checked by a test) and `--report DIR` (one
//! self-contained HTML page with inline SVG plots, no scripts, no network).
//!
//! Every latency is measured from the request's intended start (open loop: no coordinated
//! omission). A figure's ratio is `figure / best strategy's figure`, where best is the highest
//! count, successes and throughput, and the lowest conflicts, rejections, retries, errors and
//! latencies; so 1.00 is best and the ratio says how far off the others are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use ticketing_core::Money;

use super::baseline::Baseline;
use super::check::Check;
use super::driver::Driver;
use super::metrics::{Op, OpStats, Stats, TIMELINE_BUCKET};
use super::scenario::Scenario;
use super::{RunResult, ScenarioResult, SimulateArgs};
use crate::UsageError;

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
        ("count", s.count as f64, Better::Higher),
        ("ok", s.ok as f64, Better::Higher),
        ("conflicts", s.conflicts as f64, Better::Lower),
        ("rejected", s.rejected as f64, Better::Lower),
        ("retries", s.retries as f64, Better::Lower),
        ("errors", s.errors as f64, Better::Lower),
        ("throughput", s.throughput(), Better::Higher),
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
    for run in runs {
        if let Some(c) = run.contention {
            let _ = writeln!(
                out,
                "  {:<26} core counters: {} conflicts, {} retries, {} lock waits, {} lock failures",
                run.label, c.conflicts, c.retries, c.lock_waits, c.lock_failures
            );
        }
    }

    let many = runs.len() > 1;
    let _ = writeln!(
        out,
        "\n{:<8} {:<28} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>15} {:>15} {:>15} {:>15} {:>15} {:>15}",
        "op",
        "strategy",
        "count",
        "ok",
        "conflict",
        "reject",
        "retry",
        "errors",
        "throughput/s",
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
                "{:<8} {:<28} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>15}",
                op.name(),
                run.label,
                st.count,
                st.ok,
                st.conflicts,
                st.rejected,
                st.retries,
                st.errors,
                cell(format!("{:.0}", st.throughput()), "throughput")
            );
            for (name, q) in QUANTILES {
                let _ = write!(line, " {:>15}", cell(fmt_ms(st.ms_at(q)), name));
            }
            let _ = write!(line, " {:>15}", cell(fmt_ms(st.latency.max() as f64 / 1000.0), "max"));
            let _ = writeln!(out, "{line}");
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
    target: Option<&'a str>,
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
    throughput: f64,
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
        target: args.target.as_deref(),
        latency_measured_from: "intended start (open loop: no coordinated omission)",
        ratio: "figure / best strategy's figure (best = highest count, ok, throughput; lowest conflicts, rejected, retries, errors, latencies)",
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
                        latency_ms: JsonLatency {
                            p50: s.ms_at(0.5),
                            p90: s.ms_at(0.9),
                            p99: s.ms_at(0.99),
                            p999: s.ms_at(0.999),
                            max: s.latency.max() as f64 / 1000.0,
                            mean: s.latency.mean() / 1000.0,
                        },
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
            })
            .collect(),
    }
}

// ----- HTML ------------------------------------------------------------------------------------

const COLOURS: [&str; 9] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One line of a chart: name, colour, points.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// A line chart as inline SVG. `x_log`/`y_log` use log10 axes (values must be > 0).
struct Chart<'a> {
    title: String,
    class: &'a str,
    strategy: Option<&'a str>,
    x_label: &'a str,
    y_label: &'a str,
    x_ticks: Vec<(f64, String)>,
    y_log: bool,
    series: Vec<Series<'a>>,
}

impl Chart<'_> {
    fn svg(&self) -> String {
        let (w, h, left, right, top, bottom) = (720.0, 360.0, 70.0, 150.0, 30.0, 45.0);
        let ty = |y: f64| if self.y_log { y.max(1e-3).log10() } else { y };
        let pts = self.series.iter().flat_map(|s| s.2.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(ty(y));
            y1 = y1.max(ty(y));
        }
        for (x, _) in &self.x_ticks {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
        }
        if x0 >= x1 {
            x1 = x0 + 1.0;
        }
        if !self.y_log {
            y0 = y0.min(0.0);
        } else {
            y0 = y0.floor();
            y1 = y1.ceil();
        }
        if y0 >= y1 {
            y1 = y0 + 1.0;
        }
        let px = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
        let py = |y: f64| h - bottom - (ty(y) - y0) / (y1 - y0) * (h - top - bottom);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg class="{}" {}xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"><title>{}</title>"#,
            self.class,
            self.strategy
                .map_or(String::new(), |st| format!(r#"data-strategy="{}" "#, esc(st))),
            esc(&self.title)
        );
        let _ = write!(
            s,
            r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#fff"/><text x="{}" y="18" font-size="14" text-anchor="middle">{}</text>"##,
            w / 2.0,
            esc(&self.title)
        );
        // Axes and grid.
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#333"/>"##,
            h - bottom,
            w - right,
            h - bottom,
            h - bottom
        );
        for (x, label) in &self.x_ticks {
            let _ = write!(
                s,
                r##"<line x1="{0}" y1="{top}" x2="{0}" y2="{1}" stroke="#eee"/><text x="{0}" y="{2}" font-size="11" text-anchor="middle">{3}</text>"##,
                px(*x),
                h - bottom,
                h - bottom + 15.0,
                esc(label)
            );
        }
        let steps = 5;
        for k in 0..=steps {
            let v = y0 + (y1 - y0) * f64::from(k) / f64::from(steps);
            let value = if self.y_log { 10f64.powf(v) } else { v };
            let y = h - bottom - (v - y0) / (y1 - y0) * (h - top - bottom);
            let label = if self.y_log {
                fmt_ms(value)
            } else {
                format!("{value:.0}")
            };
            let _ = write!(
                s,
                r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" font-size="11" text-anchor="end">{label}</text>"##,
                w - right,
                left - 5.0,
                y + 4.0
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text><text x="14" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
            left + (w - left - right) / 2.0,
            h - 8.0,
            esc(self.x_label),
            h / 2.0,
            h / 2.0,
            esc(self.y_label)
        );
        for (k, (name, colour, points)) in self.series.iter().enumerate() {
            let path: Vec<String> = points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            let ly = top + 10.0 + 16.0 * k as f64;
            let _ = write!(
                s,
                r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{2}" y="{3}" font-size="12">{4}</text>"#,
                w - right + 10.0,
                w - right + 30.0,
                w - right + 35.0,
                ly + 4.0,
                esc(name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// The percentile curve points: x = "nines" (−log10(1 − q)), y = latency in ms.
fn percentile_curve(s: &OpStats) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    for q in [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999] {
        pts.push((-(1.0f64 - q).log10(), s.ms_at(q).max(0.001)));
    }
    pts.push((4.5, (s.latency.max() as f64 / 1000.0).max(0.001)));
    pts
}

/// Writes `--report DIR/index.html` and returns its path.
pub fn write_html(
    dir: &Path,
    results: &[ScenarioResult],
    baseline: Option<&Baseline>,
    args: &SimulateArgs,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut h = String::new();
    h.push_str(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ticketing simulate report</title>",
    );
    h.push_str(
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
         .fail{color:#b00}.pass{color:#070}svg{display:block;margin:1em 0}</style></head><body>",
    );
    h.push_str("<h1>ticketing simulate</h1>");
    let _ = write!(
        h,
        "<p>Seed {}{}. Latency is measured from each request's <em>intended</em> start (open loop: no coordinated omission). \
         Ratios are figure / best strategy's figure.</p>",
        args.seed,
        args.target.as_deref().map_or(String::new(), |t| format!(", target {}", esc(t)))
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
        let s = &r.scenario;
        let _ = write!(
            h,
            "<h2>{}</h2><p>{} users, arrival {}. {}</p>",
            esc(&s.name),
            s.load.users,
            esc(&s.load.arrival_text()),
            esc(&s.description)
        );
        h.push_str("<table><tr><th>strategy</th><th>wall</th><th>done</th><th>sold out</th><th>gave up</th><th>reserve/s</th><th>checks</th></tr>");
        for run in &r.runs {
            let failed: Vec<&Check> = run.checks.iter().filter(|c| !c.ok).collect();
            let _ =
                write!(
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
                    failed.iter().map(|c| esc(&format!("{}: {}", c.name, c.detail))).collect::<Vec<_>>().join("<br>")
                }
            );
        }
        h.push_str("</table>");
        h.push_str("<table><tr><th>op</th><th>strategy</th><th>count</th><th>ok</th><th>conflicts</th><th>rejected</th><th>retries</th><th>errors</th><th>throughput/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
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
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}{}</td>",
                    op.name(),
                    esc(&run.label),
                    st.count,
                    st.ok,
                    st.conflicts,
                    st.rejected,
                    st.retries,
                    st.errors,
                    st.throughput(),
                    rat("throughput")
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
        let ticks: Vec<(f64, String)> = [
            (0.0, "p0"),
            (1.0, "p90"),
            (2.0, "p99"),
            (3.0, "p99.9"),
            (4.0, "p99.99"),
            (4.5, "max"),
        ]
        .iter()
        .map(|(x, l)| (*x, (*l).to_string()))
        .collect();
        for run in &r.runs {
            let series = Op::ALL
                .iter()
                .enumerate()
                .filter_map(|(k, op)| {
                    run.stats
                        .ops
                        .get(op)
                        .map(|st| (op.name().to_string(), COLOURS[k % COLOURS.len()], percentile_curve(st)))
                })
                .collect();
            h.push_str(
                &Chart {
                    title: format!("{} · {}: latency by percentile", s.name, run.label),
                    class: "latency",
                    strategy: Some(&run.label),
                    x_label: "percentile",
                    y_label: "latency from intended start",
                    x_ticks: ticks.clone(),
                    y_log: true,
                    series,
                }
                .svg(),
            );
        }
        let per_second = 1000.0 / TIMELINE_BUCKET.as_millis() as f64;
        let series = r
            .runs
            .iter()
            .enumerate()
            .map(|(k, run)| {
                let len = run.stats.ops.values().map(|s| s.timeline.len()).max().unwrap_or(0);
                let pts = (0..len)
                    .map(|b| {
                        let n: u32 = run
                            .stats
                            .ops
                            .values()
                            .map(|s| s.timeline.get(b).copied().unwrap_or(0))
                            .sum();
                        (b as f64 * TIMELINE_BUCKET.as_secs_f64(), f64::from(n) * per_second)
                    })
                    .collect();
                (run.label.clone(), COLOURS[k % COLOURS.len()], pts)
            })
            .collect();
        h.push_str(
            &Chart {
                title: format!("{}: throughput over time (all requests)", s.name),
                class: "throughput",
                strategy: None,
                x_label: "seconds since start",
                y_label: "requests/s",
                x_ticks: Vec::new(),
                y_log: false,
                series,
            }
            .svg(),
        );
    }
    h.push_str("</body></html>\n");
    let page = dir.join("index.html");
    std::fs::write(&page, h).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", page.display()))?;
    Ok(page)
}
