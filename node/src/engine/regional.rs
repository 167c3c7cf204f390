//! What the hub derives across districts: regional stock per SKU with each district's
//! figures and their age, district summaries, low stock, and shipments in transit.
//!
//! Every answer is read from the ledger views kept up to date as changes arrive
//! ([`super::held`]); nothing here replays history. It must never mix in figures of a
//! document that is not a ledger, never hide how old a district's figures are, and
//! never wrap a total: an overflow is an error.

use std::collections::BTreeMap;

use super::{Documents, Engine, EngineError};
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::ledger::Ledger;
use crate::domain::{bounds, text, DomainError};

/// Reorder level of a product that sets none.
pub const DEFAULT_REORDER_LEVEL: i64 = 5;

/// One district's quantity of a SKU and the age of its figures.
#[derive(Debug, Clone)]
pub struct DistrictQuantity {
    pub district: NodeId,
    pub quantity: i64,
    /// Time of the newest movement the hub holds from the district (its clock).
    pub as_of_ms: i64,
}

/// A SKU across districts.
#[derive(Debug, Clone)]
pub struct RegionalLine {
    pub sku: String,
    pub name: String,
    pub total: i64,
    pub districts: Vec<DistrictQuantity>,
}

/// One district's stock in a few figures.
#[derive(Debug, Clone)]
pub struct DistrictSummary {
    pub district: NodeId,
    pub skus: u64,
    pub units: i64,
    pub value: i64,
    pub as_of_ms: i64,
}

/// A SKU at or below its reorder level somewhere.
#[derive(Debug, Clone)]
pub struct LowStock {
    pub district: NodeId,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub threshold: i64,
    pub as_of_ms: i64,
}

/// Both sides of a shipment as far as the hub knows them.
#[derive(Debug, Clone, Default)]
pub struct Shipment {
    pub transfer_id: String,
    pub from: String,
    pub to: String,
    pub sku: String,
    pub sent: i64,
    pub received: i64,
    pub sent_at_ms: i64,
    pub received_at_ms: i64,
}

impl Shipment {
    /// `in_transit` until the receiver's record arrives; `received_unsent` when the
    /// receiver's record arrived before the sender's.
    pub fn state(&self) -> &'static str {
        match (self.sent_at_ms > 0, self.received_at_ms > 0) {
            (true, false) => "in_transit",
            (false, true) => "received_unsent",
            _ => "received",
        }
    }
}

