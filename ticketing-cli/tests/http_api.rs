//! Black-box tests of `ticketing serve`: every endpoint's success body field by field, every
//! error class of docs/contract.md §Errors, and that a rejected request changes nothing — per strategy.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod http_support;

use http_support::{now_millis, rfc3339_millis, Answer, Server, DEMO_PRICE};
use serde_json::{json, Value};

per_strategy!(purchase_story, purchase_story);
per_strategy!(error_classes, error_classes);

fn assert_uuid_v4(t: &str) {
    assert_eq!(t.len(), 36, "{t}");
    assert_eq!(&t[14..15], "4", "version nibble of {t}");
    assert!(t.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{t}");
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[track_caller]
fn assert_around(ts: &Value, expected_ms: i64) {
    let ms = rfc3339_millis(ts.as_str().expect("timestamp"));
    assert!((ms - expected_ms).abs() <= 3_000, "{ts} is not about {expected_ms}");
}

/// A whole purchase, checking every success body field by field.
async fn purchase_story(strategy: &'static str) {
    let s = Server::start(strategy, &[]);

    assert_eq!(s.get("/health", None).await.ok(), &json!({ "status": "ok" }));
    assert_eq!(
        s.get("/api/concerts", None).await.ok(),
        &json!({ "concerts": [{ "concertId": 1, "title": "Demo Concert" }] })
    );

    // Token: the seed's envelope, ACTIVE at once (the queue is empty).
    let a = s.post("/api/token", None, json!({ "userId": 7 })).await;
    let body = a.ok();
    assert_eq!(keys(body), ["data", "message", "result"]);
    assert_eq!(body["result"], "200");
    assert_eq!(body["message"], "Success");
    let data = &body["data"];
    assert_eq!(keys(data), ["expiresAt", "queuePosition", "status", "token"]);
    let token = data["token"].as_str().unwrap().to_string();
    assert_uuid_v4(&token);
    assert_eq!(data["queuePosition"], 0);
    assert_eq!(data["status"], "ACTIVE");
    assert_around(&data["expiresAt"], now_millis() + 600_000);

    // Asking again gives the same token and place.
    let again = s.post("/api/token", None, json!({ "userId": 7 })).await;
    assert_eq!(again.ok()["data"], *data);

    // Status adds the wait estimate.
    let st = s.get("/api/token/status", Some(&token)).await;
    let sd = &st.ok()["data"];
    assert_eq!(st.body["result"], "200");
    assert_eq!(
        keys(sd),
        ["estimatedWaitSeconds", "expiresAt", "queuePosition", "status", "token"]
    );
    assert_eq!(sd["token"], token.as_str());
    assert_eq!(sd["status"], "ACTIVE");
    assert_eq!(sd["queuePosition"], 0);
    assert_eq!(sd["estimatedWaitSeconds"], 0);

    // Dates and seats.
    let dates = s.get("/api/1/available-dates", Some(&token)).await;
    assert_eq!(
        dates.ok(),
        &json!({ "concertOptions": [
            { "concertOptionId": 1, "concertDate": "2026-12-24", "price": DEMO_PRICE, "availableSeats": 50 },
            { "concertOptionId": 2, "concertDate": "2026-12-25", "price": DEMO_PRICE, "availableSeats": 50 },
        ] })
    );
    let seats = s.get("/api/1/available-seats", Some(&token)).await;
    let list = seats.ok()["seats"].as_array().unwrap();
    assert_eq!(keys(seats.ok()), ["seats"]);
    assert_eq!(list.len(), 50);
    assert_eq!(
        list[0],
        json!({ "seatId": 1, "seatNumber": "A1", "status": "AVAILABLE" })
    );
    assert_eq!(
        list[10],
        json!({ "seatId": 11, "seatNumber": "B1", "status": "AVAILABLE" })
    );
    assert_eq!(
        list[49],
        json!({ "seatId": 50, "seatNumber": "E10", "status": "AVAILABLE" })
    );
    let seats2 = s.get("/api/2/available-seats", Some(&token)).await;
    assert_eq!(
        seats2.ok()["seats"][0],
        json!({ "seatId": 51, "seatNumber": "A1", "status": "AVAILABLE" })
    );

    // Reserve: the token in the body, as the seed sends it; unknown fields are ignored.
    let r = s
        .send(
            "POST",
            "/api/reserve",
            None,
            Some(&json!({ "token": token, "concertOptionId": 1, "seatId": 3, "userId": 7, "price": 1, "status": "PAID" })),
        )
        .await;
    let rb = r.ok();
    assert_eq!(keys(rb), ["data", "message", "result"]);
    assert_eq!(
        (rb["result"].as_str(), rb["message"].as_str()),
        (Some("200"), Some("Success"))
    );
    assert_eq!(keys(&rb["data"]), ["heldUntil", "price", "reservationId"]);
    let rid = rb["data"]["reservationId"].as_i64().unwrap();
    assert!(rid >= 1);
    assert_eq!(rb["data"]["price"], DEMO_PRICE);
    assert_around(&rb["data"]["heldUntil"], now_millis() + 300_000);
    assert!(!s.available_seat_ids(1, &token).await.contains(&3));
    let dates = s.get("/api/1/available-dates", Some(&token)).await;
    assert_eq!(dates.ok()["concertOptions"][0]["availableSeats"], 49);

    // Wallet.
    assert_eq!(s.balance(7).await, 0.0);
    assert_eq!(s.charge(7, 50_000.5).await.ok(), &json!({ "balance": 50000.5 }));
    assert_eq!(s.charge(7, 0.25).await.ok(), &json!({ "balance": 50000.75 }));
    assert_eq!(
        s.get("/api/balance?userId=7", None).await.ok(),
        &json!({ "balance": 50000.75 })
    );
    // Spending needs the owner's token: none is 401, another user's is 403.
    s.patch("/api/balance/use", json!({ "userId": 7, "amount": 0.5 }))
        .await
        .assert_error(401, "TOKEN_MISSING");
    let (other, _) = s.token(8).await;
    s.send(
        "PATCH",
        "/api/balance/use",
        Some(&format!("Bearer {other}")),
        Some(&json!({ "userId": 7, "amount": 0.5 })),
    )
    .await
    .assert_error(403, "USER_MISMATCH");
    let used = s
        .send(
            "PATCH",
            "/api/balance/use",
            Some(&format!("Bearer {token}")),
            Some(&json!({ "userId": 7, "amount": 0.5 })),
        )
        .await;
    assert_eq!(used.ok(), &json!({ "balance": 50000.25 }));

    // Pay: the seed's envelope, the new balance; the seat is sold, the token spent.
    let p = s
        .post(
            "/api/pay",
            Some(&token),
            json!({ "reservationId": rid, "amount": DEMO_PRICE }),
        )
        .await;
    let pb = p.ok();
    assert_eq!(keys(pb), ["data", "message", "result"]);
    assert_eq!(
        (pb["result"].as_str(), pb["message"].as_str()),
        (Some("200"), Some("Success"))
    );
    assert_eq!(keys(&pb["data"]), ["balance", "paymentId"]);
    assert!(pb["data"]["paymentId"].as_i64().unwrap() >= 1);
    assert_eq!(pb["data"]["balance"], 0.25);
    assert_eq!(s.balance(7).await, 0.25);

    let st = s.get("/api/token/status", Some(&token)).await;
    assert_eq!(st.ok()["data"]["status"], "EXPIRED");
    assert_eq!(st.ok()["data"]["queuePosition"], 0);
    s.get("/api/1/available-seats", Some(&token))
        .await
        .assert_error(401, "TOKEN_EXPIRED");

    // A new token: the sold seat stays gone; another user sees the same.
    let (t2, _) = s.token(8).await;
    assert!(!s.available_seat_ids(1, &t2).await.contains(&3));
    assert_eq!(s.available_seat_ids(1, &t2).await.len(), 49);

    // Leaving the queue.
    let left = s
        .send("DELETE", "/api/token", Some(&format!("Bearer {t2}")), None)
        .await;
    assert_eq!(left.ok()["data"]["status"], "EXPIRED");
    assert_eq!(left.ok()["data"]["token"], t2.as_str());
    s.get("/api/1/available-seats", Some(&t2))
        .await
        .assert_error(401, "TOKEN_EXPIRED");

    // Metrics saw it all.
    let m = s.send("GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    for line in [
        r#"ticketing_http_requests_total{route="/api/pay",method="POST",status="200"} 1"#,
        r#"ticketing_http_requests_total{route="/api/{concertOptionId}/available-seats",method="GET",status="401"} 2"#,
        "ticketing_seats{status=\"SOLD\"} 1",
        "ticketing_seats{status=\"AVAILABLE\"} 99",
        "ticketing_seats{status=\"HELD\"} 0",
        "ticketing_queue_active 0",
        "ticketing_queue_waiting 0",
        "ticketing_lock_conflicts_total ",
        "ticketing_lock_retries_total ",
        "ticketing_http_request_duration_seconds_bucket{route=\"/api/reserve\",method=\"POST\",status=\"200\",le=\"+Inf\"} 1",
    ] {
        assert!(m.text.contains(line), "metrics lack `{line}`:\n{}", m.text);
    }
    assert!(
        m.text
            .lines()
            .any(|l| l.starts_with("ticketing_info{node=") && l.ends_with(&format!("strategy=\"{strategy}\"}} 1"))),
        "{}",
        m.text
    );

    // One log line per request, with request id, method, path, status, latency (written by the
    // log's own thread a few milliseconds later: wait for them).
    let log = s
        .log_when(|log| {
            log.lines()
                .any(|l| l.contains("status=401") && l.contains("code=\"TOKEN_EXPIRED\""))
                && log
                    .lines()
                    .any(|l| l.contains("path=\"/api/pay\"") && l.contains("status=200"))
        })
        .await;
    assert!(
        log.lines().any(|l| l.contains("request_id=")
            && l.contains("method=POST")
            && l.contains("path=\"/api/pay\"")
            && l.contains("status=200")
            && l.contains("latency_ms=")),
        "{log}"
    );
    assert!(!log.contains(&t2), "tokens must not be logged");
}

/// A snapshot of everything a rejected request might wrongly change.
async fn state(s: &Server, token: &str, users: &[i64]) -> Value {
    let mut balances = Vec::new();
    for u in users {
        balances.push(s.balance(*u).await);
    }
    let m = s.send("GET", "/metrics", None, None).await;
    let gauges: Vec<String> = m
        .text
        .lines()
        .filter(|l| l.starts_with("ticketing_seats") || l.starts_with("ticketing_queue_"))
        .filter(|l| !l.starts_with("ticketing_queue_admitted"))
        .map(str::to_owned)
        .collect();
    json!({
        "balances": balances,
        "seats1": s.available_seat_ids(1, token).await,
        "seats2": s.available_seat_ids(2, token).await,
        "gauges": gauges,
    })
}

/// Every error class of docs/contract.md §Errors, each request checked to have changed nothing.
async fn error_classes(strategy: &'static str) {
    let s = Server::start(strategy, &["--max-active", "3", "--max-holds", "2"]);
    let (t1, _) = s.token(1).await;
    let (t2, _) = s.token(2).await;
    let (t3, _) = s.token(3).await;
    let (t4, d4) = s.token(4).await;
    assert_eq!(d4["status"], "WAITING");
    assert_eq!(d4["queuePosition"], 1);
    s.charge(1, 100_000.0).await.ok();
    s.charge(2, 10.0).await.ok();
    let held = s
        .post("/api/reserve", Some(&t2), json!({ "concertOptionId": 1, "seatId": 5 }))
        .await;
    let rid2 = held.ok()["data"]["reservationId"].as_i64().unwrap();
    let r1 = s
        .post("/api/reserve", Some(&t1), json!({ "concertOptionId": 2, "seatId": 60 }))
        .await;
    let rid1 = r1.ok()["data"]["reservationId"].as_i64().unwrap();

    let before = state(&s, &t1, &[1, 2, 3, 4]).await;
    let raw = |method: &'static str, path: &'static str, body: &'static str| {
        let s = &s;
        async move { s.send_raw(method, path, None, Some(body.to_string()), &[]).await }
    };

    // 400: malformed JSON, missing field, string for a number, bad amounts, userId ≤ 0.
    raw("POST", "/api/token", "{\"userId\":")
        .await
        .assert_error(400, "MALFORMED_JSON");
    raw("POST", "/api/token", "").await.assert_error(400, "MALFORMED_JSON");
    raw("POST", "/api/token", "[1]")
        .await
        .assert_error(400, "MALFORMED_JSON");
    raw("POST", "/api/token", "{}")
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    raw("POST", "/api/token", "{\"userId\":null}")
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    raw("POST", "/api/token", "{\"userId\":\"5\"}")
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    raw("POST", "/api/token", "{\"userId\":1.5}")
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    raw("POST", "/api/token", "{\"userId\":0}")
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    raw("POST", "/api/token", "{\"userId\":-3}")
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    for (amount, code) in [
        ("0", "INVALID_AMOUNT"),
        ("-5", "INVALID_AMOUNT"),
        ("10.005", "INVALID_AMOUNT"),
        ("100000000.01", "INVALID_AMOUNT"),
        ("1e12", "INVALID_AMOUNT"),
        ("\"100\"", "INVALID_ARGUMENT"),
        ("null", "INVALID_ARGUMENT"),
    ] {
        let body = format!("{{\"userId\":1,\"amount\":{amount}}}");
        let a = s.send_raw("PATCH", "/api/balance/charge", None, Some(body), &[]).await;
        a.assert_bad(code, "amount");
    }
    raw("PATCH", "/api/balance/charge", "{\"amount\":10}")
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    raw("PATCH", "/api/balance/charge", "{\"userId\":0,\"amount\":10}")
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    let (spender, _) = s.token(2).await;
    s.send_raw(
        "PATCH",
        "/api/balance/use",
        Some(&format!("Bearer {spender}")),
        Some("{\"userId\":2,\"amount\":10.01}".to_string()),
        &[],
    )
    .await
    .assert_error(400, "INSUFFICIENT_BALANCE");
    s.get("/api/balance", None)
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    s.get("/api/balance?userId=0", None)
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    s.get("/api/balance?userId=abc", None)
        .await
        .assert_bad("INVALID_ARGUMENT", "userId");
    s.get("/api/abc/available-dates", Some(&t1))
        .await
        .assert_bad("INVALID_ARGUMENT", "concertId");
    s.get("/api/0/available-seats", Some(&t1))
        .await
        .assert_bad("INVALID_ARGUMENT", "concertOptionId");
    for (body, field) in [
        (json!({ "concertOptionId": 1 }), "seatId"),
        (json!({ "seatId": 7 }), "concertOptionId"),
        (json!({ "concertOptionId": 1, "seatId": "7" }), "seatId"),
        (json!({ "concertOptionId": "1", "seatId": 7 }), "concertOptionId"),
        (json!({ "concertOptionId": 1, "seatId": 7, "userId": 0 }), "userId"),
        (json!({ "concertOptionId": 1, "seatId": 7, "userId": "1" }), "userId"),
        (json!({ "concertOptionId": 1, "seatId": 7, "token": 5 }), "token"),
    ] {
        s.post("/api/reserve", Some(&t1), body)
            .await
            .assert_bad("INVALID_ARGUMENT", field);
    }
    for (body, code, field) in [
        (json!({ "amount": DEMO_PRICE }), "INVALID_ARGUMENT", "reservationId"),
        (json!({ "reservationId": rid1 }), "INVALID_ARGUMENT", "amount"),
        (
            json!({ "reservationId": rid1, "amount": "50000" }),
            "INVALID_ARGUMENT",
            "amount",
        ),
        (
            json!({ "reservationId": rid1, "amount": 0 }),
            "INVALID_AMOUNT",
            "amount",
        ),
        (
            json!({ "reservationId": rid1, "amount": -1 }),
            "INVALID_AMOUNT",
            "amount",
        ),
        (
            json!({ "reservationId": rid1, "amount": 49999.999 }),
            "INVALID_AMOUNT",
            "amount",
        ),
        (
            json!({ "reservationId": rid1, "amount": 49999.99 }),
            "AMOUNT_MISMATCH",
            "amount",
        ),
    ] {
        s.post("/api/pay", Some(&t1), body).await.assert_bad(code, field);
    }
    s.post(
        "/api/pay",
        Some(&t2),
        json!({ "reservationId": rid2, "amount": DEMO_PRICE }),
    )
    .await
    .assert_error(400, "INSUFFICIENT_BALANCE");

    // 401: missing, unknown, not a UUID.
    s.get("/api/1/available-dates", None)
        .await
        .assert_error(401, "TOKEN_MISSING");
    s.get("/api/token/status", None)
        .await
        .assert_error(401, "TOKEN_MISSING");
    let unknown = "0b5a4f34-8a57-4c21-9c3e-2a1a0f7f0d11";
    s.get("/api/1/available-dates", Some(unknown))
        .await
        .assert_error(401, "TOKEN_INVALID");
    s.get("/api/token/status", Some(unknown))
        .await
        .assert_error(401, "TOKEN_INVALID");
    s.get("/api/1/available-seats", Some("not-a-token"))
        .await
        .assert_error(401, "TOKEN_INVALID");
    s.post("/api/reserve", None, json!({ "concertOptionId": 1, "seatId": 9 }))
        .await
        .assert_error(401, "TOKEN_MISSING");
    s.post(
        "/api/pay",
        Some(unknown),
        json!({ "reservationId": rid1, "amount": DEMO_PRICE }),
    )
    .await
    .assert_error(401, "TOKEN_INVALID");

    // 403: a WAITING token; a userId that is not the token's.
    s.get("/api/1/available-dates", Some(&t4))
        .await
        .assert_error(403, "TOKEN_NOT_ACTIVE");
    s.get("/api/1/available-seats", Some(&t4))
        .await
        .assert_error(403, "TOKEN_NOT_ACTIVE");
    s.post("/api/reserve", Some(&t4), json!({ "concertOptionId": 1, "seatId": 9 }))
        .await
        .assert_error(403, "TOKEN_NOT_ACTIVE");
    s.post(
        "/api/reserve",
        Some(&t3),
        json!({ "concertOptionId": 1, "seatId": 9, "userId": 1 }),
    )
    .await
    .assert_error(403, "USER_MISMATCH");

    // 404: unknown concert, date, seat; a seat of another date; another user's reservation.
    s.get("/api/99/available-dates", Some(&t1))
        .await
        .assert_error(404, "CONCERT_NOT_FOUND");
    s.get("/api/99/available-seats", Some(&t1))
        .await
        .assert_error(404, "CONCERT_OPTION_NOT_FOUND");
    s.post("/api/reserve", Some(&t3), json!({ "concertOptionId": 99, "seatId": 9 }))
        .await
        .assert_error(404, "CONCERT_OPTION_NOT_FOUND");
    s.post(
        "/api/reserve",
        Some(&t3),
        json!({ "concertOptionId": 1, "seatId": 9999 }),
    )
    .await
    .assert_error(404, "SEAT_NOT_FOUND");
    s.post("/api/reserve", Some(&t3), json!({ "concertOptionId": 1, "seatId": 60 }))
        .await
        .assert_error(404, "SEAT_NOT_FOUND");
    s.post(
        "/api/pay",
        Some(&t3),
        json!({ "reservationId": rid1, "amount": DEMO_PRICE }),
    )
    .await
    .assert_error(404, "RESERVATION_NOT_FOUND");
    s.post(
        "/api/pay",
        Some(&t3),
        json!({ "reservationId": 9999, "amount": DEMO_PRICE }),
    )
    .await
    .assert_error(404, "RESERVATION_NOT_FOUND");

    // 409: a held seat; too many holds.
    s.post("/api/reserve", Some(&t3), json!({ "concertOptionId": 1, "seatId": 5 }))
        .await
        .assert_error(409, "SEAT_UNAVAILABLE");
    s.post("/api/reserve", Some(&t1), json!({ "concertOptionId": 2, "seatId": 60 }))
        .await
        .assert_error(409, "SEAT_UNAVAILABLE");

    // Routing errors keep the envelope.
    s.get("/api/nothing/here", None)
        .await
        .assert_error(404, "ROUTE_NOT_FOUND");
    s.send("PUT", "/api/reserve", None, None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");

    // Nothing above changed anything.
    assert_eq!(state(&s, &t1, &[1, 2, 3, 4]).await, before);

    // Too many holds (max-holds 2): the third is refused, and changes nothing.
    s.post("/api/reserve", Some(&t1), json!({ "concertOptionId": 2, "seatId": 61 }))
        .await
        .ok();
    let before = state(&s, &t1, &[1, 2, 3, 4]).await;
    s.post("/api/reserve", Some(&t1), json!({ "concertOptionId": 2, "seatId": 62 }))
        .await
        .assert_error(409, "TOO_MANY_HOLDS");
    assert_eq!(state(&s, &t1, &[1, 2, 3, 4]).await, before);

    // Every token source works: bare Authorization, query parameter, body field, lower-case scheme.
    let bare = s.send("GET", "/api/1/available-dates", Some(&t3), None).await;
    assert_eq!(bare.status, 200, "{bare:?}");
    let q = s.get(&format!("/api/1/available-dates?token={t3}"), None).await;
    assert_eq!(q.status, 200, "{q:?}");
    let lower = s
        .send("GET", "/api/token/status", Some(&format!("bearer {t3}")), None)
        .await;
    assert_eq!(lower.ok()["data"]["status"], "ACTIVE");

    // Idempotent payment: a retry returns the same payment even though the token is spent;
    // the same key with other parameters is a 409; money moved once.
    let key = [("Idempotency-Key", "pay-once-1")];
    let auth = format!("Bearer {t1}");
    let pay_body = json!({ "reservationId": rid1, "amount": DEMO_PRICE }).to_string();
    let first = s
        .send_raw("POST", "/api/pay", Some(&auth), Some(pay_body.clone()), &key)
        .await;
    assert_eq!(first.ok()["data"]["balance"], 50000.0);
    let again = s
        .send_raw("POST", "/api/pay", Some(&auth), Some(pay_body.clone()), &key)
        .await;
    assert_eq!(again.ok()["data"], first.body["data"]);
    let other = json!({ "reservationId": rid1, "amount": 1.0 }).to_string();
    s.send_raw("POST", "/api/pay", Some(&auth), Some(other), &key)
        .await
        .assert_error(409, "IDEMPOTENCY_MISMATCH");
    assert_eq!(s.balance(1).await, 50000.0);
    // Without the key, the spent token is a 401; with a new token, paying again is a 409.
    s.send_raw("POST", "/api/pay", Some(&auth), Some(pay_body.clone()), &[])
        .await
        .assert_error(401, "TOKEN_EXPIRED");
    let (t1b, d1b) = s.token(1).await;
    assert_ne!(t1b, t1);
    let waiting_admitted = s.get("/api/token/status", Some(&t4)).await;
    assert_eq!(
        waiting_admitted.ok()["data"]["status"],
        "ACTIVE",
        "the paid-out slot went to user 4"
    );
    assert_eq!(d1b["status"], "WAITING");
    let a: Answer = s
        .post(
            "/api/pay",
            Some(&t1b),
            json!({ "reservationId": rid1, "amount": DEMO_PRICE }),
        )
        .await;
    a.assert_error(403, "TOKEN_NOT_ACTIVE");
    let t3_gone = s.send("DELETE", "/api/token", Some(&t3), None).await;
    assert_eq!(t3_gone.ok()["data"]["status"], "EXPIRED");
    let a = s
        .post(
            "/api/pay",
            Some(&t1b),
            json!({ "reservationId": rid1, "amount": DEMO_PRICE }),
        )
        .await;
    a.assert_error(409, "ALREADY_PAID");
    assert_eq!(s.balance(1).await, 50000.0);
}

/// The OpenAPI document describes every route, and every route it describes answers.
#[tokio::test]
async fn openapi_matches_the_router() {
    let s = Server::start("optimistic", &[]);
    let doc = s.get("/openapi.json", None).await;
    let doc = doc.ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "patch", "delete", "put"] {
            if item.get(method).is_some() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented.sort();
    let expected = [
        ("DELETE", "/api/token"),
        ("GET", "/api/balance"),
        ("GET", "/api/concerts"),
        ("GET", "/api/token/status"),
        ("GET", "/api/{concertId}/available-dates"),
        ("GET", "/api/{concertOptionId}/available-seats"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("PATCH", "/api/balance/charge"),
        ("PATCH", "/api/balance/use"),
        ("POST", "/api/pay"),
        ("POST", "/api/reserve"),
        ("POST", "/api/token"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, expected);
    for (method, path) in &documented {
        let concrete = path.replace("{concertId}", "1").replace("{concertOptionId}", "1");
        let a = s.send(method, &concrete, None, None).await;
        let code = a.body["code"].as_str().unwrap_or("");
        assert!(
            code != "ROUTE_NOT_FOUND" && code != "METHOD_NOT_ALLOWED",
            "{method} {path}: {a:?}"
        );
    }
}
