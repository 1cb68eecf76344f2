//! Path segments that are not ids — not even UTF-8 — get the API's error body like every other
//! bad input, not the framework's plain text.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod http_support;

use http_support::Server;

#[tokio::test]
async fn bad_path_ids_get_the_error_envelope() {
    let s = Server::start("optimistic", &[]);
    let (token, _) = s.token(1).await;
    for (path, field) in [
        ("/api/%8a/available-dates", "concertId"),
        ("/api/%8a/available-seats", "concertOptionId"),
        ("/api/abc/available-dates", "concertId"),
        ("/api/0/available-seats", "concertOptionId"),
        ("/api/-3/available-seats", "concertOptionId"),
    ] {
        let a = s.get(path, Some(&token)).await;
        a.assert_bad("INVALID_ARGUMENT", field);
    }
}