impl Engine {
    /// Every ledger the hub holds, optionally one district's.
    fn ledgers<'a>(
        &self,
        docs: &'a Documents,
        district: Option<&str>,
    ) -> Result<Vec<(&'a NodeId, &'a Ledger)>, EngineError> {
        let all: Vec<_> = docs
            .newest_ledgers()
            .into_iter()
            // The hub's own warehouse ledger counts once it has moved stock.
            .filter(|(node, ledger)| *node != &self.identity.node || !ledger.stock().is_empty())
            .filter(|(node, _)| district.is_none_or(|d| node.as_str() == d))
            .collect();
        if let (Some(d), true) = (district, all.is_empty()) {
            return Err(DomainError::UnknownOutlet(d.to_string()).into());
        }
        Ok(all)
    }

    fn product_name(docs: &Documents, district: &NodeId, sku: &str) -> String {
        [
            DocId::ProvincialCatalog,
            DocId::LocalCatalog(district.clone()),
        ]
        .iter()
        .filter_map(|id| docs.held.get(id).and_then(|h| h.catalog()))
        .find_map(|c| c.products.get(sku).map(|p| p.name.clone()))
        .unwrap_or_default()
    }

    fn reorder_level(docs: &Documents, district: &NodeId, sku: &str) -> i64 {
        [
            DocId::ProvincialCatalog,
            DocId::LocalCatalog(district.clone()),
        ]
        .iter()
        .filter_map(|id| docs.held.get(id).and_then(|h| h.catalog()))
        .find_map(|c| c.products.get(sku).map(|p| p.reorder_level))
        .filter(|level| *level > 0)
        .unwrap_or(DEFAULT_REORDER_LEVEL)
    }

    /// Stock per SKU across the districts (the hub's warehouse included), with each
    /// district's quantity and the age of its figures.
    pub fn regional_stock(
        &self,
        sku: Option<&str>,
        district: Option<&str>,
    ) -> Result<Vec<RegionalLine>, EngineError> {
        self.hub_only("regional stock")?;
        let sku = sku.map(|s| text::identifier("sku", s)).transpose()?;
        let docs = self.docs();
        let ledgers = self.ledgers(&docs, district)?;
        let mut lines: BTreeMap<String, RegionalLine> = BTreeMap::new();
        let mut add = |sku: &str, node: &NodeId, ledger: &Ledger| -> Result<(), DomainError> {
            let quantity = ledger.on_hand(sku);
            let line = lines
                .entry(sku.to_string())
                .or_insert_with(|| RegionalLine {
                    sku: sku.to_string(),
                    name: Self::product_name(&docs, node, sku),
                    total: 0,
                    districts: Vec::new(),
                });
            line.total = bounds::add(|| format!("regional stock of {sku}"), line.total, quantity)?;
            line.districts.push(DistrictQuantity {
                district: node.clone(),
                quantity,
                as_of_ms: ledger.newest_ms(),
            });
            Ok(())
        };
        for (node, ledger) in &ledgers {
            match &sku {
                Some(sku) => add(sku, node, ledger)?,
                None => {
                    for s in ledger.stock().keys() {
                        add(s, node, ledger)?;
                    }
                }
            }
        }
        Ok(lines.into_values().collect())
    }

    /// Per district: SKUs in stock, units, value at catalog price, age of figures.
    pub fn district_summaries(&self) -> Result<Vec<DistrictSummary>, EngineError> {
        self.hub_only("district summaries")?;
        let docs = self.docs();
        let mut out = Vec::new();
        for (node, ledger) in self.ledgers(&docs, None)? {
            let in_stock = ledger.stock().iter().filter(|(_, q)| **q > 0);
            // Units and value summed in i128 (a stock balance times a unit price
            // may pass i64 on its own), then refused if the answer does not fit.
            let (mut skus, mut units, mut value) = (0, 0i128, 0i128);
            for (sku, q) in in_stock {
                skus += 1;
                units += i128::from(*q);
                let price = Self::price_for(&docs, node, sku).unwrap_or(0);
                value += i128::from(price) * i128::from(*q);
            }
            out.push(DistrictSummary {
                district: node.clone(),
                skus,
                units: bounds::narrow(|| format!("units held by {node}"), units)?,
                value: bounds::narrow(|| format!("value of the stock of {node}"), value)?,
                as_of_ms: ledger.newest_ms(),
            });
        }
        Ok(out)
    }

    /// SKUs at or below their reorder level, per district.
    pub fn low_stock(&self, district: Option<&str>) -> Result<Vec<LowStock>, EngineError> {
        self.hub_only("low stock")?;
        let docs = self.docs();
        let mut out = Vec::new();
        for (node, ledger) in self.ledgers(&docs, district)? {
            for (sku, quantity) in ledger.stock() {
                let threshold = Self::reorder_level(&docs, node, sku);
                if *quantity <= threshold {
                    out.push(LowStock {
                        district: node.clone(),
                        sku: sku.clone(),
                        name: Self::product_name(&docs, node, sku),
                        quantity: *quantity,
                        threshold,
                        as_of_ms: ledger.newest_ms(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every shipment either side of which the hub holds, matched by transfer id.
    pub fn shipments(&self) -> Result<Vec<Shipment>, EngineError> {
        self.hub_only("shipments in transit")?;
        let docs = self.docs();
        // Transfer ids are unique per sender: key by (sender, id).
        let mut by_id: BTreeMap<(String, String), Shipment> = BTreeMap::new();
        for (node, ledger) in self.ledgers(&docs, None)? {
            for (id, side) in ledger.dispatched() {
                let s = by_id.entry((node.to_string(), id.clone())).or_default();
                s.transfer_id = id.clone();
                s.from = node.to_string();
                s.to = side.counterpart.clone();
                s.sku = side.sku.clone();
                s.sent = side.quantity;
                s.sent_at_ms = side.at_ms;
            }
            for ((sender, id), side) in ledger.received() {
                let s = by_id.entry((sender.clone(), id.clone())).or_default();
                s.transfer_id = id.clone();
                if s.from.is_empty() {
                    s.from = side.counterpart.clone();
                    s.sku = side.sku.clone();
                }
                s.to = node.to_string();
                s.received = side.quantity;
                s.received_at_ms = side.at_ms;
            }
        }
        Ok(by_id.into_values().collect())
    }
}
