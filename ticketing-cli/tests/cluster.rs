//! SPEC §8 over real processes: three `ticketing serve` nodes on one PostgreSQL database (and
//! the test command's Redis for the redis strategy) are one service. Every race below sends its
//! requests round-robin over the nodes, released together by a barrier, under every strategy:
//! one queue (`max-active` global, FIFO, exact places; a leave on one node admits the next
//! waiter on every node at once), one seat per winner, every charge counted, one payment per
//! reservation and per `Idempotency-Key`, `max-holds` per user across nodes, reads that never
//! list a seat another node has held. Then `admin check` passes on the shared database.
//!
//! And the nodes' clocks: a node whose clock runs a minute ahead decides expiry by the
//! database's clock, like the others (`a_node_with_a_wrong_clock_decides_by_the_database`).
#![allow(clippy::unwrap_used)] // test code

mod cluster_support;
mod http_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_support::Cluster;
use http_support::{now_millis, rfc3339_millis, use_backend, Answer, Backend, DEMO_PRICE};
use serde_json::{json, Value};
use tokio::sync::Barrier;

const NODES: usize = 3;
const MAX_HOLDS: usize = 3;

macro_rules! per_strategy {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn pessimistic() {
                if use_backend(Backend::Postgres, "pessimistic") {
                    $name("pessimistic").await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn optimistic() {
                if use_backend(Backend::Postgres, "optimistic") {
                    $name("optimistic").await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis() {
                if use_backend(Backend::Postgres, "redis") {
                    $name("redis").await;
                }
            }
        }
    };
}

per_strategy!(three_nodes_are_one_service);

/// Sends `n` requests made by `make(i)` to node `i % NODES`, all released at once; the answers
/// in order.
async fn race<F, Fut>(cluster: &Arc<Cluster>, n: usize, make: F) -> Vec<Answer>
where
    F: Fn(Arc<Cluster>, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for i in 0..n {
        let (c, barrier, make) = (cluster.clone(), barrier.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            make(c, i).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn status_of(c: &Cluster, node: usize, token: &str) -> Value {
    let a = c.node(node).get("/api/token/status", Some(token)).await;
    a.ok()["data"].clone()
}

async fn three_nodes_are_one_service(strategy: &str) {
    let max_holds = MAX_HOLDS.to_string();
    let c = Arc::new(Cluster::start(
        NODES,
        strategy,
        &["--max-active", "5", "--max-holds", &max_holds, "--rate-limit", "off"],
    ));
    // Warm every node's connections so the races happen in the servers, not in connects.
    race(&c, 60, |c, i| async move { c.node(i).get("/health", None).await }).await;

    // --- The queue: 12 token requests at once, max-active 5 -----------------------------------
    let answers = race(&c, 12, |c, i| async move {
        c.node(i)
            .post("/api/token", None, json!({ "userId": 1 + i as i64 }))
            .await
    })
    .await;
    let data: Vec<Value> = answers.iter().map(|a| a.ok()["data"].clone()).collect();
    let active: Vec<&Value> = data.iter().filter(|d| d["status"] == "ACTIVE").collect();
    assert_eq!(active.len(), 5, "exactly max-active ACTIVE across the nodes: {data:?}");
    let mut places: Vec<u64> = data
        .iter()
        .filter(|d| d["status"] == "WAITING")
        .map(|d| d["queuePosition"].as_u64().unwrap())
        .collect();
    places.sort_unstable();
    assert_eq!(places, (1..=7).collect::<Vec<u64>>(), "waiters at 1..7, each once");

    // A leave on node 0: the first waiter is ACTIVE on every node within a second.
    let first_waiter = data.iter().find(|d| d["queuePosition"] == 1).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let leaver = active[0]["token"].as_str().unwrap().to_string();
    c.node(0)
        .send("DELETE", "/api/token", Some(&bearer(&leaver)), None)
        .await
        .ok();
    let left = Instant::now();
    for node in 0..NODES {
        loop {
            let status = status_of(&c, node, &first_waiter).await;
            if status["status"] == "ACTIVE" {
                break;
            }
            assert!(
                left.elapsed() < Duration::from_secs(1),
                "node {node} still shows the first waiter as {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Room for everyone from here on (an operator's change on the shared database).
    c.ticketing(&["admin", "queue", "set-max-active", "1000"]);

    // --- One seat, 30 holds at once --------------------------------------------------------------
    let mut tokens = Vec::new();
    for user in 101..=130i64 {
        let (token, d) = c.node(user as usize).token(user).await;
        assert_eq!(d["status"], "ACTIVE", "{d}");
        tokens.push(token);
    }
    let tokens = Arc::new(tokens);
    let shared = tokens.clone();
    let answers = race(&c, 30, move |c, i| {
        let token = shared[i].clone();
        async move {
            c.node(i)
                .post(
                    "/api/reserve",
                    Some(&token),
                    json!({ "concertOptionId": 1, "seatId": 1 }),
                )
                .await
        }
    })
    .await;
    let winners: Vec<usize> = (0..30).filter(|i| answers[*i].status == 200).collect();
    assert_eq!(winners.len(), 1, "one seat, one winner: {answers:?}");
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(a.status, 409, "{a:?}");
    }
    let winner = winners[0];
    let reservation = answers[winner].ok()["data"]["reservationId"].as_i64().unwrap();
    // No node lists the seat once one node has answered.
    for node in 0..NODES {
        let seats = c.node(node).available_seat_ids(1, &tokens[node]).await;
        assert!(!seats.contains(&1), "node {node} lists the held seat 1");
    }

    // --- One wallet, 30 charges at once ----------------------------------------------------------
    let answers = race(&c, 30, |c, i| async move { c.node(i).charge(500, 1.0).await }).await;
    for a in &answers {
        assert_eq!(a.status, 200, "{a:?}");
    }
    assert_eq!(c.node(1).balance(500).await, 30.0, "every charge counted");

    // --- One reservation, 10 payments at once ----------------------------------------------------
    let payer = 101 + winner as i64;
    c.node(0).charge(payer, DEMO_PRICE * 3.0).await.ok();
    let token = tokens[winner].clone();
    let answers = race(&c, 10, move |c, i| {
        let token = token.clone();
        async move {
            c.node(i)
                .post(
                    "/api/pay",
                    Some(&token),
                    json!({ "reservationId": reservation, "amount": DEMO_PRICE }),
                )
                .await
        }
    })
    .await;
    assert_eq!(
        answers.iter().filter(|a| a.status == 200).count(),
        1,
        "paid once: {answers:?}"
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        assert!(matches!(a.status, 401 | 409), "{a:?}");
    }
    assert_eq!(c.node(2).balance(payer).await, DEMO_PRICE * 2.0, "the money moved once");

    // --- One Idempotency-Key, replayed on every node at once -------------------------------------
    let (buyer, buyer_token) = if winner == 0 {
        (102, tokens[1].clone())
    } else {
        (101, tokens[0].clone())
    };
    let hold = c
        .node(0)
        .post(
            "/api/reserve",
            Some(&buyer_token),
            json!({ "concertOptionId": 1, "seatId": 2 }),
        )
        .await;
    let held = hold.ok()["data"]["reservationId"].as_i64().unwrap();
    c.node(1).charge(buyer, DEMO_PRICE * 2.0).await.ok();
    let body = json!({ "reservationId": held, "amount": DEMO_PRICE }).to_string();
    let answers = race(&c, 30, move |c, i| {
        let (token, body) = (buyer_token.clone(), body.clone());
        async move {
            c.node(i)
                .send_raw(
                    "POST",
                    "/api/pay",
                    Some(&bearer(&token)),
                    Some(body),
                    &[("Idempotency-Key", "cluster-order-1")],
                )
                .await
        }
    })
    .await;
    let first = answers[0].clone();
    assert_eq!(first.status, 200, "{first:?}");
    for a in &answers {
        assert_eq!((a.status, &a.text), (200, &first.text), "every replay answers the same");
    }
    assert_eq!(c.node(2).balance(buyer).await, DEMO_PRICE, "one payment");

    // --- One user, 8 holds at once over the nodes ------------------------------------------------
    let (token, _) = c.node(0).token(777).await;
    let answers = race(&c, 8, move |c, i| {
        let token = token.clone();
        async move {
            c.node(i)
                .post(
                    "/api/reserve",
                    Some(&token),
                    json!({ "concertOptionId": 2, "seatId": 51 + i as i64 }),
                )
                .await
        }
    })
    .await;
    assert_eq!(
        answers.iter().filter(|a| a.status == 200).count(),
        MAX_HOLDS,
        "max-holds is per user, not per node: {answers:?}"
    );

    // Every invariant holds on the shared database (the command fails otherwise).
    c.ticketing(&["admin", "check"]);
}

/// One node runs with its clock a minute ahead (libfaketime): it still decides when tokens and
/// holds run out by the database's clock, within `ticketing_core::CLOCK_BOUND` of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_a_wrong_clock_decides_by_the_database() {
    if !use_backend(Backend::Postgres, "pessimistic") {
        return;
    }
    // libfaketime (Debian's `faketime`), preloaded into the node itself.
    let Some(lib) = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]
        .iter()
        .map(|d| format!("{d}/faketime/libfaketime.so.1"))
        .find(|p| std::path::Path::new(p).exists())
    else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide faketime");
        eprintln!("skipped: libfaketime is not installed (scripts/test.sh installs it)");
        return;
    };
    let bound = ticketing_core::CLOCK_BOUND.as_millis() as i64;
    let mut c = Cluster::start(
        1,
        "pessimistic",
        &["--token-ttl", "3s", "--hold-ttl", "4s", "--rate-limit", "off"],
    );
    let ahead = c.start_node(
        1,
        &[
            ("LD_PRELOAD", lib.as_str()),
            ("FAKETIME", "+60s"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    c.nodes.push(ahead);
    // The node really runs a minute ahead: its log's lines are stamped by its clock.
    let mut stamped = c.nodes[1].log();
    for _ in 0..100 {
        if !stamped.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stamped = c.nodes[1].log();
    }
    let first = stamped.lines().next().unwrap_or_default();
    let shown = chrono_like_millis(first);
    assert!(
        shown - now_millis() > 50_000,
        "the node's own clock should be a minute ahead: {first}"
    );

    // A token issued by the right node expires at the same moment on the wrong one. Its
    // expiry is 3 s after a moment of the request (the API shows whole seconds): this machine's
    // clock is the database's.
    let before = now_millis();
    let (token, d) = c.nodes[0].token(1).await;
    let due = (before + 3_000, now_millis() + 3_000);
    let shown = rfc3339_millis(d["expiresAt"].as_str().unwrap());
    assert!(
        shown / 1000 >= due.0 / 1000 - 1 && shown / 1000 <= due.1 / 1000 + 1,
        "expiresAt {d}"
    );
    let seen = c.nodes[1].get("/api/token/status", Some(&token)).await;
    assert_eq!(
        seen.ok()["data"]["status"],
        "ACTIVE",
        "the fast node must not expire it early"
    );

    // A hold made through the wrong node runs out when the database's clock says so.
    let (token2, _) = c.nodes[1].token(2).await;
    let held_at = now_millis();
    let hold = c.nodes[1]
        .post(
            "/api/reserve",
            Some(&token2),
            json!({ "concertOptionId": 1, "seatId": 3 }),
        )
        .await;
    let until = (held_at + 4_000, now_millis() + 4_000);
    let shown = rfc3339_millis(hold.ok()["data"]["heldUntil"].as_str().unwrap());
    assert!(
        shown / 1000 >= until.0 / 1000 - 1 && shown / 1000 <= until.1 / 1000 + 1,
        "heldUntil {shown} is not 4 s after {held_at} by the database's clock"
    );

    // Watch both from the wrong node: each runs out no earlier than its time less the bound,
    // and no later than its time plus the bound (and a poll's step).
    let mut token_gone = None;
    let mut seat_free = None;
    let started = Instant::now();
    while (token_gone.is_none() || seat_free.is_none()) && started.elapsed() < Duration::from_secs(15) {
        let now = now_millis();
        if token_gone.is_none() {
            let a = c.nodes[1].get("/api/token/status", Some(&token)).await;
            if a.status != 200 || a.body["data"]["status"] == "EXPIRED" {
                token_gone = Some(now);
            }
        }
        if seat_free.is_none() {
            // The probe's token lives 3 s as well, and issuing hands back a user's live token:
            // one handed back just before it ran out may be refused when it is used (401), and
            // the next round issues a fresh one.
            let (probe, _) = c.nodes[0].token(3).await;
            let seats = c.nodes[1].get("/api/1/available-seats", Some(&probe)).await;
            if seats.status != 401
                && seats.ok()["seats"]
                    .as_array()
                    .expect("seats")
                    .iter()
                    .any(|s| s["seatId"] == 3)
            {
                seat_free = Some(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token_gone = token_gone.expect("the token never expired on the fast node");
    let seat_free = seat_free.expect("the hold never ran out on the fast node");
    let step = 300;
    assert!(
        token_gone >= due.0 - bound && token_gone <= due.1 + bound + step,
        "token due in {due:?}, expired on the fast node at {token_gone}"
    );
    assert!(
        seat_free >= until.0 - bound && seat_free <= until.1 + bound + step,
        "hold due in {until:?}, seat free on the fast node at {seat_free}"
    );
    eprintln!(
        "fast node: token expired {} ms after its time, hold ran out {} ms after its time",
        token_gone - due.1,
        seat_free - until.1
    );
}

/// The milliseconds of a log line's leading `2026-11-30T07:40:00.123456Z` stamp.
fn chrono_like_millis(line: &str) -> i64 {
    let stamp = line.split_whitespace().next().unwrap_or_default();
    let whole = format!("{}Z", &stamp[..19]);
    let fraction: i64 = stamp[20..23].parse().unwrap_or(0);
    rfc3339_millis(&whole) + fraction
}
