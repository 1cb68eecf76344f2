//! Hostile input, with proptest:
//!
//! - the HTTP request parsers through the real server: random JSON, wrong types, huge and
//!   negative numbers, unicode, garbage, on every POST/PATCH endpoint and the id-taking GETs —
//!   never a 5xx, every error is the `{"result","message","code"}` body, and a rejected request
//!   changes nothing in the database;
//! - `Money::parse_amount`: accepts exactly the amounts with at most 2 decimals in
//!   (0, 100,000,000], and what it accepts round-trips through the API's JSON;
//! - the scenario parser through the binary: `ticketing simulate <random TOML>` exits 0, 1 or
//!   2, never panics (101) nor hangs.
//!
//! Case counts: `TICKETING_FUZZ_CASES` (HTTP, default 2000), `TICKETING_FUZZ_SCENARIOS`
//! (default 150); the long run is `scripts/fuzz-api.sh --long`.
#![allow(clippy::unwrap_used)] // test code

mod reliability_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reliability_support::{env_number, open, snapshot, Client, Server, DEMO_PRICE};
use serde_json::json;
use ticketing_core::Money;

// ----- HTTP bodies ---------------------------------------------------------------------------

/// JSON literals chosen to hurt: wrong types, edges of i64/u64/f64, money edge cases, unicode,
/// lone surrogates, deep nesting.
const NASTY: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "1.5",
    "0.1",
    "10.005",
    "0.001",
    "1e2",
    "1E-2",
    "100000000",
    "100000000.01",
    "1e308",
    "-1e308",
    "5e-324",
    "1e400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "50000",
    "50000.0",
    "123456789012345678901234567890",
    "\"1\"",
    "\"\"",
    "\"50000\"",
    "\"토큰\"",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"💥\"",
    "[]",
    "[1]",
    "{}",
    "{\"a\":1}",
    "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]",
];

const FIELDS: &[&str] = &[
    "userId",
    "amount",
    "concertOptionId",
    "seatId",
    "reservationId",
    "token",
    "price",
    "status",
    "balance",
    "heldUntil",
    "paymentId",
    "queuePosition",
    "expiresAt",
];

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        3 => proptest::sample::select(NASTY).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap()),
        1 => (1u64..200_000).prop_map(|n| n.to_string()),
        1 => "\\PC{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec(("\\PC{0,8}", inner), 0..4).prop_map(|v| {
                let fields: Vec<String> = v
                    .into_iter()
                    .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap()))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// A body: mostly an object of the API's field names with nasty values, sometimes any JSON,
/// sometimes not JSON at all.
fn body() -> impl Strategy<Value = Option<String>> {
    let field_object =
        proptest::collection::vec((proptest::sample::select(FIELDS), json_value()), 0..6).prop_map(|v| {
            let fields: Vec<String> = v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        });
    prop_oneof![
        6 => field_object.prop_map(Some),
        2 => json_value().prop_map(Some),
        1 => "\\PC{0,40}".prop_map(Some),
        1 => proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| Some(String::from_utf8_lossy(&b).into_owned())),
        1 => Just(None),
    ]
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Valid,
    Random(String),
}

#[derive(Debug, Clone)]
struct Request {
    endpoint: usize,
    /// Path segment or query value for the GETs.
    segment: String,
    body: Option<String>,
    auth: Auth,
    idempotency_key: Option<String>,
}

const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/api/token"),
    ("POST", "/api/reserve"),
    ("PATCH", "/api/balance/charge"),
    ("PATCH", "/api/balance/use"),
    ("POST", "/api/pay"),
    ("GET", "/api/{}/available-dates"),
    ("GET", "/api/{}/available-seats"),
    ("GET", "/api/balance?userId={}"),
    ("GET", "/api/token/status?token={}"),
    ("DELETE", "/api/reserve"),
];

