//! The use cases, one module per family, each holding its rule and its statements (written once
//! for both databases, see `crate::store`): a newcomer adding a use case adds a method here and,
//! if it writes, names its contended resources for the strategy.
//!
//! - `queue`: issue a token, its status, admission, leave;
//! - `catalogue`: concerts, dates, free seats (from memory where still exact);
//! - `hold`: reserve a seat;
//! - `wallet`: charge, use, balance;
//! - `pay`: pay a hold, idempotency keys;
//! - `sweep`: background expiry and admission.

pub(crate) mod catalogue;
pub(crate) mod hold;
pub(crate) mod pay;
pub(crate) mod queue;
pub(crate) mod sweep;
pub(crate) mod wallet;
