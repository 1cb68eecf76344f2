//! `--json` has the documented shape; `--report` writes one self-contained HTML page whose
//! charts are all there (one of each kind per strategy and operation), labelled with units,
//! with round ticks, and never empty — a run of a few milliseconds included.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// One `<figure class="chart">` of the report, as the tests read it.
#[derive(Debug)]
struct Fig {
    kind: String,
    strategy: Option<String>,
    op: Option<String>,
    /// The text of every `<text>` element (title, axis descriptions, tick labels, legend).
    texts: Vec<String>,
    /// Data points marked on lines.
    circles: usize,
    /// Points of the polylines drawn in a colour (axes and ticks are black).
    coloured_points: usize,
    /// Filled bars of some height in a colour (background and legend swatches excluded).
    bars: usize,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_string())
}

fn figures(html: &str) -> Vec<Fig> {
    html.split("<figure class=\"chart\" ")
        .skip(1)
        .map(|part| {
            let body = &part[..part.find("</figure>").expect("a figure ends")];
            let tag = &body[..body.find('>').expect("a tag ends")];
            let texts = body
                .split("<text ")
                .skip(1)
                .map(|t| {
                    let inner = &t[t.find('>').expect("a tag ends") + 1..t.find("</text>").expect("a text ends")];
                    inner
                        .trim()
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&amp;", "&")
                })
                .collect();
            let elements = |name: &str| -> Vec<&str> {
                body.split(&format!("<{name} "))
                    .skip(1)
                    .map(|e| &e[..e.find('>').expect("a tag ends")])
                    .collect()
            };
            let coloured_points = elements("polyline")
                .iter()
                .filter(|e| attr(e, "stroke").is_some_and(|c| c != "#000000"))
                .map(|e| {
                    attr(e, "points")
                        .expect("a polyline has points")
                        .split_whitespace()
                        .count()
                })
                .sum();
            let bars = elements("rect")
                .iter()
                .filter(|e| attr(e, "fill").is_some_and(|c| !["#FFFFFF", "#000000", "none"].contains(&c.as_str())))
                .filter(|e| attr(e, "height").is_some_and(|h| h != "0"))
                .count();
            Fig {
                kind: attr(tag, "data-kind").expect("a figure says its kind"),
                strategy: attr(tag, "data-strategy"),
                op: attr(tag, "data-op"),
                texts,
                circles: elements("circle").len(),
                coloured_points,
                bars,
            }
        })
        .collect()
}

/// The axis descriptions each kind must carry, with their units.
fn axes(kind: &str) -> &'static [&'static str] {
    match kind {
        "latency-over-time" => &["time since start (s)", "latency (ms)"],
        "throughput-over-time" => &["time since start (s)", "requests per second (1/s)"],
        "users-over-time" => &["time since start (s)", "users (most at once)"],
        "percentiles" => &["percentile (%)", "latency (ms)"],
        "outcomes" => &["requests", "outcome (class and code)"],
        "comparison" => &["strategy", "successes per second (1/s)", "latency (ms)"],
        other => panic!("unknown chart kind {other}"),
    }
}

