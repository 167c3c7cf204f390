//! Harness for the tests that run real NTT Mart processes: the built `mart-node` and
//! `martctl` binaries, a [`NodeProcess`] per node in its own temp dir, gRPC clients
//! over the node's admin socket (or mutual TLS), certificates from the real CLI
//! ([`pki`]), a hub with districts behind cuttable proxies ([`TestCluster`]), and
//! [`wait_until`] for every wait on readiness.
//!
//! It must never hide a failure: no retries of an operation under test, no sleeps in
//! place of a condition, and every process it starts is killed when its handle drops.

pub mod binaries;
pub mod browser;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod file_limit;
pub mod footprint;
pub mod http;
pub mod hub;
pub mod link;
pub mod martctl;
pub mod node;
pub mod ops;
pub mod pki;
pub mod procfs;
pub mod raw_sync;
pub mod readme;
pub mod rot;
pub mod scrape;
pub mod tls_client;
pub mod tools;
pub mod wait;

pub use binaries::{mart_node_bin, martctl_bin};
pub use client::{connect_tls, connect_unix, AdminClient, HubClient, MartClient};
pub use cluster::TestCluster;
/// The cuttable link between a district and the hub.
pub use mart_node::proxy;
pub use node::{NodeProcess, NodeSpec};
pub use wait::wait_until;

/// Every seeded SKU of the provincial catalog a node starts with.
pub const SEEDED_SKUS: &[&str] = &[
    "TTU-MKP-060",
    "TTU-MKP-120",
    "TTU-TNN-SLD",
    "NGD-KOP-250",
    "NGD-KOP-1KG",
    "KPG-MDU-500",
    "SKA-MET-250",
    "RTN-GLL-500",
    "KOT-SEI-250",
    "KOT-KLR-100",
    "FLT-SRG-1KG",
    "STM-TNN-KAIN",
];

/// A seed for a test's random choices: `MART_TEST_SEED` when set (to replay a run),
/// otherwise fresh. The caller prints it so a failure can be replayed.
pub fn test_seed() -> u64 {
    match std::env::var("MART_TEST_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("MART_TEST_SEED must be a u64, got {s:?}")),
        Err(_) => rand::random(),
    }
}
