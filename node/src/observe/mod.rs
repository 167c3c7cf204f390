//! Observing a running node from outside: an HTTP listener of its own (`[metrics]
//! listen`, loopback only) serving `/metrics` in the Prometheus text format and a
//! status page at `/` (the hub's: every district's sync state, regional low stock,
//! open online orders, shipments in transit, budgets; a district's: its stock and
//! its sync state with the hub).
//!
//! It only reads: nothing served here changes a document, the peer book or the
//! store, nothing fetched from here runs a script or loads anything from elsewhere,
//! and every value on a page is HTML-escaped (district names and last errors come
//! from peers).

mod district_page;
mod districts;
pub mod grpc_calls;
mod html;
mod http;
mod hub_page;
mod process;
mod scrape;

use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::Engine;
use crate::rpc::HubApi;
use crate::sync::PeerBook;

pub use http::serve;
pub use scrape::install_recorder;

/// What the pages and `/metrics` read: the engine, the peer book, and the hub's
/// freshness rule (through [`HubApi::freshness`], the same answer as `martctl`'s).
#[derive(Clone)]
pub struct Observed {
    pub engine: Arc<Engine>,
    pub book: Arc<PeerBook>,
    pub hub: HubApi,
    /// `[hub] stale_after_secs`.
    pub stale_after: std::time::Duration,
    /// The node's data dir, whose file system's free space is reported.
    pub data_dir: PathBuf,
}
