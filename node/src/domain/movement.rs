//! Stock movements: the facts an outlet's stock is derived from.
//!
//! A recorded movement is immutable. It is stored in the ledger document as one
//! compact JSON string with short keys, so that a sale costs one automerge operation
//! and compresses well on the wire.

use serde::{Deserialize, Serialize};

use super::basket::BasketMark;
use super::doc_id::NodeId;
use super::{bounds, text, DomainError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Store,
    Online,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Buyer {
    Public,
    /// A civil servant (ASN).
    Asn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdjustReason {
    Count,
    Damage,
    Expiry,
}

/// What happened to the stock. Optional prices and producers are filled from the
/// catalog when the movement is prepared; a recorded movement always has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum MovementKind {
    #[serde(rename = "rcv")]
    Receipt {
        #[serde(rename = "q")]
        quantity: i64,
        #[serde(rename = "c")]
        unit_cost: i64,
        #[serde(rename = "pr", default, skip_serializing_if = "Option::is_none")]
        producer: Option<String>,
        /// Why a receipt beyond the district's remaining budget was recorded anyway.
        #[serde(rename = "ob", default, skip_serializing_if = "Option::is_none")]
        over_budget: Option<String>,
    },
    #[serde(rename = "sal")]
    Sale {
        #[serde(rename = "q")]
        quantity: i64,
        #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
        unit_price: Option<i64>,
        #[serde(rename = "ch")]
        channel: Channel,
        #[serde(rename = "b")]
        buyer: Buyer,
        /// The hub's online order this sale fulfils: it uses quota granted to the
        /// hub instead of the outlet's sellable stock.
        #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
        order: Option<String>,
        /// The sale's place in its basket (see [`super::basket`]); `None`: a
        /// one-line basket without a receipt number (every sale before baskets).
        #[serde(rename = "bk", default, skip_serializing_if = "Option::is_none")]
        basket: Option<BasketMark>,
    },
    #[serde(rename = "adj")]
    Adjustment {
        /// Signed, never zero.
        #[serde(rename = "q")]
        delta: i64,
        #[serde(rename = "r")]
        reason: AdjustReason,
        #[serde(rename = "n", default, skip_serializing_if = "String::is_empty")]
        note: String,
    },
    #[serde(rename = "tout")]
    TransferOut {
        #[serde(rename = "q")]
        quantity: i64,
        #[serde(rename = "t")]
        transfer_id: String,
        to: String,
    },
    #[serde(rename = "tin")]
    TransferIn {
        #[serde(rename = "q")]
        quantity: i64,
        #[serde(rename = "t")]
        transfer_id: String,
        from: String,
    },
    /// The outlet hands the hub `quantity` units of its sellable stock as online
    /// quota; the stock stays on the shelf, reserved for the hub's orders.
    #[serde(rename = "qg")]
    QuotaGrant {
        #[serde(rename = "q")]
        quantity: i64,
    },
    /// The outlet asks the hub for quota back; the hub answers with a release of what
    /// it has not sold (possibly less).
    #[serde(rename = "qr")]
    QuotaReturn {
        #[serde(rename = "q")]
        quantity: i64,
    },
    /// The outlet will not fulfil an online order; its quantity returns to the hub's
    /// quota.
    #[serde(rename = "ocx")]
    OrderCancel {
        #[serde(rename = "q")]
        quantity: i64,
        order: String,
    },
}

impl MovementKind {
    /// Signed effect on the stock on hand (exact within [`MovementKind::check_numbers`];
    /// saturated, never wrapped, beyond).
    pub fn delta(&self) -> i64 {
        match self {
            MovementKind::Receipt { quantity, .. } | MovementKind::TransferIn { quantity, .. } => {
                *quantity
            }
            MovementKind::Sale { quantity, .. } | MovementKind::TransferOut { quantity, .. } => {
                quantity.saturating_neg()
            }
            MovementKind::Adjustment { delta, .. } => *delta,
            MovementKind::QuotaGrant { .. }
            | MovementKind::QuotaReturn { .. }
            | MovementKind::OrderCancel { .. } => 0,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            MovementKind::Receipt { .. } => "receipt",
            MovementKind::Sale { .. } => "sale",
            MovementKind::Adjustment { .. } => "adjustment",
            MovementKind::TransferOut { .. } => "transfer_out",
            MovementKind::TransferIn { .. } => "transfer_in",
            MovementKind::QuotaGrant { .. } => "quota_grant",
            MovementKind::QuotaReturn { .. } => "quota_return",
            MovementKind::OrderCancel { .. } => "order_cancel",
        }
    }

    /// The units a movement is about (the size of a change of stock or quota).
    pub fn quantity(&self) -> i64 {
        match self {
            MovementKind::Receipt { quantity, .. }
            | MovementKind::Sale { quantity, .. }
            | MovementKind::TransferOut { quantity, .. }
            | MovementKind::TransferIn { quantity, .. }
            | MovementKind::QuotaGrant { quantity }
            | MovementKind::QuotaReturn { quantity }
            | MovementKind::OrderCancel { quantity, .. } => *quantity,
            // Never `abs()`: `i64::MIN.abs()` wraps.
            MovementKind::Adjustment { delta, .. } => {
                i64::try_from(delta.unsigned_abs()).unwrap_or(i64::MAX)
            }
        }
    }

    /// Checks every number of the movement against its bound (see [`bounds`]): the
    /// one definition for a client's request and a peer's history.
    pub fn check_numbers(&self) -> Result<(), DomainError> {
        match self {
            MovementKind::Receipt {
                quantity,
                unit_cost,
                ..
            } => {
                bounds::quantity("quantity", *quantity)?;
                bounds::unit_rupiah("unit_cost_rupiah", *unit_cost)?;
            }
            MovementKind::Sale {
                quantity,
                unit_price,
                ..
            } => {
                bounds::quantity("quantity", *quantity)?;
                if let Some(price) = unit_price {
                    bounds::unit_rupiah("unit_price_rupiah", *price)?;
                }
            }
            MovementKind::Adjustment { delta, .. } => {
                bounds::change("quantity", *delta)?;
            }
            MovementKind::TransferOut { quantity, .. }
            | MovementKind::TransferIn { quantity, .. }
            | MovementKind::QuotaGrant { quantity }
            | MovementKind::QuotaReturn { quantity }
            | MovementKind::OrderCancel { quantity, .. } => {
                bounds::quantity("quantity", *quantity)?;
            }
        }
        Ok(())
    }

    /// Whether this movement takes from the outlet's sellable stock (what is on hand
    /// and not reserved for the hub's online orders).
    pub fn takes_sellable(&self) -> bool {
        match self {
            MovementKind::Sale { order, .. } => order.is_none(),
            MovementKind::TransferOut { .. } | MovementKind::QuotaGrant { .. } => true,
            _ => false,
        }
    }

    /// Fills what a request may leave out: the unit price of a sale, the producer of
    /// a receipt. Values the request gave are kept.
    pub fn filled(mut self, price: Option<i64>, producer: Option<&str>) -> Self {
        match &mut self {
            MovementKind::Sale { unit_price, .. } if unit_price.is_none() => *unit_price = price,
            MovementKind::Receipt { producer: p, .. } if p.is_none() => {
                *p = producer.map(str::to_string)
            }
            _ => {}
        }
        self
    }

    fn sale_price(&self) -> Option<i64> {
        match self {
            MovementKind::Sale { unit_price, .. } => *unit_price,
            _ => None,
        }
    }

    fn receipt_producer(&self) -> Option<&str> {
        match self {
            MovementKind::Receipt { producer, .. } => producer.as_deref(),
            _ => None,
        }
    }

    /// Checks every field of a requested movement; the error names the bad field.
    pub fn validated(self, outlet: &NodeId) -> Result<Self, DomainError> {
        self.check_numbers()?;
        let counterpart = |field: &'static str, node: &str| -> Result<String, DomainError> {
            let node = NodeId::parse(node.trim())
                .map_err(|_| DomainError::invalid(field, format!("not a node id: {node:?}")))?;
            if &node == outlet {
                return Err(DomainError::invalid(field, "must be another outlet"));
            }
            Ok(node.to_string())
        };
        Ok(match self {
            MovementKind::Receipt {
                quantity,
                unit_cost,
                producer,
                over_budget,
            } => MovementKind::Receipt {
                quantity,
                unit_cost,
                producer: producer
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| text::identifier("producer_id", &p))
                    .transpose()?,
                over_budget: over_budget
                    .map(|r| text::optional("over_budget_reason", &r))
                    .transpose()?
                    .filter(|r| !r.is_empty()),
            },
            MovementKind::Sale {
                quantity,
                unit_price,
                channel,
                buyer,
                order,
                basket,
            } => MovementKind::Sale {
                quantity,
                unit_price,
                channel: if order.is_some() {
                    Channel::Online
                } else {
                    channel
                },
                buyer,
                order: order
                    .map(|o| text::identifier("order_id", &o))
                    .transpose()?,
                basket,
            },
            MovementKind::Adjustment {
                delta,
                reason,
                note,
            } => MovementKind::Adjustment {
                delta,
                reason,
                note: text::optional("note", &note)?,
            },
            MovementKind::TransferOut {
                quantity,
                transfer_id,
                to,
            } => MovementKind::TransferOut {
                quantity,
                transfer_id: text::identifier("transfer_id", &transfer_id)?,
                to: counterpart("to_outlet", &to)?,
            },
            MovementKind::TransferIn {
                quantity,
                transfer_id,
                from,
            } => MovementKind::TransferIn {
                quantity,
                transfer_id: text::identifier("transfer_id", &transfer_id)?,
                from: counterpart("from_outlet", &from)?,
            },
            MovementKind::QuotaGrant { quantity } => MovementKind::QuotaGrant { quantity },
            MovementKind::QuotaReturn { quantity } => MovementKind::QuotaReturn { quantity },
            MovementKind::OrderCancel { quantity, order } => MovementKind::OrderCancel {
                quantity,
                order: text::identifier("order_id", &order)?,
            },
        })
    }
}

