//! `ticketing simulate --tui`: a live view of the running simulation. It only reads: the
//! aggregator publishes a [`Board`] every 200 ms (`simulate/live.rs`) and this screen draws
//! the latest one a few times a second (`impl Widget for &Board`), on a thread of its own so
//! drawing never slows the users or the aggregator. [`run_loop`] is generic over ratatui's
//! `Backend`: tests drive it on `TestBackend`.
//!
//! Keys: `q`, Esc or Ctrl-C leave; while runs are going that cancels them (the command prints
//! the tables of the scenarios that finished and exits 1). When every run has ended the last
//! frame stays until a key is pressed; then the terminal is given back and the usual tables
//! print on stdout. The terminal is restored on drop (quit, completion, error) and on panic,
//! as `ticketing tui` does it (`tui/terminal.rs`; the few lines are copied here because that
//! module is the TUI's own).

use std::fmt::Write as _;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::backend::Backend;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, Widget};
use ratatui::Terminal;
use tokio::sync::watch;

use super::live::{bucket_of, Board, Phase, RunLive, RunState};
// The operator console's terminal guard: raw mode and the alternate screen, restored on drop
// and (through its panic hook) on a panic in any thread.
use super::metrics::{Op, TIMELINE_BUCKET};
use crate::tui::terminal::TerminalGuard;

/// How often the screen redraws.
pub const REFRESH: Duration = Duration::from_millis(250);

const HEADER: Style = Style::new().add_modifier(Modifier::BOLD);
const DIM: Style = Style::new().fg(Color::DarkGray);
const BAR_WIDTH: usize = 30;

/// Why the screen loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// Every run ended and a key was pressed.
    Done,
    /// The user quit while runs were going: cancel them.
    Quit,
    /// The command failed or went away: give the terminal back at once.
    Failed,
}

/// Draws the latest board every `refresh` until the user leaves or the command fails.
/// `next_key` waits up to the given time for a key (`None`: none came).
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    board: &mut watch::Receiver<Board>,
    refresh: Duration,
    mut next_key: impl FnMut(Duration) -> anyhow::Result<Option<KeyEvent>>,
) -> anyhow::Result<Leave>
where
    B::Error: Send + Sync + 'static,
{
    loop {
        // A sender that went away without a last word means the command is gone.
        let gone = board.has_changed().is_err();
        let latest = board.borrow_and_update().clone();
        terminal.draw(|f| f.render_widget(&latest, f.area()))?;
        let finished = match latest.phase {
            Phase::Failed(_) => return Ok(Leave::Failed),
            Phase::Finished { .. } => true,
            Phase::Running if gone => return Ok(Leave::Failed),
            Phase::Running => false,
        };
        let Some(key) = next_key(refresh)? else { continue };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        if finished {
            return Ok(Leave::Done);
        }
        let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
            return Ok(Leave::Quit);
        }
    }
}

/// The screen running on its own thread.
pub struct Screen {
    handle: JoinHandle<anyhow::Result<Leave>>,
}

impl Screen {
    /// Takes the terminal over and starts drawing `board`. Leaving with `q` (or the screen
    /// failing or panicking) sets `cancel`. `panic_after` makes the screen panic on purpose.
    pub fn start(
        board: watch::Receiver<Board>,
        cancel: watch::Sender<bool>,
        panic_after: Option<Duration>,
    ) -> anyhow::Result<Screen> {
        let panic_at = panic_after.map(|d| std::time::Instant::now() + d);
        let mut guard = TerminalGuard::enter().context("cannot take over the terminal")?;
        let handle = std::thread::Builder::new()
            .name("simulate-screen".into())
            .spawn(move || {
                let mut board = board;
                // Cancels the runs unless the loop ends with every run done; also on panic.
                let mut cancel_on_exit = CancelOnDrop(cancel, true);
                let result = run_loop(&mut guard.terminal, &mut board, REFRESH, |timeout| {
                    if panic_at.is_some_and(|at| std::time::Instant::now() >= at) {
                        panic!("--panic-after: panicking on purpose to show the terminal is restored");
                    }
                    read_key(timeout)
                });
                cancel_on_exit.1 = !matches!(result, Ok(Leave::Done));
                drop(guard);
                result
            })
            .context("cannot start the screen thread")?;
        Ok(Screen { handle })
    }

    /// Waits until the screen has given the terminal back.
    pub fn finish(self) -> anyhow::Result<Leave> {
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the live view panicked"))?
    }
}

struct CancelOnDrop(watch::Sender<bool>, bool);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.1 {
            self.0.send_replace(true);
        }
    }
}

/// A key from the real terminal, waiting up to `timeout`; stops when the terminal is no
/// longer ours (a panic elsewhere restored it).
fn read_key(timeout: Duration) -> anyhow::Result<Option<KeyEvent>> {
    use crossterm::event::{self as ct, Event as Ct};
    anyhow::ensure!(crate::tui::terminal::is_taken(), "the terminal was given back");
    if !ct::poll(timeout)? {
        return Ok(None);
    }
    Ok(match ct::read()? {
        Ct::Key(k) => Some(k),
        _ => None,
    })
}

