//! Online orders against escrowed quota (invariant 4), and procurement budgets: the
//! engine side of `domain::orders` and `domain::budget`.
//!
//! The hub writes `orders/<outlet>` and `budget/province` (created at its first write);
//! an outlet writes only its own ledger (grants, return requests, fulfilments,
//! cancellations). It must never accept an order beyond the quota the hub knows of,
//! and never write a hub document at an outlet.

use automerge::transaction::Transaction;
use automerge::AutomergeError;

use super::held::{Held, View};
use super::operations::{MovementAck, MovementRequest};
use super::replica::Replica;
use super::{now_ms, Documents, Engine, EngineError};
use crate::domain::budget::{self, BudgetEntry, Budgets};
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::ledger::{Ledger, OverBudget};
use crate::domain::movement::{Buyer, Channel, MovementKind};
use crate::domain::orders::{self, OrderEntry, Orders, PlacedOrder};
use crate::domain::{bounds, text, wita, DomainError};

/// An order with the outlet it is for and what the outlet made of it.
#[derive(Debug, Clone)]
pub struct OrderInfo {
    pub outlet: NodeId,
    pub order: PlacedOrder,
    pub status: &'static str,
    /// A repeated request that placed nothing new.
    pub duplicate: bool,
}

/// Quota of one SKU at one outlet, as this node knows it.
#[derive(Debug, Clone, Default)]
pub struct QuotaInfo {
    pub outlet: String,
    pub sku: String,
    pub granted: i64,
    pub accepted: i64,
    pub fulfilled: i64,
    pub cancelled: i64,
    pub released: i64,
    pub available: i64,
    pub reserved: i64,
    pub pending_returns: i64,
}

/// A district's budget for a year, as this node knows it.
#[derive(Debug, Clone)]
pub struct BudgetStatus {
    pub district: String,
    pub year: i32,
    pub allocated: Option<i64>,
    pub spent: i64,
    pub over_budget: Vec<OverBudget>,
}

impl BudgetStatus {
    /// What is left of the allocation; negative once receipts over budget spent more.
    /// Cannot overflow: both terms are at least 0 (`spent` is a checked sum).
    pub fn remaining(&self) -> i64 {
        self.allocated.unwrap_or(0) - self.spent
    }
}

