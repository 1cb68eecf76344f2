//! Crash safety of the real server: many clients buy tickets over HTTP (token → charge →
//! reserve → pay) while the server is SIGKILLed at random moments and restarted on the same
//! database. After every kill:
//!
//! - `ticketing admin check` exits 0 (every invariant of docs/contract.md §Invariants holds),
//! - `PRAGMA integrity_check` is `ok`,
//! - every payment a client saw acknowledged (a 200 with its `paymentId`) is in the database,
//!   with its reservation PAID and its seat SOLD, and every acknowledged hold exists;
//! - a payment whose answer the crash cut off is retried after the restart with the same
//!   `Idempotency-Key`: it answers 200 exactly once in the database (paid before the crash: the
//!   stored receipt; not paid: paid now).
//!
//! `TICKETING_CRASH_KILLS` sets the kills per strategy (default 20, the CI version; the long
//! version is `scripts/crash-test.sh`, 200 kills).
#![allow(clippy::unwrap_used)] // test code

mod reliability_support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt;
use reliability_support::{add_concert, admin_check, env_number, integrity, open, redis_url, Client, Server};
use serde_json::json;

/// Concurrent clients driving purchases.
const CLIENTS: usize = 16;
/// Price of every seat (whole units).
const PRICE: u64 = 100;
/// Seats per date of the test concert.
const SEATS_PER_DATE: u32 = 1000;

macro_rules! crash_test {
    ($name:ident, $strategy:literal) => {
        #[test]
        fn $name() {
            if $strategy == "redis" && redis_url().is_none() {
                eprintln!("skipped: set TICKETING_TEST_REDIS_URL to test the redis strategy");
                return;
            }
            crash_loop($strategy);
        }
    };
}

crash_test!(sigkill_loses_nothing_optimistic, "optimistic");
crash_test!(sigkill_loses_nothing_pessimistic, "pessimistic");
crash_test!(sigkill_loses_nothing_redis, "redis");

/// A payment the client saw acknowledged.
#[derive(Debug, Clone, Copy)]
struct Paid {
    payment_id: i64,
    reservation_id: i64,
    user_id: i64,
}

/// A payment sent whose answer never came (the server died): retried after the restart.
#[derive(Debug, Clone)]
struct Pending {
    key: String,
    token: String,
    reservation_id: i64,
    user_id: i64,
}

/// What the clients saw, across all restarts.
#[derive(Default)]
struct Seen {
    paid: Vec<Paid>,
    holds: Vec<i64>,
    pending: Vec<Pending>,
    /// Payments whose answer a crash cut off (each retried with its key until it answered).
    cut: usize,
    /// Answers no client may ever get (a 5xx, an unexpected failure of a payment).
    surprises: Vec<String>,
}

