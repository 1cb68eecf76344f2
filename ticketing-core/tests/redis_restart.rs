//! Redis faults while the service runs, on a `redis-server` of the test's own: killed (SIGKILL,
//! every key lost) in the middle of reserve/charge/pay traffic and restarted on the same port.
//! During the outage every request that needs a lock fails with `LOCK_UNAVAILABLE` and changes
//! nothing; afterwards the same `Ticketing` serves again by itself; money and seats add up.

#![allow(clippy::unwrap_used)] // test code

mod common;
mod redis_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::Fixture;
use redis_support::{test_redis_url, RedisServer};
use ticketing_core::{invariants, Error, Money, PayCmd, ReserveCmd, StrategyKind};

const WORKERS: i64 = 4;
const SEATS_EACH: usize = 15;
const PRICE: i64 = 10;

#[derive(Debug, Default)]
struct Tally {
    charged: i64,
    paid: i64,
    payments: usize,
    unavailable: usize,
    /// Requests that started after Redis was back and still failed with LOCK_UNAVAILABLE.
    unavailable_after_restart: usize,
    ok_after_restart: usize,
    other_errors: Vec<String>,
}

fn open(server: &RedisServer) -> Fixture {
    let url = server.url();
    Fixture::with(StrategyKind::Redis, move |c| {
        c.redis_url = Some(url);
        c.contention_bound = Duration::from_secs(1);
    })
}

#[test]
fn redis_killed_and_restarted_mid_traffic() {
    if test_redis_url("redis_killed_and_restarted_mid_traffic").is_none() {
        return;
    }
    let mut server = RedisServer::start();
    let fx = open(&server);
    let (option, seats) = fx.concert((WORKERS as usize * SEATS_EACH) as u32, PRICE);
    let stop = Arc::new(AtomicBool::new(false));
    // Milliseconds since `epoch` at which Redis answered again; 0 while not yet.
    let back_at = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let epoch = Instant::now();

    let workers: Vec<_> = (1..=WORKERS)
        .map(|user| {
            let t = fx.t.clone();
            let (stop, back_at) = (stop.clone(), back_at.clone());
            let mine: Vec<i64> = seats[(user as usize - 1) * SEATS_EACH..user as usize * SEATS_EACH].to_vec();
            thread::spawn(move || {
                let mut tally = Tally::default();
                let mut next_seat = mine.into_iter();
                let mut token = t.issue_token(user).unwrap().token;
                let note = |tally: &mut Tally, started: u64, r: Result<(), Error>| {
                    let after = back_at.load(Ordering::SeqCst);
                    let after_restart = after > 0 && started > after;
                    match r {
                        Ok(()) if after_restart => tally.ok_after_restart += 1,
                        Ok(()) => {}
                        Err(Error::LockUnavailable) if after_restart => tally.unavailable_after_restart += 1,
                        Err(Error::LockUnavailable) => tally.unavailable += 1,
                        Err(Error::InsufficientBalance { .. }) => {}
                        Err(e) => tally.other_errors.push(format!("{e:?}")),
                    }
                };
                let now = || epoch.elapsed().as_millis() as u64;
                while !stop.load(Ordering::SeqCst) {
                    let started = now();
                    let r = t.charge(user, Money::from_units(PRICE));
                    if r.is_ok() {
                        tally.charged += PRICE;
                    }
                    note(&mut tally, started, r.map(drop));

                    let Some(seat) = next_seat.next() else {
                        thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    let started = now();
                    let held = t.reserve(ReserveCmd {
                        token: token.clone(),
                        concert_option_id: option,
                        seat_id: seat,
                        user_id: None,
                    });
                    let hold = match held {
                        Ok(hold) => hold,
                        Err(e) => {
                            note(&mut tally, started, Err(e));
                            continue;
                        }
                    };
                    note(&mut tally, started, Ok(()));
                    let started = now();
                    let paid = t.pay(PayCmd {
                        token: token.clone(),
                        reservation_id: hold.reservation_id,
                        amount: Money::from_units(PRICE),
                        idempotency_key: None,
                    });
                    if paid.is_ok() {
                        tally.paid += PRICE;
                        tally.payments += 1;
                        // A payment spends the token; queue again for the next seat.
                        token = t.issue_token(user).unwrap().token;
                    }
                    note(&mut tally, started, paid.map(drop));
                }
                tally
            })
        })
        .collect();

    thread::sleep(Duration::from_millis(300));
    server.kill();
    thread::sleep(Duration::from_millis(100));

    // While Redis is down: a clear 503-class error, and nothing changes.
    let before = fx.snapshot();
    let started = Instant::now();
    let r = fx.t.charge(99, Money::from_units(5));
    assert!(matches!(r, Err(Error::LockUnavailable)), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a dead Redis must not hang a request"
    );
    assert_eq!(r.unwrap_err().code(), "LOCK_UNAVAILABLE");
    assert_eq!(fx.t.balance(99).unwrap(), Money::ZERO);
    thread::sleep(Duration::from_millis(300));
    // The workers kept trying all along; not one of their failed requests left a trace.
    assert_eq!(
        fx.snapshot(),
        before,
        "requests failed during the outage changed nothing"
    );

    server.restart();
    back_at.store(epoch.elapsed().as_millis() as u64, Ordering::SeqCst);
    // The same instance serves again, without a restart of its own.
    assert_eq!(fx.t.charge(99, Money::from_units(5)).unwrap(), Money::from_units(5));
    thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::SeqCst);

    let tallies: Vec<Tally> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let unavailable: usize = tallies.iter().map(|t| t.unavailable).sum();
    let ok_after: usize = tallies.iter().map(|t| t.ok_after_restart).sum();
    assert!(unavailable > 0, "the outage was seen: {tallies:#?}");
    assert!(ok_after > 0, "traffic resumed after the restart: {tallies:#?}");
    for (i, tally) in tallies.iter().enumerate() {
        let user = i as i64 + 1;
        assert_eq!(tally.unavailable_after_restart, 0, "user {user}: {tally:#?}");
        assert!(tally.other_errors.is_empty(), "user {user}: {tally:#?}");
        // Every acknowledged request happened once; every failed one not at all.
        assert_eq!(
            fx.t.balance(user).unwrap(),
            Money::from_units(tally.charged - tally.paid),
            "user {user}: {tally:#?}"
        );
        let wallet = fx.t.wallet(user).unwrap();
        assert_eq!(
            wallet.ledger.len(),
            (tally.charged / PRICE) as usize + tally.payments,
            "user {user}"
        );
    }
    let violations = invariants::check(&fx.t).unwrap();
    assert!(violations.is_empty(), "invariants broken: {violations:#?}");
}

/// Pooled connections outlive a quick restart; the first request afterwards still succeeds (the
/// broken connection is dropped and the call dialled again).
#[test]
fn first_request_after_a_quick_restart_succeeds() {
    if test_redis_url("first_request_after_a_quick_restart_succeeds").is_none() {
        return;
    }
    let mut server = RedisServer::start();
    let fx = open(&server);
    // Several threads at once leave several connections in the pool.
    let handles: Vec<_> = (0..4)
        .map(|u| {
            let t = fx.t.clone();
            thread::spawn(move || t.charge(u + 1, Money::from_units(10)).unwrap())
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    server.kill();
    server.restart();
    for u in 1..=4 {
        assert_eq!(fx.t.charge(u, Money::from_units(10)).unwrap(), Money::from_units(20));
    }
    let violations = invariants::check(&fx.t).unwrap();
    assert!(violations.is_empty(), "invariants broken: {violations:#?}");
}
