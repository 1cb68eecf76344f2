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
        .replace("paid = 100", "paid = 7");
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
