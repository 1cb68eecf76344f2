//! # ticketing-core
//!
//! The whole concert-ticketing domain — waiting queue, seat holds, wallet, payments — over an
//! SQLite database, with a concurrency-control strategy chosen at start-up
//! ([`StrategyKind`]: pessimistic, optimistic or a Redis lock).
//!
//! [`Ticketing`] is the one entry point every front end calls (HTTP server, simulator, TUI,
//! admin commands). It is synchronous and thread-safe: call it from many threads at once. Async
//! front ends run its reads on a few threads of their own and await its writes (the `*_answer`
//! forms return an [`Answer`], a plain future: no thread waits for a commit or for Redis); the
//! hottest reads can be answered from memory on the event loop ([`Memo`]).
//!
//! Where things are: [`money`] (integer hundredths), [`clock`] (injected time), [`error`]
//! (typed errors with machine codes), [`domain`] (plain types and pure rules), `store` (schema,
//! migrations, connections, the group-commit writer), `strategy` (how a contended write is
//! guarded), `queue` (waiting-queue rules), [`admin`] (operator operations and read models),
//! [`invariants`] (the checks of docs/contract.md §Invariants).

pub mod admin;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod invariants;
mod memo;
pub mod money;
mod queue;
mod store;
mod strategy;
mod ticketing;
mod usecase;

pub use clock::{Clock, ManualClock, SyncedClock, SystemClock, Timestamp};
pub use config::{Config, Database, Durability, StrategyKind};
pub use domain::{
    Concert, ConcertDate, Hold, LedgerEntry, LedgerKind, PayCmd, PaymentReceipt, ReservationStatus, ReserveCmd, Seat,
    SeatStatus, TokenStatus, TokenView,
};
pub use error::{Error, ErrorClass, Result, TokenProblem};
pub use memo::{Memo, MemoCounts};
pub use money::Money;
pub use queue::Admission;
pub use store::postgres::listen::CLOCK_BOUND;
pub use store::{Answer, DbStats, ScratchSchema};
#[cfg(feature = "test-hooks")]
pub use strategy::test_hooks;
pub use strategy::ContentionSnapshot;
pub use ticketing::FAULT_POINTS;
pub use ticketing::{NodeStats, Ticketing};
pub use usecase::sweep::SweepReport;
