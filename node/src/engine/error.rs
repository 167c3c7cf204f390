//! Errors of the engine: a domain rule refused, or storage failed.

use crate::domain::DomainError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("document {doc}: {reason}")]
    Document { doc: String, reason: String },
    #[error("the write could not be made durable: {0}")]
    NotDurable(String),
}
