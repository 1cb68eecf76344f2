//! The redis strategy's own edge cases, against the test command's private Redis
//! (`TICKETING_TEST_REDIS_URL`): fencing when a holder outlives its lease (paused on purpose by
//! the `test-hooks` pause points), release only by the holder, fail-fast seats, the wallet's
//! wait bound, per-resource keys, fences that survive Redis losing its data, and a clear
//! start-up error when Redis cannot be reached.

#![allow(clippy::unwrap_used)] // test code

mod common;
mod redis_support;

use std::future::Future;
use std::thread;
use std::time::{Duration, Instant};

use common::Fixture;
use redis_support::{free_port, raw, test_redis_url, wait_key_gone};
use ticketing_core::test_hooks::{self, Point};
use ticketing_core::{invariants, Config, Error, Money, ReserveCmd, SeatStatus, StrategyKind, Ticketing};

/// Long enough that no healthy request outlives it, short enough that tests wait little.
const SHORT_LEASE: Duration = Duration::from_millis(300);

fn fixture(tweak: impl FnOnce(&mut Config)) -> Fixture {
    Fixture::with(StrategyKind::Redis, tweak)
}

fn assert_invariants(fx: &Fixture) {
    let violations = invariants::check(&fx.t).unwrap();
    assert!(violations.is_empty(), "invariants broken: {violations:#?}");
}

fn reserve(t: &Ticketing, token: &str, option: i64, seat: i64) -> Result<ticketing_core::Hold, Error> {
    t.reserve(ReserveCmd {
        token: token.into(),
        concert_option_id: option,
        seat_id: seat,
        user_id: None,
    })
}

fn contention_code(r: &Result<impl std::fmt::Debug, Error>) -> &'static str {
    match r {
        Err(Error::Contention { code, .. }) => code,
        other => panic!("expected a contention error, got {other:?}"),
    }
}

/// A holder paused after deciding outlives its lease; a second request takes the lock and holds
/// the seat; the first resumes and its write is refused by the fence. One hold, no double sale.
#[test]
fn stale_seat_holder_is_fenced_out() {
    let Some(url) = test_redis_url("stale_seat_holder_is_fenced_out") else {
        return;
    };
    let fx = fixture(|c| c.lock_lease = SHORT_LEASE);
    let (option, seats) = fx.concert(1, 100);
    let seat = seats[0];
    let (first, second) = (fx.active_token(1), fx.active_token(2));
    let key = test_hooks::lock_key(&fx.t, &format!("seat:{seat}"));

    let pause = test_hooks::pause_next(&fx.t, &format!("seat:{seat}"), Point::BeforeApply);
    let t = fx.t.clone();
    let stale = thread::spawn(move || reserve(&t, &first, option, seat));
    assert!(
        pause.wait_paused(Duration::from_secs(5)),
        "the first holder never paused"
    );
    wait_key_gone(&mut raw(&url), &key, Duration::from_secs(5));

    let hold = reserve(&fx.t, &second, option, seat).expect("the new holder gets the seat");
    pause.resume();
    let refused = stale.join().unwrap();
    assert_eq!(contention_code(&refused), "STALE_FENCE", "{refused:?}");

    let map = fx.t.seat_map(option).unwrap();
    assert_eq!(map[0].status, SeatStatus::Held);
    assert_eq!(map[0].reservation_id, Some(hold.reservation_id));
    let reservations =
        fx.t.reservations(ticketing_core::admin::ReservationFilter::All, 100)
            .unwrap();
    assert_eq!(
        reservations.len(),
        1,
        "the refused write left nothing: {reservations:?}"
    );
    assert_invariants(&fx);
}