fn crash_loop(strategy: &'static str) {
    let kills = env_number("TICKETING_CRASH_KILLS", 20) as usize;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let log = dir.path().join("server.log");

    // Enough seats that every cycle finds free ones: each journey takes the next seat of a
    // shuffled list, so clients never race for one seat here (the HTTP tests do that).
    let dates = (kills * 300 / SEATS_PER_DATE as usize).max(2);
    add_concert(&db, strategy, dates, SEATS_PER_DATE, PRICE);
    let mut seats: Vec<i64> = open(&db)
        .prepare("SELECT id, option_id FROM seats")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
        .map(|r| {
            let (seat, option) = r.unwrap();
            seat * 1_000_000 + option
        })
        .collect();
    let mut rng = rand::rng();
    for i in (1..seats.len()).rev() {
        seats.swap(i, rng.random_range(0..=i));
    }
    let seats = Arc::new(seats);
    let cursor = Arc::new(AtomicUsize::new(0));
    let next_user = Arc::new(AtomicI64::new(1));
    let seen = Arc::new(Mutex::new(Seen::default()));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for cycle in 0..kills {
        let server = Server::start(&db, strategy, &["--max-active", "1000000"], &log);
        let client = Client::new(&server.base);

        // Traffic, then SIGKILL at a random moment: mostly mid-stream, sometimes right away.
        let stop = Arc::new(AtomicBool::new(false));
        // Payments whose answers the last crash cut off are retried with their keys alongside
        // (under redis the dead server's lease may hold them for a while; then they wait for the
        // next cycle).
        let pending = std::mem::take(&mut seen.lock().unwrap().pending);
        let mut tasks: Vec<_> = pending
            .into_iter()
            .map(|p| runtime.spawn(settle(client.clone(), p, seen.clone(), stop.clone())))
            .collect();
        tasks.extend((0..CLIENTS).map(|_| {
            runtime.spawn(journeys(
                client.clone(),
                seats.clone(),
                cursor.clone(),
                next_user.clone(),
                seen.clone(),
                stop.clone(),
            ))
        }));
        let delay = if rng.random_range(0..10) == 0 {
            rng.random_range(0..30)
        } else {
            rng.random_range(100..700)
        };
        std::thread::sleep(Duration::from_millis(delay));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        runtime.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });

        verify(&db, strategy, &seen.lock().unwrap(), cycle);
    }

    // One last clean start: the pending payments settle and everything still holds.
    let server = Server::start(&db, strategy, &[], &log);
    let client = Client::new(&server.base);
    let pending = std::mem::take(&mut seen.lock().unwrap().pending);
    for p in pending {
        let paid = runtime.block_on(retry_payment(&client, &p));
        seen.lock().unwrap().paid.push(paid);
    }
    server.kill();
    let seen = seen.lock().unwrap();
    verify(&db, strategy, &seen, kills);
    assert!(seen.surprises.is_empty(), "unexpected answers: {:#?}", seen.surprises);
    assert!(
        seen.paid.len() >= kills,
        "too little traffic to mean anything: {} payments",
        seen.paid.len()
    );
    eprintln!(
        "{strategy}: {kills} SIGKILLs survived in {:.1} s; {} payments acknowledged ({} retried \
         after a crash cut their answer), {} holds acknowledged; invariants, integrity and every \
         acknowledged payment verified after each restart",
        started.elapsed().as_secs_f64(),
        seen.paid.len(),
        seen.cut,
        seen.holds.len()
    );
}

/// One client: whole purchases, one fresh user each, until stopped or the server is gone.
async fn journeys(
    client: Client,
    seats: Arc<Vec<i64>>,
    cursor: Arc<AtomicUsize>,
    next_user: Arc<AtomicI64>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) {
    let surprise = |what: String| seen.lock().unwrap().surprises.push(what);
    while !stop.load(Ordering::SeqCst) {
        let user = next_user.fetch_add(1, Ordering::SeqCst);
        let Ok(a) = client
            .try_send(
                "POST",
                "/api/token",
                None,
                Some(json!({ "userId": user }).to_string()),
                &[],
            )
            .await
        else {
            return;
        };
        if a.status != 200 || a.body["data"]["status"] != "ACTIVE" {
            return surprise(format!("token for {user}: {a:?}"));
        }
        let token = a.body["data"]["token"].as_str().unwrap().to_string();
        let Ok(a) = client
            .try_send(
                "PATCH",
                "/api/balance/charge",
                None,
                Some(json!({ "userId": user, "amount": PRICE }).to_string()),
                &[],
            )
            .await
        else {
            return;
        };
        if a.status != 200 {
            return surprise(format!("charge for {user}: {a:?}"));
        }
        let Some(&packed) = seats.get(cursor.fetch_add(1, Ordering::SeqCst)) else {
            return; // every seat taken: nothing left to buy
        };
        let (seat, option) = (packed / 1_000_000, packed % 1_000_000);
        let Ok(a) = client
            .try_send(
                "POST",
                "/api/reserve",
                Some(&token),
                Some(json!({ "concertOptionId": option, "seatId": seat }).to_string()),
                &[],
            )
            .await
        else {
            return;
        };
        if a.status != 200 {
            return surprise(format!("reserve seat {seat} for {user}: {a:?}"));
        }
        let reservation_id = a.body["data"]["reservationId"].as_i64().unwrap();
        seen.lock().unwrap().holds.push(reservation_id);
        let key = uuid::Uuid::new_v4().to_string();
        let body = json!({ "reservationId": reservation_id, "amount": PRICE }).to_string();
        match client
            .try_send(
                "POST",
                "/api/pay",
                Some(&token),
                Some(body),
                &[("Idempotency-Key", &key)],
            )
            .await
        {
            Ok(a) if a.status == 200 => seen.lock().unwrap().paid.push(Paid {
                payment_id: a.body["data"]["paymentId"].as_i64().unwrap(),
                reservation_id,
                user_id: user,
            }),
            Ok(a) => return surprise(format!("pay {reservation_id} for {user}: {a:?}")),
            Err(_) => {
                let mut seen = seen.lock().unwrap();
                seen.cut += 1;
                seen.pending.push(Pending {
                    key,
                    token,
                    reservation_id,
                    user_id: user,
                });
                return;
            }
        }
    }
}