/// Significant digits of a tick label ("0.15" → 2, "4000" → 1).
fn significant(label: &str) -> usize {
    let digits: String = label.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

/// Checks the report of `ops` run on `strategies`: every chart there once, labelled, with
/// round ticks and data drawn. Returns the figures for further checks.
fn check_report(report: &Path, strategies: &[&str], ops: &[&str]) -> Vec<Fig> {
    let html = std::fs::read_to_string(report.join("index.html")).expect("the report page");
    assert!(html.starts_with("<!doctype html>"));
    assert!(!html.contains("<script"), "no scripts: opens offline");
    assert!(!html.contains(" src=") && !html.contains("href="), "nothing fetched");
    let figs = figures(&html);
    let count = |kind: &str, strategy: Option<&str>, op: Option<&str>| {
        figs.iter()
            .filter(|f| f.kind == kind && f.strategy.as_deref() == strategy && f.op.as_deref() == op)
            .count()
    };
    for s in strategies {
        assert_eq!(count("users-over-time", Some(s), None), 1, "users chart of {s}");
        for op in ops {
            for kind in ["latency-over-time", "throughput-over-time", "percentiles", "outcomes"] {
                assert_eq!(count(kind, Some(s), Some(op)), 1, "{kind} chart of {s} {op}");
            }
        }
    }
    for op in ops {
        assert_eq!(count("comparison", None, Some(op)), 1, "comparison chart of {op}");
    }
    assert_eq!(
        figs.len(),
        strategies.len() * (1 + 4 * ops.len()) + ops.len(),
        "no other chart"
    );
    for f in &figs {
        let what = format!("{} chart of {:?} {:?}", f.kind, f.strategy, f.op);
        for axis in axes(&f.kind) {
            assert!(
                f.texts.iter().any(|t| t == axis),
                "{what}: axis `{axis}` in {:?}",
                f.texts
            );
        }
        // Bars carry their exact values and the percentile axis its nines; every other
        // number is a tick: 1, 2 or 5 times a power of ten, or a multiple of such a step.
        if f.kind != "outcomes" && f.kind != "comparison" {
            for t in f.texts.iter().filter(|t| !t.ends_with('%')) {
                if t.parse::<f64>().is_ok() {
                    assert!(significant(t) <= 2, "{what}: tick `{t}` is not round");
                }
            }
        }
        match f.kind.as_str() {
            "latency-over-time" | "throughput-over-time" | "users-over-time" => {
                assert!(f.circles >= 1, "{what}: no point drawn");
            }
            "percentiles" => assert!(f.coloured_points >= 2, "{what}: no curve"),
            _ => assert!(f.bars >= 1, "{what}: no bar"),
        }
    }
    figs
}

#[test]
fn json_and_html_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let report = dir.path().join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .current_dir(dir.path())
        .args([
            "simulate",
            "hot-seat",
            "--users",
            "300",
            "--strategy",
            "all",
            "--seed",
            "7",
            "--json",
        ])
        .arg(&json)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["seed"], 7);
    assert_eq!(v["ok"], true);
    assert!(v["latencyMeasuredFrom"].as_str().unwrap().contains("intended start"));
    assert!(v["baseline"]["commitsPerSecond"].as_f64().unwrap() > 0.0);
    assert!(v["baseline"]["durability"].is_string());
    let s = &v["scenarios"][0];
    assert_eq!(s["name"], "hot-seat");
    assert_eq!(s["users"], 300);
    assert!(s["arrival"].is_string());
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert!(["pessimistic", "optimistic"].contains(&run["strategy"].as_str().unwrap()));
        assert_eq!(run["ok"], true);
        assert!(run["wallSeconds"].as_f64().unwrap() > 0.0);
        for k in ["done", "soldOut", "gaveUp"] {
            assert!(run["users"][k].is_u64(), "users.{k}");
        }
        assert_eq!(run["users"]["done"], 1, "one winner");
        assert!(run["reservationsPerSecond"].as_f64().unwrap() > 0.0);
        assert!(run["fractionOfBaseline"].as_f64().unwrap() > 0.0);
        for k in ["conflicts", "retries", "lockWaits", "lockFailures"] {
            assert!(run["contention"][k].is_u64(), "contention.{k}");
        }
        let ops = run["operations"].as_array().unwrap();
        let names: Vec<&str> = ops.iter().map(|o| o["op"].as_str().unwrap()).collect();
        for op in ["token", "dates", "reserve", "charge", "pay", "leave"] {
            assert!(names.contains(&op), "{op} in {names:?}");
        }
        for o in ops {
            for k in ["count", "ok", "conflicts", "rejected", "retries", "errors"] {
                assert!(o[k].is_u64(), "{k} of {}", o["op"]);
            }
            assert!(o["throughput"].is_f64());
            let lat = &o["latencyMs"];
            let order: Vec<f64> = ["p50", "p90", "p99", "p99.9", "max"]
                .iter()
                .map(|k| lat[*k].as_f64().unwrap_or_else(|| panic!("latencyMs.{k}")))
                .collect();
            assert!(order.windows(2).all(|w| w[0] <= w[1]), "percentiles ascend: {order:?}");
            assert!(lat["mean"].is_f64());
            assert!(o["okPerSecond"].as_f64().unwrap() <= o["throughput"].as_f64().unwrap());
            for k in ["ok", "okPerSecond", "p50", "p99", "max", "errors"] {
                assert!(o["ratioToBest"].get(k).is_some(), "ratioToBest.{k}");
            }
            // Attempts are shown, not ranked: more tries is not faster.
            for k in ["count", "throughput"] {
                assert!(o["ratioToBest"].get(k).is_none(), "ratioToBest.{k}");
            }
        }
        let checks = run["checks"].as_array().unwrap();
        assert!(checks.iter().any(|c| c["kind"] == "invariant"));
        assert!(checks.iter().any(|c| c["name"] == "expect.paid = 1" && c["ok"] == true));
        assert!(checks.iter().all(|c| c["detail"].is_string()));
        // The simulator's own lateness, inside every latency and told apart from it.
        let late = &run["lateMs"];
        let at = |k: &str| late[k].as_f64().unwrap_or_else(|| panic!("lateMs.{k} in {late}"));
        assert!(
            0.0 <= at("p50") && at("p50") <= at("p99") && at("p99") <= at("max"),
            "{late}"
        );
    }

    // The seed's comparison table, measured: its figures are the run's.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |item: &str| -> Vec<String> {
        let l = stdout
            .lines()
            .find(|l| l.starts_with(item))
            .unwrap_or_else(|| panic!("summary line `{item}` in\n{stdout}"));
        l[item.len()..].split_whitespace().map(str::to_string).collect()
    };
    let conflicts: Vec<String> = runs
        .iter()
        .map(|r| {
            let ops = r["operations"].as_array().unwrap();
            ops.iter()
                .map(|o| o["conflicts"].as_u64().unwrap())
                .sum::<u64>()
                .to_string()
        })
        .collect();
    assert_eq!(line("lost races: conflicts (409)"), conflicts);
    assert!(!line("the simulator late: p50 / p99 / max").is_empty());
    let invariants = runs[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "invariant")
        .count();
    let held = format!("yes ({invariants} of {invariants})");
    assert_eq!(
        line("consistency: every invariant held").join(" "),
        format!("{held} {held}")
    );
    assert_eq!(
        line("deadlocks: lock waits / lock failures"),
        ["0", "/", "0", "0", "/", "0"]
    );
    assert_eq!(line("deadlocks: server errors (5xx) seen"), ["0", "0"]);

    let names: Vec<String> = runs[0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap().to_string())
        .collect();
    let ops: Vec<&str> = names.iter().map(String::as_str).collect();
    let figs = check_report(&report, &["pessimistic", "optimistic"], &ops);
    // The outcomes chart counts what the JSON counts: its bars (labelled last, successes
    // first, then each failure code) add up to the requests, and lost races are 409s.
    for run in runs {
        let strategy = run["strategy"].as_str().unwrap();
        let reserve = run["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["op"] == "reserve")
            .unwrap();
        let chart = figs
            .iter()
            .find(|f| {
                f.kind == "outcomes" && f.strategy.as_deref() == Some(strategy) && f.op.as_deref() == Some("reserve")
            })
            .unwrap();
        let rows = chart
            .texts
            .iter()
            .filter(|t| ["2xx ", "409 ", "4xx ", "5xx "].iter().any(|p| t.starts_with(p)))
            .count();
        let values: Vec<u64> = chart.texts[chart.texts.len() - rows..]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(values[0], reserve["ok"].as_u64().unwrap(), "{:?}", chart.texts);
        assert_eq!(
            values[1..].iter().sum::<u64>(),
            reserve["count"].as_u64().unwrap() - reserve["ok"].as_u64().unwrap()
        );
        // Whether a loser meets the seat still held (409) or already sold (it then never asks)
        // depends on timing; the chart shows a 409 bar exactly when the run counted conflicts.
        let conflicts = reserve["conflicts"].as_u64().unwrap();
        assert_eq!(
            chart.texts.iter().any(|t| t.starts_with("409 ")),
            conflicts > 0,
            "{conflicts} conflicts: {:?}",
            chart.texts
        );
    }
}

/// The seed's reserve race ends in milliseconds: every chart still shows its data.
#[test]
fn a_race_of_milliseconds_still_draws_every_chart() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let report = dir.path().join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .current_dir(dir.path())
        .args([
            "simulate",
            "seed-reserve",
            "--strategy",
            "all",
            "--no-baseline",
            "--json",
        ])
        .arg(&json)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for run in v["scenarios"][0]["runs"].as_array().unwrap() {
        assert!(run["wallSeconds"].as_f64().unwrap() < 1.0, "a sub-second run");
    }
    let figs = check_report(&report, &["pessimistic", "optimistic"], &["reserve"]);
    // Ten users on one seat: nine lose the race, and the outcomes chart shows their 409s.
    for strategy in ["pessimistic", "optimistic"] {
        let chart = figs
            .iter()
            .find(|f| {
                f.kind == "outcomes" && f.strategy.as_deref() == Some(strategy) && f.op.as_deref() == Some("reserve")
            })
            .unwrap();
        assert!(chart.texts.iter().any(|t| t.starts_with("409 ")), "{:?}", chart.texts);
    }
}