/// A recorded movement of one SKU at one outlet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// Unique within its ledger: the client's request id, or one the node made up.
    pub id: String,
    pub sku: String,
    /// Milliseconds since the Unix epoch, by the recording node's clock.
    #[serde(rename = "at")]
    pub at_ms: i64,
    #[serde(flatten)]
    pub kind: MovementKind,
}

impl Movement {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("movement serializes")
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Whether this recorded movement answers a repeated request for `sku` and
    /// `requested`: the same content, where a price or producer the request left out
    /// matches whatever was recorded.
    pub fn answers(&self, sku: &str, requested: &MovementKind) -> bool {
        let mut requested = requested
            .clone()
            .filled(self.kind.sale_price(), self.kind.receipt_producer());
        // A reason given for a receipt that fitted the budget was not recorded.
        if let (
            MovementKind::Receipt {
                over_budget: None, ..
            },
            MovementKind::Receipt { over_budget, .. },
        ) = (&self.kind, &mut requested)
        {
            *over_budget = None;
        }
        self.sku == sku && self.kind == requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compact_and_round_trips() {
        let sale = Movement {
            id: "r-1".into(),
            sku: "TTU-MKP-060".into(),
            at_ms: 1_764_483_000_000,
            kind: MovementKind::Sale {
                quantity: 2,
                unit_price: Some(35_000),
                channel: Channel::Store,
                buyer: Buyer::Asn,
                order: None,
                basket: None,
            },
        };
        let json = sale.to_json();
        assert_eq!(
            json,
            r#"{"id":"r-1","sku":"TTU-MKP-060","at":1764483000000,"k":"sal","q":2,"p":35000,"ch":"store","b":"asn"}"#
        );
        assert_eq!(Movement::from_json(&json).unwrap(), sale);
        assert_eq!(sale.kind.delta(), -2);
    }

    #[test]
    fn validation_refuses_bad_fields() {
        let ttu = NodeId::parse("ttu").unwrap();
        let sale = |q| MovementKind::Sale {
            quantity: q,
            unit_price: None,
            channel: Channel::Store,
            buyer: Buyer::Public,
            order: None,
            basket: None,
        };
        assert!(sale(0).validated(&ttu).is_err());
        assert!(sale(-3).validated(&ttu).is_err());
        assert!(sale(3).validated(&ttu).is_ok());
        let adj = MovementKind::Adjustment {
            delta: 0,
            reason: AdjustReason::Count,
            note: String::new(),
        };
        assert!(adj.validated(&ttu).is_err());
        let to_self = MovementKind::TransferOut {
            quantity: 1,
            transfer_id: "t1".into(),
            to: "ttu".into(),
        };
        assert!(to_self.validated(&ttu).is_err());
    }
}
