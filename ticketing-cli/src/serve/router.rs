//! Routes and handlers of docs/contract.md §HTTP API, and the OpenAPI document generated from them.
//!
//! Every route is in [`ROUTES`]: the router is built from it, and a test checks that it equals
//! the routes the OpenAPI document describes. A handler parses its input strictly
//! ([`super::dto`]), makes one call into the core (on the read pool, or awaited for a write),
//! and renders a DTO.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use serde::Serialize;
use ticketing_core::{ConcertDate, PayCmd, ReserveCmd, Seat, TokenProblem, TokenStatus};
use utoipa::OpenApi;

use super::auth::{form_pairs, RequestToken};
use super::dto::{
    id_text, AmountRequest, BalanceBody, ConcertItem, ConcertsBody, DateItem, DatesBody, Envelope, ErrorBody,
    HealthBody, JsonObject, PayData, PayRequest, ReserveData, ReserveRequest, SeatItem, SeatsBody, TokenData,
    TokenRequest, UseRequest,
};
use super::error::ApiError;
use super::limits::ClientIp;
use super::{observe, write, AppState};

type Handler = fn() -> MethodRouter<AppState>;

/// Every route: method, path (axum and OpenAPI share the `{param}` syntax), handler.
pub const ROUTES: &[(&str, &str, Handler)] = &[
    ("POST", "/api/token", || on(MethodFilter::POST, issue_token)),
    ("DELETE", "/api/token", || on(MethodFilter::DELETE, leave_queue)),
    ("GET", "/api/token/status", || on(MethodFilter::GET, token_status)),
    ("GET", "/api/concerts", || on(MethodFilter::GET, concerts)),
    ("GET", "/api/{concertId}/available-dates", || {
        on(MethodFilter::GET, available_dates)
    }),
    ("GET", "/api/{concertOptionId}/available-seats", || {
        on(MethodFilter::GET, available_seats)
    }),
    ("POST", "/api/reserve", || on(MethodFilter::POST, reserve)),
    ("PATCH", "/api/balance/charge", || on(MethodFilter::PATCH, charge)),
    ("PATCH", "/api/balance/use", || on(MethodFilter::PATCH, use_points)),
    ("GET", "/api/balance", || on(MethodFilter::GET, balance)),
    ("POST", "/api/pay", || on(MethodFilter::POST, pay)),
    ("GET", "/health", || on(MethodFilter::GET, health)),
    ("GET", "/metrics", || on(MethodFilter::GET, metrics)),
    ("GET", "/openapi.json", || on(MethodFilter::GET, openapi)),
];

/// The application: every route of [`ROUTES`], JSON 404/405 answers, the request observer.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in ROUTES {
        router = router.route(path, handler());
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe::observe))
        .with_state(state)
}

/// The OpenAPI 3 description of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketing",
        description = "Concert ticketing: waiting queue, seat holds, wallet and payments (the seed's API; the \
                       contract is docs/contract.md in the repository). Errors are \
                       {\"result\":\"<status>\",\"message\":\"…\",\"code\":\"…\"}. A token goes in \
                       `Authorization: Bearer <token>` (security scheme `token`), a bare `Authorization: <token>`, \
                       the `token` query parameter (security scheme `tokenQuery`) or, on the operations whose \
                       body has one, the `token` body field."
    ),
    paths(
        issue_token, leave_queue, token_status, concerts, available_dates, available_seats, reserve, charge,
        use_points, balance, pay, health, metrics, openapi
    ),
    components(schemas(
        Envelope<TokenData>, Envelope<ReserveData>, Envelope<PayData>, TokenData, ReserveData, PayData, ErrorBody,
        TokenRequest, ReserveRequest, AmountRequest, UseRequest, PayRequest, ConcertsBody, ConcertItem, DatesBody, DateItem,
        SeatsBody, SeatItem, BalanceBody, HealthBody
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The two places a client may put its token that OpenAPI can name as security schemes: the
/// `Authorization: Bearer` header (`token`) and the `token` query parameter (`tokenQuery`).
/// Operations needing a token list both as alternatives, so a client that sends the query
/// parameter meets the document's requirement as it meets the server's.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "tokenQuery",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
        );
    }
}

// ----- helpers -------------------------------------------------------------------------------

/// A 200 with a JSON body.
fn json<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    Ok(json_bytes(encode(value)?))
}

