//! The real terminal: raw mode and the alternate screen, given back on drop and on panic.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// Holds the terminal in raw mode on the alternate screen; dropping it restores the terminal,
/// whether the loop ended with `q`, with an error (`?` drops it on the way out) or in a panic.
pub struct TerminalGuard {
    /// The terminal to draw on.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Takes over the terminal.
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        enable_raw_mode()?;
        TAKEN.store(true, Ordering::SeqCst);
        // From here on, a failure must still give the terminal back.
        let entered = execute!(io::stdout(), EnterAlternateScreen, Hide)
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Whether the terminal is ours now.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// True while a guard holds the terminal (false once a panic hook gave it back).
pub fn is_taken() -> bool {
    TAKEN.load(Ordering::SeqCst)
}

/// Leaves raw mode and the alternate screen, once: the panic hook restores first and the
/// guard's drop runs again while unwinding, and a second `LeaveAlternateScreen` would move the
/// cursor back over the panic message.
fn restore() {
    if !TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

/// Restores the terminal before the panic message prints, so the message is readable (the
/// guard's drop runs only later, while unwinding).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