/// A holder paused before it reads anything outlives its lease; a second charge takes the lock and
/// writes. The first then reads the fresh balance — a version check alone would let it write — and
/// the fence refuses it.
#[test]
fn fence_refuses_what_versions_alone_would_allow() {
    let Some(url) = test_redis_url("fence_refuses_what_versions_alone_would_allow") else {
        return;
    };
    let fx = fixture(|c| c.lock_lease = SHORT_LEASE);
    fx.t.charge(1, Money::from_units(1000)).unwrap();
    let key = test_hooks::lock_key(&fx.t, "wallet:1");

    let pause = test_hooks::pause_next(&fx.t, "wallet:1", Point::AfterAcquire);
    let t = fx.t.clone();
    let stale = thread::spawn(move || t.use_points(1, Money::from_units(300)));
    assert!(pause.wait_paused(Duration::from_secs(5)));
    wait_key_gone(&mut raw(&url), &key, Duration::from_secs(5));

    assert_eq!(
        fx.t.use_points(1, Money::from_units(200)).unwrap(),
        Money::from_units(800)
    );
    pause.resume();
    let refused = stale.join().unwrap();
    assert_eq!(contention_code(&refused), "STALE_FENCE", "{refused:?}");
    assert_eq!(fx.t.balance(1).unwrap(), Money::from_units(800));
    assert_eq!(
        fx.t.wallet(1).unwrap().ledger.len(),
        2,
        "no ledger entry for the refused use"
    );
    assert_invariants(&fx);
}

/// A holder whose lease lapsed releases with compare-and-delete: the lock the next holder took
/// survives it. The next holder, finding the row changed under its lock, decides again.
#[test]
fn only_the_holder_releases() {
    let Some(url) = test_redis_url("only_the_holder_releases") else {
        return;
    };
    let fx = fixture(|c| c.lock_lease = SHORT_LEASE);
    let key = test_hooks::lock_key(&fx.t, "wallet:1");
    let mut redis = raw(&url);

    let first_pause = test_hooks::pause_next(&fx.t, "wallet:1", Point::BeforeApply);
    let t = fx.t.clone();
    let first = thread::spawn(move || t.charge(1, Money::from_units(100)));
    assert!(first_pause.wait_paused(Duration::from_secs(5)));
    wait_key_gone(&mut redis, &key, Duration::from_secs(5));

    // The next holder stops holding the lock, with a lease long enough to outlast the test.
    let second_pause = test_hooks::pause_next(&fx.t, "wallet:1", Point::BeforeApply);
    let t = fx.t.clone();
    let second = thread::spawn(move || t.charge(1, Money::from_units(50)));
    assert!(second_pause.wait_paused(Duration::from_secs(5)));
    let holder: String = redis::cmd("GET").arg(&key).query(&mut redis).unwrap();

    // The lapsed holder writes (no newer fence has written yet) and releases: not our lock.
    first_pause.resume();
    assert_eq!(first.join().unwrap().unwrap(), Money::from_units(100));
    let after: Option<String> = redis::cmd("GET").arg(&key).query(&mut redis).unwrap();
    assert_eq!(
        after.as_deref(),
        Some(holder.as_str()),
        "a stale holder deleted another's lock"
    );

    second_pause.resume();
    assert_eq!(second.join().unwrap().unwrap(), Money::from_units(150));
    assert_eq!(fx.t.balance(1).unwrap(), Money::from_units(150));
    // A release is sent without waiting for its reply (see the next test): it reaches another
    // connection's view a round trip later.
    wait_key_gone(&mut redis, &key, Duration::from_secs(1));
    assert_invariants(&fx);
}

/// A request dropped while its lock is being taken (a client that went away) gives the lock
/// back as soon as it is granted, and writes nothing: the seat is free for the next one.
#[test]
fn a_dropped_request_gives_its_lock_back() {
    let Some(url) = test_redis_url("a_dropped_request_gives_its_lock_back") else {
        return;
    };
    let fx = fixture(|_| {});
    let (option, seats) = fx.concert(1, 100);
    let (first, second) = (fx.active_token(1), fx.active_token(2));
    let key = test_hooks::lock_key(&fx.t, &format!("seat:{}", seats[0]));
    let mut redis = raw(&url);
    let before = fx.snapshot();
    let mut answer =
        fx.t.reserve_answer(ReserveCmd {
            token: first,
            concert_option_id: option,
            seat_id: seats[0],
            user_id: None,
        })
        .unwrap();
    // Polled once: the acquire is on its way to Redis; then the request is dropped.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(std::pin::Pin::new(&mut answer).poll(&mut cx).is_pending());
    drop(answer);
    // The grant arrives (microseconds) to nobody and is given back at once: long before its
    // 5 s lease would run out, the key is gone.
    thread::sleep(Duration::from_millis(500));
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut redis).unwrap();
    assert_eq!(exists, 0, "the dropped request's lock is still held");
    assert_eq!(fx.snapshot(), before, "a dropped request wrote nothing");
    reserve(&fx.t, &second, option, seats[0]).expect("the seat and its lock are free");
    assert_invariants(&fx);
}