/// The fields an endpoint reads, with values that are valid (or nearly: ids in small ranges
/// around the demo data), as (name, strategy of the JSON text).
fn base_fields(endpoint: usize) -> Vec<(&'static str, BoxedStrategy<String>)> {
    let id = |hi: i64| (1..=hi).prop_map(|n| n.to_string()).boxed();
    let amount = prop_oneof![
        Just("50000".to_string()),
        (1..=100_000i64).prop_map(|c| format!("{}.{:02}", c / 100, c % 100))
    ]
    .boxed();
    match ENDPOINTS[endpoint].1 {
        "/api/token" => vec![("userId", id(50))],
        "/api/reserve" => vec![("concertOptionId", id(3)), ("seatId", id(110)), ("userId", id(3))],
        "/api/balance/charge" | "/api/balance/use" => vec![("userId", id(5)), ("amount", amount)],
        "/api/pay" => vec![("reservationId", id(4)), ("amount", amount)],
        _ => vec![],
    }
}

/// The endpoint's own fields, each present or not, then up to three fields (its own or any
/// other) set to a nasty value: a request that gets past most checks and fails at one.
fn mutated_body(endpoint: usize) -> BoxedStrategy<String> {
    let base: Vec<_> = base_fields(endpoint)
        .into_iter()
        .map(|(k, v)| proptest::option::weighted(0.9, v).prop_map(move |v| v.map(|v| (k, v))))
        .collect();
    let mutations = proptest::collection::vec((proptest::sample::select(FIELDS), json_value()), 0..3);
    (base, mutations)
        .prop_map(|(base, mutations)| {
            let mut fields: Vec<(&str, String)> = base.into_iter().flatten().collect();
            for (k, v) in mutations {
                match fields.iter_mut().find(|(name, _)| *name == k) {
                    Some(f) => f.1 = v,
                    None => fields.push((k, v)),
                }
            }
            let fields: Vec<String> = fields.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        })
        .boxed()
}

fn request() -> impl Strategy<Value = Request> {
    (0..ENDPOINTS.len()).prop_flat_map(|endpoint| {
        let segment = prop_oneof![
            proptest::sample::select(NASTY).prop_map(str::to_string),
            any::<i64>().prop_map(|n| n.to_string()),
            (1..=3i64).prop_map(|n| n.to_string()),
            "\\PC{0,20}",
            // Percent-escapes, including invalid UTF-8 (`%8a`).
            "(%[0-9A-Fa-f]{2}){1,4}",
        ];
        let auth = prop_oneof![
            Just(Auth::None),
            Just(Auth::Valid),
            "[ -~]{0,60}".prop_map(Auth::Random),
        ];
        let key = proptest::option::weighted(0.2, "[ -~]{0,300}");
        let body = prop_oneof![
            3 => mutated_body(endpoint).prop_map(Some),
            3 => body(),
        ];
        (Just(endpoint), segment, body, auth, key).prop_map(|(endpoint, segment, body, auth, idempotency_key)| {
            Request {
                endpoint,
                segment,
                body,
                auth,
                idempotency_key,
            }
        })
    })
}

