//! The documents of NTT Mart, their automerge schema and the rules they keep.
//!
//! Plain types and functions: no tokio, no tonic, no sled, no clock. Everything here
//! can be tested in microseconds.

pub mod actor;
pub mod authz;
pub mod basket;
#[cfg(test)]
mod basket_tests;
pub mod bounds;
pub mod budget;
pub mod catalog;
pub mod districts;
pub mod doc_id;
mod error;
pub mod journal;
pub mod ledger;
pub mod movement;
pub mod orders;
pub mod period;
pub mod plain_json;
pub mod sales_report;
pub mod schema_version;
pub mod seed;
pub mod text;
pub mod wita;

pub use error::DomainError;
