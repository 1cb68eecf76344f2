//! `ticketing serve` (being built).

use std::process::ExitCode;

use crate::GlobalArgs;

/// Flags of `ticketing serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `ticketing serve`.
pub fn run(_global: &GlobalArgs, _args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ticketing serve` is not built yet")
}