/// Percent-encodes every byte outside unreserved characters, except a `%` already followed by
/// two hex digits (so escapes, invalid UTF-8 included, reach the server as such).
fn encode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || escaped {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn hostile_requests_never_5xx_and_rejections_change_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fuzz.db");
    let server = Server::start(&db, "optimistic", &["--demo"], &dir.path().join("server.log"));
    let c = Client::new(&server.base);
    // A user with an ACTIVE token, money and a live hold, so valid-looking requests reach deep.
    let token = runtime.block_on(async {
        let token = c.token(1).await;
        c.charge(1, DEMO_PRICE * 3.0).await.ok();
        c.send(
            "POST",
            "/api/reserve",
            Some(&token),
            Some(&json!({ "concertOptionId": 1, "seatId": 1 })),
        )
        .await
        .ok();
        token
    });
    let conn = open(&db);
    let cases = env_number("TICKETING_FUZZ_CASES", 2000) as u32;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    let outcome = runner.run(&request(), |r| {
        let (method, template) = ENDPOINTS[r.endpoint];
        let path = template.replace("{}", &encode(&r.segment));
        let auth = match &r.auth {
            Auth::None => None,
            Auth::Valid => Some(token.clone()),
            Auth::Random(t) => Some(t.clone()),
        };
        let mut headers = Vec::new();
        if let Some(k) = &r.idempotency_key {
            headers.push(("Idempotency-Key", k.as_str()));
        }
        let before = snapshot(&conn);
        let a = runtime
            .block_on(c.try_send(method, &path, auth.as_deref(), r.body.clone(), &headers))
            .map_err(|e| TestCaseError::fail(format!("no answer (did the server die?): {e}")))?;
        prop_assert!(a.status < 500, "{method} {path}: a 5xx: {a:?}");
        if a.status != 200 {
            prop_assert!(a.is_error_shape(), "{method} {path}: not the error body: {a:?}");
            let after = snapshot(&conn);
            if after != before {
                let changed = after.lines().zip(before.lines()).find(|(a, b)| a != b);
                let changed = changed
                    .map(|(a, b)| format!("was: {b}\nnow: {a}"))
                    .unwrap_or_else(|| "rows added".into());
                return Err(TestCaseError::fail(format!(
                    "{method} {path}: a rejected request ({}) changed the database:\n{changed}",
                    a.status
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!(
            "{e}\nserver log:\n{}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
    }
    eprintln!(
        "{cases} hostile requests in {:.1} s: no 5xx, every error well-formed, no rejected request changed anything",
        started.elapsed().as_secs_f64()
    );
    drop(server);
}

// ----- money ---------------------------------------------------------------------------------

/// The largest amount, in hundredths.
const MAX_CENTS: i64 = 10_000_000_000;

proptest! {
    #![proptest_config(Config { cases: 5000, failure_persistence: None, ..Config::default() })]

    /// Every amount written with at most 2 decimals in range is accepted as exactly those
    /// hundredths, and what the API writes back (`Money` as a JSON number) reads back the same.
    #[test]
    fn two_decimal_amounts_are_accepted_exactly(cents in 1..=MAX_CENTS, short in any::<bool>()) {
        let text = if short && cents % 10 == 0 {
            format!("{}.{}", cents / 100, cents % 100 / 10)
        } else {
            format!("{}.{:02}", cents / 100, cents % 100)
        };
        let f: f64 = serde_json::from_str(&text).unwrap();
        let money = Money::parse_amount("amount", f).unwrap();
        prop_assert_eq!(money, Money::from_cents(cents), "{}", text);
        prop_assert_eq!(money.to_string(), format!("{}.{:02}", cents / 100, cents % 100));
        let written = serde_json::to_string(&money).unwrap();
        let back: f64 = serde_json::from_str(&written).unwrap();
        prop_assert_eq!(Money::parse_amount("amount", back).unwrap(), money, "{}", written);
    }

    /// A third decimal digit, zero or less, or past the maximum: refused.
    #[test]
    fn other_amounts_are_refused(units in 0i64..=100_000_000, milli in 1i64..1000, over in 1..=MAX_CENTS) {
        if milli % 10 != 0 {
            let text = format!("{units}.{milli:03}");
            let f: f64 = text.parse().unwrap();
            prop_assert!(Money::parse_amount("amount", f).is_err(), "{} accepted", text);
        }
        let too_big = (MAX_CENTS + over) as f64 / 100.0;
        prop_assert!(Money::parse_amount("amount", too_big).is_err(), "{} accepted", too_big);
        prop_assert!(Money::parse_amount("amount", -(units as f64)).is_err());
        prop_assert!(Money::parse_amount("amount", -(over as f64) / 100.0).is_err());
    }

    /// For any f64 at all: accepted exactly when it is the double nearest to c/100 for some
    /// c in 1..=MAX_CENTS, and then as c hundredths.
    #[test]
    fn any_double_is_accepted_iff_it_is_a_cent_amount(f in proptest::num::f64::ANY) {
        let c = (f * 100.0).round();
        let is_cents = f.is_finite() && (1.0..=MAX_CENTS as f64).contains(&c) && c / 100.0 == f;
        match Money::parse_amount("amount", f) {
            Ok(m) => {
                prop_assert!(is_cents, "{} accepted as {}", f, m);
                prop_assert_eq!(m.cents(), c as i64);
            }
            Err(e) => {
                prop_assert!(!is_cents, "{} refused: {}", f, e);
                prop_assert_eq!(e.code(), "INVALID_AMOUNT");
            }
        }
    }
}

// ----- scenario files ------------------------------------------------------------------------

fn toml_value(valid: &'static [&'static str], typed: bool) -> BoxedStrategy<String> {
    const HOSTILE: &[&str] = &[
        "0",
        "-1",
        "1.5",
        "nan",
        "inf",
        "-inf",
        "18446744073709551615",
        "9223372036854775807",
        "\"\"",
        "\"x\"",
        "\"토큰\"",
        "true",
        "[]",
        "{}",
        "1979-05-27T07:32:00Z",
        "[1, \"a\"]",
        "{ a = 1 }",
    ];
    if typed {
        return proptest::sample::select(valid).prop_map(str::to_string).boxed();
    }
    prop_oneof![
        3 => proptest::sample::select(valid).prop_map(str::to_string),
        2 => proptest::sample::select(HOSTILE).prop_map(str::to_string),
        1 => "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
    ]
    .boxed()
}

/// A `key = value` line, present or not. `typed`: only values of the right type (which may
/// still be out of range), so that the checks after deserialization are reached too.
fn line(key: &'static str, valid: &'static [&'static str], typed: bool) -> BoxedStrategy<String> {
    proptest::option::weighted(if typed { 0.8 } else { 0.6 }, toml_value(valid, typed))
        .prop_map(move |v| v.map(|v| format!("{key} = {v}\n")).unwrap_or_default())
        .boxed()
}

fn section(name: &'static str, presence: f64, lines: Vec<BoxedStrategy<String>>) -> impl Strategy<Value = String> {
    (proptest::bool::weighted(presence), lines).prop_map(move |(present, lines)| {
        if present {
            format!("[{name}]\n{}", lines.concat())
        } else {
            String::new()
        }
    })
}

/// Scenario text: the real sections and keys with valid and hostile values (short durations
/// only: a valid scenario must run quickly), or a shipped scenario with bytes flipped, or noise.
fn scenario() -> impl Strategy<Value = String> {
    const DUR: &[&str] = &[
        "\"0s\"", "\"1ms\"", "\"5ms\"", "\"-1s\"", "\"abc\"", "\"1.5s\"", "\"10\"",
    ];
    const TTL: &[&str] = &["\"1s\"", "\"5m\"", "\"99999999h\"", "\"0s\"", "\"x\""];
    const KIND: &[&str] = &[
        "\"ticket\"",
        "\"charge\"",
        "\"use\"",
        "\"reserve\"",
        "\"pay\"",
        "\"wallet\"",
        "\"nope\"",
    ];
    let structured = |typed: bool| {
        let required = if typed { 1.0 } else { 0.85 };
        (
            if typed {
                Just("name = \"fuzz\"\n".to_string()).boxed()
            } else {
                line("name", &["\"fuzz\"", "\"\""], typed)
            },
            line("description", &["\"d\""], typed),
            section(
                "setup",
                0.85,
                vec![
                    line(
                        "concerts",
                        &[
                            "[{ title = \"T\", dates = [\"2026-12-24\"], seats = 5, price = 100 }]",
                            "[{ title = \"T\", dates = [\"2026-13-45\"], seats = 0, price = -1 }]",
                            "[{ title = \"T\", dates = [], seats = 10001, price = 0.001 }]",
                            "[{ title = \"T\", dates = [\"2026-12-24\", \"2026-12-24\"] }]",
                        ],
                        typed,
                    ),
                    line("balance", &["1000", "0.01", "1e20"], typed),
                    line(
                        "wallets",
                        &["[{ user = 1, balance = 100 }]", "[{ user = 0, balance = -5 }]"],
                        typed,
                    ),
                ],
            ),
            section(
                "load",
                required,
                vec![
                    line("users", &["1", "3", "0", "2000000"], typed),
                    line("arrival", &["\"burst\"", "\"ramp\"", "\"rate\"", "\"later\""], typed),
                    line("ramp", DUR, typed),
                    line("rate", &["1000", "0", "1e7", "500.5"], typed),
                    line("think", DUR, typed),
                    line("first_user", &["1", "0", "-7", "9223372036854775807"], typed),
                ],
            ),
            section(
                "queue",
                0.85,
                vec![
                    line("max_active", &["10", "0", "4294967295"], typed),
                    line("token_ttl", TTL, typed),
                    line("waiting_ttl", TTL, typed),
                    line("hold_ttl", TTL, typed),
                    line("max_holds", &["1", "0", "4294967295"], typed),
                    line("poll_min", DUR, typed),
                    line("poll_max", DUR, typed),
                ],
            ),
            section(
                "journey",
                required,
                vec![
                    line("kind", KIND, typed),
                    line("concert", &["1", "0", "2", "18446744073709551615"], typed),
                    line("reserve_attempts", &["1", "3", "0"], typed),
                    line("charge", &["true", "false"], typed),
                    line("pay", &["true", "false"], typed),
                    line("amount", &["100", "0.005", "-1", "1e9"], typed),
                    line("wallet_user", &["1", "0", "-1"], typed),
                    line("wallets", &["1", "2", "0"], typed),
                    line("use_ratio", &["0.5", "-0.1", "1.1"], typed),
                    line("ops_per_user", &["1", "2", "0"], typed),
                    line("seat", &["1", "0", "99"], typed),
                ],
            ),
            section(
                "expect",
                0.85,
                vec![
                    line("sold_out", &["true", "false"], typed),
                    line("paid", &["0", "1", "-1"], typed),
                    line(
                        "balances",
                        &["[{ user = 1, balance = 100 }]", "[{ user = -1, balance = 1e400 }]"],
                        typed,
                    ),
                    line("ok", &["{ charge = 3 }", "{ nonsense = 1 }", "{ charge = -1 }"], typed),
                    line("failed", &["{ charge = 0 }", "{}"], typed),
                    line("max_errors", &["0", "5"], typed),
                ],
            ),
        )
            .prop_map(|(a, b, c, d, e, f, g)| format!("{a}{b}{c}{d}{e}{f}{g}"))
    };
    let shipped = include_str!("../../scenarios/seed-reserve.toml");
    let flipped = proptest::collection::vec((0..shipped.len(), any::<u8>()), 1..4).prop_map(move |edits| {
        let mut bytes = shipped.as_bytes().to_vec();
        for (at, b) in edits {
            bytes[at] = b;
        }
        String::from_utf8_lossy(&bytes).into_owned()
    });
    prop_oneof![4 => structured(true), 3 => structured(false), 2 => flipped, 1 => "\\PC{0,200}"]
}

#[test]
fn random_scenario_files_never_crash_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let cases = env_number("TICKETING_FUZZ_SCENARIOS", 150) as u32;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let codes = std::cell::RefCell::new([0usize; 3]);
    let started = Instant::now();
    let outcome = runner.run(&scenario(), |text| {
        let file = dir.path().join("fuzz.toml");
        std::fs::write(&file, &text).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing"))
            .current_dir(dir.path())
            .env_remove("TICKETING_STRATEGY")
            .args([
                "--db",
                "sim.db",
                "--strategy",
                "optimistic",
                "simulate",
                "--users",
                "3",
                "--no-baseline",
            ])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestCaseError::fail(format!("simulate hung on:\n{text}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        let code = status.code();
        prop_assert!(
            matches!(code, Some(0..=2)),
            "simulate exited {:?} (101 = panic) on:\n{}\nstderr:\n{}",
            code,
            text,
            stderr
        );
        codes.borrow_mut()[code.unwrap_or(0) as usize] += 1;
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    eprintln!(
        "{cases} random scenario files in {:.1} s: exit 0 ×{}, 1 ×{}, 2 ×{}, never a panic",
        started.elapsed().as_secs_f64(),
        codes.borrow()[0],
        codes.borrow()[1],
        codes.borrow()[2]
    );
}