/// Retries a payment whose answer was lost, with its key, until it answers 200 (recorded as
/// acknowledged) or the server dies again (pending again).
async fn settle(client: Client, p: Pending, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    let body = json!({ "reservationId": p.reservation_id, "amount": PRICE }).to_string();
    loop {
        let sent = client
            .try_send(
                "POST",
                "/api/pay",
                Some(&p.token),
                Some(body.clone()),
                &[("Idempotency-Key", &p.key)],
            )
            .await;
        let mut seen_now = seen.lock().unwrap();
        match sent {
            Ok(a) if a.status == 200 => {
                return seen_now.paid.push(Paid {
                    payment_id: a.body["data"]["paymentId"].as_i64().unwrap(),
                    reservation_id: p.reservation_id,
                    user_id: p.user_id,
                })
            }
            Ok(a) if is_lock_wait(&a) && !stop.load(Ordering::SeqCst) => {}
            Ok(a) if is_lock_wait(&a) => return seen_now.pending.push(p),
            Ok(a) => {
                return seen_now
                    .surprises
                    .push(format!("retried payment {p:?} after a crash: {a:?}"))
            }
            Err(_) => return seen_now.pending.push(p),
        }
        drop(seen_now);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A lost race for a lock (a Redis lease of the killed server that has not run out yet).
fn is_lock_wait(a: &reliability_support::Answer) -> bool {
    matches!(a.status, 409 | 503) && a.body["code"].as_str().is_some_and(|c| c.contains("LOCK"))
}

/// Retries a payment whose answer was lost, with its key, until it answers (a Redis lease of
/// the dead server may still hold the reservation for a moment).
async fn retry_payment(client: &Client, p: &Pending) -> Paid {
    let body = json!({ "reservationId": p.reservation_id, "amount": PRICE }).to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = client
            .try_send(
                "POST",
                "/api/pay",
                Some(&p.token),
                Some(body.clone()),
                &[("Idempotency-Key", &p.key)],
            )
            .await
            .expect("the restarted server answers");
        if a.status == 200 {
            return Paid {
                payment_id: a.body["data"]["paymentId"].as_i64().unwrap(),
                reservation_id: p.reservation_id,
                user_id: p.user_id,
            };
        }
        assert!(
            is_lock_wait(&a) && Instant::now() < deadline,
            "a payment retried with its Idempotency-Key after a crash must answer 200: {p:?} → {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The checks after a kill, on the server's database while no server runs.
fn verify(db: &Path, strategy: &str, seen: &Seen, cycle: usize) {
    let (code, out) = admin_check(db, strategy);
    assert_eq!(code, 0, "after kill {cycle}: ticketing admin check failed:\n{out}");
    let integrity = integrity(db);
    assert_eq!(integrity, "ok", "after kill {cycle}: PRAGMA integrity_check");

    let conn = open(db);
    let in_db: HashMap<i64, (i64, i64, String, String)> = conn
        .prepare(
            "SELECT p.id, p.reservation_id, p.user_id, r.status, s.status FROM payments p \
             JOIN reservations r ON r.id = p.reservation_id JOIN seats s ON s.id = r.seat_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for p in &seen.paid {
        let row = in_db.get(&p.payment_id);
        assert_eq!(
            row,
            Some(&(p.reservation_id, p.user_id, "PAID".to_string(), "SOLD".to_string())),
            "after kill {cycle}: acknowledged payment {p:?} is not in the database as paid"
        );
    }
    let holds: std::collections::HashSet<i64> = conn
        .prepare("SELECT id FROM reservations")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for id in &seen.holds {
        assert!(
            holds.contains(id),
            "after kill {cycle}: acknowledged hold {id} is not in the database"
        );
    }
}
