//! Turns engine errors into gRPC statuses.

use tonic::{Code, Status};

use crate::engine::EngineError;
use mart_proto::tonic;

/// The status a client gets for an engine error (the code is
/// [`EngineError::code`]); server-side failures are logged here.
pub fn to_status(error: EngineError) -> Status {
    let code = error.code();
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
    use crate::domain::DomainError;

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
        assert_eq!(
            code(DomainError::Overflow {
                what: "spend of 2026".into(),
                limit: "Rp 9223372036854775807".into()
            }),
            Code::OutOfRange
        );
    }
}
