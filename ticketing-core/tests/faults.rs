//! Fault injection: an error or a panic between any two writes of reserve, charge, use and pay
//! leaves no partial state, under every strategy; once the fault is gone the same operation
//! succeeds and every invariant holds.

#![allow(clippy::unwrap_used)] // test code

mod common;

use std::sync::{Arc, Barrier};

use common::{backend, Backend, Fixture};
use ticketing_core::{invariants, Money, PayCmd, ReserveCmd, StrategyKind, FAULT_POINTS};

fn faults_leave_no_partial_state(kind: StrategyKind) {
    for point in FAULT_POINTS {
        for action in ["return", "panic"] {
            let scenario = fail::FailScenario::setup();
            let fx = Fixture::new(kind);
            let (option, seats) = fx.concert(10, 100);
            let token = fx.active_token(1);
            fx.t.charge(1, Money::from_units(300)).unwrap();
            let hold =
                fx.t.reserve(ReserveCmd {
                    token: token.clone(),
                    concert_option_id: option,
                    seat_id: seats[0],
                    user_id: None,
                })
                .unwrap();
            let op = |fx: &Fixture| -> Vec<Result<(), ticketing_core::Error>> {
                match point.split(':').next().unwrap() {
                    "reserve" => vec![fx
                        .t
                        .reserve(ReserveCmd {
                            token: token.clone(),
                            concert_option_id: option,
                            seat_id: seats[1],
                            user_id: None,
                        })
                        .map(drop)],
                    "wallet" => vec![
                        fx.t.charge(1, Money::from_units(5)).map(drop),
                        fx.t.use_points(1, Money::from_units(5)).map(drop),
                    ],
                    _ => vec![fx
                        .t
                        .pay(PayCmd {
                            token: token.clone(),
                            reservation_id: hold.reservation_id,
                            amount: Money::from_units(100),
                            idempotency_key: Some("k-1".into()),
                        })
                        .map(drop)],
                }
            };
            let before = fx.snapshot();
            fail::cfg(*point, action).unwrap();
            for result in op(&fx) {
                let err = result.expect_err(&format!("{point} {action} must fail the operation"));
                assert_eq!(err.code(), "INTERNAL", "{point} {action}: {err:?}");
            }
            fail::remove(*point);
            assert_eq!(
                fx.snapshot(),
                before,
                "{point} {action} under {kind} left partial state"
            );
            for result in op(&fx) {
                result.unwrap_or_else(|e| panic!("{point} {action}: the retry after the fault fails: {e:?}"));
            }
            let violations = invariants::check(&fx.t).unwrap();
            assert!(violations.is_empty(), "{point} {action}: {violations:#?}");
            scenario.teardown();
        }
    }
}

/// 100 charges of one wallet at once, the sixth to write failing between its balance and its
/// ledger entry: that one write is undone, the 99 others stand, to the cent. On PostgreSQL the
/// charges queued on one wallet share a transaction and a commit (group commit, each in a
/// savepoint), so the fault strikes inside a batch; the test also checks that batches formed.
fn a_fault_inside_a_batch_undoes_only_that_write(kind: StrategyKind) {
    let scenario = fail::FailScenario::setup();
    let fx = Fixture::new(kind);
    fx.t.charge(1, Money::from_units(1)).unwrap();
    fail::cfg("wallet:after-balance", "5*off->1*return").unwrap();
    let barrier = Arc::new(Barrier::new(100));
    let results: Vec<_> = (0..100)
        .map(|_| {
            let (t, barrier) = (fx.t.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                t.charge(1, Money::from_cents(101))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    fail::remove("wallet:after-balance");
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 1, "exactly the faulted charge fails: {failed:?}");
    assert_eq!(failed[0].code(), "INTERNAL");
    assert_eq!(fx.t.balance(1).unwrap(), Money::from_cents(100 + 99 * 101));
    assert_eq!(fx.sql_i64("SELECT count(*) FROM ledger WHERE user_id = 1"), 100);
    let violations = invariants::check(&fx.t).unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    if backend() == Backend::Postgres && kind != StrategyKind::Redis {
        let grouped = fx.t.node_stats().db.unwrap().writes_grouped;
        assert!(grouped > 0, "charges of one wallet shared commits");
    }
    scenario.teardown();
}

every_strategy!(
    faults_leave_no_partial_state,
    a_fault_inside_a_batch_undoes_only_that_write
);