/// Releases are not waited for, but they go to Redis on the one connection every lock command
/// of the process uses, ahead of anything asked later: the next request for a seat never finds
/// the lock of one that has already answered. Each seat is held, then at once asked for again
/// by another user: always the seat's own answer (held), never a lock still taken.
#[test]
fn a_release_comes_before_any_later_acquire() {
    let Some(url) = test_redis_url("a_release_comes_before_any_later_acquire") else {
        return;
    };
    let fx = fixture(|_| {});
    let (option, seats) = fx.concert(200, 100);
    for (i, &seat) in seats.iter().enumerate() {
        let user = i as i64 * 2 + 1;
        let (first, second) = (fx.active_token(user), fx.active_token(user + 1));
        reserve(&fx.t, &first, option, seat).expect("a free seat");
        let again = reserve(&fx.t, &second, option, seat);
        assert!(
            matches!(again, Err(Error::SeatUnavailable { .. })),
            "seat {seat}: {again:?}"
        );
    }
    let mut redis = raw(&url);
    wait_key_gone(
        &mut redis,
        &test_hooks::lock_key(&fx.t, &format!("seat:{}", seats[199])),
        Duration::from_secs(1),
    );
    assert_eq!(fx.t.contention().lock_failures, 0);
    assert_invariants(&fx);
}

/// A seat whose lock someone else holds fails at once; the foreign lock is left alone.
#[test]
fn taken_seat_lock_fails_fast() {
    let Some(url) = test_redis_url("taken_seat_lock_fails_fast") else {
        return;
    };
    let fx = fixture(|_| {});
    let (option, seats) = fx.concert(2, 100);
    let token = fx.active_token(1);
    let key = test_hooks::lock_key(&fx.t, &format!("seat:{}", seats[0]));
    let mut redis = raw(&url);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("someone-else")
        .arg("PX")
        .arg(10_000)
        .query(&mut redis)
        .unwrap();

    let before = fx.snapshot();
    let started = Instant::now();
    let r = reserve(&fx.t, &token, option, seats[0]);
    assert_eq!(contention_code(&r), "LOCK_NOT_ACQUIRED");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(fx.snapshot(), before, "a failed request changes nothing");
    let still: String = redis::cmd("GET").arg(&key).query(&mut redis).unwrap();
    assert_eq!(still, "someone-else");

    // Another seat is another lock.
    reserve(&fx.t, &token, option, seats[1]).expect("seat 2 is not locked");
    let _: () = redis::cmd("DEL").arg(&key).query(&mut redis).unwrap();
    assert_eq!(fx.t.contention().lock_failures, 1);
}

/// A wallet lock waits for a holder up to the bound, then gives up having changed nothing; a
/// holder that lets go (or whose lease runs out) within the bound is waited for.
#[test]
fn wallet_lock_waits_up_to_the_bound() {
    let Some(url) = test_redis_url("wallet_lock_waits_up_to_the_bound") else {
        return;
    };
    let bound = Duration::from_millis(400);
    let fx = fixture(|c| c.contention_bound = bound);
    let key = test_hooks::lock_key(&fx.t, "wallet:1");
    let mut redis = raw(&url);

    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("someone-else")
        .arg("PX")
        .arg(10_000)
        .query(&mut redis)
        .unwrap();
    let before = fx.snapshot();
    let started = Instant::now();
    let r = fx.t.charge(1, Money::from_units(100));
    let waited = started.elapsed();
    assert_eq!(contention_code(&r), "LOCK_NOT_ACQUIRED");
    assert!(
        waited >= bound / 2 && waited < bound * 3,
        "waited {waited:?} for a bound of {bound:?}"
    );
    assert_eq!(fx.snapshot(), before, "a failed request changes nothing");

    // A lease that runs out within the bound is waited for.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("someone-else")
        .arg("PX")
        .arg(150)
        .query(&mut redis)
        .unwrap();
    let started = Instant::now();
    assert_eq!(fx.t.charge(1, Money::from_units(100)).unwrap(), Money::from_units(100));
    assert!(started.elapsed() >= Duration::from_millis(100), "it did not wait");
    let stats = fx.t.contention();
    assert!(stats.lock_waits >= 2 && stats.lock_failures == 1, "{stats:?}");
    assert_invariants(&fx);
}

