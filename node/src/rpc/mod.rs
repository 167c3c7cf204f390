//! The gRPC face of a node: tonic services, conversion between proto and domain
//! types, and the one place engine errors become status codes.
//!
//! Handlers only convert and delegate to the [`crate::engine::Engine`]; no rule of
//! the domain is decided here.

mod admin;
mod convert;
mod escrow;
mod hub;
pub mod identity;
mod mart;
mod report;
mod sales;
mod status;
mod sync;

pub use admin::AdminApi;
pub use hub::HubApi;
pub use mart::MartApi;
pub use report::ReportApi;
pub use status::to_status;
pub use sync::SyncApi;

/// Largest request message the node accepts; bigger ones are refused with
/// `RESOURCE_EXHAUSTED` before any handler looks at them.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Messages over this size tonic refuses itself while decoding (with `OUT_OF_RANGE`,
/// a code tonic fixes); it bounds the memory one request can take.
pub const MAX_DECODE_BYTES: usize = 4 * 1024 * 1024;

/// The message of a request within [`MAX_REQUEST_BYTES`].
pub(crate) fn accept<T: mart_proto::prost::Message>(
    request: mart_proto::tonic::Request<T>,
) -> Result<T, mart_proto::tonic::Status> {
    let message = request.into_inner();
    let size = message.encoded_len();
    if size > MAX_REQUEST_BYTES {
        return Err(mart_proto::tonic::Status::resource_exhausted(format!(
            "a request of {size} bytes exceeds the limit of {MAX_REQUEST_BYTES} bytes"
        )));
    }
    Ok(message)
}