type Init = fn(&mut Transaction<'_>) -> Result<(), AutomergeError>;

impl Engine {
    pub(super) fn hub_only(&self, what: &'static str) -> Result<(), EngineError> {
        if self.identity.is_hub() {
            Ok(())
        } else {
            Err(DomainError::HubOnly(what).into())
        }
    }

    fn district_only(&self, what: &'static str) -> Result<(), EngineError> {
        if self.identity.is_hub() {
            Err(DomainError::DistrictOnly(what).into())
        } else {
            Ok(())
        }
    }

    /// A hub document, created with `init` at the hub's first write to it.
    fn hub_doc<'a>(
        &self,
        docs: &'a mut Documents,
        id: &DocId,
        init: Init,
    ) -> Result<&'a mut Held, EngineError> {
        docs.check_not_quarantined(id)?;
        if !docs.held.contains_key(id) {
            let replica = Replica::open(&self.store(), id.clone(), &self.actor, || {
                Replica::genesis(&self.identity.hub, init)
            })?;
            docs.held.insert(id.clone(), Held::new(replica)?);
        }
        Ok(docs.held.get_mut(id).expect("inserted above"))
    }

    /// At the hub: accepts an online order for `outlet` at once if it fits in the
    /// quota the hub knows the outlet granted; a repeated request id returns the
    /// order placed first.
    pub async fn place_order(
        &self,
        request_id: Option<String>,
        outlet: &str,
        sku: &str,
        quantity: i64,
        buyer: Buyer,
    ) -> Result<OrderInfo, EngineError> {
        self.hub_only("placing an online order")?;
        let sku = text::identifier("sku", sku)?;
        let quantity = bounds::quantity("quantity", quantity)?;
        let outlet = NodeId::parse(outlet.trim())
            .map_err(|_| DomainError::invalid("outlet", format!("not a node id: {outlet:?}")))?;
        let request_id = request_id
            .filter(|id| !id.trim().is_empty())
            .map(|id| text::identifier("request_id", &id))
            .transpose()?;
        let orders_id = DocId::Orders(outlet.clone());
        let (info, fresh) = {
            let mut docs = self.docs();
            let ledger = docs
                .newest_ledger_of(&outlet)
                .ok_or_else(|| DomainError::UnknownOutlet(outlet.to_string()))?;
            let current = docs.held.get(&orders_id).and_then(|h| h.orders());
            if let Some(placed) = request_id.as_deref().and_then(|id| current?.order(id)) {
                if placed.sku != sku || placed.quantity != quantity || placed.buyer != buyer {
                    return Err(DomainError::RequestIdReused(placed.id.clone()).into());
                }
                let info = OrderInfo {
                    status: orders::status(ledger, &placed.id),
                    order: placed.clone(),
                    outlet,
                    duplicate: true,
                };
                (info, false)
            } else {
                let unit_price = Self::price_for(&docs, &outlet, &sku).ok_or_else(|| {
                    DomainError::invalid(
                        "sku",
                        format!("{sku} is not in the catalog the hub holds for {outlet} (yet)"),
                    )
                })?;
                let available = orders::available(ledger, current, &sku);
                if quantity > available {
                    return Err(DomainError::QuotaExceeded {
                        outlet: outlet.to_string(),
                        sku,
                        available: available.max(0),
                        requested: quantity,
                    }
                    .into());
                }
                let order = PlacedOrder {
                    id: request_id.unwrap_or_else(|| format!("ord-{}", self.generate_id())),
                    sku,
                    quantity,
                    unit_price,
                    buyer,
                    at_ms: now_ms(),
                };
                let entry = OrderEntry::Order {
                    id: order.id.clone(),
                    sku: order.sku.clone(),
                    quantity,
                    unit_price,
                    buyer,
                    at_ms: order.at_ms,
                };
                self.append_order_entry(&mut docs, &orders_id, &entry)?;
                let info = OrderInfo {
                    outlet,
                    order,
                    status: "accepted",
                    duplicate: false,
                };
                (info, true)
            }
        };
        if fresh {
            self.after_local_write().await?;
        } else {
            self.commits.durable().await?;
        }
        Ok(info)
    }

    fn append_order_entry(
        &self,
        docs: &mut Documents,
        id: &DocId,
        entry: &OrderEntry,
    ) -> Result<(), EngineError> {
        let store = self.store();
        let Held { replica, view } = self.hub_doc(docs, id, |tx| orders::JOURNAL.init(tx))?;
        let View::Orders(view) = view else {
            unreachable!("an orders document has an orders view")
        };
        view.check(entry)?;
        let end = view.len();
        replica.commit(&store, |tx| orders::JOURNAL.append(tx, end, entry))?;
        view.apply(entry)
            .expect("the entry was checked before the commit");
        Ok(())
    }

    /// Catalog price of `sku` for an outlet: the provincial catalog, then the
    /// outlet's own catalog as held here.
    pub(super) fn price_for(docs: &Documents, outlet: &NodeId, sku: &str) -> Option<i64> {
        [
            DocId::ProvincialCatalog,
            DocId::LocalCatalog(outlet.clone()),
        ]
        .iter()
        .filter_map(|id| docs.held.get(id).and_then(|h| h.catalog()))
        .find_map(|c| c.products.get(sku).map(|p| p.price_rupiah))
    }

    /// At the hub, after an outlet's ledger changed: answers each of its quota return
    /// requests not answered yet with a release of what is unsold (possibly 0).
    /// Returns how many it answered.
    pub async fn answer_quota_returns(&self, outlet: &NodeId) -> Result<usize, EngineError> {
        if !self.identity.is_hub() {
            return Ok(0);
        }
        let orders_id = DocId::Orders(outlet.clone());
        let answered = {
            // Only this outlet's documents: another district's bundle being applied
            // meanwhile is not waited for.
            let ids = self.outlet_documents(outlet);
            let mut docs = self.docs_for(&ids.iter().collect::<Vec<_>>());
            let Some(ledger) = docs.newest_ledger_of(outlet) else {
                return Ok(0);
            };
            let current = docs.held.get(&orders_id).and_then(|h| h.orders());
            let open: Vec<(String, String, i64)> = ledger
                .return_requests()
                .iter()
                .filter(|(req, _, _)| !current.is_some_and(|o| o.answered(req)))
                .cloned()
                .collect();
            if open.is_empty() {
                return Ok(0);
            }
            let mut releases = Vec::new();
            let mut simulated = current.cloned().unwrap_or_default();
            for (request, sku, quantity) in open {
                let give = quantity
                    .min(orders::available(ledger, Some(&simulated), &sku))
                    .max(0);
                let entry = OrderEntry::Release {
                    id: format!("rel-{request}"),
                    sku,
                    quantity: give,
                    request,
                    at_ms: now_ms(),
                };
                simulated.apply(&entry)?;
                releases.push(entry);
            }
            for entry in &releases {
                self.append_order_entry(&mut docs, &orders_id, entry)?;
            }
            releases.len()
        };
        if answered > 0 {
            tracing::info!(outlet = %outlet, answered, "released quota on the outlet's request");
            self.after_local_write().await?;
        }
        Ok(answered)
    }

    /// At the hub: answers every district's open quota return requests (at start-up,
    /// so none waits for the district's next write).
    pub async fn answer_all_quota_returns(&self) -> Result<usize, EngineError> {
        let outlets: Vec<NodeId> = self
            .docs()
            .newest_ledgers()
            .into_iter()
            .map(|(node, _)| node)
            .filter(|node| *node != &self.identity.node)
            .cloned()
            .collect();
        let mut answered = 0;
        for outlet in outlets {
            answered += self.answer_quota_returns(&outlet).await?;
        }
        Ok(answered)
    }

    /// Orders this node knows: at the hub every outlet's (or one's), at an outlet its
    /// own; optionally only those in `status`.
    pub fn orders(
        &self,
        outlet: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<OrderInfo>, EngineError> {
        if let Some(s) = status {
            if !["accepted", "fulfilled", "cancelled"].contains(&s) {
                return Err(DomainError::invalid(
                    "status",
                    format!("must be accepted, fulfilled or cancelled, got {s:?}"),
                )
                .into());
            }
        }
        let docs = self.docs();
        let mut out = Vec::new();
        for (outlet_id, ledger, orders) in Self::escrow_pairs(&docs, outlet) {
            for order in orders.into_iter().flat_map(Orders::orders) {
                let st = orders::status(ledger, &order.id);
                if status.is_none_or(|s| s == st) {
                    out.push(OrderInfo {
                        outlet: outlet_id.clone(),
                        order: order.clone(),
                        status: st,
                        duplicate: false,
                    });
                }
            }
        }
        out.sort_by_key(|o| o.order.at_ms);
        Ok(out)
    }

    /// Quota per outlet and SKU as this node knows it.
    pub fn quota(&self, outlet: Option<&str>) -> Result<Vec<QuotaInfo>, EngineError> {
        let docs = self.docs();
        let mut out = Vec::new();
        for (outlet_id, ledger, orders) in Self::escrow_pairs(&docs, outlet) {
            for sku in ledger.quota_skus() {
                let pending = Self::pending_returns(ledger, orders, sku)?;
                out.push(QuotaInfo {
                    outlet: outlet_id.to_string(),
                    sku: sku.clone(),
                    granted: ledger.granted(sku),
                    accepted: orders.map_or(0, |o| o.accepted(sku)),
                    fulfilled: ledger.fulfilled(sku),
                    cancelled: ledger.cancelled(sku),
                    released: orders.map_or(0, |o| o.released(sku)),
                    available: orders::available(ledger, orders, sku),
                    reserved: orders::reserved(ledger, orders, sku),
                    pending_returns: pending,
                });
            }
        }
        Ok(out)
    }

    /// (outlet, its ledger, its orders document) for every outlet whose quota this
    /// node sees: at an outlet only itself; at the hub every district ledger held.
    fn escrow_pairs<'a>(
        docs: &'a Documents,
        only: Option<&str>,
    ) -> Vec<(&'a NodeId, &'a Ledger, Option<&'a Orders>)> {
        docs.newest_ledgers()
            .into_iter()
            .filter(|(node, _)| only.is_none_or(|o| node.as_str() == o))
            .map(|(node, ledger)| {
                let orders = docs
                    .held
                    .get(&DocId::Orders(node.clone()))
                    .and_then(|h| h.orders());
                (node, ledger, orders)
            })
            .collect()
    }

    /// At an outlet: ships an order the hub placed, as an online sale out of the
    /// quota reserved for it.
    pub async fn fulfil_order(
        &self,
        request_id: Option<String>,
        order: &str,
    ) -> Result<MovementAck, EngineError> {
        self.district_only("fulfilling an online order")?;
        let placed = self.own_order(order)?;
        self.record(MovementRequest {
            request_id,
            sku: placed.sku,
            kind: MovementKind::Sale {
                quantity: placed.quantity,
                unit_price: Some(placed.unit_price),
                channel: Channel::Online,
                buyer: placed.buyer,
                order: Some(placed.id),
                basket: None,
            },
        })
        .await
    }

    /// At an outlet: refuses an order the hub placed; its quantity returns to the
    /// hub's quota.
    pub async fn cancel_order(
        &self,
        request_id: Option<String>,
        order: &str,
    ) -> Result<MovementAck, EngineError> {
        self.district_only("cancelling an online order")?;
        let placed = self.own_order(order)?;
        self.record(MovementRequest {
            request_id,
            sku: placed.sku,
            kind: MovementKind::OrderCancel {
                quantity: placed.quantity,
                order: placed.id,
            },
        })
        .await
    }

    fn own_order(&self, order: &str) -> Result<PlacedOrder, EngineError> {
        let order = text::identifier("order_id", order)?;
        let docs = self.docs();
        docs.held
            .get(&DocId::Orders(self.identity.node.clone()))
            .and_then(|h| h.orders())
            .and_then(|o| o.order(&order))
            .cloned()
            .ok_or_else(|| DomainError::UnknownOrder(order).into())
    }

    /// At an outlet: hands the hub `quantity` units of sellable stock as online quota,
    /// or (`grant == false`) asks for that much back.
    pub async fn change_quota(
        &self,
        request_id: Option<String>,
        sku: &str,
        quantity: i64,
        grant: bool,
    ) -> Result<MovementAck, EngineError> {
        self.district_only("granting or returning online quota")?;
        self.record(MovementRequest {
            request_id,
            sku: sku.to_string(),
            kind: if grant {
                MovementKind::QuotaGrant { quantity }
            } else {
                MovementKind::QuotaReturn { quantity }
            },
        })
        .await
    }

    /// At the hub: sets the budget of `district` for `year` (replacing an earlier one).
    pub async fn allocate_budget(
        &self,
        district: &str,
        year: i32,
        amount: i64,
    ) -> Result<BudgetStatus, EngineError> {
        self.hub_only("allocating a budget")?;
        let district = NodeId::parse(district.trim()).map_err(|_| {
            DomainError::invalid("district", format!("not a node id: {district:?}"))
        })?;
        if !self.known_districts().contains(&district) {
            return Err(DomainError::invalid(
                "district",
                format!(
                    "{district} is not one of the {} districts this hub knows ([hub] districts); \
                     the hub itself has no budget",
                    self.known_districts().len()
                ),
            )
            .into());
        }
        let year = bounds::year("year", year)?;
        let amount = bounds::budget_rupiah("amount_rupiah", amount)?;
        {
            let mut docs = self.docs();
            let store = self.store();
            let Held { replica, view } =
                self.hub_doc(&mut docs, &DocId::Budget, |tx| budget::JOURNAL.init(tx))?;
            let View::Budget(view) = view else {
                unreachable!("the budget document has a budget view")
            };
            let entry = BudgetEntry::Allocation {
                district: district.to_string(),
                year,
                amount,
                at_ms: now_ms(),
            };
            Budgets::check(&entry)?;
            let end = view.len();
            replica.commit(&store, |tx| budget::JOURNAL.append(tx, end, &entry))?;
            view.apply(&entry)
                .expect("the entry was checked before the commit");
        }
        self.after_local_write().await?;
        Ok(self
            .budgets(Some(district.as_str()), year)?
            .into_iter()
            .next()
            .expect("the district was just allocated"))
    }

    /// Budgets of `year` (0: the current WITA year): at an outlet its own, at the hub
    /// every district with an allocation or a ledger (or the one asked for).
    pub fn budgets(
        &self,
        district: Option<&str>,
        year: i32,
    ) -> Result<Vec<BudgetStatus>, EngineError> {
        let year = if year == 0 {
            wita::year_of(now_ms())
        } else {
            bounds::year("year", year)?
        };
        let docs = self.docs();
        let allocations = docs.held.get(&DocId::Budget).and_then(|h| h.budgets());
        let mut districts: Vec<String> = if self.identity.is_hub() {
            let mut all: Vec<String> = docs
                .newest_ledgers()
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| *n != &self.identity.node)
                .map(|n| n.to_string())
                .collect();
            all.extend(
                allocations
                    .into_iter()
                    .flat_map(|b| b.all())
                    .filter(|((_, y), _)| *y == year)
                    .map(|((d, _), _)| d.clone()),
            );
            all
        } else {
            vec![self.identity.node.to_string()]
        };
        districts.sort();
        districts.dedup();
        if let Some(only) = district {
            if !self.identity.is_hub() && only != self.identity.node.as_str() {
                return Err(DomainError::Forbidden {
                    doc: DocId::Budget.to_string(),
                    reason: format!(
                        "a district sees only its own budget; ask the hub ({}) for {only}",
                        self.identity.hub
                    ),
                }
                .into());
            }
            districts.retain(|d| d == only);
        }
        Ok(districts
            .into_iter()
            .map(|d| {
                let ledger = NodeId::parse(&d)
                    .ok()
                    .and_then(|n| docs.newest_ledger_of(&n));
                BudgetStatus {
                    allocated: allocations.and_then(|b| b.allocated(&d, year)),
                    spent: ledger.map_or(0, |l| l.spent(year)),
                    over_budget: ledger
                        .map(|l| {
                            l.over_budget()
                                .iter()
                                .filter(|o| o.year == year)
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default(),
                    district: d,
                    year,
                }
            })
            .collect())
    }
}