// ----- drawing -----------------------------------------------------------------------------------

impl Widget for &Board {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let current = current_run(self);
        let scenario_runs: Vec<&RunLive> = match current {
            Some(c) => self
                .runs
                .iter()
                .filter(|r| r.scenario_index == c.scenario_index)
                .collect(),
            None => Vec::new(),
        };
        let op_rows = current.map_or(0, |c| c.ops.len());
        let latency_rows: usize = Op::ALL
            .iter()
            .map(|op| {
                scenario_runs
                    .iter()
                    .filter(|r| r.ops.iter().any(|o| o.op == *op))
                    .count()
            })
            .sum();
        let progress_rows = self.runs.len().clamp(1, 10) as u16;
        let latency_rows = latency_rows.max(1) as u16;
        // Taller sparklines (up to 3 rows each) when the screen has room for them.
        let spare = area
            .height
            .saturating_sub(1 + progress_rows + 2 + 2 + latency_rows + 3 + 1);
        let op_rows = op_rows.max(1) as u16;
        let op_height = (spare / op_rows).clamp(1, 3);
        let [top, progress, throughput, latency, bottom] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(progress_rows + 2),
            Constraint::Length(op_rows * op_height + 2),
            Constraint::Min(latency_rows + 3),
            Constraint::Length(1),
        ])
        .areas(area);
        header(self, current, top, buf);
        progress_panel(self, current, progress, buf);
        throughput_panel(current, op_height, throughput, buf);
        latency_panel(&scenario_runs, latency, buf);
        footer(self, bottom, buf);
    }
}

/// The run the screen follows: the latest one started, else the first.
fn current_run(board: &Board) -> Option<&RunLive> {
    board
        .runs
        .iter()
        .rev()
        .find(|r| r.state != RunState::Pending)
        .or(board.runs.first())
}

fn header(board: &Board, current: Option<&RunLive>, area: Rect, buf: &mut Buffer) {
    let ended = board
        .runs
        .iter()
        .filter(|r| matches!(r.state, RunState::Done { .. }))
        .count();
    let mut text = format!("ticketing simulate · {ended} of {} runs ended", board.runs.len());
    if let Some(c) = current {
        let _ = write!(text, " · now: {} on {}", c.scenario, c.label);
    }
    Paragraph::new(Line::from(vec![
        Span::styled(text, HEADER),
        Span::styled(
            "   latency = end − intended start (open loop, no coordinated omission)",
            DIM,
        ),
    ]))
    .render(area, buf);
}

fn state_text(state: RunState) -> (&'static str, Style) {
    match state {
        RunState::Pending => ("pending", DIM),
        RunState::Setup => ("setting up", Style::new().fg(Color::Yellow)),
        RunState::Running => ("running", Style::new().fg(Color::Cyan)),
        RunState::Checking => ("checking", Style::new().fg(Color::Yellow)),
        RunState::Done { ok: true } => ("PASS", Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)),
        RunState::Done { ok: false } => ("FAIL", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)),
    }
}

fn progress_panel(board: &Board, current: Option<&RunLive>, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" Progress: users whose journey ended / users ");
    let inner = block.inner(area);
    block.render(area, buf);
    let rows = usize::from(inner.height);
    // Keep the followed run in the window when there are more runs than rows.
    let at = current
        .and_then(|c| board.runs.iter().position(|r| std::ptr::eq(r, c)))
        .unwrap_or(0);
    let first = (at + 1).saturating_sub(rows).min(board.runs.len().saturating_sub(rows));
    let name_width = board.runs.iter().map(|r| r.scenario.len()).max().unwrap_or(0);
    let label_width = board.runs.iter().map(|r| r.label.len()).max().unwrap_or(0);
    let lines: Vec<Line> = board
        .runs
        .iter()
        .skip(first)
        .take(rows)
        .map(|r| {
            let finished = r.finished();
            let filled = if r.users == 0 {
                0
            } else {
                (finished.min(r.users) as usize * BAR_WIDTH) / r.users as usize
            };
            let (state, style) = state_text(r.state);
            Line::from(vec![
                Span::raw(format!("{:<name_width$}  {:<label_width$}  ", r.scenario, r.label)),
                Span::styled(format!("{state:<10} "), style),
                Span::styled("█".repeat(filled), Style::new().fg(Color::Cyan)),
                Span::styled("░".repeat(BAR_WIDTH - filled), DIM),
                Span::raw(format!(
                    " {:>7} / {:<7} done {} · sold out {} · gave up {}   {}",
                    group(finished),
                    group(r.users),
                    group(r.done),
                    group(r.sold_out),
                    group(r.gave_up),
                    if r.state == RunState::Pending {
                        String::new()
                    } else {
                        seconds(r.elapsed)
                    }
                )),
            ])
        })
        .collect();
    Paragraph::new(lines).render(inner, buf);
}

