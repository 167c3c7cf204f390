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
    #[error("insufficient sellable stock of {sku}: {on_hand} on hand, of which {reserved} reserved for the hub's online orders; {requested} requested")]
    NotSellable {
        sku: String,
        on_hand: i64,
        reserved: i64,
        requested: i64,
    },
    #[error("transfer {0} is already recorded here")]
    DuplicateTransfer(String),
    #[error("order {order} is already {outcome}")]
    OrderClosed {
        order: String,
        outcome: &'static str,
    },
    #[error("unknown order {0} (not placed by the hub, or not synced here yet)")]
    UnknownOrder(String),
    #[error("online quota of {sku} at {outlet}: {available} available, {requested} requested")]
    QuotaExceeded {
        outlet: String,
        sku: String,
        available: i64,
        requested: i64,
    },
    #[error("over budget: this receipt costs Rp {cost}, {district} has Rp {remaining} left of its {year} budget of Rp {allocated}; give an over-budget reason to record it anyway")]
    OverBudget {
        district: String,
        year: i32,
        allocated: i64,
        remaining: i64,
        cost: i64,
    },
    #[error("{0} is done by the provincial hub only")]
    HubOnly(&'static str),
    #[error("{0} is done by a district outlet only")]
    DistrictOnly(&'static str),
    #[error("request id {0} was already used for a different movement")]
    RequestIdReused(String),
    #[error("permission denied for document {doc}: {reason}")]
    Forbidden { doc: String, reason: String },
    #[error("document {doc}: {count} changes this bundle depends on are missing; send them first")]
    MissingDependencies { doc: String, count: usize },
    #[error("{what} would leave its range ({limit})")]
    Overflow { what: String, limit: String },
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
