//! The `--tui` view: drawn on `TestBackend` from a fixed board, and fed by real (short)
//! simulations through the aggregator's snapshots and the real screen loop.

use std::time::{Duration, Instant};

use clap::Parser;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use tokio::sync::watch;

use super::live::{Board, Live, OpLive, Phase, RunLive, RunState};
use super::metrics::Op;
use super::screen::{run_loop, Leave};
use super::{execute, plan, Out, Plan, SimulateArgs};
use crate::{Cli, Command, GlobalArgs};

const W: u16 = 160;
const H: u16 = 45;

fn text_of(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn screen_of(board: &Board) -> String {
    let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
    terminal.draw(|f| f.render_widget(board, f.area())).unwrap();
    text_of(terminal.backend().buffer())
}

fn op(op: Op, count: u64, ok: u64, conflicts: u64, ms: [f64; 5], timeline: Vec<u32>) -> OpLive {
    OpLive {
        op,
        count,
        ok,
        conflicts,
        rejected: 0,
        errors: 0,
        throughput: count as f64 / 2.5,
        ms,
        timeline_start: 0,
        timeline,
    }
}

/// hot-seat: pessimistic done, optimistic halfway, redis not started.
fn fixed_board() -> Board {
    let ramp = |peak: u32| (0..25).map(|i| (i * peak / 24).max(1)).collect::<Vec<u32>>();
    let run = |label: &str, state: RunState, done: u64, sold_out: u64| RunLive {
        scenario_index: 0,
        scenario: "hot-seat".into(),
        label: label.into(),
        users: 10_000,
        state,
        elapsed: Duration::from_millis(2_500),
        done,
        sold_out,
        gave_up: 0,
        ops: Vec::new(),
    };
    let mut pessimistic = run("pessimistic", RunState::Done { ok: true }, 1, 9_999);
    pessimistic.elapsed = Duration::from_millis(8_200);
    pessimistic.ops = vec![
        op(
            Op::Token,
            10_000,
            10_000,
            0,
            [793.1, 1310.0, 1440.0, 1470.0, 1470.0],
            ramp(700),
        ),
        op(Op::Reserve, 500, 1, 499, [10.4, 13.5, 32.1, 73.4, 73.4], vec![0; 25]),
    ];
    let mut optimistic = run("optimistic", RunState::Running, 0, 4_321);
    optimistic.ops = vec![
        op(
            Op::Token,
            10_000,
            10_000,
            0,
            [1250.0, 2080.0, 2220.0, 2270.0, 2270.0],
            ramp(600),
        ),
        op(Op::Status, 20_000, 20_000, 0, [5.75, 1170.0, 1850.0, 1970.0, 2150.0], {
            let mut t = vec![0; 18];
            t.extend([300, 7800, 200, 50, 40, 30, 20]);
            t
        }),
        op(Op::Reserve, 450, 1, 449, [52.4, 77.2, 84.3, 116.0, 116.0], {
            let mut t = vec![0; 20];
            t.extend([3, 380, 60, 5, 2]);
            t
        }),
    ];
    Board {
        runs: vec![pessimistic, optimistic, run("redis", RunState::Pending, 0, 0)],
        phase: Phase::Running,
    }
}

#[test]
fn live_view_of_a_fixed_board() {
    insta::assert_snapshot!("live_running", screen_of(&fixed_board()));
}

#[test]
fn finished_board_says_so_and_how_to_leave() {
    let mut board = fixed_board();
    board.runs[1].state = RunState::Done { ok: false };
    board.runs.truncate(2);
    board.phase = Phase::Finished { ok: false };
    let screen = screen_of(&board);
    assert!(
        screen.contains(" FAIL  a check failed · press any key to leave"),
        "{screen}"
    );
    assert!(screen.contains("2 of 2 runs ended"), "{screen}");
    // A finished run's throughput is labelled by its last bucket, not "now".
    assert!(screen.contains("token   last"), "{screen}");
}

/// The view's timings vary from run to run: they are zeroed in the data before drawing, so
/// the snapshot keeps every count and every label.
fn redact_timings(board: &Board) -> Board {
    let mut board = board.clone();
    for r in &mut board.runs {
        r.elapsed = Duration::ZERO;
        for o in &mut r.ops {
            o.throughput = 0.0;
            o.ms = [0.0; 5];
            o.timeline.clear();
        }
    }
    board
}

fn parse(args: &[&str]) -> (GlobalArgs, SimulateArgs) {
    let cli = Cli::try_parse_from(["ticketing", "simulate"].iter().chain(args)).unwrap();
    match cli.command {
        Command::Simulate(a) => (cli.global, a),
        _ => unreachable!("a simulate command"),
    }
}

/// Runs the simulation on another thread, as `run` does, publishing to a fresh board.
fn spawn_simulation(
    global: GlobalArgs,
    args: SimulateArgs,
) -> (
    watch::Receiver<Board>,
    watch::Sender<bool>,
    std::thread::JoinHandle<(bool, bool)>,
) {
    let plan: Plan = plan(&global, &args).unwrap();
    let (live, board) = Live::new(plan.runs_live());
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let handle = std::thread::spawn(move || {
        let mut out = Out {
            deferred: Some(String::new()),
        };
        let s = execute(&global, &args, &plan, Some(&live), cancel_rx, &mut out).unwrap();
        let ok = super::all_ok(&s.results);
        live.set_phase(Phase::Finished { ok });
        (ok, s.cancelled)
    });
    (board, cancel_tx, handle)
}

/// Two seed cases on both strategies, their snapshots driven into the real screen loop on
/// `TestBackend`: progress only grows, every run ends PASS with its exact counts, and the
/// final frame (timings zeroed) is the snapshot.
#[test]
fn a_short_simulation_drives_the_view() {
    let (global, args) = parse(&[
        "seed-charge",
        "seed-use",
        "--strategy",
        "pessimistic,optimistic",
        "--no-baseline",
    ]);
    let (mut board, _cancel, sim) = spawn_simulation(global, args);
    let watcher = board.clone();
    let mut seen: Vec<Board> = Vec::new();
    let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let leave = run_loop(&mut terminal, &mut board, Duration::from_millis(5), |wait| {
        std::thread::sleep(wait);
        let now = watcher.borrow().clone();
        let finished = matches!(now.phase, Phase::Finished { .. });
        seen.push(now);
        assert!(Instant::now() < deadline, "the simulation ends");
        // Any key once it has finished leaves.
        Ok(finished.then(|| KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE)))
    })
    .unwrap();
    assert_eq!(leave, Leave::Done);
    let (ok, cancelled) = sim.join().unwrap();
    assert!(ok && !cancelled);

    // Progress never goes back, per run.
    for pair in seen.windows(2) {
        for (a, b) in pair[0].runs.iter().zip(&pair[1].runs) {
            assert!(b.finished() >= a.finished(), "{a:?} then {b:?}");
        }
    }
    let last = seen.last().unwrap();
    assert_eq!(last.runs.len(), 4);
    for r in &last.runs {
        assert_eq!(r.state, RunState::Done { ok: true }, "{r:?}");
        assert_eq!((r.finished(), r.done), (10, 10), "{r:?}");
    }
    let frame = text_of(terminal.backend().buffer());
    assert!(
        frame.contains(" PASS  every invariant and expectation holds"),
        "{frame}"
    );
    insta::assert_snapshot!("live_finished_seed_cases", screen_of(&redact_timings(last)));
}

