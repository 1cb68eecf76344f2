//! The seed's four cases reproduce its results on the pessimistic and optimistic strategies,
//! and are printed in the seed's own columns.

use std::process::Command;

use serde_json::Value;

fn scenario(name: &str) -> String {
    format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn seed_cases_reproduce_the_seed_table() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("seed.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .current_dir(dir.path())
        .args([
            "simulate",
            "--strategy",
            "pessimistic,optimistic",
            "--no-baseline",
            "--json",
        ])
        .arg(&json)
        .args(["seed-charge", "seed-use", "seed-reserve", "seed-pay"].map(scenario))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for column in ["final points", "successes", "failures", "total time", "average time"] {
        assert!(
            stdout.contains(column),
            "the seed's column `{column}` is printed:\n{stdout}"
        );
    }

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 4);
    // (scenario, final points, successes, failures) as in the seed's report.
    let expected = [
        ("seed-charge", Some(1000.0), 10, 0),
        ("seed-use", Some(9000.0), 10, 0),
        ("seed-reserve", None, 1, 9),
        ("seed-pay", Some(50000.0), 1, 9),
    ];
    for (s, (name, points, ok, failed)) in scenarios.iter().zip(expected) {
        assert_eq!(s["name"], name);
        let runs = s["runs"].as_array().unwrap();
        let strategies: Vec<&str> = runs.iter().map(|r| r["strategy"].as_str().unwrap()).collect();
        assert_eq!(strategies, ["pessimistic", "optimistic"]);
        for run in runs {
            let seed = &run["seed"];
            assert_eq!(seed["finalPoints"].as_f64(), points, "{name} {}", run["strategy"]);
            assert_eq!(seed["successes"], ok, "{name} {}", run["strategy"]);
            assert_eq!(seed["failures"], failed, "{name} {}", run["strategy"]);
            assert!(seed["totalMs"].as_f64().unwrap() > 0.0);
            assert!(seed["averageMs"].as_f64().unwrap() > 0.0);
            assert_eq!(run["ok"], true, "{name}: {}", run["checks"]);
        }
    }
}
