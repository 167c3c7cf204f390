//! The gRPC face of a node: tonic services, conversion between proto and domain
//! types, and the one place engine errors become status codes.
//!
//! Handlers only convert and delegate to the [`crate::engine::Engine`]; no rule of
//! the domain is decided here.

mod admin;
mod convert;
pub mod identity;
mod mart;
mod status;
mod sync;

pub use admin::AdminApi;
pub use mart::MartApi;
pub use status::to_status;
pub use sync::SyncApi;

/// Largest request message the node decodes; anything bigger is refused with
/// `RESOURCE_EXHAUSTED` before it reaches a handler.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
