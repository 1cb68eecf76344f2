//! `ticketing tui` (being built).

use std::process::ExitCode;

use crate::GlobalArgs;

/// Flags of `ticketing tui`.
#[derive(Debug, clap::Args)]
pub struct TuiArgs {}

/// Runs `ticketing tui`.
pub fn run(_global: &GlobalArgs, _args: TuiArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ticketing tui` is not built yet")
}
