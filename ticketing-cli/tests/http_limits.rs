//! Abuse limits on token issue and reserve: 429 with `Retry-After` past the per-user and
//! per-address limits, nothing changed by a refused request, and `--rate-limit off`.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod http_support;

use http_support::Server;
use serde_json::{json, Value};

async fn issue(s: &Server, user: i64) -> (u16, Option<String>, Value) {
    let resp = s
        .client
        .post(format!("{}/api/token", s.base))
        .json(&json!({ "userId": user }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.json().await.unwrap())
}

#[tokio::test]
async fn a_user_past_the_limit_gets_429_with_retry_after() {
    let s = Server::start("optimistic", &["--rate-limit-user", "3"]);
    for _ in 0..3 {
        assert_eq!(issue(&s, 1).await.0, 200);
    }
    let (status, retry, body) = issue(&s, 1).await;
    assert_eq!(status, 429);
    let seconds: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=20).contains(&seconds), "{seconds}");
    assert_eq!(body["result"], "429");
    assert_eq!(body["code"], "RATE_LIMITED");
    // Others are not affected; reserve is limited per user too.
    let (status, _, body) = issue(&s, 2).await;
    assert_eq!(status, 200);
    let token = body["data"]["token"].as_str().unwrap().to_string();
    let mut codes = Vec::new();
    for seat in 1..=4 {
        let a = s
            .post(
                "/api/reserve",
                Some(&token),
                json!({ "concertOptionId": 1, "seatId": seat }),
            )
            .await;
        codes.push(a.status);
    }
    assert_eq!(codes, [200, 200, 200, 429]);
    // The refused reserve held nothing: three seats are gone, seat 4 is still listed.
    let seats = s.available_seat_ids(1, &token).await;
    assert_eq!(seats.len(), 47);
    assert!(seats.contains(&4));
}

#[tokio::test]
async fn an_address_past_the_limit_gets_429() {
    let s = Server::start("optimistic", &["--rate-limit-ip", "5"]);
    let mut statuses = Vec::new();
    for user in 1..=7 {
        statuses.push(issue(&s, user).await.0);
    }
    assert_eq!(&statuses[..5], [200; 5]);
    assert!(statuses[5..].iter().all(|&st| st == 429), "{statuses:?}");
}

#[tokio::test]
async fn rate_limit_off_lets_everything_through() {
    let s = Server::start(
        "optimistic",
        &["--rate-limit", "off", "--rate-limit-user", "1", "--rate-limit-ip", "1"],
    );
    for user in 1..=5 {
        for _ in 0..3 {
            assert_eq!(issue(&s, user).await.0, 200);
        }
    }
}
