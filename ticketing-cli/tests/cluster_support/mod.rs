//! Several `ticketing serve` nodes on one PostgreSQL database (a scratch schema of the test
//! command's server): SPEC §8's setting, for the black-box tests `tests/cluster*.rs`.
#![allow(dead_code)] // each test file uses a different part

use std::process::Command;

use crate::http_support::{pg_url, Server};

/// Nodes on one fresh schema; the nodes stop, then the schema is dropped.
pub struct Cluster {
    pub nodes: Vec<Server>,
    pub schema: ticketing_core::ScratchSchema,
    strategy: String,
    flags: Vec<String>,
}

impl Cluster {
    /// `n` nodes under `strategy` with `extra` flags. The first starts alone (it migrates the
    /// schema and adds the demo concert), then the others.
    pub fn start(n: usize, strategy: &str, extra: &[&str]) -> Cluster {
        let schema = ticketing_core::ScratchSchema::create(&pg_url().expect("TICKETING_TEST_PG_URL"), "cluster")
            .expect("schema");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            schema,
            strategy: strategy.to_string(),
            flags: extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 0..n {
            let node = cluster.start_node(i, &[]);
            cluster.nodes.push(node);
        }
        cluster
    }

    /// Starts node `i` (again) on the cluster's database, with `env` set.
    pub fn start_node(&self, i: usize, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let name = format!("node-{i}");
        let mut flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        flags.extend(["--node-id", &name]);
        Server::start_with_env(dir, self.schema.url(), &self.strategy, &flags, env)
    }

    /// The node for the `i`-th request of a spread: round-robin.
    pub fn node(&self, i: usize) -> &Server {
        &self.nodes[i % self.nodes.len()]
    }

    /// `ticketing --db <the cluster's database> <args…>`: its output; panics when it fails.
    pub fn ticketing(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_ticketing"))
            .arg("--db")
            .arg(self.schema.url())
            .args(args)
            .output()
            .expect("run ticketing");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "ticketing {args:?}: {text}");
        text
    }
}
