//! What the Redis lock costs: reserve and charge latency and throughput under each strategy,
//! plus the bare Redis round trip, for `docs/redis-strategy.md`.
//!
//! Run (a private Redis for the redis strategy):
//! `bash -c '. scripts/redis.sh; start_redis; cargo bench -p ticketing-core --bench redis_lock'`
//! Without `TICKETING_TEST_REDIS_URL` (or `TICKETING_REDIS_URL`) the redis rows are skipped, and
//! the output says so. `BENCH_OPS` sets the operations per case (default 400).

#![allow(clippy::unwrap_used)] // bench code

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ticketing_core::admin::NewConcert;
use ticketing_core::{Config, Durability, Money, ReserveCmd, StrategyKind, Ticketing};

fn redis_url() -> Option<String> {
    ["TICKETING_TEST_REDIS_URL", "TICKETING_REDIS_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

fn open(kind: StrategyKind, durability: Durability, dir: &tempfile::TempDir) -> Ticketing {
    let mut config = Config::new(dir.path().join(format!("{kind}.db"))).with_strategy(kind);
    config.redis_url = redis_url();
    config.durability = durability;
    config.max_active = Some(1_000_000);
    config.max_holds = 1_000_000;
    Ticketing::open(config).unwrap()
}

/// Latencies of one case, and the wall time it took.
struct Sample {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Sample {
    fn row(mut self, strategy: &str, case: &str, threads: usize) {
        self.latencies.sort();
        let pick = |q: f64| {
            let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
            self.latencies[i].as_secs_f64() * 1000.0
        };
        let mean = self.latencies.iter().sum::<Duration>().as_secs_f64() * 1000.0 / self.latencies.len() as f64;
        let throughput = self.latencies.len() as f64 / self.wall.as_secs_f64();
        println!(
            "| {strategy:<11} | {case:<28} | {threads:>7} | {mean:>9.3} | {:>8.3} | {:>8.3} | {:>8.3} | {throughput:>8.0} |",
            pick(0.5),
            pick(0.99),
            pick(1.0),
        );
    }
}

/// Runs `op(thread, i)` `per_thread` times on each of `threads` threads released together.
fn measure(threads: usize, per_thread: usize, op: impl Fn(usize, usize) + Send + Sync + 'static) -> Sample {
    let op = Arc::new(op);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|th| {
            let (op, barrier) = (op.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                (0..per_thread)
                    .map(|i| {
                        let started = Instant::now();
                        op(th, i);
                        started.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let latencies = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    Sample {
        latencies,
        wall: started.elapsed(),
    }
}

fn bench_strategy(kind: StrategyKind, durability: Durability, ops: usize) {
    let name = kind.name();
    for threads in [1usize, 8] {
        let per_thread = ops / threads;

        // Charge: one hot wallet (the seed's case: every request on the same row).
        let dir = tempfile::tempdir().unwrap();
        let t = open(kind, durability, &dir);
        let tc = t.clone();
        measure(threads, per_thread, move |_, _| {
            tc.charge(1, Money::from_units(100)).unwrap();
        })
        .row(name, "charge, one wallet", threads);
        assert_eq!(
            t.balance(1).unwrap(),
            Money::from_units(100 * (per_thread * threads) as i64)
        );

        // Charge: a wallet per thread (no contention: the lock's own cost).
        let tc = t.clone();
        measure(threads, per_thread, move |th, _| {
            tc.charge(100 + th as i64, Money::from_units(100)).unwrap();
        })
        .row(name, "charge, wallet per thread", threads);

        // Reserve: every request a different free seat.
        let created = t
            .add_concert(NewConcert {
                title: "Bench".into(),
                dates: vec!["2026-12-24".into()],
                seats: u32::try_from(per_thread * threads).unwrap(),
                price: Money::from_units(100),
            })
            .unwrap();
        let option = created.concert_options[0].concert_option_id;
        let seats: Vec<i64> = t.seat_map(option).unwrap().into_iter().map(|s| s.seat_id).collect();
        let tokens: Vec<String> = (0..threads)
            .map(|th| t.issue_token(1000 + th as i64).unwrap().token)
            .collect();
        let (tc, seats, tokens) = (t.clone(), Arc::new(seats), Arc::new(tokens));
        measure(threads, per_thread, move |th, i| {
            tc.reserve(ReserveCmd {
                token: tokens[th].clone(),
                concert_option_id: option,
                seat_id: seats[th * per_thread + i],
                user_id: None,
            })
            .unwrap();
        })
        .row(name, "reserve, free seat", threads);
    }
}

fn bench_redis_round_trip(url: &str, ops: usize) {
    let conn = parking_lot::Mutex::new(redis::Client::open(url).unwrap().get_connection().unwrap());
    let ping = measure(1, ops, move |_, _| {
        let _: String = redis::cmd("PING").query(&mut *conn.lock()).unwrap();
    });
    ping.row("(redis)", "PING round trip", 1);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let ops: usize = std::env::var("BENCH_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let url = redis_url();
    for durability in [Durability::Full, Durability::Normal] {
        println!(
            "\ndurability {}: {ops} operations per case, latency in ms, throughput in ops/s\n",
            match durability {
                Durability::Full => "full (the default)",
                Durability::Normal => "normal",
            }
        );
        println!("| strategy    | case                         | threads | mean (ms) | p50 (ms) | p99 (ms) | max (ms) | ops/s    |");
        println!("|-------------|------------------------------|--------:|----------:|---------:|---------:|---------:|---------:|");
        for kind in StrategyKind::ALL {
            if kind == StrategyKind::Redis && url.is_none() {
                println!("| redis       | skipped: TICKETING_TEST_REDIS_URL is unset |");
                continue;
            }
            bench_strategy(kind, durability, ops);
        }
        if let Some(url) = &url {
            bench_redis_round_trip(url, ops);
        }
    }
}
