//! Contention benchmark of the core, per strategy, with the default durability (FULL).
//!
//! 1. The seed's four cases with 10 threads released by a barrier: total and average time
//!    (median of 21 runs), as the seed's report gives them.
//! 2. Reserve and pay throughput and latency on 1, 2, 8 and 64 threads.
//!
//! Run: `cargo bench -p ticketing-core --bench contention` (add `TICKETING_TEST_REDIS_URL` for
//! the redis strategy). With `BENCH_PG_URL=postgres://…` every run is on PostgreSQL instead,
//! each in a fresh schema dropped at the end.

#![allow(clippy::unwrap_used)] // bench code

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ticketing_core::admin::NewConcert;
use ticketing_core::{Config, Database, Money, PayCmd, ReserveCmd, ScratchSchema, StrategyKind, Ticketing};

/// PostgreSQL schemas made for this run, dropped when `main` ends.
static SCHEMAS: std::sync::Mutex<Vec<ScratchSchema>> = std::sync::Mutex::new(Vec::new());

fn open(kind: StrategyKind, dir: &tempfile::TempDir, name: &str) -> Ticketing {
    let db = match std::env::var("BENCH_PG_URL") {
        Ok(url) => {
            let schema = ScratchSchema::create(&url, "bench").unwrap();
            let db = Database::parse(schema.url());
            SCHEMAS.lock().unwrap().push(schema);
            db
        }
        Err(_) => Database::from(dir.path().join(format!("{name}.db"))),
    };
    let mut config = Config::new(db).with_strategy(kind);
    config.redis_url = std::env::var("TICKETING_TEST_REDIS_URL").ok();
    config.max_active = Some(1_000_000);
    config.max_holds = 1000;
    Ticketing::open(config).unwrap()
}

fn seats(t: &Ticketing, dates: usize, per_date: u32) -> Vec<(i64, i64)> {
    let created = t
        .add_concert(NewConcert {
            title: "Bench".into(),
            dates: (0..dates).map(|d| format!("2027-01-{:02}", d + 1)).collect(),
            seats: per_date,
            price: Money::from_units(100),
        })
        .unwrap();
    created
        .concert_options
        .iter()
        .flat_map(|o| {
            t.seat_map(o.concert_option_id)
                .unwrap()
                .into_iter()
                .map(|s| (o.concert_option_id, s.seat_id))
        })
        .collect()
}

/// Runs `f(i)` on `n` threads released together; returns the wall time from release to the
/// last finish, and each call's latency.
fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> (Duration, Vec<Duration>) {
    let barrier = Arc::new(Barrier::new(n + 1));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let _ = f(i);
                start.elapsed()
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let lat: Vec<Duration> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    (start.elapsed(), lat)
}