fn throughput_panel(current: Option<&RunLive>, op_height: u16, area: Rect, buf: &mut Buffer) {
    let title = match current {
        Some(r) => format!(
            " Throughput of {} on {}: requests/s, one bar per {} ms ",
            r.scenario,
            r.label,
            TIMELINE_BUCKET.as_millis()
        ),
        None => " Throughput ".to_string(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(run) = current.filter(|r| !r.ops.is_empty()) else {
        Paragraph::new(Span::styled("no requests yet", DIM)).render(inner, buf);
        return;
    };
    // The buckets to show end with the last complete one (running) or the last with data.
    let end = if run.state == RunState::Running {
        bucket_of(run.elapsed)
    } else {
        run.ops
            .iter()
            .map(|o| o.timeline_start + o.timeline.len())
            .max()
            .unwrap_or(0)
    };
    let per_second = 1000 / TIMELINE_BUCKET.as_millis().max(1) as u64;
    let now = if run.state == RunState::Running { "now" } else { "last" };
    const LABEL: u16 = 36;
    for (i, op) in run.ops.iter().enumerate() {
        let Some(y) = u16::try_from(i).ok().and_then(|i| i.checked_mul(op_height)) else {
            break;
        };
        if y + op_height > inner.height {
            break;
        }
        let row = Rect::new(inner.x, inner.y + y, inner.width, op_height);
        let [label, spark] = Layout::horizontal([Constraint::Length(LABEL), Constraint::Fill(1)]).areas(row);
        let label = Rect {
            y: label.y + op_height - 1,
            height: 1,
            ..label
        };
        let width = usize::from(spark.width);
        let data: Vec<u64> = (end.saturating_sub(width)..end)
            .map(|b| u64::from(op.in_bucket(b)) * per_second)
            .collect();
        let last = data.last().copied().unwrap_or(0);
        let peak = data.iter().copied().max().unwrap_or(0);
        Paragraph::new(format!(
            "{:<8}{now:>4} {:>7}  peak {:>7} ",
            op.op.name(),
            group(last),
            group(peak)
        ))
        .render(label, buf);
        Sparkline::default()
            .data(&data)
            .max(peak.max(1))
            .style(Style::new().fg(Color::Cyan))
            .render(spark, buf);
    }
}

fn latency_panel(runs: &[&RunLive], area: Rect, buf: &mut Buffer) {
    let title = match runs.first() {
        Some(r) => format!(
            " {}: requests and latency from intended start, per strategy ",
            r.scenario
        ),
        None => " Latency ".to_string(),
    };
    let mut rows = Vec::new();
    for op in Op::ALL {
        for run in runs {
            let Some(o) = run.ops.iter().find(|o| o.op == op) else {
                continue;
            };
            let mut figures = vec![
                group(o.count),
                group(o.ok),
                group(o.conflicts),
                group(o.rejected),
                group(o.errors),
                group(o.throughput.round() as u64),
            ];
            figures.extend(o.ms.iter().map(|ms| fmt_ms(*ms)));
            let mut cells = vec![Cell::from(op.name()), Cell::from(run.label.clone())];
            cells.extend(figures.into_iter().map(right));
            rows.push(Row::new(cells));
        }
    }
    let label_width = runs.iter().map(|r| r.label.len()).max().unwrap_or(8).max(8);
    let mut widths = vec![Constraint::Length(8), Constraint::Length(label_width as u16)];
    widths.extend([8, 8, 8, 8, 7, 8, 9, 9, 9, 9, 9].map(Constraint::Length));
    let names = [
        "count", "ok", "conflict", "reject", "errors", "req/s", "p50", "p90", "p99", "p99.9", "max",
    ];
    let mut header = vec![Cell::from("op"), Cell::from("strategy")];
    header.extend(names.map(right));
    Table::new(rows, widths)
        .header(Row::new(header).style(HEADER))
        .block(Block::bordered().title(title))
        .render(area, buf);
}

fn footer(board: &Board, area: Rect, buf: &mut Buffer) {
    let line = match &board.phase {
        Phase::Running => Line::from(vec![
            Span::styled(" q ", Style::new().add_modifier(Modifier::REVERSED)),
            Span::raw(" quit (cancels the runs)   refreshes every 250 ms"),
        ]),
        Phase::Finished { ok } => Line::from(vec![
            if *ok {
                Span::styled(" PASS ", Style::new().bg(Color::Green).fg(Color::Black))
            } else {
                Span::styled(" FAIL ", Style::new().bg(Color::Red).fg(Color::White))
            },
            Span::raw(if *ok {
                " every invariant and expectation holds · press any key to leave; the tables print on the terminal"
            } else {
                " a check failed · press any key to leave; the tables and failed checks print on the terminal"
            }),
        ]),
        Phase::Failed(e) => Line::from(Span::styled(format!(" error: {e}"), Style::new().fg(Color::Red))),
    };
    Paragraph::new(line).render(area, buf);
}

/// A right-aligned cell.
fn right<'a>(text: impl Into<String>) -> Cell<'a> {
    Cell::from(Line::from(text.into()).right_aligned())
}

/// `12,345`.
pub(super) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}
