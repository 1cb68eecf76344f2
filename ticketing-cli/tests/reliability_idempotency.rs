//! Payment idempotency over real HTTP, per strategy: 100 concurrent `POST /api/pay` with one
//! `Idempotency-Key` make one payment, every answer is the same 200 body, the money moves once;
//! the same key with other parameters is a 409 `IDEMPOTENCY_MISMATCH` that changes nothing.
#![allow(clippy::unwrap_used)] // test code

mod reliability_support;

use std::sync::Arc;

use reliability_support::{open, redis_url, snapshot, Client, Server, DEMO_PRICE};
use serde_json::json;
use tokio::sync::Barrier;

const REPLAYS: usize = 100;

macro_rules! per_strategy {
    ($name:ident, $strategy:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            if $strategy == "redis" && redis_url().is_none() {
                eprintln!("skipped: set TICKETING_TEST_REDIS_URL to test the redis strategy");
                return;
            }
            replays_pay_once($strategy).await;
        }
    };
}

per_strategy!(one_key_one_payment_optimistic, "optimistic");
per_strategy!(one_key_one_payment_pessimistic, "pessimistic");
per_strategy!(one_key_one_payment_redis, "redis");

async fn replays_pay_once(strategy: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("idem.db");
    let server = Server::start(&db, strategy, &["--demo"], &dir.path().join("server.log"));
    let c = Client::new(&server.base);

    // User 1 has room for two seats' worth, holds seats 1 and 2 of date 1.
    let token = c.token(1).await;
    c.charge(1, DEMO_PRICE * 2.0).await.ok();
    let mut holds = Vec::new();
    for seat in [1, 2] {
        let a = c
            .send(
                "POST",
                "/api/reserve",
                Some(&token),
                Some(&json!({ "concertOptionId": 1, "seatId": seat })),
            )
            .await;
        holds.push(a.ok()["data"]["reservationId"].as_i64().unwrap());
    }
    // Warm the connection pool so the replays race in the server, not in connects.
    let warm = Arc::new(Barrier::new(REPLAYS));
    let mut tasks = Vec::new();
    for _ in 0..REPLAYS {
        let (c, warm) = (c.clone(), warm.clone());
        tasks.push(tokio::spawn(async move {
            warm.wait().await;
            c.send("GET", "/health", None, None).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }

    // 100 replays of one payment, released together.
    let key = "order-7f3a-retry-safe";
    let body = json!({ "reservationId": holds[0], "amount": DEMO_PRICE }).to_string();
    let barrier = Arc::new(Barrier::new(REPLAYS));
    let mut tasks = Vec::new();
    for _ in 0..REPLAYS {
        let (c, barrier, body, token) = (c.clone(), barrier.clone(), body.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            c.try_send(
                "POST",
                "/api/pay",
                Some(&token),
                Some(body),
                &[("Idempotency-Key", key)],
            )
            .await
            .unwrap()
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let first = answers[0].clone();
    assert_eq!(first.status, 200, "{first:?}");
    for a in &answers {
        assert_eq!((a.status, &a.text), (200, &first.text), "every replay answers the same");
    }
    assert_eq!(first.body["data"]["balance"], DEMO_PRICE);
    assert_eq!(c.balance(1).await, DEMO_PRICE, "the money moved once");
    let conn = open(&db);
    let payments: i64 = conn
        .query_row("SELECT COUNT(*) FROM payments WHERE user_id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(payments, 1, "one payment");
    let ledger: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM ledger WHERE user_id = 1 AND kind = 'PAYMENT'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ledger, 1, "one ledger entry");

    // A replay after the payment expired the token still gets the stored receipt.
    let again = c
        .try_send(
            "POST",
            "/api/pay",
            Some(&token),
            Some(body.clone()),
            &[("Idempotency-Key", key)],
        )
        .await
        .unwrap();
    assert_eq!((again.status, &again.text), (200, &first.text));

    // The same key with other parameters: 409 IDEMPOTENCY_MISMATCH, and nothing changes. A
    // fresh token for the user, so the 409 is about the key and not about the token.
    let token2 = c.token(1).await;
    let before = snapshot(&conn);
    let other_reservation = json!({ "reservationId": holds[1], "amount": DEMO_PRICE }).to_string();
    let other_amount = json!({ "reservationId": holds[0], "amount": DEMO_PRICE + 1.0 }).to_string();
    for other in [other_reservation, other_amount] {
        let a = c
            .try_send(
                "POST",
                "/api/pay",
                Some(&token2),
                Some(other),
                &[("Idempotency-Key", key)],
            )
            .await
            .unwrap();
        a.assert_error(409, Some("IDEMPOTENCY_MISMATCH"));
        assert_eq!(snapshot(&conn), before, "a rejected payment changed the database");
    }
    // Another user replaying the key gets no receipt of user 1's payment and moves nothing.
    let token3 = c.token(2).await;
    let before = snapshot(&conn);
    let a = c
        .try_send(
            "POST",
            "/api/pay",
            Some(&token3),
            Some(body),
            &[("Idempotency-Key", key)],
        )
        .await
        .unwrap();
    assert!(matches!(a.status, 404 | 409), "another user's replay: {a:?}");
    assert!(a.is_error_shape(), "{a:?}");
    assert!(!a.text.contains("paymentId"));
    assert_eq!(snapshot(&conn), before, "another user's replay changed the database");
    assert_eq!(c.balance(1).await, DEMO_PRICE);
}
