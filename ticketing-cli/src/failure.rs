//! Exit codes, one rule for every subcommand (`serve`, `tui`, `simulate`, `admin`):
//!
//! * **0** — done (and every check passed);
//! * **1** — it ran, and a check failed (an invariant, a scenario's expectation), or the run
//!   itself failed midway;
//! * **2** — it did not run: something the user must fix first. Bad usage or a bad setting, or
//!   the environment: a database file that is missing for a read, empty, not a database or
//!   read-only, an unreachable Redis, a busy or bad address, an unwritable output path.
//!   Nothing was written.
//!
//! A cause of exit 2 is a [`UsageError`] somewhere in the error's chain, or a core error of a
//! kind the user fixes ([`fix_first`]); the same cause gives the same code in every subcommand
//! because every subcommand ends in [`exit_code`].

use std::process::ExitCode;

/// Something the user must fix before the command can run: exit 2. The text says what, in the
/// user's words.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl From<ticketing_core::Error> for UsageError {
    fn from(e: ticketing_core::Error) -> UsageError {
        UsageError(e.to_string())
    }
}

/// The exit code for a command that stopped with `e`.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    let fix_first = e.chain().any(|cause| {
        cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<ticketing_core::Error>().is_some_and(fix_first)
    });
    if fix_first {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// Core errors that are the user's to fix before running: a bad setting or argument (this
/// includes an unreachable Redis, a setting to fix), or an unusable database file.
pub fn fix_first(e: &ticketing_core::Error) -> bool {
    matches!(
        e,
        ticketing_core::Error::InvalidInput { .. } | ticketing_core::Error::Setup(_)
    )
}
