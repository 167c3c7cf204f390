//! Errors of the domain rules, with messages an operator can act on.

/// A rule of the domain refused an operation, or a document does not follow its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("unknown sku {0}")]
    UnknownSku(String),
    #[error("no ledger of outlet {0} is held here")]
    UnknownOutlet(String),
    #[error("unknown producer {0}")]
    UnknownProducer(String),
    #[error("sku {0} already exists")]
    DuplicateSku(String),
    #[error("producer {0} already exists")]
    DuplicateProducer(String),
    #[error("insufficient stock of {sku}: {on_hand} on hand, {requested} requested")]
    InsufficientStock {
        sku: String,
        on_hand: i64,
        requested: i64,
    },
    #[error("request id {0} was already used for a different movement")]
    RequestIdReused(String),
    #[error("permission denied for document {doc}: {reason}")]
    Forbidden { doc: String, reason: String },
    #[error("document {doc}: {count} changes this bundle depends on are missing; send them first")]
    MissingDependencies { doc: String, count: usize },
    #[error("document {doc} does not follow its schema: {reason}")]
    Schema { doc: String, reason: String },
}

impl DomainError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::InvalidField {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn schema(doc: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        DomainError::Schema {
            doc: doc.into(),
            reason: reason.to_string(),
        }
    }
}
