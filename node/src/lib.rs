//! An NTT Mart node: the outlet's (or the hub's) durable CRDT documents for catalog
//! and stock, and the gRPC services in front of them.
//!
//! Layers, each importing only from the ones above it in this list:
//! - [`domain`]: documents, their schema and rules (no I/O);
//! - [`store`]: durable bytes behind a narrow [`store::Backend`] trait (sled, memory);
//! - [`engine`]: the node's loaded documents, writes made durable before they are
//!   acknowledged, with flushes shared between concurrent writers;
//! - [`rpc`]: tonic services and the mapping of errors to status codes;
//! - [`server`]: start-up, listeners and ordered shutdown;
//! - [`observe`]: the HTTP listener of `/metrics` and the status page, which only
//!   reads the engine and the peer book.
//!
//! [`config`] is read by [`server`] only. [`proxy`] is a cuttable TCP link for the
//! demo and the tests, used by no layer. [`fail_stop`] (how a panic stops the
//! process, and the one way to catch an expected one) and [`fault_injection`] (panics
//! the tests inject) are used by every layer and use none; so is [`events`] (the
//! counters each layer bumps for `/metrics`).

pub mod backup;
pub mod config;
pub mod domain;
pub mod engine;
pub mod events;
pub mod fail_stop;
pub mod fault_injection;
pub mod observe;
pub mod proxy;
pub mod rpc;
pub mod server;
pub mod store;
pub mod sync;
