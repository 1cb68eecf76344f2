//! The seed's four concurrency cases over HTTP, with 50 concurrent clients each, per strategy,
//! with exact outcomes: charges and uses to the cent, exactly one seat winner, exactly one
//! payment.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod http_support;

use std::sync::Arc;

use http_support::{Answer, Server, DEMO_PRICE};
use serde_json::json;
use tokio::sync::Barrier;

const CLIENTS: usize = 50;

per_strategy!(seed_cases, seed_cases);

/// Runs `CLIENTS` requests at once (released together by a barrier) and returns the answers.
async fn all_at_once<F, Fut>(s: &Arc<Server>, request: F) -> Vec<Answer>
where
    F: Fn(Arc<Server>, usize) -> Fut,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let barrier = barrier.clone();
        let fut = request(s.clone(), i);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("client task"));
    }
    answers
}

fn cents(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

async fn seed_cases(strategy: &'static str) {
    let s = Arc::new(Server::start(strategy, &[]));
    // Warm the connection pool so the clients really race on the server, not on connects.
    let warm = all_at_once(&s, |s, _| async move { s.get("/health", None).await }).await;
    assert!(warm.iter().all(|a| a.status == 200));

    // 1. 50 concurrent charges of 100 to one user: every one succeeds, balance 5000.00, and
    //    the balances answered are exactly 100, 200, …, 5000 (each charge saw the one before).
    let answers = all_at_once(&s, |s, _| async move { s.charge(1, 100.0).await }).await;
    let mut seen: Vec<i64> = answers
        .iter()
        .map(|a| cents(a.ok()["balance"].as_f64().unwrap()))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=CLIENTS as i64).map(|i| i * 10_000).collect::<Vec<_>>());
    assert_eq!(s.balance(1).await, 5000.0);

    // 2. 50 concurrent uses of 100 from 10,000: every one succeeds, balance 5000.00.
    s.charge(2, 10_000.0).await.ok();
    // Spending needs the owner's token; all 50 clients of user 2 share it.
    let (spender, _) = s.token(2).await;
    let auth = Arc::new(format!("Bearer {spender}"));
    let answers = all_at_once(&s, |s, _| {
        let auth = auth.clone();
        async move {
            s.send(
                "PATCH",
                "/api/balance/use",
                Some(&auth),
                Some(&json!({ "userId": 2, "amount": 100 })),
            )
            .await
        }
    })
    .await;
    let mut seen: Vec<i64> = answers
        .iter()
        .map(|a| cents(a.ok()["balance"].as_f64().unwrap()))
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..CLIENTS as i64).map(|i| 500_000 + i * 10_000).collect::<Vec<_>>()
    );
    assert_eq!(s.balance(2).await, 5000.0);

    // 3. 50 users reserve one seat at once: exactly one wins, 49 get a 409, the seat is held.
    let mut tokens = Vec::new();
    for user in 100..100 + CLIENTS as i64 {
        let (t, d) = s.token(user).await;
        assert_eq!(d["status"], "ACTIVE");
        tokens.push(t);
    }
    let tokens = Arc::new(tokens);
    let answers = all_at_once(&s, |s, i| {
        let tokens = tokens.clone();
        async move {
            s.post(
                "/api/reserve",
                Some(&tokens[i]),
                json!({ "concertOptionId": 1, "seatId": 1 }),
            )
            .await
        }
    })
    .await;
    let winners: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(winners.len(), 1, "{answers:#?}");
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_eq!(a.status, 409, "{a:?}");
        let code = a.body["code"].as_str().unwrap();
        assert!(
            ["SEAT_UNAVAILABLE", "CONFLICT", "LOCK_NOT_ACQUIRED"].contains(&code),
            "{a:?}"
        );
    }
    assert!(!s.available_seat_ids(1, &tokens[0]).await.contains(&1));
    let m = s.send("GET", "/metrics", None, None).await;
    assert!(m.text.contains("ticketing_seats{status=\"HELD\"} 1"), "{}", m.text);

    // 4. 50 concurrent payments of one reservation (one owner, one token): exactly one
    //    succeeds and money moves once; the rest are refused (409, or 401 once the winner has
    //    spent the token).
    let (owner, _) = s.token(3).await;
    s.charge(3, 2.0 * DEMO_PRICE).await.ok();
    let r = s
        .post(
            "/api/reserve",
            Some(&owner),
            json!({ "concertOptionId": 1, "seatId": 2 }),
        )
        .await;
    let rid = r.ok()["data"]["reservationId"].as_i64().unwrap();
    let owner = Arc::new(owner);
    let answers = all_at_once(&s, |s, _| {
        let owner = owner.clone();
        async move {
            s.post(
                "/api/pay",
                Some(&owner),
                json!({ "reservationId": rid, "amount": DEMO_PRICE }),
            )
            .await
        }
    })
    .await;
    let winners: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(winners.len(), 1, "{answers:#?}");
    assert_eq!(winners[0].body["data"]["balance"], DEMO_PRICE);
    for a in answers.iter().filter(|a| a.status != 200) {
        let code = a.body["code"].as_str().unwrap();
        assert!(
            (a.status == 409 && ["ALREADY_PAID", "CONFLICT", "LOCK_NOT_ACQUIRED"].contains(&code))
                || (a.status == 401 && code == "TOKEN_EXPIRED"),
            "{a:?}"
        );
    }
    assert_eq!(s.balance(3).await, DEMO_PRICE);
    let m = s.send("GET", "/metrics", None, None).await;
    assert!(m.text.contains("ticketing_seats{status=\"SOLD\"} 1"), "{}", m.text);

    // 4b. The same with one Idempotency-Key: every retry gets the one payment.
    let (owner, _) = s.token(4).await;
    s.charge(4, DEMO_PRICE).await.ok();
    let r = s
        .post(
            "/api/reserve",
            Some(&owner),
            json!({ "concertOptionId": 1, "seatId": 3 }),
        )
        .await;
    let rid = r.ok()["data"]["reservationId"].as_i64().unwrap();
    let owner = Arc::new(format!("Bearer {owner}"));
    let answers = all_at_once(&s, |s, _| {
        let owner = owner.clone();
        async move {
            let body = json!({ "reservationId": rid, "amount": DEMO_PRICE }).to_string();
            s.send_raw(
                "POST",
                "/api/pay",
                Some(&owner),
                Some(body),
                &[("Idempotency-Key", "k-4")],
            )
            .await
        }
    })
    .await;
    let first = answers[0].ok()["data"].clone();
    for a in &answers {
        assert_eq!(a.ok()["data"], first, "{a:?}");
    }
    assert_eq!(first["balance"], 0.0);
    assert_eq!(s.balance(4).await, 0.0);
}
