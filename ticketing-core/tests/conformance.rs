//! The conformance story: every use case, against every strategy, on a temp-file database.
//! Concurrency stories use real threads released together by a barrier and assert exact counts.

#![allow(clippy::unwrap_used)] // test code

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::Fixture;
use ticketing_core::{
    invariants, ConcertDate, Config, Error, ErrorClass, Memo, Money, PayCmd, ReserveCmd, Seat, SeatStatus,
    StrategyKind, Ticketing, TokenProblem, TokenStatus,
};

/// Runs `f(i)` on `n` threads released at once; returns the results in thread order.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .collect()
}

fn assert_invariants(fx: &Fixture) {
    let violations = invariants::check(&fx.t).expect("check");
    assert!(violations.is_empty(), "invariants broken: {violations:#?}");
}

fn reserve(fx: &Fixture, token: &str, option: i64, seat: i64) -> Result<ticketing_core::Hold, Error> {
    fx.t.reserve(ReserveCmd {
        token: token.into(),
        concert_option_id: option,
        seat_id: seat,
        user_id: None,
    })
}

fn pay(fx: &Fixture, token: &str, reservation: i64, amount: i64) -> Result<ticketing_core::PaymentReceipt, Error> {
    fx.t.pay(PayCmd {
        token: token.into(),
        reservation_id: reservation,
        amount: Money::from_units(amount),
        idempotency_key: None,
    })
}

// ----- the seed's four cases, 10 and 200 threads -------------------------------------------

fn concurrent_charges(n: usize, kind: StrategyKind) {
    let fx = Fixture::new(kind);
    let t = fx.t.clone();
    let results = race(n, move |_| t.charge(1, Money::from_units(100)));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(fx.t.balance(1).unwrap(), Money::from_units(100 * n as i64));
    assert_eq!(fx.t.wallet(1).unwrap().ledger.len(), n);
    assert_invariants(&fx);
}

fn concurrent_uses(n: usize, start: i64, kind: StrategyKind) {
    let fx = Fixture::new(kind);
    fx.t.charge(1, Money::from_units(start)).unwrap();
    let t = fx.t.clone();
    let results = race(n, move |_| t.use_points(1, Money::from_units(100)));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(fx.t.balance(1).unwrap(), Money::from_units(start - 100 * n as i64));
    assert_invariants(&fx);
}

fn concurrent_reservations_of_one_seat(n: usize, kind: StrategyKind) {
    let fx = Fixture::new(kind);
    let (option, seats) = fx.concert(50, 100);
    let tokens: Vec<String> = (1..=n as i64).map(|u| fx.active_token(u)).collect();
    let t = fx.t.clone();
    let seat = seats[0];
    let results = race(n, move |i| {
        t.reserve(ReserveCmd {
            token: tokens[i].clone(),
            concert_option_id: option,
            seat_id: seat,
            user_id: None,
        })
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.class(), ErrorClass::Conflict, "losers fail with 409: {r:?}");
    }
    let map = fx.t.seat_map(option).unwrap();
    assert_eq!(map[0].status, SeatStatus::Held);
    assert_eq!(map.iter().filter(|s| s.status != SeatStatus::Available).count(), 1);
    assert_invariants(&fx);
}

