//! Sync between a district and the hub: the protocol state machine ([`Session`]),
//! what each side knows of each peer ([`PeerBook`]), and the district's dialer.
//!
//! The session is written against plain messages so tests can drive two of them
//! against each other without sockets; the transports live in [`dial`] (district)
//! and `crate::rpc::SyncApi` (hub).

pub mod dial;
mod driver;
#[cfg(test)]
mod driver_tests;
#[cfg(test)]
mod flood_tests;
#[cfg(test)]
mod fuzz_tests;
mod limits;
pub mod liveness;
#[cfg(test)]
mod numbers_tests;
mod outgoing;
#[cfg(test)]
mod pacing_tests;
mod peer_store;
mod peers;
#[cfg(test)]
mod periods_tests;
mod protocol;
#[cfg(test)]
mod quarantine_tests;
pub mod redial;
#[cfg(test)]
mod redial_tests;
mod session;
pub mod session_log;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
pub(crate) mod testkit;
pub mod tls_dial;
#[cfg(test)]
mod tls_dial_tests;
mod wire;

pub use driver::{drive, DriveError, Rhythm, Wiring, DEBOUNCE};
pub use limits::{MAX_DOCS_PER_SESSION, MAX_HEADS_PER_DOC};
pub use peer_store::restore_records as restore_peer_records;
pub use peers::{ClockOffset, DocSync, LiveSession, PeerBook, PeerStatus, Traffic};
pub use protocol::{Versions, PROTOCOLS};
pub use session::{Session, SessionError};

/// Largest sync message either side sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
