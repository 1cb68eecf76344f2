//! `--target URL,URL`: the simulator spreads its virtual users over two real `ticketing serve`
//! processes on one SQLite file (one service, SPEC §8), keeps the totals and checks as with one
//! node, and reports every request under the node it went to.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod http_support;

use std::path::Path;
use std::process::{Command, Output};

use http_support::Server;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ticketing");

/// Two nodes of one service: two servers on the SQLite file `db`, each with its own log dir.
fn two_nodes(db: &Path, strategy: &str) -> (Server, Server) {
    let node = || Server::start_on(tempfile::tempdir().unwrap(), db, strategy, &["--max-active", "500"]);
    let a = node();
    let b = node();
    (a, b)
}

fn simulate(dir: &Path, args: &[&str]) -> (Output, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .arg("simulate")
        .args(args)
        .env_remove("TICKETING_DB")
        .env_remove("TICKETING_STRATEGY")
        .output()
        .unwrap();
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, all)
}

/// Runs the sold-out rush (150 users for 100 seats) over both nodes with `--spread spread`;
/// asserts the totals and checks hold and every request is counted under one node; returns the
/// per-node request counts.
fn rush_over_two_nodes(strategy: &str, spread: &str) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("service.db");
    let (a, b) = two_nodes(&db, strategy);
    let targets = format!("{},{}", a.base, b.base);
    let json = dir.path().join("nodes.json");
    let report = dir.path().join("report");
    let (out, all) = simulate(
        dir.path(),
        &[
            "sold-out-rush",
            "--users",
            "150",
            "--db",
            db.to_str().unwrap(),
            "--target",
            &targets,
            "--spread",
            spread,
            "--json",
            json.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{all}");

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["target"], targets.as_str());
    assert_eq!(v["spread"], spread);
    assert_eq!(v["ok"], true, "{all}");
    let run = &v["scenarios"][0]["runs"][0];
    assert_eq!(run["strategy"], format!("http {targets}"));
    // The totals are those of one node: the show sells out to exactly 100 payers.
    assert_eq!(run["users"]["done"], 100, "{all}");
    let checks = run["checks"].as_array().unwrap();
    for name in [
        "no seat paid twice (client history)",
        "money conserved per user (client history + final balances)",
        "expect.sold_out = true",
        "expect.paid = 100",
    ] {
        assert!(
            checks.iter().any(|c| c["name"] == name && c["ok"] == true),
            "{name} holds: {all}"
        );
    }
    assert!(checks.iter().all(|c| c["ok"] == true), "every check holds: {all}");

    // Every request is counted under exactly one node, in --target's order.
    let nodes = run["nodes"].as_array().unwrap();
    let urls: Vec<&str> = nodes.iter().map(|n| n["url"].as_str().unwrap()).collect();
    assert_eq!(urls, [a.base.as_str(), b.base.as_str()]);
    let ops = run["operations"].as_array().unwrap();
    for (node_key, op_key) in [
        ("requests", "count"),
        ("ok", "ok"),
        ("conflicts", "conflicts"),
        ("rejected", "rejected"),
        ("errors", "errors"),
    ] {
        let by_node: u64 = nodes.iter().map(|n| n[node_key].as_u64().unwrap()).sum();
        let by_op: u64 = ops.iter().map(|o| o[op_key].as_u64().unwrap()).sum();
        assert_eq!(by_node, by_op, "{node_key}: per node vs per operation: {all}");
    }
    for n in nodes {
        let lat = &n["latencyMs"];
        assert!(lat["p50"].as_f64().unwrap() <= lat["p99"].as_f64().unwrap(), "{n}");
    }
    let counts: Vec<u64> = nodes.iter().map(|n| n["requests"].as_u64().unwrap()).collect();
    assert!(
        counts.iter().all(|&c| c > 0),
        "both nodes received requests: {counts:?}\n{all}"
    );

    // Each node's own count agrees: the second node served exactly the requests counted
    // under it (setup and the final reads go to the first, which served at least its share).
    let (served, conflicts) = answered(&b);
    assert_eq!(served, counts[1], "requests the second node answered: {all}");
    assert_eq!(conflicts, nodes[1]["conflicts"], "409s the second node answered: {all}");
    assert!(answered(&a).0 >= counts[0], "requests the first node answered: {all}");

    // The terminal and the HTML report show the same breakdown.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("per node of http {targets}")), "{stdout}");
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(
        html.contains("Per node") && html.contains(&b.base),
        "the report has the per-node table"
    );
    counts
}

/// The requests `server` answered, and of those the 409s, from its own `GET /metrics`.
fn answered(server: &Server) -> (u64, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = runtime.block_on(server.get("/metrics", None)).text;
    let (mut all, mut conflicts) = (0, 0);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("ticketing_http_requests_total{") else {
            continue;
        };
        if rest.contains("route=\"/metrics\"") {
            continue;
        }
        let n: u64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
        all += n;
        if rest.contains("status=\"409\"") {
            conflicts += n;
        }
    }
    (all, conflicts)
}

/// `--spread user` (the default): users take the nodes in turn, every request of a user on its
/// node; both nodes serve, and the service sells out exactly once.
#[test]
fn users_are_spread_over_two_nodes_of_one_service() {
    rush_over_two_nodes("pessimistic", "user");
}

/// `--spread request`: each request to the next node, so a token issued on one node is used on
/// the other; one shared counter, so the two nodes' counts differ by at most one.
#[test]
fn requests_are_spread_over_two_nodes_of_one_service() {
    let counts = rush_over_two_nodes("optimistic", "request");
    assert!(
        counts[0].abs_diff(counts[1]) <= 1,
        "round-robin per request: {counts:?}"
    );
}

/// A bad node in the list is refused before anything runs, by name, as a usage error (2); so
/// are a node named twice and `--spread` without `--target`.
#[test]
fn a_bad_target_list_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["--target", "http://127.0.0.1:9,127.0.0.1:10"][..],
            "`127.0.0.1:10` is not an http:// URL",
        ),
        (
            &["--target", "http://127.0.0.1:9,http://127.0.0.1:9/"][..],
            "--target names http://127.0.0.1:9/ twice",
        ),
        (&["--spread", "request"][..], "--target"),
    ] {
        let mut full = vec!["hot-seat", "--users", "5"];
        full.extend_from_slice(args);
        let (out, all) = simulate(dir.path(), &full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?} says {says}: {stderr}");
    }
}
