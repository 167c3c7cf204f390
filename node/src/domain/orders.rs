//! Online orders with escrow (invariant 4): the hub sells an outlet's goods online only
//! out of quota the outlet handed it, so neither side ever needs the other online.
//!
//! Two documents share the work, each with one owner:
//! - the outlet's ledger (owned by the outlet) records quota grants, return requests,
//!   fulfilments (online sales naming the order) and cancellations;
//! - `orders/<outlet>` (owned by the hub, shared with that outlet only) records the
//!   orders the hub accepted and the quota it released back on request.
//!
//! Laws, per outlet and SKU, for any interleaving of syncs:
//! - at the hub, `available = granted - released - accepted + cancelled >= 0`, and an
//!   order is accepted only if it fits in `available`;
//! - at the outlet, `reserved = granted - fulfilled - released (as the outlet knows
//!   it) >= accepted - cancelled - fulfilled` (every open order is covered), and store
//!   sales, transfers and grants take only from `on_hand - reserved`.
//!
//! It must never let the hub accept more than `available`, nor the outlet take back
//! quota by itself: only the hub's release returns it.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::bounds;
use super::journal::Journal;
use super::ledger::Ledger;
use super::movement::Buyer;
use super::DomainError;

const ENTRIES: &str = "entries";

/// An entry of an `orders/<outlet>` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum OrderEntry {
    /// An online order the hub accepted against the outlet's quota.
    #[serde(rename = "ord")]
    Order {
        id: String,
        sku: String,
        #[serde(rename = "q")]
        quantity: i64,
        /// Unit price in rupiah when the order was placed.
        #[serde(rename = "p")]
        unit_price: i64,
        #[serde(rename = "b")]
        buyer: Buyer,
        #[serde(rename = "at")]
        at_ms: i64,
    },
    /// Quota the hub gives back, answering the outlet's return request `request`.
    #[serde(rename = "rel")]
    Release {
        id: String,
        sku: String,
        #[serde(rename = "q")]
        quantity: i64,
        #[serde(rename = "req")]
        request: String,
        #[serde(rename = "at")]
        at_ms: i64,
    },
}

/// The document's entries, appended by the hub only.
pub const JOURNAL: Journal<OrderEntry> = Journal::new(ENTRIES);

/// An order as placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub id: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub buyer: Buyer,
    pub at_ms: i64,
}

/// What an `orders/<outlet>` document says: the orders, and per SKU the units
/// accepted and released.
#[derive(Debug, Clone, Default)]
pub struct Orders {
    orders: BTreeMap<String, PlacedOrder>,
    accepted: BTreeMap<String, i64>,
    released: BTreeMap<String, i64>,
    answered: HashSet<String>,
    len: usize,
}