/// Every key lives under the database's namespace and names one resource; no lock outlives its
/// request; nothing is global.
#[test]
fn keys_are_per_resource() {
    let Some(url) = test_redis_url("keys_are_per_resource") else {
        return;
    };
    let fx = fixture(|_| {});
    let (option, seats) = fx.concert(3, 100);
    let token = fx.active_token(5);
    fx.t.charge(5, Money::from_units(1000)).unwrap();
    let hold = reserve(&fx.t, &token, option, seats[1]).unwrap();
    fx.t.pay(ticketing_core::PayCmd {
        token,
        reservation_id: hold.reservation_id,
        amount: Money::from_units(100),
        idempotency_key: None,
    })
    .unwrap();

    let lock = test_hooks::lock_key(&fx.t, "seat:0");
    let namespace = lock.strip_suffix(":{seat:0}:lock").unwrap();
    let mut redis = raw(&url);
    let mut keys_now = || {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{namespace}:*"))
            .query(&mut redis)
            .unwrap();
        keys.sort();
        keys
    };
    let expected: Vec<String> = [
        format!("reservation:{}", hold.reservation_id),
        format!("seat:{}", seats[1]),
        "wallet:5".to_string(),
    ]
    .iter()
    .map(|r| format!("{namespace}:{{{r}}}:fence"))
    .collect();
    // Releases are not waited for: another connection sees them a round trip later.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut keys = keys_now();
    while keys != expected && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
        keys = keys_now();
    }
    assert_eq!(
        keys, expected,
        "only per-resource fences remain; every lock was released"
    );

    let other = Fixture::with(StrategyKind::Redis, |_| {});
    assert_ne!(
        test_hooks::lock_key(&other.t, "seat:0"),
        lock,
        "two databases never share a lock"
    );
}

/// Redis losing its data (a restart without persistence) resets no fence: the next grant's fence
/// is still above every fence already written, so writes go on.
#[test]
fn fences_keep_growing_when_redis_loses_them() {
    let Some(url) = test_redis_url("fences_keep_growing_when_redis_loses_them") else {
        return;
    };
    let fx = fixture(|_| {});
    fx.t.charge(1, Money::from_units(100)).unwrap();
    let fence_of = || -> i64 { fx.sql_i64("SELECT fence FROM wallets WHERE user_id = 1") };
    let first = fence_of();
    assert!(first > 0);
    let fence_key = test_hooks::lock_key(&fx.t, "wallet:1").replace(":lock", ":fence");
    let _: () = redis::cmd("DEL").arg(&fence_key).query(&mut raw(&url)).unwrap();

    assert_eq!(fx.t.charge(1, Money::from_units(100)).unwrap(), Money::from_units(200));
    assert!(fence_of() > first, "fences only grow");
    assert_invariants(&fx);
}

/// No Redis at start-up: opening fails at once with a clear error on the `redis-url` setting
/// (the CLI exits 2 on it).
#[test]
fn unreachable_redis_at_start_up_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("t.db")).with_strategy(StrategyKind::Redis);
    config.redis_url = Some(format!("redis://:secret@127.0.0.1:{}", free_port()));
    let started = Instant::now();
    let err = Ticketing::open(config.clone()).err().expect("no Redis, no service");
    assert!(started.elapsed() < Duration::from_secs(3));
    match &err {
        Error::InvalidInput { field, message } => {
            assert_eq!(*field, "redis-url");
            assert!(message.contains("cannot reach Redis"), "{message}");
            assert!(!message.contains("secret"), "the password is not shown: {message}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }

    config.redis_url = Some("http://example.com".into());
    let err = Ticketing::open(config).err().expect("not a Redis URL");
    assert!(matches!(err, Error::InvalidInput { field: "redis-url", .. }), "{err:?}");
}
