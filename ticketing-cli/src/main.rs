//! `ticketing`: the HTTP API (`serve`), the operator TUI (`tui`), the concurrency simulator
//! (`simulate`) and scriptable operator commands (`admin`), all over `ticketing-core`.
//!
//! This file only parses the command line ([`options`]), dispatches, and turns the outcome
//! into an exit code by the one rule in [`failure`].

mod admin;
mod failure;
mod options;
mod serve;
mod simulate;
mod tui;

use std::process::ExitCode;

use clap::Parser;

pub use failure::UsageError;
pub use options::{parse_duration, GlobalArgs};
pub(crate) use options::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Tui(args) => tui::run(&cli.global, args),
        Command::Simulate(args) => simulate::run(&cli.global, args),
        Command::Admin(args) => admin::run(&cli.global, args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            failure::exit_code(&e)
        }
    }
}
