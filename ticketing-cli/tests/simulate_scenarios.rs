//! Shipped scenarios pass (scaled down to keep CI quick); a wrong expectation exits 1 naming
//! it; a bad scenario file exits 2 naming the field.

use std::path::Path;
use std::process::{Command, Output};

fn scenario(name: &str) -> String {
    format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

fn simulate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .current_dir(dir)
        .arg("simulate")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn hot_seat_and_a_scaled_down_sold_out_rush_pass_on_both_strategies() {
    let dir = tempfile::tempdir().unwrap();
    let hot = scenario("hot-seat");
    let out = simulate(
        dir.path(),
        &[&hot, "--users", "1000", "--strategy", "all", "--no-baseline"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("pessimistic") && all.contains("optimistic"), "{all}");
    assert!(all.contains("expect") || all.contains("PASS"), "{all}");

    let rush = scenario("sold-out-rush");
    let out = simulate(
        dir.path(),
        &[&rush, "--users", "2000", "--strategy", "pessimistic,optimistic"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("baseline: raw SQLite commit rate"), "{all}");
    assert!(all.contains("PASS: every invariant and expectation holds"), "{all}");
}

#[test]
fn a_wrong_expectation_exits_1_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.toml");
    let text_of = std::fs::read_to_string(scenario("sold-out-rush"))
        .unwrap()
        .replace("paid = \"min(users, seats)\"", "paid = 7");
    std::fs::write(&file, text_of).unwrap();
    let out = simulate(
        dir.path(),
        &[
            file.to_str().unwrap(),
            "--users",
            "600",
            "--strategy",
            "optimistic",
            "--no-baseline",
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("FAIL optimistic · expectation expect.paid = 7: 100 seats paid"),
        "{all}"
    );
}

#[test]
fn a_bad_scenario_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "name = \"x\"\n[load]\nusers = 0\n[journey]\nkind = \"charge\"\n",
            "load.users",
        ),
        (
            "name = \"x\"\n[load]\nusers = 5\nspeed = 3\n[journey]\nkind = \"charge\"\n",
            "speed",
        ),
        (
            "name = \"x\"\n[load]\nusers = 5\narrival = \"ramp\"\n[journey]\nkind = \"charge\"\n",
            "load.ramp",
        ),
        (
            "name = \"x\"\n[load]\nusers = \"many\"\n[journey]\nkind = \"charge\"\n",
            "users",
        ),
        (
            "name = \"x\"\n[load]\nusers = 5\n[journey]\nkind = \"ticket\"\n",
            "setup.concerts",
        ),
    ];
    for (i, (body, field)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, body).unwrap();
        let out = simulate(dir.path(), &[file.to_str().unwrap(), "--no-baseline"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {stderr}");
        assert!(stderr.contains(field), "{body}: message names `{field}`: {stderr}");
    }
    let out = simulate(dir.path(), &["no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = simulate(dir.path(), &["seed-charge", "--strategy", "careful"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// `--users` scales what a scenario says and expects along with its load: every shipped
/// scenario run with 7 users describes 7 users and expects what 7 users can do — 7 payers of
/// 100 seats, a balance of 7 × 100 — and passes. (Fixed figures made `steady-state --users
/// 1000` fail its own `paid = 2000`, and `hot-seat --users 500` say "10,000 users".)
#[test]
fn every_shipped_scenario_scaled_down_describes_and_expects_its_load() {
    let dir = tempfile::tempdir().unwrap();
    // (scenario, a phrase of its description at 7 users, checks that must be among its runs')
    let cases: [(&str, &str, &[&str]); 10] = [
        (
            "seed-charge",
            "7 concurrent charges of 100 to one user end at exactly 700",
            &[
                "expect.balances user 1 = 700.00",
                "expect.ok.charge = 7",
                "expect.failed.charge = 0",
            ],
        ),
        (
            "seed-use",
            "7 concurrent uses of 100 from a wallet of 10,000 end at exactly 9,300",
            &[
                "expect.balances user 1 = 9300.00",
                "expect.ok.use = 7",
                "expect.failed.use = 0",
            ],
        ),
        (
            "seed-reserve",
            "7 concurrent holds of one seat give exactly 1 success and 6 failures",
            &["expect.ok.reserve = 1", "expect.failed.reserve = 6"],
        ),
        (
            "seed-pay",
            "7 concurrent payments of one reservation give 1 success, 6 failures",
            &["expect.paid = 1", "expect.ok.pay = 1", "expect.failed.pay = 6"],
        ),
        (
            "hot-seat",
            "7 users, 1 seat",
            &["expect.sold_out = true", "expect.paid = 1"],
        ),
        (
            "sold-out-rush",
            "7 users, 2 dates × 50 seats, max-active 500, full journey: exactly 7 payers",
            &["expect.sold_out = false", "expect.paid = 7"],
        ),
        (
            "wallet-storm",
            "7 users × 5 mixed charges/uses",
            &["expect.max_errors = 0"],
        ),
        (
            "steady-state",
            "(400 users/s for 0.02 s, 20 ms think time), 7 users for 4,000 seats",
            &["expect.paid = 7"],
        ),
        (
            "mega-rush",
            "7 users, 4 dates × 250 seats, max-active 1000: a long FIFO queue drains, exactly 7 payers",
            &["expect.sold_out = false", "expect.paid = 7"],
        ),
        (
            "available-seats",
            "Read only: 7 reads of one date's seat list at 500/s for 0.01 s",
            &["expect.ok.seats = 7", "expect.failed.seats = 0"],
        ),
    ];
    let json = dir.path().join("scaled.json");
    let mut args: Vec<&str> = cases.iter().map(|c| c.0).collect();
    args.extend([
        "--users",
        "7",
        "--strategy",
        "pessimistic,optimistic",
        "--no-baseline",
        "--json",
    ]);
    args.push(json.to_str().unwrap());
    let out = simulate(dir.path(), &args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for (i, (name, phrase, checks)) in cases.iter().enumerate() {
        let s = &report["scenarios"][i];
        assert_eq!(s["name"], *name, "{all}");
        assert_eq!(s["users"], 7, "{name}");
        let description = s["description"].as_str().unwrap();
        assert!(description.contains(phrase), "{name}: `{description}` says `{phrase}`");
        assert!(
            !description.contains('{'),
            "{name}: every placeholder filled: {description}"
        );
        let runs = s["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{name}");
        for run in runs {
            let names: Vec<&str> = run["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            for check in *checks {
                assert!(
                    names.contains(check),
                    "{name} on {}: `{check}` among {names:?}",
                    run["strategy"]
                );
            }
            assert_eq!(run["ok"], true, "{name} on {}: {all}", run["strategy"]);
        }
    }
}

/// An expectation that no load can meet at the `--users` asked for is refused before
/// anything runs (exit 2), naming the field, the expression and the load.
#[test]
fn an_expectation_impossible_at_the_users_asked_for_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("minus.toml");
    std::fs::write(
        &file,
        "name = \"minus\"\n[load]\nusers = 30\n[journey]\nkind = \"charge\"\n[expect]\nok = { charge = \"users - 20\" }\n",
    )
    .unwrap();
    let out = simulate(dir.path(), &[file.to_str().unwrap(), "--users", "10", "--no-baseline"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr.contains(
            "scenario minus with --users 10: `expect.ok.charge` = `users - 20`: is -10 at 10 users, not a whole count"
        ),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written");
}
