//! A node killed at any moment (SPEC §8): purchase traffic (token → charge → reserve → pay with
//! an `Idempotency-Key`) over three nodes on one PostgreSQL database while one of them is
//! SIGKILLed at random moments and started again. Throughout, the two other nodes answer every
//! request without a 5xx; afterwards every payment a client saw acknowledged — by any node,
//! the killed one included — has moved its money and sold its seat, `admin check` passes, and
//! the killed node has rejoined every time (it answers after each restart).
//!
//! `TICKETING_CLUSTER_KILLS` sets the kills (default 20, the CI version; the long version is
//! `scripts/cluster-crash.sh`, 200 kills).
#![allow(clippy::unwrap_used)] // test code

mod cluster_support;
mod http_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_support::Cluster;
use http_support::{use_backend, Backend, Server};
use rand::RngExt;
use serde_json::json;
use tokio::sync::RwLock;

/// Purchasing clients on each surviving node, and on the node that gets killed.
const CLIENTS_PER_NODE: usize = 4;
/// Price of every seat, in whole units.
const PRICE: f64 = 100.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_loses_nothing_and_the_others_keep_serving() {
    if !use_backend(Backend::Postgres, "pessimistic") {
        return;
    }
    let kills: usize = std::env::var("TICKETING_CLUSTER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut cluster = Cluster::start(3, "pessimistic", &["--rate-limit", "off", "--max-active", "10000"]);
    cluster.ticketing(&[
        "admin",
        "concert",
        "add",
        "--title",
        "Crash",
        "--date",
        "2027-01-01",
        "--seats",
        "10000",
        "--price",
        "100",
    ]);
    // Concert 2, date 3 (the demo concert holds dates 1 and 2): seats 101..=10100.
    let victim = Arc::new(RwLock::new(Arc::new(cluster.nodes.pop().unwrap())));
    let survivors: Vec<Arc<Server>> = cluster.nodes.drain(..).map(Arc::new).collect();
    let cluster = Arc::new(cluster);

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let next_user = Arc::new(AtomicU64::new(10_000));
    let survivor_failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for n in 0..3 * CLIENTS_PER_NODE {
        let node = n % 3;
        let (stop, acked, next_user, failures) = (
            stop.clone(),
            acked.clone(),
            next_user.clone(),
            survivor_failures.clone(),
        );
        let fixed = survivors.get(node).cloned();
        let victim = victim.clone();
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let server = match &fixed {
                    Some(s) => s.clone(),
                    None => victim.read().await.clone(),
                };
                let user = next_user.fetch_add(1, Ordering::Relaxed) as i64;
                match purchase(&server, user).await {
                    Ok(Some(reservation)) => acked.lock().unwrap().push((user, reservation)),
                    Ok(None) => {}
                    Err(e) if fixed.is_some() => failures.lock().unwrap().push(e),
                    // The killed node's requests may fail any way at all.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    let started = Instant::now();
    for kill in 0..kills {
        let pause = rand::rng().random_range(50..400);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let mut node = victim.write().await;
        // Dropping the last handle SIGKILLs it; clients holding the old one see it gone.
        let old = std::mem::replace(&mut *node, Arc::new(start_again(&cluster)));
        drop(old);
        let back = node.get("/health", None).await;
        assert_eq!(back.status, 200, "the node did not rejoin after kill {kill}");
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failures = survivor_failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "the surviving nodes failed requests: {failures:?}");

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > kills,
        "too little traffic to mean anything: {} payments",
        acked.len()
    );
    for (user, reservation) in &acked {
        let balance = survivors[0].balance(*user).await;
        assert_eq!(
            balance, 0.0,
            "user {user}: acknowledged payment of reservation {reservation} lost"
        );
    }
    cluster.ticketing(&["admin", "check"]);
    eprintln!(
        "{kills} kills in {:.1} s; {} acknowledged payments all in the database",
        started.elapsed().as_secs_f64(),
        acked.len()
    );
}

/// Starts the killed node again on the cluster's database.
fn start_again(cluster: &Cluster) -> Server {
    cluster.start_node(2, &[])
}

/// One purchase by a new user: token, charge the price, hold a random seat, pay. `Ok(Some)`
/// with the reservation when the payment was acknowledged, `Ok(None)` when a step lost a race
/// (409: the seat went to another, or a lock held by the killed node's open transaction ran
/// past the contention bound), `Err` for anything else (a 5xx, a transport error).
async fn purchase(s: &Server, user: i64) -> Result<Option<i64>, String> {
    let step = |what: &str, a: &http_support::Answer| format!("{what}: {} {}", a.status, a.text);
    let a = s.try_post("/api/token", None, json!({ "userId": user })).await?;
    match a.status {
        200 => {}
        409 => return Ok(None),
        _ => return Err(step("token", &a)),
    }
    let token = a.body["data"]["token"].as_str().unwrap_or_default().to_string();
    let a = s
        .try_send(
            "PATCH",
            "/api/balance/charge",
            None,
            Some(json!({ "userId": user, "amount": PRICE })),
        )
        .await?;
    match a.status {
        200 => {}
        409 => return Ok(None),
        _ => return Err(step("charge", &a)),
    }
    let seat = rand::rng().random_range(101..=10_100);
    let a = s
        .try_post(
            "/api/reserve",
            Some(&token),
            json!({ "concertOptionId": 3, "seatId": seat }),
        )
        .await?;
    match a.status {
        200 => {}
        409 => return Ok(None),
        _ => return Err(step("reserve", &a)),
    }
    let reservation = a.body["data"]["reservationId"].as_i64().unwrap_or_default();
    let a = s.try_pay(&token, reservation, PRICE, &format!("crash-{user}")).await?;
    match a.status {
        200 => Ok(Some(reservation)),
        409 => Ok(None),
        _ => Err(step("pay", &a)),
    }
}