/// `value` as JSON.
fn encode<T: Serialize>(value: &T) -> Result<Bytes, ApiError> {
    let mut bytes = Vec::with_capacity(256);
    serde_json::to_writer(&mut bytes, value).map_err(|e| ApiError::internal(format!("cannot encode JSON: {e}")))?;
    Ok(Bytes::from(bytes))
}

/// A 200 answer with a JSON body.
fn json_bytes(body: Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// The body as one JSON object.
fn object(body: Result<Bytes, BytesRejection>) -> Result<JsonObject, ApiError> {
    match body {
        Ok(bytes) => JsonObject::parse(&bytes),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the request body is too large",
        )),
        Err(e) => Err(ApiError::bad_input(format!("cannot read the request body: {e}"))),
    }
}

// ----- handlers ------------------------------------------------------------------------------

/// Issue a queue token (or return the user's live one, same place).
#[utoipa::path(post, path = "/api/token", tag = "queue", request_body = TokenRequest,
    responses(
        (status = 200, description = "The token and its place", body = Envelope<TokenData>),
        (status = 400, description = "userId missing, mistyped or ≤ 0", body = ErrorBody),
        (status = 429, description = "Too many requests from this address or user (see Retry-After)", body = ErrorBody),
    ))]
async fn issue_token(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let user_id = object(body)?.id("userId")?;
    if let Some(limits) = &s.limits {
        limits.check(ip, &format!("user:{user_id}"))?;
    }
    let view = write(&s, move |t| t.issue_token_answer(user_id)).await?;
    json(&Envelope::success(TokenData::issued(view)))
}

/// Leave the queue: the token expires and its slot goes to the next waiter (addition to the seed).
#[utoipa::path(delete, path = "/api/token", tag = "queue", security(("token" = []), ("tokenQuery" = [])),
    responses(
        (status = 200, description = "The token, now EXPIRED", body = Envelope<TokenData>),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
    ))]
async fn leave_queue(State(s): State<AppState>, token: RequestToken) -> Result<Response, ApiError> {
    let token = token.into_string();
    let view = write(&s, move |t| t.leave_answer(&token)).await?;
    json(&Envelope::success(TokenData::issued(view)))
}

/// A token's status and place; keeps a WAITING token alive. An EXPIRED token answers 200.
#[utoipa::path(get, path = "/api/token/status", tag = "queue", security(("token" = []), ("tokenQuery" = [])),
    responses(
        (status = 200, description = "Status, place and estimated wait", body = Envelope<TokenData>),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
    ))]
async fn token_status(State(s): State<AppState>, token: RequestToken) -> Result<Response, ApiError> {
    let token = token.into_string();
    let view = write(&s, move |t| t.token_status_answer(&token)).await?; // may write (refresh, admit)
    json(&Envelope::success(TokenData::status(view)))
}

/// Every concert.
#[utoipa::path(get, path = "/api/concerts", tag = "catalogue",
    responses((status = 200, description = "Every concert", body = ConcertsBody)))]
async fn concerts(State(s): State<AppState>) -> Result<Response, ApiError> {
    let t = s.ticketing;
    let list = s.reads.run(move || t.concerts()).await?;
    json(&ConcertsBody {
        concerts: list
            .into_iter()
            .map(|c| ConcertItem {
                concert_id: c.concert_id,
                title: c.title,
            })
            .collect(),
    })
}

/// The dates of a concert with at least one AVAILABLE seat. Needs an ACTIVE token.
#[utoipa::path(get, path = "/api/{concertId}/available-dates", tag = "catalogue", security(("token" = []), ("tokenQuery" = [])),
    params(
        ("concertId" = i64, Path, minimum = 1, description = "The concert"),
    ),
    responses(
        (status = 200, description = "Dates with free seats", body = DatesBody),
        (status = 400, description = "concertId is not a positive integer", body = ErrorBody),
        (status = 401, description = "Missing, unknown or expired token", body = ErrorBody),
        (status = 403, description = "The token is still WAITING", body = ErrorBody),
        (status = 404, description = "Unknown concert", body = ErrorBody),
    ))]
