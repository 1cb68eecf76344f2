//! `--target`: the sold-out rush (scaled down) over real HTTP against `ticketing serve` on an
//! ephemeral port, with the invariants checked from the client-side history and final reads.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sold_out_rush_over_http() {
    let bin = env!("CARGO_BIN_EXE_ticketing");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let added = Command::new(bin)
        .args([
            "admin",
            "concert",
            "add",
            "--title",
            "Sold-out rush",
            "--date",
            "2026-12-24",
        ])
        .args(["--date", "2026-12-25", "--seats", "50", "--price", "100000", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));

    let mut child = Command::new(bin)
        .args(["serve", "--addr", "127.0.0.1:0", "--max-active", "500", "--db"])
        .arg(&db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut url = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            url = Some(rest.trim().to_string());
            break;
        }
    }
    let url = url.expect("the server prints its address");

    let json = dir.path().join("http.json");
    let out = Command::new(bin)
        .current_dir(dir.path())
        .args([
            "simulate",
            "sold-out-rush",
            "--users",
            "400",
            "--target",
            &url,
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &v["scenarios"][0]["runs"][0];
    assert_eq!(run["strategy"], format!("http {url}"));
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
    drop(server);
}
