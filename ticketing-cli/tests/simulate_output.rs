//! `--json` has the documented shape; `--report` writes one HTML page with an SVG latency plot
//! per strategy.

use std::process::Command;

use serde_json::Value;

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
            for k in ["count", "throughput", "p50", "p99", "max", "errors"] {
                assert!(o["ratioToBest"].get(k).is_some(), "ratioToBest.{k}");
            }
        }
        let checks = run["checks"].as_array().unwrap();
        assert!(checks.iter().any(|c| c["kind"] == "invariant"));
        assert!(checks.iter().any(|c| c["name"] == "expect.paid = 1" && c["ok"] == true));
        assert!(checks.iter().all(|c| c["detail"].is_string()));
    }

    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(!html.contains("<script"), "no scripts: opens offline");
    for strategy in ["pessimistic", "optimistic"] {
        let tag = format!("<svg class=\"latency\" data-strategy=\"{strategy}\"");
        assert_eq!(html.matches(&tag).count(), 1, "one latency plot for {strategy}");
    }
    assert_eq!(html.matches("<svg class=\"throughput\"").count(), 1);
    assert!(html.contains("<polyline"));
}
