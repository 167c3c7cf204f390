//! Node ids and document ids: the units of identity and of ownership.
//!
//! A document has exactly one owner, the only node whose changes it accepts (the hub
//! may relay it). Ownership is decided here, from the id alone.

use std::fmt;

use super::period::PeriodId;
use super::DomainError;

/// A node's id, as written in its certificate and config: 1 to 32 characters of
/// lowercase letters, digits and `-`, starting with a letter (e.g. `ttu`, `kupang`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

impl NodeId {
    pub const MAX_LEN: usize = 32;

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let ok_start = value.starts_with(|c: char| c.is_ascii_lowercase());
        let ok_chars = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok_start || !ok_chars || value.len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                "node_id",
                format!(
                    "must be 1 to {} lowercase letters, digits or '-', starting with a letter, got {value:?}",
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(NodeId(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Catalog,
    Ledger,
    Orders,
    Budget,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Catalog => "catalog",
            DocKind::Ledger => "ledger",
            DocKind::Orders => "orders",
            DocKind::Budget => "budget",
        }
    }
}

/// The id of a document, written `catalog/province`, `catalog/<node>`,
/// `ledger/<node>/<YYYY-MM>`, `orders/<node>` or `budget/province`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocId {
    /// The official catalog of the province, owned by the hub.
    ProvincialCatalog,
    /// A node's own producers and local products.
    LocalCatalog(NodeId),
    /// An outlet's stock movements of one period, named by its first month.
    Ledger(NodeId, PeriodId),
    /// The hub's online orders against an outlet's quota, and quota it released.
    Orders(NodeId),
    /// Procurement budgets per district and year, owned by the hub.
    Budget,
}

impl DocId {
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid("document_id", format!("unknown document {value:?}"));
        match value.split_once('/') {
            Some(("catalog", "province")) => Ok(DocId::ProvincialCatalog),
            Some(("catalog", node)) => {
                Ok(DocId::LocalCatalog(NodeId::parse(node).map_err(|_| bad())?))
            }
            Some(("ledger", rest)) => {
                let (node, period) = rest.split_once('/').ok_or_else(bad)?;
                Ok(DocId::Ledger(
                    NodeId::parse(node).map_err(|_| bad())?,
                    PeriodId::parse(period).map_err(|_| bad())?,
                ))
            }
            Some(("orders", node)) => Ok(DocId::Orders(NodeId::parse(node).map_err(|_| bad())?)),
            Some(("budget", "province")) => Ok(DocId::Budget),
            _ => Err(bad()),
        }
    }

    pub fn kind(&self) -> DocKind {
        match self {
            DocId::ProvincialCatalog | DocId::LocalCatalog(_) => DocKind::Catalog,
            DocId::Ledger(..) => DocKind::Ledger,
            DocId::Orders(_) => DocKind::Orders,
            DocId::Budget => DocKind::Budget,
        }
    }

    /// The only node allowed to author changes in this document.
    pub fn owner<'a>(&'a self, hub: &'a NodeId) -> &'a NodeId {
        match self {
            DocId::ProvincialCatalog | DocId::Orders(_) | DocId::Budget => hub,
            DocId::LocalCatalog(node) | DocId::Ledger(node, _) => node,
        }
    }

    /// The outlet and period of a ledger document.
    pub fn ledger_period(&self) -> Option<(&NodeId, PeriodId)> {
        match self {
            DocId::Ledger(node, period) => Some((node, *period)),
            _ => None,
        }
    }

    /// The catalog a node writes its own products into: the provincial catalog for
    /// the hub, the node's local catalog for a district.
    pub fn own_catalog(node: &NodeId, hub: &NodeId) -> DocId {
        if node == hub {
            DocId::ProvincialCatalog
        } else {
            DocId::LocalCatalog(node.clone())
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::ProvincialCatalog => f.write_str("catalog/province"),
            DocId::LocalCatalog(node) => write!(f, "catalog/{node}"),
            DocId::Ledger(node, period) => write!(f, "ledger/{node}/{period}"),
            DocId::Orders(node) => write!(f, "orders/{node}"),
            DocId::Budget => f.write_str("budget/province"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_ids_round_trip_and_know_their_owner() {
        let hub = NodeId::parse("kupang").unwrap();
        for text in [
            "catalog/province",
            "catalog/ttu",
            "ledger/ttu/2026-11",
            "orders/ttu",
            "budget/province",
        ] {
            let id = DocId::parse(text).unwrap();
            assert_eq!(id.to_string(), text);
        }
        assert_eq!(DocId::ProvincialCatalog.owner(&hub).as_str(), "kupang");
        assert_eq!(
            DocId::parse("ledger/ttu/2026-11")
                .unwrap()
                .owner(&hub)
                .as_str(),
            "ttu"
        );
        assert!(DocId::parse("ledger/TTU/2026-11").is_err());
        assert!(DocId::parse("ledger/ttu").is_err());
        assert!(DocId::parse("ledger/ttu/2026-13").is_err());
        assert_eq!(DocId::parse("orders/ttu").unwrap().owner(&hub), &hub);
        assert_eq!(DocId::Budget.owner(&hub), &hub);
        assert!(DocId::parse("budget/ttu").is_err());
        assert!(DocId::parse("orders").is_err());
    }

    #[test]
    fn node_ids_are_strict() {
        assert!(NodeId::parse("ttu").is_ok());
        assert!(NodeId::parse("kota-kupang").is_ok());
        assert!(NodeId::parse("").is_err());
        assert!(NodeId::parse("1ttu").is_err());
        assert!(NodeId::parse("TTU").is_err());
    }
}