fn concurrent_payments_of_one_reservation(n: usize, kind: StrategyKind) {
    let fx = Fixture::new(kind);
    let (option, seats) = fx.concert(50, 100);
    let token = fx.active_token(7);
    let hold = reserve(&fx, &token, option, seats[0]).unwrap();
    fx.t.charge(7, Money::from_units(1000)).unwrap();
    let t = fx.t.clone();
    let rid = hold.reservation_id;
    let results = race(n, move |_| {
        t.pay(PayCmd {
            token: token.clone(),
            reservation_id: rid,
            amount: Money::from_units(100),
            idempotency_key: None,
        })
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        // The winner expired the token: later attempts are 401, racing ones 409.
        assert!(
            matches!(r.class(), ErrorClass::Conflict | ErrorClass::Unauthorized),
            "{r:?}"
        );
    }
    assert_eq!(fx.t.balance(7).unwrap(), Money::from_units(900), "money moves once");
    assert_eq!(fx.t.seat_map(option).unwrap()[0].status, SeatStatus::Sold);
    assert_invariants(&fx);
}

fn seed_charge_10(kind: StrategyKind) {
    concurrent_charges(10, kind)
}
fn seed_charge_200(kind: StrategyKind) {
    concurrent_charges(200, kind)
}
fn seed_use_10(kind: StrategyKind) {
    concurrent_uses(10, 10_000, kind)
}
fn seed_use_200(kind: StrategyKind) {
    concurrent_uses(200, 100_000, kind)
}
fn seed_reserve_10(kind: StrategyKind) {
    concurrent_reservations_of_one_seat(10, kind)
}
fn seed_reserve_200(kind: StrategyKind) {
    concurrent_reservations_of_one_seat(200, kind)
}
fn seed_pay_10(kind: StrategyKind) {
    concurrent_payments_of_one_reservation(10, kind)
}
fn seed_pay_200(kind: StrategyKind) {
    concurrent_payments_of_one_reservation(200, kind)
}

// ----- crowds ------------------------------------------------------------------------------

/// 300 users race for 50 seats, each retrying another random seat on conflict.
fn rush_for_fifty_seats(kind: StrategyKind) {
    let fx = Fixture::with(kind, |c| c.max_holds = 1);
    let (option, seats) = fx.concert(50, 100);
    let tokens: Vec<String> = (1..=300).map(|u| fx.active_token(u)).collect();
    let t = fx.t.clone();
    let results = race(300, move |i| {
        let mut order = seats.clone();
        // A different pick order per user, deterministic.
        let shift = (i * 7) % order.len();
        order.rotate_left(shift);
        for seat in order {
            match t.reserve(ReserveCmd {
                token: tokens[i].clone(),
                concert_option_id: option,
                seat_id: seat,
                user_id: None,
            }) {
                Ok(hold) => return Some(hold.seat_id),
                Err(e) if e.class() == ErrorClass::Conflict => continue,
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        None
    });
    let won: Vec<i64> = results.into_iter().flatten().collect();
    let distinct: HashSet<i64> = won.iter().copied().collect();
    assert_eq!(won.len(), 50, "every seat is held by exactly one user");
    assert_eq!(distinct.len(), 50, "no seat held twice");
    assert!(fx
        .t
        .seat_map(option)
        .unwrap()
        .iter()
        .all(|s| s.status == SeatStatus::Held));
    assert_invariants(&fx);
}

/// 100 threads mix charges and uses on one wallet.
fn mixed_wallet_traffic(kind: StrategyKind) {
    let fx = Fixture::new(kind);
    fx.t.charge(1, Money::from_units(10_000)).unwrap();
    let t = fx.t.clone();
    let results = race(100, move |i| {
        if i % 2 == 0 {
            t.charge(1, Money::from_cents(10_001))
        } else {
            t.use_points(1, Money::from_cents(7_050))
        }
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // 10,000 + 50 × 100.01 − 50 × 70.50 = 11,475.50
    assert_eq!(fx.t.balance(1).unwrap(), Money::from_cents(1_147_550));
    let wallet = fx.t.wallet(1).unwrap();
    assert_eq!(wallet.ledger.len(), 101);
    assert!(wallet.ledger.iter().all(|e| e.balance_after >= Money::ZERO));
    assert_invariants(&fx);
}

/// 500 concurrent token issues with max-active 50.
fn queue_admits_in_issue_order(kind: StrategyKind) {
    let fx = Fixture::with(kind, |c| c.max_active = Some(50));
    let t = fx.t.clone();
    let views = race(500, move |i| t.issue_token(i as i64 + 1).expect("issue"));
    let state = fx.t.queue_state().unwrap();
    assert_eq!((state.active, state.waiting), (50, 450));
    // Issue order is token order; the first 50 issued are the ones admitted.
    let active = fx.t.tokens(TokenStatus::Active, 0, 1000).unwrap();
    let waiting = fx.t.tokens(TokenStatus::Waiting, 0, 1000).unwrap();
    assert_eq!(active.len(), 50);
    let active_set: HashSet<&str> = active.iter().map(|t| t.token.as_str()).collect();
    for view in &views {
        let now = fx.t.token_status(&view.token).unwrap();
        if active_set.contains(view.token.as_str()) {
            assert_eq!((now.status, now.queue_position), (TokenStatus::Active, 0));
        }
    }
    for (i, w) in waiting.iter().enumerate() {
        let view = fx.t.token_status(&w.token).unwrap();
        assert_eq!(view.status, TokenStatus::Waiting);
        assert_eq!(view.queue_position, i as u64 + 1, "exact place in line");
    }
    // Asking again never moves anyone: same token, same place.
    let again = fx.t.issue_token(waiting[10].user_id).unwrap();
    assert_eq!(
        (again.token.as_str(), again.queue_position),
        (waiting[10].token.as_str(), 11)
    );
    // A slot frees: the first waiter, and only it, is admitted at once.
    fx.t.expire_token(&active[0].token).unwrap();
    assert_eq!(
        fx.t.token_status(&waiting[0].token).unwrap().status,
        TokenStatus::Active
    );
    assert_eq!(fx.t.token_status(&waiting[1].token).unwrap().queue_position, 1);
    assert_eq!(fx.t.queue_state().unwrap().active, 50);
    assert_invariants(&fx);
}

// ----- time --------------------------------------------------------------------------------

fn holds_and_tokens_expire(kind: StrategyKind) {
    let fx = Fixture::with(kind, |c| {
        c.max_active = Some(1);
        c.hold_ttl = Duration::from_secs(300);
        c.token_ttl = Duration::from_secs(600);
        c.waiting_ttl = Duration::from_secs(300);
    });
    let (option, seats) = fx.concert(10, 100);
    let a = fx.active_token(1);
    let b = fx.t.issue_token(2).unwrap();
    assert_eq!((b.status, b.queue_position), (TokenStatus::Waiting, 1));
    let hold = reserve(&fx, &a, option, seats[0]).unwrap();
    fx.t.charge(1, Money::from_units(500)).unwrap();
    assert_eq!(fx.t.available_seats(&a, option).unwrap().len(), 9);

    // The hold runs out: the seat reads AVAILABLE again at once, even before a sweep. (B asks
    // for its status on the way, which keeps its place.)
    fx.clock.advance(Duration::from_secs(250));
    assert_eq!(fx.t.token_status(&b.token).unwrap().queue_position, 1);
    fx.clock.advance(Duration::from_secs(51));
    assert_eq!(fx.t.available_seats(&a, option).unwrap().len(), 10);
    let before = fx.snapshot();
    let err = pay(&fx, &a, hold.reservation_id, 100).unwrap_err();
    assert!(matches!(err, Error::HoldExpired { .. }), "{err:?}");
    assert_eq!(fx.snapshot(), before, "a payment on an expired hold changes nothing");
    assert_eq!(fx.t.balance(1).unwrap(), Money::from_units(500));

    // Another user can take the seat; the old reservation is EXPIRED.
    fx.t.sweep().unwrap();
    let held =
        fx.t.reservations(ticketing_core::admin::ReservationFilter::All, 10)
            .unwrap();
    assert_eq!(held[0].status, ticketing_core::ReservationStatus::Expired);

    // B keeps its place by asking; A's token runs out after 10 minutes and B is admitted the
    // moment B asks (no sweep needed).
    fx.clock.advance(Duration::from_secs(200));
    assert_eq!(fx.t.token_status(&b.token).unwrap().status, TokenStatus::Waiting);
    fx.clock.advance(Duration::from_secs(100));
    let err = fx.t.available_seats(&a, option).unwrap_err();
    assert!(matches!(err, Error::Unauthorized(TokenProblem::Expired)), "{err:?}");
    assert_eq!(fx.t.token_status(&a).unwrap().status, TokenStatus::Expired);
    let b_now = fx.t.token_status(&b.token).unwrap();
    assert_eq!((b_now.status, b_now.queue_position), (TokenStatus::Active, 0));
    let hold_b = reserve(&fx, &b.token, option, seats[0]).unwrap();
    assert_eq!(hold_b.seat_id, seats[0]);

    // A waiter who stops asking is dropped after waiting-ttl.
    let c = fx.t.issue_token(3).unwrap();
    assert_eq!(c.status, TokenStatus::Waiting);
    fx.clock.advance(Duration::from_secs(301));
    assert_eq!(fx.t.token_status(&c.token).unwrap().status, TokenStatus::Expired);
    fx.t.sweep().unwrap();
    assert_invariants(&fx);
}

fn payment_frees_a_slot(kind: StrategyKind) {
    let fx = Fixture::with(kind, |c| c.max_active = Some(1));
    let (option, seats) = fx.concert(10, 100);
    let a = fx.active_token(1);
    let b = fx.t.issue_token(2).unwrap();
    let hold = reserve(&fx, &a, option, seats[3]).unwrap();
    fx.t.charge(1, Money::from_units(100)).unwrap();
    let receipt = pay(&fx, &a, hold.reservation_id, 100).unwrap();
    assert_eq!(receipt.balance, Money::ZERO);
    assert_eq!(fx.t.token_status(&a).unwrap().status, TokenStatus::Expired);
    assert_eq!(fx.t.token_status(&b.token).unwrap().status, TokenStatus::Active);
    assert_eq!(fx.t.seat_map(option).unwrap()[3].status, SeatStatus::Sold);
    assert_invariants(&fx);
}

// ----- failures change nothing -------------------------------------------------------------

fn failures_change_nothing(kind: StrategyKind) {
    let fx = Fixture::with(kind, |c| c.max_holds = 2);
    let (option, seats) = fx.concert(10, 100);
    let a = fx.active_token(1);
    let b = fx.active_token(2);
    let hold = reserve(&fx, &a, option, seats[0]).unwrap();
    fx.t.charge(1, Money::from_units(50)).unwrap();
    let before = fx.snapshot();
    let attempts: Vec<(&str, Result<(), Error>)> = vec![
        ("zero charge", fx.t.charge(1, Money::ZERO).map(drop)),
        ("negative charge", fx.t.charge(1, Money::from_cents(-1)).map(drop)),
        (
            "charge past the maximum",
            fx.t.charge(1, Money::from_units(100_000_001)).map(drop),
        ),
        ("user 0", fx.t.charge(0, Money::from_units(1)).map(drop)),
        (
            "use more than the balance",
            fx.t.use_points(1, Money::from_units(51)).map(drop),
        ),
        ("insufficient balance", pay(&fx, &a, hold.reservation_id, 100).map(drop)),
        ("wrong price", pay(&fx, &a, hold.reservation_id, 99).map(drop)),
        (
            "another user's reservation",
            pay(&fx, &b, hold.reservation_id, 100).map(drop),
        ),
        ("unknown reservation", pay(&fx, &a, 9999, 100).map(drop)),
        (
            "unknown token",
            pay(&fx, "00000000-0000-4000-8000-000000000000", hold.reservation_id, 100).map(drop),
        ),
        ("not a token", reserve(&fx, "nope", option, seats[1]).map(drop)),
        ("held seat", reserve(&fx, &b, option, seats[0]).map(drop)),
        ("seat of another date", reserve(&fx, &b, option + 1, seats[1]).map(drop)),
        ("unknown seat", reserve(&fx, &b, option, 9999).map(drop)),
        (
            "user mismatch",
            fx.t.reserve(ReserveCmd {
                token: b.clone(),
                concert_option_id: option,
                seat_id: seats[2],
                user_id: Some(1),
            })
            .map(drop),
        ),
    ];
    for (what, result) in &attempts {
        assert!(result.is_err(), "{what} should fail");
    }
    let codes: Vec<&str> = attempts.iter().map(|(_, r)| r.as_ref().unwrap_err().code()).collect();
    assert_eq!(
        codes,
        [
            "INVALID_AMOUNT",
            "INVALID_AMOUNT",
            "INVALID_AMOUNT",
            "INVALID_ARGUMENT",
            "INSUFFICIENT_BALANCE",
            "INSUFFICIENT_BALANCE",
            "AMOUNT_MISMATCH",
            "RESERVATION_NOT_FOUND",
            "RESERVATION_NOT_FOUND",
            "TOKEN_INVALID",
            "TOKEN_INVALID",
            "SEAT_UNAVAILABLE",
            "CONCERT_OPTION_NOT_FOUND",
            "SEAT_NOT_FOUND",
            "USER_MISMATCH",
        ]
    );
    assert_eq!(fx.snapshot(), before, "no failed request changed anything");

    // One more hold than max-holds.
    reserve(&fx, &a, option, seats[1]).unwrap();
    let before = fx.snapshot();
    let err = reserve(&fx, &a, option, seats[2]).unwrap_err();
    assert_eq!(err.code(), "TOO_MANY_HOLDS");
    assert_eq!(fx.snapshot(), before);

    // An expired token.
    fx.t.expire_token(&b).unwrap();
    let before = fx.snapshot();
    let err = reserve(&fx, &b, option, seats[5]).unwrap_err();
    assert_eq!(err.code(), "TOKEN_EXPIRED");
    assert_eq!(fx.snapshot(), before);

    // A waiting token.
    // (A paused queue admits nobody; max-active 0 is refused as a setting.)
    let fx2 = Fixture::new(kind);
    fx2.t.set_paused(true).unwrap();
    let (option2, seats2) = fx2.concert(5, 100);
    let w = fx2.t.issue_token(5).unwrap();
    let before = fx2.snapshot();
    let err = reserve(&fx2, &w.token, option2, seats2[0]).unwrap_err();
    assert!(matches!(err, Error::NotAdmitted { position: 1 }), "{err:?}");
    assert_eq!(fx2.snapshot(), before);
    assert_invariants(&fx);
}

// ----- idempotency -------------------------------------------------------------------------

fn idempotent_payment_replays(kind: StrategyKind) {
    let fx = Fixture::new(kind);
    let (option, seats) = fx.concert(10, 100);
    let token = fx.active_token(1);
    let hold = reserve(&fx, &token, option, seats[0]).unwrap();
    fx.t.charge(1, Money::from_units(250)).unwrap();
    let t = fx.t.clone();
    let rid = hold.reservation_id;
    let tok = token.clone();
    let results = race(100, move |_| {
        t.pay(PayCmd {
            token: tok.clone(),
            reservation_id: rid,
            amount: Money::from_units(100),
            idempotency_key: Some("order-42".into()),
        })
    });
    let receipts: Vec<_> = results.into_iter().map(|r| r.expect("every replay succeeds")).collect();
    let ids: HashSet<i64> = receipts.iter().map(|r| r.payment_id).collect();
    assert_eq!(ids.len(), 1, "one payment");
    assert!(receipts.iter().all(|r| r.balance == Money::from_units(150)));
    assert_eq!(receipts.iter().filter(|r| !r.replayed).count(), 1);
    assert_eq!(fx.t.balance(1).unwrap(), Money::from_units(150));
    // Same key, other parameters.
    let err =
        fx.t.pay(PayCmd {
            token,
            reservation_id: rid,
            amount: Money::from_units(101),
            idempotency_key: Some("order-42".into()),
        })
        .unwrap_err();
    assert_eq!(err.code(), "IDEMPOTENCY_MISMATCH");
    assert_invariants(&fx);
}

/// A token is found only by its whole text: one that shares a real token's first characters
/// (its lookup selector) but not the rest is unknown.
fn tokens_match_whole(kind: StrategyKind) {
    let fx = Fixture::new(kind);
    let real = fx.active_token(1);
    let mut forged: Vec<char> = real.chars().collect();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == '0' { '1' } else { '0' };
    let forged: String = forged.into_iter().collect();
    assert_eq!(&forged[..8], &real[..8]);
    let err = fx.t.token_status(&forged).unwrap_err();
    assert!(matches!(err, Error::Unauthorized(TokenProblem::Unknown)), "{err:?}");
    assert_eq!(fx.t.token_status(&real).unwrap().user_id, 1);
    // Upper case is the same UUID, so the same token.
    assert_eq!(fx.t.token_status(&real.to_uppercase()).unwrap().user_id, 1);
}

// ----- the admission watch and awaited answers --------------------------------------------

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn poll_once<F: std::future::Future + Unpin>(f: &mut F, waker: &Arc<CountingWaker>) -> bool {
    let waker = std::task::Waker::from(waker.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    std::pin::Pin::new(f).poll(&mut cx).is_ready()
}

/// A waiter sleeping on its admission is woken by the commit that admits it, not before, and
/// one further back stays asleep.
fn admission_wakes_the_admitted_waiter_only(kind: StrategyKind) {
    let fx = Fixture::with(kind, |c| c.max_active = Some(1));
    let a = fx.active_token(1);
    let b = fx.t.issue_token(2).unwrap();
    let c = fx.t.issue_token(3).unwrap();
    assert_eq!((b.queue_position, c.queue_position), (1, 2));
    let (wb, wc) = (Arc::new(CountingWaker::default()), Arc::new(CountingWaker::default()));
    let mut turn_b = fx.t.admission_of(&b);
    let mut turn_c = fx.t.admission(&c.token).unwrap();
    assert!(!poll_once(&mut turn_b, &wb));
    assert!(!poll_once(&mut turn_c, &wc));
    // A commit that admits nobody wakes nobody.
    fx.t.charge(9, Money::from_units(5)).unwrap();
    assert_eq!(wb.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    fx.t.leave(&a).unwrap();
    assert_eq!(wb.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(wc.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(poll_once(&mut turn_b, &wb));
    assert!(!poll_once(&mut turn_c, &wc));
    assert_eq!(fx.t.token_status(&b.token).unwrap().status, TokenStatus::Active);
    // A token that is not waiting is its own turn.
    assert!(poll_once(
        &mut fx.t.admission_of(&fx.t.token_status(&b.token).unwrap()),
        &wb
    ));
}

/// 200 threads start a reserve of one seat at once and only then wait for their answers:
/// exactly one hold, and every answer resolves.
fn answers_started_together(kind: StrategyKind) {
    let fx = Arc::new(Fixture::new(kind));
    let (option, seats) = fx.concert(1, 100);
    let tokens: Vec<String> = (1..=200).map(|user| fx.active_token(user)).collect();
    let seat = seats[0];
    let started = {
        let fx = fx.clone();
        race(200, move |i| {
            fx.t.reserve_answer(ReserveCmd {
                token: tokens[i].clone(),
                concert_option_id: option,
                seat_id: seat,
                user_id: None,
            })
        })
    };
    let results: Vec<_> = started.into_iter().map(|a| a.and_then(|a| a.wait())).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| e.class() == ErrorClass::Conflict));
    assert_invariants(&fx);
}

// ----- reads answered from memory ---------------------------------------------------------

/// A memoized read answers from memory only while its answer is still the database's: any
/// commit (ours or another connection's) or a hold running out sends it back to the database,
/// and the token is checked every time.
fn memoized_reads_follow_the_database(kind: StrategyKind) {
    let fx = Fixture::with(kind, |c| {
        c.max_active = Some(2);
        c.hold_ttl = Duration::from_secs(300);
        c.token_ttl = Duration::from_secs(600);
    });
    let (option, seats) = fx.concert(10, 100);
    let concert = 1;
    let (a, b) = (fx.active_token(1), fx.active_token(2));
    let waiting = fx.t.issue_token(3).unwrap();
    assert_eq!(waiting.status, TokenStatus::Waiting);
    let seat_memo: Memo<Vec<i64>> = Memo::new();
    let date_memo: Memo<Vec<u32>> = Memo::new();
    let ids = |s: &[Seat]| s.iter().map(|s| s.seat_id).collect::<Vec<_>>();
    let counts = |d: &[ConcertDate]| d.iter().map(|d| d.available_seats).collect::<Vec<_>>();
    let from_memory = |token: &str| fx.t.available_seats_memoized(&seat_memo, token, option);
    let from_db = |token: &str| fx.t.available_seats_memo(&seat_memo, token, option, ids).unwrap();

    assert!(from_memory(&a).is_none(), "nothing read yet");
    assert_eq!(from_db(&a), seats);
    if common::backend() == common::Backend::Postgres {
        // No commit counter to validate memory by: every read goes to the database, and
        // sees every commit at once.
        assert!(
            from_memory(&a).is_none(),
            "PostgreSQL reads are never answered from memory"
        );
        reserve(&fx, &b, option, seats[0]).unwrap();
        assert!(from_memory(&a).is_none());
        assert_eq!(from_db(&a), seats[1..]);
        assert_invariants(&fx);
        return;
    }
    assert_eq!(from_memory(&a).unwrap().unwrap(), seats);
    assert_eq!(
        fx.t.available_dates_memo(&date_memo, &a, concert, counts).unwrap(),
        [10]
    );
    assert_eq!(
        fx.t.available_dates_memoized(&date_memo, &a, concert).unwrap().unwrap(),
        [10]
    );
    // Tokens memory has not seen, a forged twin of a, a WAITING token: the database decides.
    assert!(from_memory(&b).is_none());
    let mut forged = a.clone();
    forged.replace_range(30.., if forged.ends_with("000000") { "111111" } else { "000000" });
    assert!(from_memory(&forged).is_none());
    assert!(from_memory(&waiting.token).is_none());
    assert!(matches!(
        fx.t.available_seats_memo(&seat_memo, &waiting.token, option, ids),
        Err(Error::NotAdmitted { position: 1 })
    ));

    // Our own commit: the next read goes to the database and sees it.
    let first = reserve(&fx, &b, option, seats[0]).unwrap();
    assert!(from_memory(&a).is_none(), "a commit since");
    assert!(fx.t.available_dates_memoized(&date_memo, &a, concert).is_none());
    assert_eq!(from_db(&a), seats[1..]);
    assert_eq!(from_memory(&a).unwrap().unwrap(), seats[1..]);
    assert_eq!(fx.t.available_dates_memo(&date_memo, &a, concert, counts).unwrap(), [9]);

    // Another connection's commit (as another process's would be) shows at once too.
    let mut config = Config::new(fx.db()).with_strategy(kind);
    config.redis_url = common::redis_url();
    let other = Ticketing::open_with_clock(config, fx.clock.clone()).unwrap();
    other
        .reserve(ReserveCmd {
            token: a.clone(),
            concert_option_id: option,
            seat_id: seats[1],
            user_id: None,
        })
        .unwrap();
    drop(other);
    assert!(from_memory(&a).is_none(), "another connection committed");
    assert_eq!(from_db(&a), seats[2..]);

    // Holds run out with no write at all: memory stops answering at that moment.
    fx.clock.advance(Duration::from_secs(299));
    assert_eq!(from_memory(&a).unwrap().unwrap(), seats[2..]);
    fx.clock.advance(Duration::from_secs(1));
    assert!(from_memory(&a).is_none(), "the holds ran out");
    assert!(fx.t.available_dates_memoized(&date_memo, &a, concert).is_none());
    assert_eq!(from_db(&a), seats);
    assert_eq!(
        fx.t.available_dates_memo(&date_memo, &a, concert, counts).unwrap(),
        [10]
    );
    let err = pay(&fx, &b, first.reservation_id, 100).unwrap_err();
    assert!(matches!(err, Error::HoldExpired { .. }), "{err:?}");

    // The token runs out with no write at all: memory refuses it as the database would.
    fx.clock.advance(Duration::from_secs(299));
    let seats_now = from_db(&a);
    assert_eq!(from_memory(&a).unwrap().unwrap(), seats_now);
    fx.clock.advance(Duration::from_secs(1));
    let err = from_memory(&a).unwrap().unwrap_err();
    assert!(matches!(err, Error::Unauthorized(TokenProblem::Expired)), "{err:?}");
    let err = fx.t.available_seats(&a, option).unwrap_err();
    assert!(matches!(err, Error::Unauthorized(TokenProblem::Expired)), "{err:?}");
    assert_invariants(&fx);
}

every_strategy!(
    memoized_reads_follow_the_database,
    admission_wakes_the_admitted_waiter_only,
    answers_started_together,
    tokens_match_whole,
    seed_charge_10,
    seed_charge_200,
    seed_use_10,
    seed_use_200,
    seed_reserve_10,
    seed_reserve_200,
    seed_pay_10,
    seed_pay_200,
    rush_for_fifty_seats,
    mixed_wallet_traffic,
    queue_admits_in_issue_order,
    holds_and_tokens_expire,
    payment_frees_a_slot,
    failures_change_nothing,
    idempotent_payment_replays,
);