async fn available_dates(
    State(s): State<AppState>,
    concert_id: Result<Path<String>, PathRejection>,
    token: RequestToken,
) -> Result<Response, ApiError> {
    // A segment that is not even UTF-8 gets the API's error body too, not axum's plain text.
    let Path(concert_id) = concert_id.map_err(|_| ApiError::bad_input("concertId must be a positive integer"))?;
    let concert_id = id_text("concertId", &concert_id)?;
    let token = token.into_string();
    // Answered from memory while the database is unchanged, as `available-seats` is.
    let body = match s.ticketing.available_dates_memoized(&s.dates, &token, concert_id) {
        Some(answer) => answer??,
        None => {
            let (t, memo) = (s.ticketing, s.dates);
            s.reads
                .run(move || t.available_dates_memo(&memo, &token, concert_id, encode_dates))
                .await??
        }
    };
    Ok(json_bytes(body))
}

/// The body of `available-dates`, encoded once per change of the concert.
fn encode_dates(dates: &[ConcertDate]) -> Result<Bytes, ApiError> {
    encode(&DatesBody {
        concert_options: dates
            .iter()
            .map(|d| DateItem {
                concert_option_id: d.concert_option_id,
                concert_date: &d.concert_date,
                price: d.price,
                available_seats: d.available_seats,
            })
            .collect(),
    })
}

/// The AVAILABLE seats of one date. Needs an ACTIVE token.
#[utoipa::path(get, path = "/api/{concertOptionId}/available-seats", tag = "catalogue", security(("token" = []), ("tokenQuery" = [])),
    params(
        ("concertOptionId" = i64, Path, minimum = 1, description = "The date"),
    ),
    responses(
        (status = 200, description = "Free seats", body = SeatsBody),
        (status = 400, description = "concertOptionId is not a positive integer", body = ErrorBody),
        (status = 401, description = "Missing, unknown or expired token", body = ErrorBody),
        (status = 403, description = "The token is still WAITING", body = ErrorBody),
        (status = 404, description = "Unknown date", body = ErrorBody),
    ))]
async fn available_seats(
    State(s): State<AppState>,
    option_id: Result<Path<String>, PathRejection>,
    token: RequestToken,
) -> Result<Response, ApiError> {
    // A segment that is not even UTF-8 gets the API's error body too, not axum's plain text.
    let Path(option_id) = option_id.map_err(|_| ApiError::bad_input("concertOptionId must be a positive integer"))?;
    let option_id = id_text("concertOptionId", &option_id)?;
    let token = token.into_string();
    // The hot read of a rush: answered on the event loop from the encoded answer kept for the
    // date while the database is unchanged (see `ticketing_core::Memo`), else read on the pool.
    let body = match s.ticketing.available_seats_memoized(&s.seats, &token, option_id) {
        Some(answer) => answer??,
        None => {
            let (t, memo) = (s.ticketing, s.seats);
            s.reads
                .run(move || t.available_seats_memo(&memo, &token, option_id, encode_seats))
                .await??
        }
    };
    Ok(json_bytes(body))
}

/// The body of `available-seats`, encoded once per change of the date.
fn encode_seats(seats: &[Seat]) -> Result<Bytes, ApiError> {
    encode(&SeatsBody {
        seats: seats
            .iter()
            .map(|seat| SeatItem {
                seat_id: seat.seat_id,
                seat_number: &seat.seat_number,
                status: "AVAILABLE",
            })
            .collect(),
    })
}

/// Hold a seat for the hold time. Of concurrent attempts on one seat exactly one wins.
#[utoipa::path(post, path = "/api/reserve", tag = "reservation", security(("token" = []), ("tokenQuery" = [])), request_body = ReserveRequest,
    responses(
        (status = 200, description = "The hold", body = Envelope<ReserveData>),
        (status = 400, description = "A field is missing or mistyped", body = ErrorBody),
        (status = 401, description = "Missing, unknown or expired token", body = ErrorBody),
        (status = 403, description = "WAITING token, or userId is not the token's user", body = ErrorBody),
        (status = 404, description = "Unknown date or seat", body = ErrorBody),
        (status = 409, description = "Seat held or sold, too many holds, lost race", body = ErrorBody),
        (status = 429, description = "Too many requests from this address or user (see Retry-After)", body = ErrorBody),
    ))]
