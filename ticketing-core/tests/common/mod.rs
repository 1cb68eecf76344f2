//! Shared fixtures of the core's integration tests: a temp-file database per test, a manual
//! clock, and helpers to set up concerts, tokens and snapshots of the whole database.

#![allow(dead_code, clippy::unwrap_used)]

use std::cell::Cell;
use std::sync::Arc;

use ticketing_core::admin::NewConcert;
use ticketing_core::{Config, Database, ManualClock, Money, ScratchSchema, StrategyKind, Ticketing, TokenStatus};

/// The Redis URL the test command provides (`scripts/test.sh` starts a private server).
pub fn redis_url() -> Option<String> {
    std::env::var("TICKETING_TEST_REDIS_URL").ok().filter(|s| !s.is_empty())
}

/// The PostgreSQL server the test command provides (`scripts/test.sh` starts a private one).
pub fn pg_url() -> Option<String> {
    std::env::var("TICKETING_TEST_PG_URL").ok().filter(|s| !s.is_empty())
}

/// Which database a story runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    /// The backend of the story running on this thread: `under` sets it, `Fixture::with`
    /// reads it, so a story is written once, with no backend in its signature.
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
}

/// The backend of the running story.
pub fn backend() -> Backend {
    BACKEND.with(Cell::get)
}

/// Runs `story` under `kind` on `backend`. The redis strategy needs `TICKETING_TEST_REDIS_URL`
/// and PostgreSQL `TICKETING_TEST_PG_URL`; without them a story is skipped locally and fails
/// in CI (so CI can never silently skip a strategy or a backend).
pub fn under(backend: Backend, kind: StrategyKind, story: fn(StrategyKind)) {
    for (missing, what) in [
        (
            kind == StrategyKind::Redis && redis_url().is_none(),
            "TICKETING_TEST_REDIS_URL",
        ),
        (
            backend == Backend::Postgres && pg_url().is_none(),
            "TICKETING_TEST_PG_URL",
        ),
    ] {
        if missing {
            assert!(std::env::var_os("CI").is_none(), "CI must provide {what}");
            eprintln!("skipped: {what} is unset (run scripts/test.sh)");
            return;
        }
    }
    BACKEND.with(|b| b.set(backend));
    story(kind)
}

/// One story per use case, run against every strategy on both backends.
#[macro_export]
macro_rules! every_strategy {
    ($($story:ident),+ $(,)?) => {
        $(
            mod $story {
                use ticketing_core::StrategyKind;
                use $crate::common::{under, Backend};
                #[test]
                fn sqlite_pessimistic() { under(Backend::Sqlite, StrategyKind::Pessimistic, super::$story) }
                #[test]
                fn sqlite_optimistic() { under(Backend::Sqlite, StrategyKind::Optimistic, super::$story) }
                #[test]
                fn sqlite_redis() { under(Backend::Sqlite, StrategyKind::Redis, super::$story) }
                #[test]
                fn postgres_pessimistic() { under(Backend::Postgres, StrategyKind::Pessimistic, super::$story) }
                #[test]
                fn postgres_optimistic() { under(Backend::Postgres, StrategyKind::Optimistic, super::$story) }
                #[test]
                fn postgres_redis() { under(Backend::Postgres, StrategyKind::Redis, super::$story) }
            }
        )+
    };
}

pub struct Fixture {
    pub t: Ticketing,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    /// PostgreSQL: the test's own schema, dropped after the test (fields drop in order: the
    /// service and its connections first).
    pub schema: Option<ScratchSchema>,
}

impl Fixture {
    pub fn new(kind: StrategyKind) -> Fixture {
        Fixture::with(kind, |_| {})
    }

    /// A fresh database on the running story's backend (see [`under`]).
    pub fn with(kind: StrategyKind, tweak: impl FnOnce(&mut Config)) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let schema = match backend() {
            Backend::Sqlite => None,
            Backend::Postgres => {
                Some(ScratchSchema::create(&pg_url().expect("TICKETING_TEST_PG_URL"), "test").expect("scratch schema"))
            }
        };
        let db = match &schema {
            Some(schema) => Database::parse(schema.url()),
            None => Database::from(dir.path().join("ticketing.db")),
        };
        let mut config = Config::new(db).with_strategy(kind);
        config.redis_url = redis_url();
        config.max_active = Some(1000);
        // Stories race hundreds of writes on one row (the queue's, a seat's); on a loaded test
        // machine PostgreSQL's queue behind that row can outlast the default 5 s wait for a
        // connection. The stories test outcomes, not that bound (ticketing-cli/tests/cluster_outage.rs does).
        config.db_timeout = std::time::Duration::from_secs(60);
        tweak(&mut config);
        let clock = Arc::new(ManualClock::default());
        let t = Ticketing::open_with_clock(config, clock.clone()).expect("open");
        Fixture { t, clock, dir, schema }
    }

    /// The database, as `--db` would name it.
    pub fn db(&self) -> Database {
        self.t.config().db.clone()
    }

    /// Runs raw SQL on the database, behind the service's back (planted violations).
    pub fn sql(&self, sql: &str) {
        match &self.t.config().db {
            Database::Sqlite(path) => rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap(),
            Database::Postgres(url) => postgres::Client::connect(url, postgres::NoTls)
                .unwrap()
                .batch_execute(sql)
                .unwrap(),
        }
    }

    /// One integer from a raw query.
    pub fn sql_i64(&self, sql: &str) -> i64 {
        match &self.t.config().db {
            Database::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Database::Postgres(url) => postgres::Client::connect(url, postgres::NoTls)
                .unwrap()
                .query_one(sql, &[])
                .unwrap()
                .get(0),
        }
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
        match &self.t.config().db {
            Database::Sqlite(path) => snapshot(path),
            Database::Postgres(url) => pg_snapshot(url),
        }
    }
}

pub fn pg_snapshot(url: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for table in tables {
        let rows = c
            .query(&format!("SELECT t::text FROM {table} t ORDER BY 1"), &[])
            .unwrap();
        out.extend(rows.iter().map(|r| format!("{table}|{}", r.get::<_, String>(0))));
    }
    out
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
