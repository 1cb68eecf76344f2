//! Fault injection: an error or a panic between any two writes of reserve, charge, use and pay
//! leaves no partial state, under every strategy; once the fault is gone the same operation
//! succeeds and every invariant holds.

#![allow(clippy::unwrap_used)] // test code

mod common;

use common::Fixture;
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

every_strategy!(faults_leave_no_partial_state);
