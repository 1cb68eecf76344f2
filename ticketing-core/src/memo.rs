//! Hot reads answered from memory while the database is unchanged.
//!
//! During a rush the same read is asked thousands of times a second (a date's free seats) while
//! its answer changes far less often. A front end keeps its rendered answer in a [`Memo`]; an
//! entry is served only while
//! 1. nothing at all has been committed since it was read: the store's version (SQLite's
//!    `PRAGMA data_version`) is exact and sees other processes' commits too, so an operator's
//!    change in the TUI shows at once; and
//! 2. the clock is inside the span the answer holds for by itself: a hold that runs out makes
//!    its seat free without any write, so an entry ends at the next such moment.
//!
//! The request's token is still checked every time, against the ACTIVE tokens the same
//! database version showed ([`TokenMemo`]), by the same rules as the database read: a token
//! past its expiry is refused from memory; anything not in memory goes to the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::clock::Timestamp;
use crate::error::{Error, Result, TokenProblem};

/// How many entries a memo keeps before it starts again (each is one answer for one key).
const MAX_ENTRIES: usize = 1024;
/// How many tokens the token memo keeps before it starts again.
const MAX_TOKENS: usize = 1 << 17;

/// Rendered answers of one read, by key (a date's id, say), each valid for one database
/// version and a span of time. Share it between the threads that serve the read.
pub struct Memo<R> {
    inner: Mutex<Entries<R>>,
    from_memory: AtomicU64,
    from_database: AtomicU64,
}

/// How a memoized read's requests were answered so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoCounts {
    /// From memory (the database unchanged since the answer was read).
    pub from_memory: u64,
    /// By the database (nothing in memory, or something changed).
    pub from_database: u64,
}

struct Entries<R> {
    version: u64,
    by_key: HashMap<i64, Entry<R>>,
}

struct Entry<R> {
    /// The clock reading the answer was computed at: earlier readings (a clock set back) miss.
    since: Timestamp,
    /// The first moment the answer changes by itself (exclusive).
    until: Timestamp,
    value: R,
}

impl<R: Clone> Default for Memo<R> {
    fn default() -> Self {
        Memo::new()
    }
}

impl<R: Clone> Memo<R> {
    /// An empty memo.
    pub fn new() -> Memo<R> {
        Memo {
            inner: Mutex::new(Entries {
                version: 0,
                by_key: HashMap::new(),
            }),
            from_memory: AtomicU64::new(0),
            from_database: AtomicU64::new(0),
        }
    }

    /// How its requests were answered so far (for metrics).
    pub fn counts(&self) -> MemoCounts {
        MemoCounts {
            from_memory: self.from_memory.load(Ordering::Relaxed),
            from_database: self.from_database.load(Ordering::Relaxed),
        }
    }

