//! `ticketing tui --bench-frame`: how long one refresh reads and one frame draws on a big sale.
//! Seeds 200 dates × 500 seats, 100,000 waiting tokens, 200 holds and 100 sales into `--db`
//! when it has no concert yet, then times each view's read and its frame on a 160 × 45
//! `TestBackend` (the drawing is the same code the real terminal runs; only the final write to
//! the tty is left out).

use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use ticketing_core::admin::NewConcert;
use ticketing_core::{Config, Durability, Money, PayCmd, ReserveCmd, Ticketing};

use super::app::{App, Tab};
use super::data;
use super::event::Event;

const DATES: usize = 200;
const SEATS: u32 = 500;
const WAITING: u64 = 100_000;
const ADMITTED: u64 = 200;

/// Seeds when needed, then prints the timings.
pub fn run(mut config: Config) -> anyhow::Result<()> {
    // Seeded tokens and holds must outlive the measurement.
    let day = Duration::from_secs(24 * 3600);
    config.token_ttl = day;
    config.waiting_ttl = day;
    config.hold_ttl = day;
    config.durability = Durability::Normal;
    let t = Ticketing::open(config).context("cannot open the database")?;
    if t.sales()?.is_empty() {
        let started = Instant::now();
        seed(&t)?;
        println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    }
    let q = t.queue_state()?;
    let dates: usize = t.sales()?.iter().map(|c| c.dates.len()).sum();
    println!(
        "data: {dates} dates, {} waiting, {} active / {} max",
        q.waiting, q.active, q.max_active
    );
    println!();
    println!("{:<34} {:>10} {:>10} {:>10}", "view (160 × 45)", "median", "p90", "max");

    let mut app = App::new();
    // Reads each view makes, then its frame.
    let views: [(&str, &[KeyCode]); 7] = [
        ("concerts", &[KeyCode::Char('1')]),
        ("seats (500 seats)", &[KeyCode::Char('1'), KeyCode::Enter]),
        ("queue, top of 100,000", &[KeyCode::Char('3'), KeyCode::Home]),
        ("queue, end of 100,000", &[KeyCode::Char('3'), KeyCode::End]),
        (
            "reservations (500 newest)",
            &[KeyCode::Char('4'), KeyCode::Char('f'), KeyCode::Char('f')],
        ),
        ("wallet (user 1)", &[KeyCode::Char('5')]),
        ("help overlay", &[KeyCode::Char('1'), KeyCode::Char('?')]),
    ];
    let mut terminal = Terminal::new(TestBackend::new(160, 45))?;
    for (name, keys) in views {
        app.modal = None;
        let mut pending = app.start();
        for k in keys {
            pending.extend(app.on_event(Event::Key(KeyEvent::from(*k))));
        }
        if app.tab == Tab::Wallets && app.wallets.user.is_none() {
            app.wallets.user = Some(1);
        }
        // Settle: answer every request (a loaded seat view may ask again for its map).
        while !pending.is_empty() {
            let mut more = Vec::new();
            for r in pending {
                more.extend(app.on_event(data::execute(&t, r)));
            }
            pending = more;
        }
        // A key or the End jump may move the token window: settle once more on the final want.
        let want = app.want();
        let read = time(20, || {
            let snapshot = data::load(&t, &want);
            std::hint::black_box(&snapshot);
        });
        let _ = app.on_event(Event::Loaded(Box::new(data::load(&t, &want))));
        let draw = time(200, || {
            // A fresh buffer each time, so every frame is drawn and diffed in full.
            terminal.clear().ok();
            terminal.draw(|f| f.render_widget(&app, f.area())).ok();
        });
        println!(
            "{:<34} {:>10} {:>10} {:>10}",
            format!("{name}: read"),
            ms(read[0]),
            ms(read[1]),
            ms(read[2])
        );
        println!(
            "{:<34} {:>10} {:>10} {:>10}",
            format!("{name}: frame"),
            ms(draw[0]),
            ms(draw[1]),
            ms(draw[2])
        );
    }
    Ok(())
}

/// Median, p90 and max of `n` runs.
fn time(n: usize, mut f: impl FnMut()) -> [Duration; 3] {
    let mut d: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    d.sort();
    [d[n / 2], d[n * 9 / 10], d[n - 1]]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn seed(t: &Ticketing) -> anyhow::Result<()> {
    let start = chrono::NaiveDate::from_ymd_opt(2027, 1, 1).context("date")?;
    let dates = (0..DATES)
        .filter_map(|i| start.checked_add_days(chrono::Days::new(i as u64)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    let concert = t.add_concert(NewConcert {
        title: "Bench Symphony".into(),
        dates,
        seats: SEATS,
        price: Money::from_units(100_000),
    })?;
    t.set_paused(true)?;
    // Tokens from several threads at once: the core's writer commits them in groups.
    let total = WAITING + ADMITTED;
    let threads = 8;
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || -> anyhow::Result<()> {
                    let mut user = 1 + k;
                    while user <= total {
                        t.issue_token(i64::try_from(user)?)?;
                        user += threads;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a seeding thread panicked"))??;
        }
        Ok(())
    })?;
    // Admit the first users, let each hold a seat, and half of them pay.
    t.set_max_active(u32::try_from(ADMITTED)?)?;
    t.set_paused(false)?;
    t.set_paused(true)?;
    let active = t.tokens(ticketing_core::TokenStatus::Active, 0, ADMITTED)?;
    let options = &concert.concert_options;
    for (i, tok) in active.iter().enumerate() {
        let option = options[i % options.len()].concert_option_id;
        let seats = t.seat_map(option)?;
        let seat = &seats[(i * 7) % seats.len()];
        let hold = t.reserve(ReserveCmd {
            token: tok.token.clone(),
            concert_option_id: option,
            seat_id: seat.seat_id,
            user_id: None,
        })?;
        if i % 2 == 0 {
            t.charge(tok.user_id, hold.price)?;
            t.pay(PayCmd {
                token: tok.token.clone(),
                reservation_id: hold.reservation_id,
                amount: hold.price,
                idempotency_key: None,
            })?;
        }
    }
    Ok(())
}