/// `q` while runs are going cancels them: the command stops well before the runs would end.
#[test]
fn quitting_cancels_the_runs() {
    // Enough users that the first run lasts far longer than the 5 ms between looks at it,
    // however fast the machine: `q` comes while it runs, then the runs are cancelled.
    let (global, args) = parse(&[
        "sold-out-rush",
        "--users",
        "20000",
        "--strategy",
        "pessimistic,optimistic",
        "--no-baseline",
    ]);
    let (mut board, cancel, sim) = spawn_simulation(global, args);
    let watcher = board.clone();
    let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
    let leave = run_loop(&mut terminal, &mut board, Duration::from_millis(5), |wait| {
        std::thread::sleep(wait);
        let b = watcher.borrow();
        let first = b.runs.first().expect("a run");
        assert!(
            matches!(first.state, RunState::Pending | RunState::Setup | RunState::Running),
            "the first run ended before it was seen running: {first:?}"
        );
        let running = first.state == RunState::Running;
        Ok(running.then(|| KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)))
    })
    .unwrap();
    assert_eq!(leave, Leave::Quit);
    let asked = Instant::now();
    cancel.send_replace(true);
    let (_, cancelled) = sim.join().unwrap();
    assert!(cancelled);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        asked.elapsed()
    );
    let b = board.borrow();
    assert!(
        b.runs[0].finished() < 20000 && b.runs[1].state == RunState::Pending,
        "{:?}",
        b.runs
    );
}
