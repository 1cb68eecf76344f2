//! The waiting queue and hold expiry over HTTP, end to end with real time (short TTLs):
//! positions, FIFO admission when a token is paid out, leaves or expires, `/api/token/status`,
//! a run-out hold's seat listed again within a second of `heldUntil`, and listings (served
//! from memory while nothing changes) that show every change at once, another process's too.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod http_support;

use std::time::{Duration, Instant};

use http_support::{now_millis, rfc3339_millis, Server, DEMO_PRICE};
use serde_json::json;

per_strategy!(queue_admission, queue_admission);
per_strategy!(hold_expiry, hold_expiry);
per_strategy!(listings_follow_every_change, listings_follow_every_change);

async fn status_of(s: &Server, token: &str) -> (String, i64) {
    let a = s.get("/api/token/status", Some(token)).await;
    let d = &a.ok()["data"];
    (
        d["status"].as_str().unwrap().to_string(),
        d["queuePosition"].as_i64().unwrap(),
    )
}

async fn queue_admission(strategy: &'static str) {
    let s = Server::start(strategy, &["--max-active", "2", "--token-ttl", "3s"]);
    let mut t = Vec::new();
    for user in 1..=5 {
        t.push(s.token(user).await);
    }
    let expected = [
        ("ACTIVE", 0),
        ("ACTIVE", 0),
        ("WAITING", 1),
        ("WAITING", 2),
        ("WAITING", 3),
    ];
    for ((_, d), (status, pos)) in t.iter().zip(expected) {
        assert_eq!(
            (d["status"].as_str().unwrap(), d["queuePosition"].as_i64().unwrap()),
            (status, pos)
        );
    }
    let tok: Vec<String> = t.iter().map(|(tok, _)| tok.clone()).collect();
    // Asking again moves nobody.
    let (again, d) = s.token(4).await;
    assert_eq!(again, tok[3]);
    assert_eq!(d["queuePosition"], 2);
    let st = s.get("/api/token/status", Some(&tok[4])).await;
    assert_eq!(st.ok()["data"]["status"], "WAITING");
    assert_eq!(st.ok()["data"]["queuePosition"], 3);
    assert!(st.ok()["data"]["estimatedWaitSeconds"].as_u64().is_some());

    // Paid out: user 1 pays, user 3 (first waiter) is admitted at once.
    s.charge(1, DEMO_PRICE).await.ok();
    let r = s
        .post(
            "/api/reserve",
            Some(&tok[0]),
            json!({ "concertOptionId": 1, "seatId": 1 }),
        )
        .await;
    let rid = r.ok()["data"]["reservationId"].as_i64().unwrap();
    s.post(
        "/api/pay",
        Some(&tok[0]),
        json!({ "reservationId": rid, "amount": DEMO_PRICE }),
    )
    .await
    .ok();
    assert_eq!(status_of(&s, &tok[0]).await, ("EXPIRED".into(), 0));
    assert_eq!(status_of(&s, &tok[2]).await, ("ACTIVE".into(), 0));
    assert_eq!(status_of(&s, &tok[3]).await, ("WAITING".into(), 1));
    assert_eq!(status_of(&s, &tok[4]).await, ("WAITING".into(), 2));

    // Leaves: user 3 gives up its token, user 4 is admitted.
    let left = s.send("DELETE", "/api/token", Some(&tok[2]), None).await;
    assert_eq!(left.ok()["data"]["status"], "EXPIRED");
    assert_eq!(status_of(&s, &tok[3]).await, ("ACTIVE".into(), 0));
    assert_eq!(status_of(&s, &tok[4]).await, ("WAITING".into(), 1));

    // Expires: user 2's and user 4's tokens run out (token-ttl 3s) with no request touching
    // them; the sweeper admits user 5 (no one asks for it either).
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let m = s.send("GET", "/metrics", None, None).await;
        if m.text.contains("ticketing_queue_waiting 0\n") && m.text.contains("ticketing_queue_active 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "user 5 was not admitted:\n{}", m.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of(&s, &tok[1]).await, ("EXPIRED".into(), 0));
    assert_eq!(status_of(&s, &tok[4]).await, ("ACTIVE".into(), 0));
    s.get("/api/1/available-dates", Some(&tok[1]))
        .await
        .assert_error(401, "TOKEN_EXPIRED");
    let dates = s.get("/api/1/available-dates", Some(&tok[4])).await;
    assert_eq!(dates.status, 200, "{dates:?}");
}

async fn hold_expiry(strategy: &'static str) {
    let s = Server::start(strategy, &["--hold-ttl", "2s"]);
    let (tok, _) = s.token(1).await;
    let (watcher, _) = s.token(2).await;
    s.charge(1, DEMO_PRICE).await.ok();
    let r = s
        .post("/api/reserve", Some(&tok), json!({ "concertOptionId": 1, "seatId": 7 }))
        .await;
    let data = r.ok()["data"].clone();
    let rid = data["reservationId"].as_i64().unwrap();
    // heldUntil is shown to the second (truncated): the hold really ends within [shown, shown + 1 s).
    let held_until = rfc3339_millis(data["heldUntil"].as_str().unwrap());
    assert!(!s.available_seat_ids(1, &watcher).await.contains(&7));

    // Poll without touching the hold itself: the seat is listed again within 1 s of heldUntil.
    let mut back_at = None;
    while now_millis() < held_until + 3_000 {
        let listed = s.available_seat_ids(1, &watcher).await.contains(&7);
        let now = now_millis();
        if listed {
            back_at = Some(now);
            break;
        }
        assert!(
            now < held_until + 1_000 + 150,
            "seat 7 still not listed {} ms after heldUntil",
            now - held_until
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back_at = back_at.expect("seat 7 came back");
    assert!(back_at >= held_until, "listed before its hold ended");
    assert!(
        back_at <= held_until + 1_150,
        "listed {} ms after heldUntil",
        back_at - held_until
    );

    // Paying the run-out hold is a 409 that moves no money; the seat stays available.
    let m_before = s.send("GET", "/metrics", None, None).await;
    assert!(m_before.text.contains("ticketing_seats{status=\"SOLD\"} 0"));
    s.post(
        "/api/pay",
        Some(&tok),
        json!({ "reservationId": rid, "amount": DEMO_PRICE }),
    )
    .await
    .assert_error(409, "HOLD_EXPIRED");
    assert_eq!(s.balance(1).await, DEMO_PRICE);
    assert!(s.available_seat_ids(1, &watcher).await.contains(&7));
    let m = s.send("GET", "/metrics", None, None).await;
    assert!(m.text.contains("ticketing_seats{status=\"SOLD\"} 0"));
    assert!(m.text.contains("ticketing_seats{status=\"HELD\"} 0"));
    // The token was not spent: the user can hold the seat again. (A reserve that races the
    // sweeper's write of this very seat loses with 409 CONFLICT, as any lost race does; a
    // client retries, and so does this test, a few times.)
    for attempt in 1.. {
        let a = s
            .post("/api/reserve", Some(&tok), json!({ "concertOptionId": 1, "seatId": 7 }))
            .await;
        if a.status == 409 && a.body["code"] == "CONFLICT" && attempt < 5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        a.ok();
        break;
    }
}

/// Runs `ticketing admin …` on the server's database as another process would.
fn admin(s: &Server, strategy: &str, args: &[&str]) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing"));
    cmd.arg("--db").arg(s.db()).args(["--strategy", strategy]);
    if strategy == "redis" {
        cmd.arg("--redis-url")
            .arg(http_support::redis_url().expect("TICKETING_TEST_REDIS_URL"));
    }
    let out = cmd.arg("admin").args(args).output().expect("run admin");
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The free seats of date 1 on concert 1's listing.
async fn listed_count(s: &Server, token: &str) -> i64 {
    let dates = s.get("/api/1/available-dates", Some(token)).await;
    let list = dates.ok()["concertOptions"].as_array().unwrap().clone();
    let first = list.iter().find(|d| d["concertOptionId"] == 1).unwrap();
    first["availableSeats"].as_i64().unwrap()
}

async fn listings_follow_every_change(strategy: &'static str) {
    let s = Server::start(strategy, &[]);
    let (viewer, _) = s.token(1).await;
    let (buyer, _) = s.token(2).await;
    let all = s.available_seat_ids(1, &viewer).await;
    let total = listed_count(&s, &viewer).await;
    assert_eq!(all.len() as i64, total);
    // Asked again and again with nothing changing: the same answer (from memory).
    for _ in 0..3 {
        assert_eq!(s.available_seat_ids(1, &viewer).await, all);
        assert_eq!(listed_count(&s, &viewer).await, total);
    }

    // A hold through the API is off both listings on the very next read.
    let r = s
        .post(
            "/api/reserve",
            Some(&buyer),
            json!({ "concertOptionId": 1, "seatId": 5 }),
        )
        .await;
    let rid = r.ok()["data"]["reservationId"].as_i64().unwrap();
    let without: Vec<i64> = all.iter().copied().filter(|&id| id != 5).collect();
    assert_eq!(s.available_seat_ids(1, &viewer).await, without);
    assert_eq!(listed_count(&s, &viewer).await, total - 1);

    // An operator releases the hold from another process: back at once.
    admin(&s, strategy, &["hold", "release", &rid.to_string()]);
    assert_eq!(s.available_seat_ids(1, &viewer).await, all);
    assert_eq!(listed_count(&s, &viewer).await, total);

    // An operator expires the viewer's token from another process: refused at once.
    admin(&s, strategy, &["token", "expire", &viewer]);
    s.get("/api/1/available-seats", Some(&viewer))
        .await
        .assert_error(401, "TOKEN_EXPIRED");
    s.get("/api/1/available-dates", Some(&viewer))
        .await
        .assert_error(401, "TOKEN_EXPIRED");
    // Unknown tokens never pass, whatever memory holds.
    let mut forged = buyer.clone();
    forged.replace_range(30.., if forged.ends_with("000000") { "111111" } else { "000000" });
    s.get("/api/1/available-seats", Some(&forged))
        .await
        .assert_error(401, "TOKEN_INVALID");
    assert_eq!(s.available_seat_ids(1, &buyer).await, all);

    // Metrics count where each of those reads was answered: 9 seat lists, 7 date lists, and
    // on SQLite the repeated ones came from memory (at least two of each three: a sweep may
    // commit).
    let m = s.send("GET", "/metrics", None, None).await;
    let count = |read: &str, from: &str| -> u64 {
        let prefix = format!("ticketing_read_answers_total{{read=\"{read}\",from=\"{from}\"}} ");
        let line = m.text.lines().find(|l| l.starts_with(&prefix));
        line.unwrap_or_else(|| panic!("no `{prefix}` in\n{}", m.text))[prefix.len()..]
            .parse()
            .unwrap()
    };
    for (read, total) in [("available_seats", 9), ("available_dates", 7)] {
        let (memory, database) = (count(read, "memory"), count(read, "database"));
        assert_eq!(memory + database, total, "{read}");
        if s.schema.is_some() {
            // PostgreSQL has no commit counter to validate memory by: every read is the
            // database's.
            assert_eq!(memory, 0, "{read}: {memory} from memory on PostgreSQL");
        } else {
            assert!(memory >= 2, "{read}: {memory} from memory");
        }
    }
}
