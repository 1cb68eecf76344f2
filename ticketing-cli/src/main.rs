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

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

pub use failure::UsageError;
pub use options::{parse_duration, GlobalArgs};
pub(crate) use options::{Cli, Command};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.global.db_given = db_given(&matches);
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

/// Whether `--db` came from the command line or the environment, before or after the
/// subcommand (a global flag given after it is recorded in the subcommand's matches).
fn db_given(matches: &ArgMatches) -> bool {
    let given = |m: &ArgMatches| {
        matches!(
            m.value_source("db"),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    given(matches) || matches.subcommand().is_some_and(|(_, sub)| given(sub))
}
