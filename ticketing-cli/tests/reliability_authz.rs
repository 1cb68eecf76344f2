//! Authorization under abuse, over real HTTP:
//!
//! - broken object level authorization: another user's token cannot pay, reserve for, or see
//!   the receipt of someone else's reservation — 404/403 and nothing changes;
//! - mass assignment: fields the API does not read (`price`, `status`, `balance`, `userId` in
//!   pay, `heldUntil`, `paymentId`, …) are ignored: the price charged is the date's price, the
//!   hold lasts the hold time, the payer is the token's user;
//! - token guessing: random, sequential and malformed tokens get 401 and change nothing;
//!   1,000 issued tokens are distinct RFC 4122 version-4 UUIDs.
#![allow(clippy::unwrap_used)] // test code

mod reliability_support;

use std::collections::HashSet;

use reliability_support::{open, snapshot, Answer, Client, Server, DEMO_PRICE};
use serde_json::{json, Value};

fn start() -> (tempfile::TempDir, std::path::PathBuf, Server, Client) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("authz.db");
    let server = Server::start(&db, "optimistic", &["--demo"], &dir.path().join("server.log"));
    let client = Client::new(&server.base);
    (dir, db, server, client)
}

async fn post(c: &Client, path: &str, token: &str, body: Value) -> Answer {
    c.send("POST", path, Some(token), Some(&body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_token_reaches_nothing() {
    let (_dir, db, _server, c) = start();
    let conn = open(&db);
    let (alice, bob) = (c.token(1).await, c.token(2).await);
    c.charge(1, DEMO_PRICE).await.ok();
    c.charge(2, DEMO_PRICE).await.ok();
    let a = post(&c, "/api/reserve", &alice, json!({ "concertOptionId": 1, "seatId": 7 })).await;
    let alice_hold = a.ok()["data"]["reservationId"].as_i64().unwrap();

    let before = snapshot(&conn);
    // Bob pays Alice's hold (with the right amount, with and without naming her): 404, as if
    // it did not exist.
    for body in [
        json!({ "reservationId": alice_hold, "amount": DEMO_PRICE }),
        json!({ "reservationId": alice_hold, "amount": DEMO_PRICE, "userId": 1 }),
    ] {
        post(&c, "/api/pay", &bob, body).await.assert_error(404, None);
        assert_eq!(snapshot(&conn), before);
    }
    // Bob's token with Alice's token in the body: the header wins, still 404.
    post(
        &c,
        "/api/pay",
        &bob,
        json!({ "reservationId": alice_hold, "amount": DEMO_PRICE, "token": alice }),
    )
    .await
    .assert_error(404, None);
    // Bob reserves naming Alice as the user: 403.
    post(
        &c,
        "/api/reserve",
        &bob,
        json!({ "concertOptionId": 1, "seatId": 8, "userId": 1 }),
    )
    .await
    .assert_error(403, Some("USER_MISMATCH"));
    // Bob takes Alice's held seat: 409, the hold stays hers.
    post(&c, "/api/reserve", &bob, json!({ "concertOptionId": 1, "seatId": 7 }))
        .await
        .assert_error(409, None);
    // Bob replays a key Alice has not used yet on her reservation: still 404.
    let a = c
        .try_send(
            "POST",
            "/api/pay",
            Some(&bob),
            Some(json!({ "reservationId": alice_hold, "amount": DEMO_PRICE }).to_string()),
            &[("Idempotency-Key", "alice-key")],
        )
        .await
        .unwrap();
    a.assert_error(404, None);
    assert_eq!(snapshot(&conn), before, "another user's requests changed the database");

    // Alice pays; Bob's replay of her key gets no receipt and moves nothing.
    let a = c
        .try_send(
            "POST",
            "/api/pay",
            Some(&alice),
            Some(json!({ "reservationId": alice_hold, "amount": DEMO_PRICE }).to_string()),
            &[("Idempotency-Key", "alice-key")],
        )
        .await
        .unwrap();
    a.ok();
    let before = snapshot(&conn);
    let a = c
        .try_send(
            "POST",
            "/api/pay",
            Some(&bob),
            Some(json!({ "reservationId": alice_hold, "amount": DEMO_PRICE }).to_string()),
            &[("Idempotency-Key", "alice-key")],
        )
        .await
        .unwrap();
    assert!(matches!(a.status, 404 | 409) && a.is_error_shape(), "{a:?}");
    assert!(!a.text.contains("paymentId"), "{a:?}");
    assert_eq!(snapshot(&conn), before);
    assert_eq!(c.balance(2).await, DEMO_PRICE, "Bob's money never moved");
    assert_eq!(c.balance(1).await, 0.0);

    // A WAITING token reaches no id-taking endpoint: 403 on each, nothing changes.
    let dir = tempfile::tempdir().unwrap();
    let db2 = dir.path().join("waiting.db");
    let server = Server::start(
        &db2,
        "optimistic",
        &["--demo", "--max-active", "1"],
        &dir.path().join("log"),
    );
    let c2 = Client::new(&server.base);
    let _first = c2.token(1).await;
    let waiting = c2.token(2).await;
    let conn2 = open(&db2);
    let before = snapshot(&conn2);
    for a in [
        c2.send("GET", "/api/1/available-dates", Some(&waiting), None).await,
        c2.send("GET", "/api/1/available-seats", Some(&waiting), None).await,
        post(
            &c2,
            "/api/reserve",
            &waiting,
            json!({ "concertOptionId": 1, "seatId": 1 }),
        )
        .await,
        post(
            &c2,
            "/api/pay",
            &waiting,
            json!({ "reservationId": 1, "amount": DEMO_PRICE }),
        )
        .await,
    ] {
        a.assert_error(403, None);
    }
    assert_eq!(snapshot(&conn2), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_body_fields_are_ignored() {
    let (_dir, db, _server, c) = start();
    let conn = open(&db);
    let token = c.token(1).await;

    // Charge: `balance`, `status`, `userId` twice over — only userId and amount count.
    let a = c
        .send(
            "PATCH",
            "/api/balance/charge",
            None,
            Some(&json!({ "userId": 1, "amount": 60000, "balance": 1e12, "price": 1, "status": "VIP" })),
        )
        .await;
    assert_eq!(a.ok()["balance"], 60000.0);

    // Reserve: a client-chosen price, status, hold time and reservation id are ignored.
    let a = post(
        &c,
        "/api/reserve",
        &token,
        json!({
            "concertOptionId": 1, "seatId": 3, "price": 0.01, "amount": 0.01, "status": "PAID",
            "heldUntil": "2099-01-01T00:00:00Z", "reservationId": 999, "paymentId": 5, "balance": 1e9,
        }),
    )
    .await;
    let data = a.ok()["data"].clone();
    assert_eq!(data["price"], DEMO_PRICE, "the date's price, not the client's");
    assert_ne!(data["reservationId"], 999);
    let reservation = data["reservationId"].as_i64().unwrap();
    let (status, price, held_until, seat): (String, i64, i64, String) = conn
        .query_row(
            "SELECT r.status, r.price, r.held_until, s.status FROM reservations r \
             JOIN seats s ON s.id = r.seat_id WHERE r.id = ?1",
            [reservation],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), price, seat.as_str()), ("HELD", 5_000_000, "HELD"));
    let year_2030_ms = 1_893_456_000_000;
    assert!(held_until < year_2030_ms, "the hold time is the server's: {held_until}");

    // Pay: the amount must still equal the price, whatever else the body claims.
    post(
        &c,
        "/api/pay",
        &token,
        json!({ "reservationId": reservation, "amount": 0.01, "price": 0.01 }),
    )
    .await
    .assert_error(400, None);
    // The payer is the token's user, not the body's: user 2 is neither charged nor credited.
    let a = post(
        &c,
        "/api/pay",
        &token,
        json!({
            "reservationId": reservation, "amount": DEMO_PRICE, "userId": 2, "balance": 1e9,
            "status": "CANCELLED", "paymentId": 42, "paidAt": "2000-01-01T00:00:00Z",
        }),
    )
    .await;
    assert_eq!(a.ok()["data"]["balance"], 10000.0);
    assert_eq!(c.balance(1).await, 10000.0);
    assert_eq!(c.balance(2).await, 0.0);
    let (payer, amount): (i64, i64) = conn
        .query_row(
            "SELECT user_id, amount FROM payments WHERE reservation_id = ?1",
            [reservation],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((payer, amount), (1, 5_000_000));
    let status: String = conn
        .query_row("SELECT status FROM reservations WHERE id = ?1", [reservation], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(status, "PAID");

    // Token: a client-chosen token, status or place is ignored.
    let a = c
        .send(
            "POST",
            "/api/token",
            None,
            Some(&json!({
                "userId": 3, "token": "00000000-0000-4000-8000-000000000000", "status": "ACTIVE",
                "queuePosition": 0, "expiresAt": "2099-01-01T00:00:00Z",
            })),
        )
        .await;
    let data = a.ok()["data"].clone();
    assert_ne!(data["token"], "00000000-0000-4000-8000-000000000000");
    assert!(data["expiresAt"].as_str().unwrap() < "2099");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_tokens_get_401_and_issued_ones_are_random_v4() {
    let (_dir, db, _server, c) = start();
    let conn = open(&db);

    // 1,000 tokens, 50 at a time: all distinct, all RFC 4122 version 4 (random).
    let mut tokens = Vec::new();
    for batch in 0..20 {
        let mut tasks = Vec::new();
        for i in 0..50 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move { c.token(batch * 50 + i + 1).await }));
        }
        for t in tasks {
            tokens.push(t.await.unwrap());
        }
    }
    let distinct: HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), 1000, "every issued token is distinct");
    for t in &tokens {
        let u = uuid::Uuid::parse_str(t).unwrap_or_else(|e| panic!("{t} is not a UUID: {e}"));
        assert_eq!(u.get_version(), Some(uuid::Version::Random), "{t}");
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{t}");
        assert_eq!(t, &u.hyphenated().to_string(), "canonical lowercase form");
    }
    // No two tokens share a long prefix (a weak but cheap randomness smell test: with 122 random
    // bits, 1,000 tokens sharing 8 hex digits has a probability around 1e-4).
    let prefixes: HashSet<&str> = tokens.iter().map(|t| &t[..8]).collect();
    assert!(prefixes.len() >= 999, "issued tokens share prefixes: not random");

    // Guesses: fresh random v4s, neighbours of issued tokens, other versions, malformed text.
    let issued = &tokens[0];
    let mut guesses: Vec<String> = (0..20).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let bump = |t: &str, delta: u128| {
        let u = uuid::Uuid::parse_str(t).unwrap().as_u128();
        uuid::Uuid::from_u128(u.wrapping_add(delta)).to_string()
    };
    guesses.extend([bump(issued, 1), bump(issued, u128::MAX), bump(&tokens[999], 1)]);
    guesses.extend([
        uuid::Uuid::nil().to_string(),
        uuid::Uuid::max().to_string(),
        "00000000-0000-4000-8000-000000000001".into(),
        format!("{issued}x"),
        format!(" {issued}0"),
        issued[..35].to_string(),
        "null".into(),
        "undefined".into(),
        "1".into(),
        "' OR '1'='1".into(),
        "%".into(),
        "../../etc/passwd".into(),
        "토큰".into(),
        "a".repeat(10_000),
    ]);
    let before = snapshot(&conn);
    for guess in &guesses {
        let body = |extra: Value| {
            let mut v = extra;
            v["token"] = json!(guess);
            v.to_string()
        };
        let requests: Vec<(&str, String, Option<String>)> = vec![
            ("GET", "/api/token/status".into(), None),
            ("GET", "/api/1/available-dates".into(), None),
            ("GET", "/api/1/available-seats".into(), None),
            (
                "POST",
                "/api/reserve".into(),
                Some(body(json!({ "concertOptionId": 1, "seatId": 1 }))),
            ),
            (
                "POST",
                "/api/pay".into(),
                Some(body(json!({ "reservationId": 1, "amount": DEMO_PRICE }))),
            ),
        ];
        for (method, path, body) in requests {
            // In the header, and (for bodies) in the body alone.
            let mut answers = vec![(
                true,
                c.try_send(method, &path, Some(guess), body.clone(), &[]).await.unwrap(),
            )];
            if body.is_some() {
                answers.push((false, c.try_send(method, &path, None, body.clone(), &[]).await.unwrap()));
            }
            for (in_header, a) in answers {
                // A header that is not visible ASCII is refused before any token lookup (400).
                let bad_header = in_header && !guess.is_ascii();
                assert!(
                    a.status == 401 || (bad_header && a.status == 400),
                    "{method} {path} with a guessed token `{}`: {a:?}",
                    guess.chars().take(60).collect::<String>()
                );
                assert!(a.is_error_shape(), "{a:?}");
            }
        }
    }
    assert_eq!(snapshot(&conn), before, "guessed tokens changed the database");
}