    /// Counts one request, answered from memory or not.
    pub(crate) fn count(&self, from_memory: bool) {
        let counter = if from_memory {
            &self.from_memory
        } else {
            &self.from_database
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The answer for `key` if it was read at `version` and still holds at `now`.
    pub(crate) fn get(&self, key: i64, version: u64, now: Timestamp) -> Option<R> {
        let entries = self.inner.lock();
        if entries.version != version {
            return None;
        }
        let entry = entries.by_key.get(&key)?;
        (entry.since <= now && now < entry.until).then(|| entry.value.clone())
    }

    /// Keeps `value` for `key`, read at `version` at time `since`, valid until `until`.
    /// Entries of any other version can never be served again and are dropped.
    pub(crate) fn put(&self, key: i64, version: u64, since: Timestamp, until: Timestamp, value: R) {
        let mut entries = self.inner.lock();
        if entries.version != version || entries.by_key.len() >= MAX_ENTRIES {
            entries.by_key.clear();
            entries.version = version;
        }
        entries.by_key.insert(key, Entry { since, until, value });
    }
}

/// ACTIVE tokens as one database version showed them, by their text's first 32 bits (the
/// selector the database looks them up by); the whole token is compared in constant time, as
/// the database read does.
#[derive(Default)]
pub(crate) struct TokenMemo {
    inner: Mutex<Tokens>,
}

#[derive(Default)]
struct Tokens {
    version: u64,
    by_selector: HashMap<u32, Vec<ActiveToken>>,
    len: usize,
}

struct ActiveToken {
    uuid: [u8; 16],
    expires_at: Timestamp,
}

fn parse(token: &str) -> Option<[u8; 16]> {
    uuid::Uuid::try_parse(token.trim()).ok().map(|u| *u.as_bytes())
}

fn selector(uuid: &[u8; 16]) -> u32 {
    u32::from_be_bytes([uuid[0], uuid[1], uuid[2], uuid[3]])
}

impl TokenMemo {
    /// The check of an ACTIVE token from memory: `Some(Ok)` when the token was ACTIVE at
    /// `version` and has not run out at `now`, `Some(Err)` (401 expired) when it has run out,
    /// `None` when memory cannot tell (the database decides).
    pub fn check(&self, token: &str, version: u64, now: Timestamp) -> Option<Result<()>> {
        let uuid = parse(token)?;
        let tokens = self.inner.lock();
        if tokens.version != version {
            return None;
        }
        let mut found = None;
        for t in tokens.by_selector.get(&selector(&uuid))? {
            if bool::from(subtle::ConstantTimeEq::ct_eq(&t.uuid[..], &uuid[..])) {
                found = Some(t.expires_at);
            }
        }
        let expires_at = found?;
        Some(if expires_at > now {
            Ok(())
        } else {
            Err(Error::Unauthorized(TokenProblem::Expired))
        })
    }

    /// Remembers that `token` was ACTIVE until `expires_at` at `version`.
    pub fn remember(&self, token: &str, version: u64, expires_at: Timestamp) {
        let Some(uuid) = parse(token) else { return };
        let mut tokens = self.inner.lock();
        if tokens.version != version || tokens.len >= MAX_TOKENS {
            tokens.by_selector.clear();
            tokens.len = 0;
            tokens.version = version;
        }
        let same = tokens.by_selector.entry(selector(&uuid)).or_default();
        if !same.iter().any(|t| t.uuid == uuid) {
            same.push(ActiveToken { uuid, expires_at });
            tokens.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_entry_holds_for_its_version_and_span_only() {
        let memo = Memo::new();
        memo.put(7, 3, Timestamp(100), Timestamp(200), "seats");
        assert_eq!(memo.get(7, 3, Timestamp(100)), Some("seats"));
        assert_eq!(memo.get(7, 3, Timestamp(199)), Some("seats"));
        assert_eq!(memo.get(7, 3, Timestamp(200)), None, "a hold ran out at 200");
        assert_eq!(memo.get(7, 3, Timestamp(99)), None, "a clock set back");
        assert_eq!(memo.get(7, 4, Timestamp(150)), None, "something was committed");
        assert_eq!(memo.get(8, 3, Timestamp(150)), None, "another key");
        memo.put(8, 4, Timestamp(100), Timestamp(200), "other");
        assert_eq!(
            memo.get(7, 3, Timestamp(150)),
            None,
            "a newer version drops older entries"
        );
        assert_eq!(memo.get(8, 4, Timestamp(150)), Some("other"));
    }

    #[test]
    fn the_token_memo_checks_the_whole_token_and_its_expiry() {
        let memo = TokenMemo::default();
        let token = "6e15eb11-97f8-4c63-be57-1e51f33cb8b4";
        // Same selector (first 8 characters), different token.
        let twin = "6e15eb11-0000-4c63-be57-1e51f33cb8b4";
        memo.remember(token, 5, Timestamp(1_000));
        assert!(matches!(memo.check(token, 5, Timestamp(999)), Some(Ok(()))));
        assert!(matches!(
            memo.check(&token.to_uppercase(), 5, Timestamp(999)),
            Some(Ok(()))
        ));
        assert!(matches!(
            memo.check(token, 5, Timestamp(1_000)),
            Some(Err(Error::Unauthorized(TokenProblem::Expired)))
        ));
        assert!(memo.check(twin, 5, Timestamp(999)).is_none());
        assert!(memo.check(token, 6, Timestamp(999)).is_none());
        assert!(memo.check("not a token", 5, Timestamp(999)).is_none());
        memo.remember(twin, 6, Timestamp(2_000));
        assert!(
            memo.check(token, 6, Timestamp(999)).is_none(),
            "forgotten with its version"
        );
        assert!(matches!(memo.check(twin, 6, Timestamp(999)), Some(Ok(()))));
    }
}
