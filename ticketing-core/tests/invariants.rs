//! `invariants::check` finds each kind of violation when one is planted by hand.

#![allow(clippy::unwrap_used)] // test code

mod common;

use common::Fixture;
use ticketing_core::{invariants, Money, PayCmd, ReserveCmd, StrategyKind};

/// A clean database with a sale in it: user 1 paid seat 1 (price 100), user 2 holds seat 2,
/// two tokens were admitted and one waits (max-active 3). Then `sql` is run on it raw.
fn planted(kind: StrategyKind, sql: &str) -> Vec<&'static str> {
    let fx = Fixture::with(kind, |c| c.max_active = Some(3));
    let (option, seats) = fx.concert(10, 100);
    let (a, b) = (fx.active_token(1), fx.active_token(2));
    fx.t.issue_token(3).unwrap();
    fx.t.issue_token(4).unwrap();
    fx.t.charge(1, Money::from_units(1000)).unwrap();
    let hold =
        fx.t.reserve(ReserveCmd {
            token: a.clone(),
            concert_option_id: option,
            seat_id: seats[0],
            user_id: None,
        })
        .unwrap();
    fx.t.pay(PayCmd {
        token: a,
        reservation_id: hold.reservation_id,
        amount: Money::from_units(100),
        idempotency_key: None,
    })
    .unwrap();
    fx.t.reserve(ReserveCmd {
        token: b,
        concert_option_id: option,
        seat_id: seats[1],
        user_id: None,
    })
    .unwrap();
    assert!(invariants::check(&fx.t).unwrap().is_empty(), "the baseline is clean");
    fx.sql(sql);
    invariants::check(&fx.t)
        .unwrap()
        .into_iter()
        .map(|v| v.invariant)
        .collect()
}

fn a_seat_held_by_two_live_reservations(kind: StrategyKind) {
    let found = planted(
        kind,
        "INSERT INTO reservations (user_id, seat_id, option_id, status, held_until, price, created_at)
         SELECT 3, seat_id, option_id, 'HELD', held_until, price, created_at FROM reservations WHERE status = 'HELD'",
    );
    assert!(found.contains(&"seat-double-booked"), "{found:?}");
}

fn a_seat_sold_twice(kind: StrategyKind) {
    let found = planted(
        kind,
        "INSERT INTO reservations (user_id, seat_id, option_id, status, held_until, price, created_at)
         SELECT 5, seat_id, option_id, 'PAID', held_until, price, created_at FROM reservations WHERE status = 'PAID'",
    );
    assert!(found.contains(&"seat-double-booked"), "{found:?}");
    assert!(found.contains(&"paid-without-one-payment"), "{found:?}");
}

fn a_sold_seat_without_a_paid_reservation(kind: StrategyKind) {
    let found = planted(
        kind,
        "UPDATE seats SET status = 'SOLD', reservation_id = NULL WHERE id = 3",
    );
    assert_eq!(found, ["seat-state-mismatch"]);
}

fn a_paid_reservation_whose_seat_is_not_sold(kind: StrategyKind) {
    let found = planted(
        kind,
        "UPDATE seats SET status = 'AVAILABLE', reservation_id = NULL WHERE status = 'SOLD'",
    );
    assert_eq!(found, ["reservation-seat-mismatch"]);
}

fn a_payment_of_the_wrong_amount(kind: StrategyKind) {
    let found = planted(
        kind,
        "UPDATE payments SET amount = 5000; UPDATE ledger SET amount = 5000, balance_after = 95000 WHERE kind = 'PAYMENT';
         UPDATE wallets SET balance = 95000",
    );
    assert_eq!(found, ["payment-without-paid-reservation"]);
}

fn a_paid_reservation_without_payment(kind: StrategyKind) {
    let found = planted(kind, "DELETE FROM payments");
    assert!(found.contains(&"paid-without-one-payment"), "{found:?}");
    assert!(found.contains(&"payments-not-in-ledger") || found.contains(&"paid-without-one-payment"));
}

fn a_balance_that_is_not_the_sum_of_its_ledger(kind: StrategyKind) {
    let found = planted(kind, "UPDATE wallets SET balance = balance + 1");
    assert_eq!(found, ["money-not-conserved"]);
}

fn a_ledger_entry_with_a_wrong_running_balance(kind: StrategyKind) {
    let found = planted(kind, "UPDATE ledger SET balance_after = 1 WHERE kind = 'CHARGE'");
    assert_eq!(found, ["ledger-running-balance"]);
}

fn a_ledger_without_its_wallet(kind: StrategyKind) {
    let found = planted(
        kind,
        "INSERT INTO ledger (user_id, kind, amount, balance_after, at) VALUES (77, 'CHARGE', 100, 100, 0)",
    );
    assert_eq!(found, ["ledger-without-wallet"]);
}

fn a_payment_missing_from_the_ledger(kind: StrategyKind) {
    let found = planted(
        kind,
        "DELETE FROM ledger WHERE kind = 'PAYMENT'; UPDATE wallets SET balance = 100000 WHERE user_id = 1",
    );
    assert_eq!(found, ["payments-not-in-ledger"]);
}

fn more_active_tokens_than_max_active(kind: StrategyKind) {
    let found = planted(kind, "UPDATE queue_settings SET max_active = 1");
    assert_eq!(found, ["too-many-active"]);
}

fn admission_out_of_issue_order(kind: StrategyKind) {
    let found = planted(
        kind,
        "UPDATE tokens SET admitted_at = admitted_at - 1000 WHERE user_id = 2",
    );
    assert_eq!(found, ["admission-out-of-order"]);
}

fn a_waiter_skipped_by_admission(kind: StrategyKind) {
    let found = planted(
        kind,
        "UPDATE tokens SET status = 'WAITING', admitted_at = NULL WHERE user_id = 3;
         UPDATE tokens SET status = 'ACTIVE', admitted_at = issued_at, expires_at = expires_at + 600000 WHERE user_id = 4;
         UPDATE queue_settings SET admitted_through = (SELECT id FROM tokens WHERE user_id = 4)",
    );
    assert!(found.contains(&"waiter-skipped"), "{found:?}");
}

fn an_active_counter_out_of_step(kind: StrategyKind) {
    let found = planted(kind, "UPDATE queue_settings SET active_rows = active_rows + 5");
    assert_eq!(found, ["active-counter"]);
}

every_strategy!(
    a_seat_held_by_two_live_reservations,
    a_seat_sold_twice,
    a_sold_seat_without_a_paid_reservation,
    a_paid_reservation_whose_seat_is_not_sold,
    a_payment_of_the_wrong_amount,
    a_paid_reservation_without_payment,
    a_balance_that_is_not_the_sum_of_its_ledger,
    a_ledger_entry_with_a_wrong_running_balance,
    a_ledger_without_its_wallet,
    a_payment_missing_from_the_ledger,
    more_active_tokens_than_max_active,
    admission_out_of_issue_order,
    a_waiter_skipped_by_admission,
    an_active_counter_out_of_step,
);
