//! A PostgreSQL schema made for one run and dropped after it: every test and every simulated
//! strategy gets a fresh, empty database this way without `CREATE DATABASE` (a schema is made
//! in milliseconds, a database in a few hundred). The run's URL selects the schema through the
//! connection's `search_path`, so the product's statements — which never name a schema — see
//! only its tables.

use crate::error::{Error, Result};

/// A schema of its own on a PostgreSQL server; dropped (with everything in it) on drop
/// unless [`ScratchSchema::keep`] is called.
#[derive(Debug)]
pub struct ScratchSchema {
    server: String,
    name: String,
    url: String,
    keep: bool,
}

impl ScratchSchema {
    /// Creates a schema named `<prefix>_<random>` on the server of `url` (any PostgreSQL URL
    /// the user may connect with and create schemas).
    pub fn create(url: &str, prefix: &str) -> Result<ScratchSchema> {
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let name = format!("{clean}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        ScratchSchema::named(url, &name)
    }

    /// Creates (or reuses) the schema `name` on the server of `url`.
    pub fn named(url: &str, name: &str) -> Result<ScratchSchema> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid("db", format!("`{name}` is not a plain schema name")));
        }
        super::off_runtime(|| -> Result<()> {
            let mut client = postgres::Client::connect(url, postgres::NoTls)
                .map_err(|e| Error::DbUnavailable(format!("cannot reach PostgreSQL: {e}")))?;
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {name}"))?;
            Ok(())
        })?;
        Ok(ScratchSchema {
            server: url.to_string(),
            name: name.to_string(),
            url: with_search_path(url, name),
            keep: false,
        })
    }

    /// The URL that opens this schema (give it to `Config::new`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps the schema after this value is dropped; returns its URL.
    pub fn keep(mut self) -> String {
        self.keep = true;
        self.url.clone()
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        super::off_runtime(|| {
            if let Ok(mut client) = postgres::Client::connect(&self.server, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
            }
        });
    }
}

/// `url` with `search_path` set to `schema` for every connection made from it.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}
