//! The one error type of the core. Every variant has a stable machine code (`code()`) and a
//! class (`class()`) that front ends map to an HTTP status or an exit code.

/// What kind of failure an [`Error`] is; the HTTP layer maps each class to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is malformed or breaks a business rule that the client can fix (400).
    BadRequest,
    /// Missing, unknown or expired token (401).
    Unauthorized,
    /// The token is valid but may not do this (403).
    Forbidden,
    /// The thing asked for does not exist or is not the caller's (404).
    NotFound,
    /// The state changed under the request: seat taken, hold expired, lost race (409).
    Conflict,
    /// A dependency (the lock service) is unreachable; retrying later can succeed (503).
    Unavailable,
    /// A bug or an I/O failure (500).
    Internal,
}

/// Which token problem made a request unauthorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No token was given.
    Missing,
    /// The token is not one we issued (or is not a UUID).
    Unknown,
    /// The token has expired.
    Expired,
}

/// Every failure of a core operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A field is missing, mistyped or out of range.
    #[error("{message}")]
    InvalidInput {
        /// The offending field, by its API name.
        field: &'static str,
        /// A human sentence naming the field and the problem.
        message: String,
    },
    /// The wallet cannot cover the amount.
    #[error("insufficient balance: {balance} available, {needed} needed")]
    InsufficientBalance {
        /// What the wallet holds.
        balance: crate::Money,
        /// What was asked.
        needed: crate::Money,
    },
    /// A charge would take the balance past the maximum.
    #[error("balance would exceed the maximum of 1000000000000")]
    BalanceLimit,
    /// The amount paid is not the reservation's price.
    #[error("amount {given} does not match the reservation's price {price}")]
    AmountMismatch {
        /// The amount sent.
        given: crate::Money,
        /// The price of the reservation.
        price: crate::Money,
    },
    /// The request carries no usable token.
    #[error("{}", match .0 { TokenProblem::Missing => "missing token", TokenProblem::Unknown => "invalid token", TokenProblem::Expired => "token expired" })]
    Unauthorized(TokenProblem),
    /// The token is still waiting in the queue.
    #[error("token is still waiting in the queue (position {position})")]
    NotAdmitted {
        /// The token's current place in the queue.
        position: u64,
    },
    /// The `userId` given is not the token's user.
    #[error("userId does not match the token's user")]
    UserMismatch,
    /// The concert, date, seat, reservation or token does not exist (or is not the caller's).
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of thing: `concert`, `concert option`, `seat`, `reservation`, `token`.
        what: &'static str,
        /// Its id as given.
        id: String,
    },
    /// The seat is held or sold.
    #[error("seat {seat_id} is not available")]
    SeatUnavailable {
        /// The seat asked for.
        seat_id: i64,
    },
    /// The user already holds `max-holds` seats.
    #[error("you already hold {max} seats, the most one user may hold at once")]
    TooManyHolds {
        /// The configured maximum.
        max: u32,
    },
    /// The reservation's hold ran out before payment.
    #[error("the hold on reservation {reservation_id} has expired")]
    HoldExpired {
        /// The reservation.
        reservation_id: i64,
    },
    /// The reservation is already paid.
    #[error("reservation {reservation_id} is already paid")]
    AlreadyPaid {
        /// The reservation.
        reservation_id: i64,
    },
    /// The reservation was cancelled or released and cannot be paid.
    #[error("reservation {reservation_id} is no longer held")]
    NotHeld {
        /// The reservation.
        reservation_id: i64,
    },
    /// The idempotency key was used before with other parameters.
    #[error("Idempotency-Key was already used with different parameters")]
    IdempotencyMismatch,
    /// Another request changed the resource first (optimistic conflict, retries exhausted,
    /// lock held by someone else, or a stale fence).
    #[error("{resource} is being changed by another request; try again")]
    Contention {
        /// The contended resource, e.g. `seat:12`.
        resource: String,
        /// Machine code: `CONFLICT`, `LOCK_NOT_ACQUIRED` or `STALE_FENCE`.
        code: &'static str,
    },
    /// The lock service cannot be reached.
    #[error("the lock service is unavailable; try again shortly")]
    LockUnavailable,
    /// The database cannot be reached, or no connection to it became free in time. The text
    /// says which (for logs and operators; the HTTP layer answers clients with its own words).
    #[error("the database is unavailable: {0}")]
    DbUnavailable(String),
    /// The database or a service the configuration names cannot be used as asked: not a
    /// database, read-only, no schema, missing. The operator must fix it before running; the
    /// text names the file and the cause.
    #[error("{0}")]
    Setup(String),
    /// A bug or an I/O failure; the text is for logs, never for clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::InvalidInput`] for `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidInput {
            field,
            message: message.into(),
        }
    }

    /// An [`Error::NotFound`].
    pub fn not_found(what: &'static str, id: impl ToString) -> Error {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// A lost race on `resource` (optimistic version mismatch).
    pub fn conflict(resource: impl Into<String>) -> Error {
        Error::Contention {
            resource: resource.into(),
            code: "CONFLICT",
        }
    }

    /// The class that decides the HTTP status.
    pub fn class(&self) -> ErrorClass {
        use Error::*;
        match self {
            InvalidInput { .. } | InsufficientBalance { .. } | BalanceLimit | AmountMismatch { .. } => {
                ErrorClass::BadRequest
            }
            Unauthorized(_) => ErrorClass::Unauthorized,
            NotAdmitted { .. } | UserMismatch => ErrorClass::Forbidden,
            NotFound { .. } => ErrorClass::NotFound,
            SeatUnavailable { .. }
            | TooManyHolds { .. }
            | HoldExpired { .. }
            | AlreadyPaid { .. }
            | NotHeld { .. }
            | IdempotencyMismatch
            | Contention { .. } => ErrorClass::Conflict,
            LockUnavailable | DbUnavailable(_) | Setup(_) => ErrorClass::Unavailable,
            Internal(_) => ErrorClass::Internal,
        }
    }

    /// The stable machine code clients and tests match on.
    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            InvalidInput { field, .. } => match *field {
                "amount" | "price" => "INVALID_AMOUNT",
                _ => "INVALID_ARGUMENT",
            },
            InsufficientBalance { .. } => "INSUFFICIENT_BALANCE",
            BalanceLimit => "BALANCE_LIMIT",
            AmountMismatch { .. } => "AMOUNT_MISMATCH",
            Unauthorized(TokenProblem::Missing) => "TOKEN_MISSING",
            Unauthorized(TokenProblem::Unknown) => "TOKEN_INVALID",
            Unauthorized(TokenProblem::Expired) => "TOKEN_EXPIRED",
            NotAdmitted { .. } => "TOKEN_NOT_ACTIVE",
            UserMismatch => "USER_MISMATCH",
            NotFound { what, .. } => match *what {
                "concert" => "CONCERT_NOT_FOUND",
                "concert option" => "CONCERT_OPTION_NOT_FOUND",
                "seat" => "SEAT_NOT_FOUND",
                "reservation" => "RESERVATION_NOT_FOUND",
                "token" => "TOKEN_NOT_FOUND",
                _ => "NOT_FOUND",
            },
            SeatUnavailable { .. } => "SEAT_UNAVAILABLE",
            TooManyHolds { .. } => "TOO_MANY_HOLDS",
            HoldExpired { .. } => "HOLD_EXPIRED",
            AlreadyPaid { .. } => "ALREADY_PAID",
            NotHeld { .. } => "RESERVATION_NOT_HELD",
            IdempotencyMismatch => "IDEMPOTENCY_MISMATCH",
            Contention { code, .. } => code,
            LockUnavailable => "LOCK_UNAVAILABLE",
            DbUnavailable(_) => "DB_UNAVAILABLE",
            Setup(_) => "SETUP",
            Internal(_) => "INTERNAL",
        }
    }

    /// True for a lost race (counted as a conflict by metrics and the simulator).
    pub fn is_contention(&self) -> bool {
        matches!(
            self,
            Error::Contention { .. } | Error::SeatUnavailable { .. } | Error::AlreadyPaid { .. }
        )
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        match e.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked) => Error::Contention {
                resource: "database".into(),
                code: "DATABASE_BUSY",
            },
            _ => Error::Internal(e.to_string()),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        use postgres::error::SqlState;
        let contention = |code| Error::Contention {
            resource: "database".into(),
            code,
        };
        match e.code() {
            // Two transactions each waiting for the other's rows: PostgreSQL ends one of them,
            // which changed nothing. A lost race, counted as one, never a 500.
            Some(state) if *state == SqlState::T_R_DEADLOCK_DETECTED => contention("DEADLOCK"),
            Some(state) if *state == SqlState::T_R_SERIALIZATION_FAILURE => contention("SERIALIZATION_FAILURE"),
            // A row lock not granted within `lock_timeout` (the contention bound).
            Some(state) if *state == SqlState::LOCK_NOT_AVAILABLE => contention("LOCK_TIMEOUT"),
            // Connection exceptions (08…), the server shutting down or starting (57P…), too
            // many connections or out of resources (53…).
            Some(state) if ["08", "57P", "53"].iter().any(|p| state.code().starts_with(p)) => {
                Error::DbUnavailable(e.to_string())
            }
            Some(state) => Error::Internal(match e.as_db_error() {
                Some(db) => format!("PostgreSQL {}: {}", state.code(), db.message()),
                None => e.to_string(),
            }),
            // No SQL state: the client's side — the socket closed or failed.
            None if e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) => {
                Error::DbUnavailable(e.to_string())
            }
            None => Error::Internal(match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            }),
        }
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
