//! Shared fixtures of the core's integration tests: a temp-file database per test, a manual
//! clock, and helpers to set up concerts, tokens and snapshots of the whole database.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use ticketing_core::admin::NewConcert;
use ticketing_core::{Config, ManualClock, Money, StrategyKind, Ticketing, TokenStatus};

/// The Redis URL the test command provides (`scripts/test.sh` starts a private server).
pub fn redis_url() -> Option<String> {
    std::env::var("TICKETING_TEST_REDIS_URL").ok().filter(|s| !s.is_empty())
}

/// Runs `story` under `kind`; the redis case needs `TICKETING_TEST_REDIS_URL` and fails in CI
/// without it (so CI can never silently skip a strategy).
pub fn under(kind: StrategyKind, story: fn(StrategyKind)) {
    if kind == StrategyKind::Redis && redis_url().is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide TICKETING_TEST_REDIS_URL"
        );
        eprintln!("skipped under redis: TICKETING_TEST_REDIS_URL is unset (run scripts/test.sh)");
        return;
    }
    story(kind)
}

/// One story per use case, run against every strategy.
#[macro_export]
macro_rules! every_strategy {
    ($($story:ident),+ $(,)?) => {
        $(
            mod $story {
                use ticketing_core::StrategyKind;
                #[test]
                fn pessimistic() { $crate::common::under(StrategyKind::Pessimistic, super::$story) }
                #[test]
                fn optimistic() { $crate::common::under(StrategyKind::Optimistic, super::$story) }
                #[test]
                fn redis() { $crate::common::under(StrategyKind::Redis, super::$story) }
            }
        )+
    };
}

pub struct Fixture {
    pub t: Ticketing,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(kind: StrategyKind) -> Fixture {
        Fixture::with(kind, |_| {})
    }

    pub fn with(kind: StrategyKind, tweak: impl FnOnce(&mut Config)) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new(dir.path().join("ticketing.db")).with_strategy(kind);
        config.redis_url = redis_url();
        config.max_active = Some(1000);
        tweak(&mut config);
        let clock = Arc::new(ManualClock::default());
        let t = Ticketing::open_with_clock(config, clock.clone()).expect("open");
        Fixture { t, clock, dir }
    }

    pub fn db_path(&self) -> std::path::PathBuf {
        self.t.config().db_path.clone()
    }

    /// A concert with one date of `seats` seats at `price`; returns (option id, seat ids).
    pub fn concert(&self, seats: u32, price: i64) -> (i64, Vec<i64>) {
        let created = self
            .t
            .add_concert(NewConcert {
                title: "Test concert".into(),
                dates: vec!["2026-12-24".into()],
                seats,
                price: Money::from_units(price),
            })
            .expect("add concert");
        let option = created.concert_options[0].concert_option_id;
        let seats = self
            .t
            .seat_map(option)
            .expect("seat map")
            .into_iter()
            .map(|s| s.seat_id)
            .collect();
        (option, seats)
    }

    /// An ACTIVE token for `user`.
    pub fn active_token(&self, user: i64) -> String {
        let view = self.t.issue_token(user).expect("issue token");
        assert_eq!(
            view.status,
            TokenStatus::Active,
            "user {user} should be admitted at once"
        );
        view.token
    }

    /// Every row of every table, for "nothing changed" checks.
    pub fn snapshot(&self) -> Vec<String> {
        snapshot(&self.db_path())
    }
}

pub fn snapshot(path: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).expect("open snapshot connection");
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = c.prepare(&format!("SELECT * FROM {table} ORDER BY rowid")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut line = table.clone();
                for i in 0..n {
                    line.push_str(&format!("|{:?}", r.get_ref(i)?));
                }
                Ok(line)
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}