/// Every use case once on 10 threads at once, on users and seats the case does not touch: the
/// service is measured as it runs (the seed measured a running server), not as it starts. On
/// PostgreSQL a new service opens its pooled connections and prepares its statements on first
/// use, a few milliseconds each; on SQLite this changes nothing measurable.
fn warm_up(t: &Ticketing) {
    let s = seats(t, 1, 20);
    let t2 = t.clone();
    race(10, move |i| {
        let user = 1_000 + i as i64;
        let token = t2.issue_token(user).unwrap().token;
        t2.charge(user, Money::from_units(200)).unwrap();
        t2.use_points(user, Money::from_units(100)).unwrap();
        let hold = t2
            .reserve(ReserveCmd {
                token: token.clone(),
                concert_option_id: s[10 + i].0,
                seat_id: s[10 + i].1,
                user_id: None,
            })
            .unwrap();
        t2.pay(PayCmd {
            token,
            reservation_id: hold.reservation_id,
            amount: Money::from_units(100),
            idempotency_key: None,
        })
        .unwrap();
    });
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn seed_cases(kind: StrategyKind) {
    const RUNS: usize = 21;
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<(&str, String, Duration, Duration)> = Vec::new();
    for case in ["charge", "use", "reserve", "pay"] {
        let mut totals = Vec::new();
        let mut avgs = Vec::new();
        let mut outcome = String::new();
        for run in 0..RUNS {
            let t = open(kind, &dir, &format!("{case}-{run}"));
            warm_up(&t);
            let (total, lat, result) = match case {
                "charge" => {
                    let t2 = t.clone();
                    let (total, lat) = race(10, move |_| t2.charge(1, Money::from_units(100)));
                    (total, lat, format!("final points {}", t.balance(1).unwrap()))
                }
                "use" => {
                    t.charge(1, Money::from_units(10_000)).unwrap();
                    let t2 = t.clone();
                    let (total, lat) = race(10, move |_| t2.use_points(1, Money::from_units(100)));
                    (total, lat, format!("final points {}", t.balance(1).unwrap()))
                }
                "reserve" => {
                    let s = seats(&t, 1, 50);
                    let tokens: Vec<String> = (1..=10).map(|u| t.issue_token(u).unwrap().token).collect();
                    let t2 = t.clone();
                    let (option, seat) = s[0];
                    let ok = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let ok2 = ok.clone();
                    let (total, lat) = race(10, move |i| {
                        if t2
                            .reserve(ReserveCmd {
                                token: tokens[i].clone(),
                                concert_option_id: option,
                                seat_id: seat,
                                user_id: None,
                            })
                            .is_ok()
                        {
                            ok2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    });
                    let ok = ok.load(std::sync::atomic::Ordering::SeqCst);
                    (total, lat, format!("{ok} success, {} failures", 10 - ok))
                }
                _ => {
                    let s = seats(&t, 1, 50);
                    let token = t.issue_token(1).unwrap().token;
                    let hold = t
                        .reserve(ReserveCmd {
                            token: token.clone(),
                            concert_option_id: s[0].0,
                            seat_id: s[0].1,
                            user_id: None,
                        })
                        .unwrap();
                    t.charge(1, Money::from_units(1000)).unwrap();
                    let t2 = t.clone();
                    let ok = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let ok2 = ok.clone();
                    let (total, lat) = race(10, move |_| {
                        let r = t2.pay(PayCmd {
                            token: token.clone(),
                            reservation_id: hold.reservation_id,
                            amount: Money::from_units(100),
                            idempotency_key: None,
                        });
                        if r.is_ok() {
                            ok2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    });
                    let ok = ok.load(std::sync::atomic::Ordering::SeqCst);
                    (
                        total,
                        lat,
                        format!(
                            "{ok} success, {} failures, final points {}",
                            10 - ok,
                            t.balance(1).unwrap()
                        ),
                    )
                }
            };
            totals.push(total);
            avgs.push(lat.iter().sum::<Duration>() / 10);
            outcome = result;
        }
        rows.push((case, outcome, median(totals), median(avgs)));
    }
    for (case, outcome, total, avg) in rows {
        println!(
            "{:<12} seed-{:<8} {:<44} total {:>8.3} ms   average {:>8.3} ms",
            kind.name(),
            case,
            outcome,
            total.as_secs_f64() * 1e3,
            avg.as_secs_f64() * 1e3
        );
    }
}

fn throughput(kind: StrategyKind, op: &str, threads: usize) {
    let per_thread = if threads == 1 {
        2000
    } else {
        8000 / threads.min(8) * threads.min(8) / threads.max(1)
    };
    let per_thread = per_thread.max(64);
    let total = per_thread * threads;
    let dir = tempfile::tempdir().unwrap();
    let t = open(kind, &dir, "tp");
    let all = seats(&t, total.div_ceil(1000), 1000);
    // One user (and token) per operation: pay expires its token.
    let tokens: Vec<String> = {
        let t2 = t.clone();
        let chunks = 8;
        let per = total.div_ceil(chunks);
        let (_, _) = (0, 0);
        let handles: Vec<_> = (0..chunks)
            .map(|c| {
                let t2 = t2.clone();
                thread::spawn(move || {
                    ((c * per)..((c + 1) * per).min(total))
                        .map(|u| t2.issue_token(u as i64 + 1).unwrap().token)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    };
    let holds: Vec<i64> = if op == "pay" {
        let t2 = t.clone();
        let tokens2 = tokens.clone();
        let all2 = all.clone();
        let handles: Vec<_> = (0..8)
            .map(|c| {
                let (t2, tokens2, all2) = (t2.clone(), tokens2.clone(), all2.clone());
                thread::spawn(move || {
                    (0..total)
                        .filter(|i| i % 8 == c)
                        .map(|i| {
                            t2.charge(i as i64 + 1, Money::from_units(100)).unwrap();
                            let (option, seat) = all2[i];
                            (
                                i,
                                t2.reserve(ReserveCmd {
                                    token: tokens2[i].clone(),
                                    concert_option_id: option,
                                    seat_id: seat,
                                    user_id: None,
                                })
                                .unwrap()
                                .reservation_id,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut v: Vec<(usize, i64)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        v.sort();
        v.into_iter().map(|(_, r)| r).collect()
    } else {
        Vec::new()
    };
    let hist = Arc::new(parking_lot_free::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap(),
    ));
    let (tokens, all, holds) = (Arc::new(tokens), Arc::new(all), Arc::new(holds));
    let t2 = t.clone();
    let h2 = hist.clone();
    let op_name = op.to_string();
    let (wall, _) = race(threads, move |i| {
        let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for k in 0..per_thread {
            let n = k * threads + i;
            let start = Instant::now();
            let r = if op_name == "reserve" {
                let (option, seat) = all[n];
                t2.reserve(ReserveCmd {
                    token: tokens[n].clone(),
                    concert_option_id: option,
                    seat_id: seat,
                    user_id: None,
                })
                .map(drop)
            } else {
                t2.pay(PayCmd {
                    token: tokens[n].clone(),
                    reservation_id: holds[n],
                    amount: Money::from_units(100),
                    idempotency_key: None,
                })
                .map(drop)
            };
            r.unwrap();
            local.record(start.elapsed().as_micros() as u64).unwrap();
        }
        h2.lock().unwrap().add(&local).unwrap();
    });
    let h = hist.lock().unwrap();
    println!(
        "{:<12} {:<8} {:>3} threads {:>7} ops  {:>9.0} ops/s   p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
        kind.name(),
        op,
        threads,
        total,
        total as f64 / wall.as_secs_f64(),
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.max() as f64 / 1e3,
    );
    assert!(ticketing_core::invariants::check(&t).unwrap().is_empty());
}

mod parking_lot_free {
    pub use std::sync::Mutex;
}

fn main() {
    let mut kinds = vec![StrategyKind::Pessimistic, StrategyKind::Optimistic];
    if std::env::var("TICKETING_TEST_REDIS_URL").is_ok() {
        kinds.push(StrategyKind::Redis);
    } else {
        println!("(redis skipped: TICKETING_TEST_REDIS_URL is unset; scripts/bench-core.sh starts one)");
    }
    // `cargo bench --bench contention -- seed` (or `-- throughput`) runs one part.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let backend = if std::env::var("BENCH_PG_URL").is_ok() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("backend: {backend}");
    let wants = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if wants("seed") {
        println!("== the seed's four cases, 10 threads, median of 21 runs (seed: 194-609 ms total) ==");
        for &kind in &kinds {
            seed_cases(kind);
        }
    }
    if !wants("throughput") {
        SCHEMAS.lock().unwrap().clear();
        return;
    }
    println!("\n== throughput, durability FULL ==");
    for &kind in &kinds {
        for op in ["reserve", "pay"] {
            for threads in [1, 2, 8, 64] {
                throughput(kind, op, threads);
            }
        }
    }
    SCHEMAS.lock().unwrap().clear();
}
