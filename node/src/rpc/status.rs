//! Maps engine errors to gRPC status codes, the only place that does.

use tonic::{Code, Status};

use crate::domain::DomainError;
use crate::engine::EngineError;
use crate::store::StoreError;
use mart_proto::tonic;

/// The status a client gets for an engine error.
pub fn to_status(error: EngineError) -> Status {
    let code = match &error {
        EngineError::Domain(domain) => match domain {
            DomainError::InvalidField { .. } => Code::InvalidArgument,
            DomainError::UnknownSku(_) | DomainError::UnknownProducer(_) => Code::NotFound,
            DomainError::DuplicateSku(_)
            | DomainError::DuplicateProducer(_)
            | DomainError::RequestIdReused(_) => Code::AlreadyExists,
            DomainError::InsufficientStock { .. } => Code::FailedPrecondition,
            DomainError::Schema { .. } => Code::Internal,
        },
        EngineError::Store(StoreError::Io(_)) | EngineError::NotDurable(_) => Code::Unavailable,
        EngineError::Store(_) | EngineError::Document { .. } => Code::Internal,
    };
    if matches!(code, Code::Internal | Code::Unavailable) {
        tracing::error!(error = %error, "request failed");
    }
    Status::new(code, error.to_string())
}

/// `INVALID_ARGUMENT` for a field the proto conversion refused.
pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_map_to_their_codes() {
        let code = |e: DomainError| to_status(EngineError::Domain(e)).code();
        assert_eq!(code(DomainError::UnknownSku("X".into())), Code::NotFound);
        assert_eq!(
            code(DomainError::DuplicateSku("X".into())),
            Code::AlreadyExists
        );
        assert_eq!(
            code(DomainError::InsufficientStock {
                sku: "X".into(),
                on_hand: 1,
                requested: 2
            }),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(DomainError::InvalidField {
                field: "quantity",
                reason: "must be positive".into()
            }),
            Code::InvalidArgument
        );
    }
}
