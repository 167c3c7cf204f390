//! Errors of the engine: a domain rule refused, or storage failed; and the gRPC code
//! each one maps to.

use mart_proto::tonic::Code;

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
    #[error("document {doc} is quarantined ({reason}): nothing is read from it, written to it or synced; resolve it with `martctl doc drop {doc}` or `martctl doc refetch {doc}`")]
    Quarantined { doc: String, reason: String },
    #[error("refused: {0}")]
    Unsafe(String),
    #[error("document {doc} is not held here ({reason})")]
    NotHeld { doc: String, reason: String },
    #[error("this node is out of a resource it needs: {0}")]
    Exhausted(String),
    /// One line of a basket refused the whole basket (1-based line number).
    #[error("line {line} ({sku}): {source}")]
    Line {
        line: usize,
        sku: String,
        source: Box<EngineError>,
    },
    #[error("this outlet's ledger is being restored from the hub ({0}): try again once `martctl sync status` shows the hub in step")]
    Restoring(String),
}

impl EngineError {
    /// Whether this error is about one document's bytes or content (it cannot be
    /// loaded, or breaks its schema), so that document is quarantined, rather than
    /// about the store as a whole (i/o), which stays fatal.
    pub(crate) fn is_document_fault(&self) -> bool {
        matches!(
            self,
            EngineError::Domain(_)
                | EngineError::Document { .. }
                | EngineError::Store(StoreError::Corrupt { .. })
        )
    }

    /// The gRPC status code of this error: the one place codes are decided.
    pub fn code(&self) -> Code {
        match self {
            EngineError::Line { source, .. } => source.code(),
            EngineError::Domain(domain) => match domain {
                DomainError::InvalidField { .. } => Code::InvalidArgument,
                DomainError::UnknownSku(_)
                | DomainError::UnknownProducer(_)
                | DomainError::UnknownOutlet(_)
                | DomainError::UnknownOrder(_) => Code::NotFound,
                DomainError::DuplicateSku(_)
                | DomainError::DuplicateProducer(_)
                | DomainError::DuplicateTransfer(_)
                | DomainError::RequestIdReused(_) => Code::AlreadyExists,
                DomainError::InsufficientStock { .. }
                | DomainError::NotSellable { .. }
                | DomainError::OrderClosed { .. }
                | DomainError::QuotaExceeded { .. }
                | DomainError::OverBudget { .. }
                | DomainError::MissingDependencies { .. } => Code::FailedPrecondition,
                DomainError::Overflow { .. } => Code::OutOfRange,
                DomainError::Forbidden { .. }
                | DomainError::HubOnly(_)
                | DomainError::DistrictOnly(_) => Code::PermissionDenied,
                DomainError::Schema { .. } => Code::Internal,
            },
            EngineError::Quarantined { .. }
            | EngineError::NotHeld { .. }
            | EngineError::Unsafe(_) => Code::FailedPrecondition,
            EngineError::Exhausted(_) => Code::ResourceExhausted,
            EngineError::Store(
                StoreError::Io(_) | StoreError::Full { .. } | StoreError::Stopped(_),
            )
            | EngineError::NotDurable(_)
            | EngineError::Restoring(_) => Code::Unavailable,
            EngineError::Store(_) | EngineError::Document { .. } => Code::Internal,
        }
    }
}