async fn reserve(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    token: RequestToken,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = object(body)?;
    let cmd = ReserveCmd {
        token: token.or_body(body.opt_str("token")?),
        concert_option_id: body.id("concertOptionId")?,
        seat_id: body.id("seatId")?,
        user_id: body.opt_id("userId")?,
    };
    if let Some(limits) = &s.limits {
        limits.check(ip, &format!("token:{}", cmd.token))?;
    }
    let hold = write(&s, move |t| t.reserve_answer(cmd)).await?;
    json(&Envelope::success(ReserveData {
        reservation_id: hold.reservation_id,
        held_until: hold.held_until,
        price: hold.price,
    }))
}

/// Add money to a wallet (created on first charge).
#[utoipa::path(patch, path = "/api/balance/charge", tag = "wallet", request_body = AmountRequest,
    responses(
        (status = 200, description = "The new balance", body = BalanceBody),
        (status = 400, description = "userId or amount invalid, or the balance would pass the maximum", body = ErrorBody),
    ))]
async fn charge(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = object(body)?;
    let (user_id, amount) = (body.id("userId")?, body.amount("amount")?);
    let balance = write(&s, move |t| t.charge_answer(user_id, amount)).await?;
    json(&BalanceBody { balance })
}

/// Take money from a wallet (the seed's "use points"; addition to the seed's API). Spending
/// needs the wallet owner's live token (WAITING or ACTIVE): charge and balance stay open as in
/// the seed, but nobody spends another user's money.
#[utoipa::path(patch, path = "/api/balance/use", tag = "wallet", request_body = UseRequest, security(("token" = []), ("tokenQuery" = [])),
    responses(
        (status = 200, description = "The new balance", body = BalanceBody),
        (status = 400, description = "userId or amount invalid, or INSUFFICIENT_BALANCE", body = ErrorBody),
        (status = 401, description = "Missing, unknown or expired token", body = ErrorBody),
        (status = 403, description = "userId is not the token's user", body = ErrorBody),
    ))]
async fn use_points(
    State(s): State<AppState>,
    token: RequestToken,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = object(body)?;
    let (user_id, amount) = (body.id("userId")?, body.amount("amount")?);
    let token = token.or_body(body.opt_str("token")?);
    let holder = write(&s, move |t| t.token_status_answer(&token)).await?;
    if holder.status == TokenStatus::Expired {
        return Err(ticketing_core::Error::Unauthorized(TokenProblem::Expired).into());
    }
    if holder.user_id != user_id {
        return Err(ticketing_core::Error::UserMismatch.into());
    }
    let balance = write(&s, move |t| t.use_points_answer(user_id, amount)).await?;
    json(&BalanceBody { balance })
}

/// A wallet's balance (0 for a user without one).
#[utoipa::path(get, path = "/api/balance", tag = "wallet",
    params(("userId" = i64, Query, minimum = 1, description = "The user")),
    responses(
        (status = 200, description = "The balance", body = BalanceBody),
        (status = 400, description = "userId missing or not a positive integer", body = ErrorBody),
    ))]
async fn balance(State(s): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let text = query
        .as_deref()
        .and_then(|q| form_pairs(q).find(|(k, _)| k == "userId").map(|(_, v)| v))
        .ok_or_else(|| ApiError::bad_input("userId is required"))?;
    let user_id = id_text("userId", &text)?;
    let t = s.ticketing;
    let balance = s.reads.run(move || t.balance(user_id)).await?;
    json(&BalanceBody { balance })
}

/// Pay a held reservation from the owner's wallet; the token expires and its slot frees.
#[utoipa::path(post, path = "/api/pay", tag = "reservation", security(("token" = []), ("tokenQuery" = [])), request_body = PayRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$",
        description = "Repeat-safe key: 1 to 255 printable ASCII characters (a header value holds no other), kept 24 hours")),
    responses(
        (status = 200, description = "The payment", body = Envelope<PayData>),
        (status = 400, description = "Invalid field, amount not the price, INSUFFICIENT_BALANCE", body = ErrorBody),
        (status = 401, description = "Missing, unknown or expired token", body = ErrorBody),
        (status = 403, description = "The token is still WAITING", body = ErrorBody),
        (status = 404, description = "Unknown reservation, or not yours", body = ErrorBody),
        (status = 409, description = "Hold expired, already paid, key reused with other parameters, lost race", body = ErrorBody),
    ))]