impl Orders {
    /// Replays the document's entries; an entry beyond its bounds, or one that would
    /// take a running count beyond [`bounds::MAX_BALANCE_UNITS`], is refused (the
    /// error names it).
    pub fn replay<'a>(
        entries: impl IntoIterator<Item = &'a OrderEntry>,
    ) -> Result<Self, DomainError> {
        let mut orders = Orders::default();
        for (i, e) in entries.into_iter().enumerate() {
            orders
                .apply(e)
                .map_err(|err| DomainError::invalid("entries", format!("{i}: {err}")))?;
        }
        Ok(orders)
    }

    /// The units of its SKU accepted (an order) or released (a release) once `entry`
    /// is added, or why it may not be: a number out of range, a count beyond its
    /// bound. A release may be of 0 units (nothing was left to give back).
    pub fn check(&self, entry: &OrderEntry) -> Result<i64, DomainError> {
        match entry {
            OrderEntry::Order {
                sku,
                quantity,
                unit_price,
                at_ms,
                ..
            } => {
                bounds::quantity("quantity", *quantity)?;
                bounds::unit_rupiah("unit_price_rupiah", *unit_price)?;
                bounds::time_ms("at", *at_ms)?;
                bounds::add_units(
                    || format!("units of {sku} accepted"),
                    self.accepted(sku),
                    *quantity,
                )
            }
            OrderEntry::Release {
                sku,
                quantity,
                at_ms,
                ..
            } => {
                bounds::quantity_or_zero("quantity", *quantity)?;
                bounds::time_ms("at", *at_ms)?;
                bounds::add_units(
                    || format!("units of {sku} released"),
                    self.released(sku),
                    *quantity,
                )
            }
        }
    }

    /// Adds an entry, unless [`Orders::check`] refuses it (then nothing changes).
    pub fn apply(&mut self, entry: &OrderEntry) -> Result<(), DomainError> {
        let count = self.check(entry)?;
        self.len += 1;
        match entry {
            OrderEntry::Order {
                id,
                sku,
                quantity,
                unit_price,
                buyer,
                at_ms,
            } => {
                self.accepted.insert(sku.clone(), count);
                self.orders.insert(
                    id.clone(),
                    PlacedOrder {
                        id: id.clone(),
                        sku: sku.clone(),
                        quantity: *quantity,
                        unit_price: *unit_price,
                        buyer: *buyer,
                        at_ms: *at_ms,
                    },
                );
            }
            OrderEntry::Release { sku, request, .. } => {
                self.released.insert(sku.clone(), count);
                self.answered.insert(request.clone());
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn order(&self, id: &str) -> Option<&PlacedOrder> {
        self.orders.get(id)
    }

    pub fn orders(&self) -> impl Iterator<Item = &PlacedOrder> {
        self.orders.values()
    }

    pub fn accepted(&self, sku: &str) -> i64 {
        self.accepted.get(sku).copied().unwrap_or(0)
    }

    pub fn released(&self, sku: &str) -> i64 {
        self.released.get(sku).copied().unwrap_or(0)
    }

    /// Whether the hub answered the outlet's return request `request`.
    pub fn answered(&self, request: &str) -> bool {
        self.answered.contains(request)
    }
}

/// Units of `sku` the hub may still sell online for the outlet whose ledger (as the
/// hub holds it) is `ledger`. Cannot overflow: each term is a running count within
/// [`bounds::MAX_BALANCE_UNITS`] (kept by `Ledger::apply` and [`Orders::apply`]).
pub fn available(ledger: &Ledger, orders: Option<&Orders>, sku: &str) -> i64 {
    let (released, accepted) = orders.map_or((0, 0), |o| (o.released(sku), o.accepted(sku)));
    ledger.granted(sku) - released - accepted + ledger.cancelled(sku)
}

/// Units of `sku` the outlet keeps on its shelf for the hub's online orders (bounded
/// terms, as for [`available`]).
pub fn reserved(ledger: &Ledger, orders: Option<&Orders>, sku: &str) -> i64 {
    let released = orders.map_or(0, |o| o.released(sku));
    ledger.granted(sku) - ledger.fulfilled(sku) - released
}

/// Status of an order: `accepted` until the outlet fulfils or cancels it.
pub fn status(ledger: &Ledger, order: &str) -> &'static str {
    match ledger.outcome(order) {
        Some(super::ledger::OrderOutcome::Fulfilled) => "fulfilled",
        Some(super::ledger::OrderOutcome::Cancelled) => "cancelled",
        None => "accepted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::movement::{Channel, Movement, MovementKind};
    use proptest::prelude::*;

    /// One step of either side, applied in some sync order.
    #[derive(Debug, Clone)]
    enum Step {
        Grant(i64),
        Order(i64),
        Fulfil,
        Cancel,
        AskBack(i64),
        HubAnswers,
        StoreSale(i64),
        Receive(i64),
        /// The hub learns everything the outlet recorded.
        SyncUp,
        /// The outlet learns everything the hub recorded.
        SyncDown,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1i64..10).prop_map(Step::Grant),
            (1i64..6).prop_map(Step::Order),
            Just(Step::Fulfil),
            Just(Step::Cancel),
            (1i64..10).prop_map(Step::AskBack),
            Just(Step::HubAnswers),
            (1i64..10).prop_map(Step::StoreSale),
            (1i64..20).prop_map(Step::Receive),
            Just(Step::SyncUp),
            Just(Step::SyncDown),
        ]
    }

    const SKU: &str = "TTU-MKP-060";

    /// The hub's journal is incoming history at the outlet: an entry beyond its
    /// bounds, or a count beyond its bound, is refused and changes nothing.
    #[test]
    fn absurd_order_entries_are_refused() {
        let order = |id: &str, quantity, unit_price, at_ms| OrderEntry::Order {
            id: id.into(),
            sku: SKU.into(),
            quantity,
            unit_price,
            buyer: Buyer::Public,
            at_ms,
        };
        let release = |quantity| OrderEntry::Release {
            id: "r".into(),
            sku: SKU.into(),
            quantity,
            request: "q".into(),
            at_ms: 1,
        };
        for bad in [
            order("o", i64::MAX, 1, 1),
            order("o", 0, 1, 1),
            order("o", -1, 1, 1),
            order("o", bounds::MAX_QUANTITY + 1, 1, 1),
            order("o", 1, bounds::MAX_UNIT_RUPIAH + 1, 1),
            order("o", 1, i64::MIN, 1),
            order("o", 1, 1, -1),
            release(-1),
            release(i64::MIN),
            release(bounds::MAX_QUANTITY + 1),
        ] {
            let mut orders = Orders::default();
            assert!(orders.apply(&bad).is_err(), "{bad:?}");
            assert!(orders.is_empty() && orders.accepted(SKU) == 0 && orders.released(SKU) == 0);
            assert!(
                Orders::replay(std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
        // At the bounds: accepted, and a release of nothing is allowed.
        let fine = [
            order("o1", bounds::MAX_QUANTITY, bounds::MAX_UNIT_RUPIAH, 1),
            release(0),
        ];
        let orders = Orders::replay(&fine).unwrap();
        assert_eq!(orders.accepted(SKU), bounds::MAX_QUANTITY);
        // A million orders of the largest quantity reach the bound of a running count;
        // one more is refused instead of growing without end.
        let mut full = Orders::default();
        full.accepted.insert(SKU.into(), bounds::MAX_BALANCE_UNITS);
        assert!(matches!(
            full.apply(&order("o2", 1, 1, 1)),
            Err(DomainError::Overflow { .. })
        ));
    }

    proptest! {
        /// Whatever the outlet and the hub do and however late they learn of each
        /// other, stock and quota never go negative and every open order is covered
        /// by stock reserved on the outlet's shelf.
        #[test]
        fn escrow_never_oversells(steps in prop::collection::vec(step(), 1..150)) {
            let mut outlet_moves: Vec<Movement> = Vec::new();
            let mut hub_entries: Vec<OrderEntry> = Vec::new();
            let (mut hub_sees, mut outlet_sees) = (0usize, 0usize);
            let mut n = 0;
            for s in steps {
                n += 1;
                let outlet = Ledger::replay(&outlet_moves).unwrap();
                let outlet_orders = Orders::replay(&hub_entries[..outlet_sees]).unwrap();
                let hub_ledger = Ledger::replay(&outlet_moves[..hub_sees]).unwrap();
                let hub_orders = Orders::replay(&hub_entries).unwrap();
                let reserved_now = reserved(&outlet, Some(&outlet_orders), SKU);
                let mut record = |kind: MovementKind| {
                    let m = Movement { id: format!("m{n}"), sku: SKU.into(), at_ms: n, kind };
                    if outlet.check(&m, reserved_now).is_ok() {
                        outlet_moves.push(m);
                    }
                };
                match s {
                    Step::Grant(q) => record(MovementKind::QuotaGrant { quantity: q }),
                    Step::Receive(q) => record(MovementKind::Receipt { quantity: q, unit_cost: 1, producer: None, over_budget: None }),
                    Step::StoreSale(q) => record(MovementKind::Sale { quantity: q, unit_price: Some(1), channel: Channel::Store, buyer: Buyer::Public, order: None, basket: None }),
                    Step::AskBack(q) => record(MovementKind::QuotaReturn { quantity: q }),
                    Step::Fulfil | Step::Cancel => {
                        let open = outlet_orders.orders().find(|o| outlet.outcome(&o.id).is_none()).cloned();
                        if let Some(o) = open {
                            let kind = if matches!(s, Step::Fulfil) {
                                MovementKind::Sale { quantity: o.quantity, unit_price: Some(1), channel: Channel::Online, buyer: Buyer::Public, order: Some(o.id.clone()), basket: None }
                            } else {
                                MovementKind::OrderCancel { quantity: o.quantity, order: o.id.clone() }
                            };
                            record(kind);
                        }
                    }
                    Step::Order(q) => {
                        if available(&hub_ledger, Some(&hub_orders), SKU) >= q {
                            hub_entries.push(OrderEntry::Order { id: format!("o{n}"), sku: SKU.into(), quantity: q, unit_price: 1, buyer: Buyer::Public, at_ms: n });
                        }
                    }
                    Step::HubAnswers => {
                        for (req, sku, q) in hub_ledger.return_requests() {
                            let hub_orders = Orders::replay(&hub_entries).unwrap();
                            if hub_orders.answered(req) { continue; }
                            let give = (*q).min(available(&hub_ledger, Some(&hub_orders), sku)).max(0);
                            hub_entries.push(OrderEntry::Release { id: format!("r{n}-{req}"), sku: sku.clone(), quantity: give, request: req.clone(), at_ms: n });
                        }
                    }
                    Step::SyncUp => hub_sees = outlet_moves.len(),
                    Step::SyncDown => outlet_sees = hub_entries.len(),
                }
                let outlet = Ledger::replay(&outlet_moves).unwrap();
                let hub_ledger = Ledger::replay(&outlet_moves[..hub_sees]).unwrap();
                let hub_orders = Orders::replay(&hub_entries).unwrap();
                let outlet_orders = Orders::replay(&hub_entries[..outlet_sees]).unwrap();
                prop_assert!(outlet.on_hand(SKU) >= 0);
                prop_assert!(available(&hub_ledger, Some(&hub_orders), SKU) >= 0);
                let reserved_outlet = reserved(&outlet, Some(&outlet_orders), SKU);
                prop_assert!(reserved_outlet <= outlet.on_hand(SKU), "reserved {} on hand {}", reserved_outlet, outlet.on_hand(SKU));
                // Every open order the hub accepted is covered by reserved stock.
                let open: i64 = hub_orders.orders().filter(|o| outlet.outcome(&o.id).is_none()).map(|o| o.quantity).sum();
                prop_assert!(open <= reserved_outlet, "open {} reserved {}", open, reserved_outlet);
            }
        }
    }
}
