//! `ticketing simulate` (being built).

use std::process::ExitCode;

use crate::GlobalArgs;

/// Flags of `ticketing simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

/// Runs `ticketing simulate`.
pub fn run(_global: &GlobalArgs, _args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ticketing simulate` is not built yet")
}