async fn pay(
    State(s): State<AppState>,
    token: RequestToken,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = object(body)?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_input("Idempotency-Key must be printable text"))?
                .to_owned(),
        ),
    };
    let cmd = PayCmd {
        token: token.or_body(body.opt_str("token")?),
        reservation_id: body.id("reservationId")?,
        amount: body.amount("amount")?,
        idempotency_key,
    };
    let receipt = write(&s, move |t| t.pay_answer(cmd)).await?;
    json(&Envelope::success(PayData {
        payment_id: receipt.payment_id,
        balance: receipt.balance,
    }))
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The server answers", body = HealthBody)))]
async fn health() -> Result<Response, ApiError> {
    json(&HealthBody { status: "ok" })
}

/// Prometheus metrics: requests and latency by route and status, queue, seats, lost races,
/// memoized reads.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let memos = [
        ("available_dates", s.dates.counts()),
        ("available_seats", s.seats.counts()),
    ];
    let (t, m) = (s.ticketing, s.metrics);
    let text = s.reads.run(move || m.render(&t, &memos)).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 description", content_type = "application/json")))]
async fn openapi() -> Result<Response, ApiError> {
    json(&ApiDoc::openapi())
}

async fn no_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ROUTE_NOT_FOUND",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn wrong_method(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let routed: BTreeSet<(String, String)> =
            ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
                if item.get(method).is_some() {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        assert_eq!(routed, documented);
    }

    /// What the server refuses, the document says, so a client generated from it never sends
    /// it (the fuzz script checks the same against the running server).
    #[test]
    fn the_document_states_the_constraints_the_server_enforces() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        for (schema, field) in [
            ("TokenRequest", "userId"),
            ("ReserveRequest", "concertOptionId"),
            ("ReserveRequest", "seatId"),
            ("ReserveRequest", "userId"),
            ("AmountRequest", "userId"),
            ("UseRequest", "userId"),
            ("PayRequest", "reservationId"),
        ] {
            assert_eq!(schemas[schema]["properties"][field]["minimum"], 1, "{schema}.{field}");
        }
        for schema in ["AmountRequest", "UseRequest", "PayRequest"] {
            let a = &schemas[schema]["properties"]["amount"];
            let bounds = [&a["exclusiveMinimum"], &a["maximum"], &a["multipleOf"]].map(|v| v.as_f64());
            assert_eq!(bounds, [Some(0.0), Some(100_000_000.0), Some(0.01)], "{schema}.amount");
        }
        for schema in ["ReserveRequest", "UseRequest", "PayRequest"] {
            assert!(schemas[schema]["properties"]["token"].is_object(), "{schema}.token");
        }
        let param = |path: &str, method: &str, name: &str| {
            let params = doc["paths"][path][method]["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            params
                .into_iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{method} {path} {name}"))
        };
        for (path, name) in [
            ("/api/{concertId}/available-dates", "concertId"),
            ("/api/{concertOptionId}/available-seats", "concertOptionId"),
            ("/api/balance", "userId"),
        ] {
            assert_eq!(param(path, "get", name)["schema"]["minimum"], 1, "{path} {name}");
        }
        let key = &param("/api/pay", "post", "Idempotency-Key")["schema"];
        assert_eq!(
            (&key["minLength"], &key["maxLength"]),
            (&serde_json::json!(1), &serde_json::json!(255))
        );
        // The token: the header or the query parameter, either satisfies the document.
        assert_eq!(
            doc["components"]["securitySchemes"]["tokenQuery"],
            serde_json::json!({"type": "apiKey", "in": "query", "name": "token"})
        );
        let mut secured = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(security) = op.get("security") {
                    secured += 1;
                    let either = serde_json::json!([{"token": []}, {"tokenQuery": []}]);
                    assert_eq!(security, &either, "{method} {path}");
                }
            }
        }
        assert_eq!(secured, 7, "every operation that needs a token");
        // The rate-limited operations say so.
        for (path, method) in [("/api/token", "post"), ("/api/reserve", "post")] {
            assert!(
                doc["paths"][path][method]["responses"]["429"].is_object(),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn the_router_builds() {
        // Route conflicts panic at build time; building here catches them in `cargo test`.
        let _ = ROUTES.iter().fold(Router::<AppState>::new(), |r, (_, path, handler)| {
            r.route(path, handler())
        });
    }
}
