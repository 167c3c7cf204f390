//! Generated gRPC types and service stubs of NTT Mart sync (`nttmart.v1`).
//!
//! Nothing but generated code and its re-exports lives here: conversions to domain
//! types belong to the node's `rpc` layer.

pub use prost;
pub use tonic;

/// Messages and services of package `nttmart.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("nttmart.v1");
}

/// Encoded `FileDescriptorSet` of `nttmart.v1`, for the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("nttmart_descriptor");
