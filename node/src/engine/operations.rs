//! The store operations of a node: catalog writes and reads, stock movements, stock,
//! and what the node reports about itself.

use std::sync::atomic::Ordering;

use super::held::{Held, View};
use super::{now_ms, Documents, Engine, EngineError, PeriodState};
use crate::domain::catalog::{self, Catalog, Producer, Product};
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::ledger;
use crate::domain::movement::{Movement, MovementKind};
use crate::domain::period::PeriodId;
use crate::domain::sales_report::DateRange;
use crate::domain::{bounds, budget, orders, wita};
use crate::domain::{text, DomainError};

/// A movement a client asks to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementRequest {
    /// Idempotency key: a repeated request with the same id records nothing new.
    pub request_id: Option<String>,
    pub sku: String,
    pub kind: MovementKind,
}

/// The answer to a recorded (or repeated) movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementAck {
    pub movement_id: String,
    pub sku: String,
    pub quantity_on_hand: i64,
    pub document: DocId,
    pub duplicate: bool,
}

/// Stock of one SKU at this outlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLine {
    pub sku: String,
    pub name: String,
    pub unit: String,
    pub quantity: i64,
}

/// What a node reports about itself.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub node: NodeId,
    pub hub: NodeId,
    pub role: &'static str,
    pub actor_hex: String,
    pub started_at_ms: i64,
    pub documents: u32,
    /// Movements of the open period.
    pub movements: u64,
    pub skus_in_stock: u64,
    pub durable_writes: u64,
    pub flushes: u64,
    /// The open period of this outlet's ledger; `None` while it is restored.
    pub open_period: Option<PeriodId>,
    /// The clock guard holds a new period back (the clock is far ahead).
    pub clock_warning: Option<String>,
}

/// One document as operators see it.
#[derive(Debug, Clone)]
pub struct DocumentInfo {
    pub id: DocId,
    pub owner: NodeId,
    pub heads: Vec<String>,
    pub changes: u64,
    pub bytes_on_disk: u64,
    pub chunks_since_snapshot: u64,
    /// Where a ledger period stands; `None` for other documents. An archived period
    /// is listed without heads or changes (it is not loaded to list it).
    pub period: Option<PeriodState>,
    /// Why the document is quarantined (not loaded, not synced, not written), or
    /// dropped by an operator and asked of a peer again; `None` when it is whole.
    pub trouble: Option<Trouble>,
}

/// A document the node does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// It failed to load or to derive its view: the reason.
    Quarantined(String),
    /// An operator dropped it; peers are asked for it again.
    Refetching,
}

impl Engine {
    pub(super) fn find_product<'a>(
        mut catalogs: impl Iterator<Item = (&'a DocId, &'a Catalog)>,
        sku: &str,
    ) -> Option<(&'a Product, &'a DocId)> {
        catalogs.find_map(|(id, c)| c.products.get(sku).map(|p| (p, id)))
    }

    /// The newest period of the ledger of `outlet` (this node's own open one when
    /// `None`), if held here.
    fn ledger_of(docs: &Documents, outlet: Option<&str>) -> Result<DocId, EngineError> {
        let Some(outlet) = outlet else {
            return Ok(docs.own_ledger_id()?.clone());
        };
        let node = NodeId::parse(outlet).map_err(|_| DomainError::InvalidField {
            field: "outlet",
            reason: format!("not a node id: {outlet:?}"),
        })?;
        docs.newest_period_of(&node)
            .cloned()
            .ok_or_else(|| DomainError::UnknownOutlet(outlet.to_string()).into())
    }

    /// Adds a producer to the catalog this node owns.
    pub async fn add_producer(&self, producer: Producer) -> Result<(Producer, DocId), EngineError> {
        let producer = producer.validated()?;
        let doc_id = {
            let mut docs = self.docs();
            // While restoring, the hub's copy of this node's catalog may still be on
            // its way: a write now would fork it.
            docs.own_ledger_id()?;
            if docs
                .catalogs()
                .any(|(_, c)| c.producers.contains_key(&producer.id))
            {
                return Err(DomainError::DuplicateProducer(producer.id).into());
            }
            let own = docs.own_catalog.clone();
            let held = docs.held_mut(&own)?;
            held.replica
                .commit(&self.store(), |tx| catalog::put_producer(tx, &producer))?;
            if let View::Catalog(c) = &mut held.view {
                c.producers.insert(producer.id.clone(), producer.clone());
            }
            own
        };
        self.after_local_write().await?;
        Ok((producer, doc_id))
    }

    /// Adds a product to the catalog this node owns. Its producer must be known.
    pub async fn add_product(&self, product: Product) -> Result<(Product, DocId), EngineError> {
        let product = product.validated()?;
        let doc_id = {
            let mut docs = self.docs();
            if Self::find_product(docs.catalogs(), &product.sku).is_some() {
                return Err(DomainError::DuplicateSku(product.sku).into());
            }
            if !docs
                .catalogs()
                .any(|(_, c)| c.producers.contains_key(&product.producer_id))
            {
                return Err(DomainError::UnknownProducer(product.producer_id).into());
            }
            let own = docs.own_catalog.clone();
            self.put_own_product(&mut docs, &product)?;
            own
        };
        self.after_local_write().await?;
        Ok((product, doc_id))
    }

    /// Writes `product` (validated, its producer known) into the catalog this node
    /// owns, as one change, and into the catalog's view.
    pub(super) fn put_own_product(
        &self,
        docs: &mut Documents,
        product: &Product,
    ) -> Result<(), EngineError> {
        // Not while restoring (see `add_producer`).
        docs.own_ledger_id()?;
        let own = docs.own_catalog.clone();
        let held = docs.held_mut(&own)?;
        held.replica
            .commit(&self.store(), |tx| catalog::put_product(tx, product))?;
        if let View::Catalog(c) = &mut held.view {
            c.products.insert(product.sku.clone(), product.clone());
        }
        Ok(())
    }

    /// Producers of the catalogs products are looked up in, optionally of one district.
    pub fn producers(&self, district: Option<&str>) -> Vec<(Producer, DocId)> {
        let docs = self.docs();
        docs.catalogs()
            .flat_map(|(id, c)| c.producers.values().map(|p| (p.clone(), id.clone())))
            .filter(|(p, _)| district.is_none_or(|d| p.district == d))
            .collect()
    }

    /// Products of the provincial and the node's own catalog, optionally of one category.
    pub fn products(&self, category: Option<&str>) -> Vec<(Product, DocId)> {
        let docs = self.docs();
        let mut products: Vec<_> = docs
            .catalogs()
            .flat_map(|(id, c)| c.products.values().map(|p| (p.clone(), id.clone())))
            .filter(|(p, _)| category.is_none_or(|c| p.category == c))
            .collect();
        products.sort_by(|a, b| a.0.sku.cmp(&b.0.sku));
        products
    }

    pub fn product(&self, sku: &str) -> Result<(Product, DocId), EngineError> {
        let sku = text::identifier("sku", sku)?;
        let docs = self.docs();
        Self::find_product(docs.catalogs(), &sku)
            .map(|(p, id)| (p.clone(), id.clone()))
            .ok_or_else(|| DomainError::UnknownSku(sku).into())
    }

    /// `Ok` when `outlet` is the hub or a district this node knows: a transfer to or
    /// from anyone else would ship stock nowhere.
    pub(super) fn check_outlet(
        &self,
        field: &'static str,
        outlet: &str,
    ) -> Result<(), EngineError> {
        let known = NodeId::parse(outlet)
            .is_ok_and(|id| id == self.identity.hub || self.districts.contains(&id));
        if known {
            Ok(())
        } else {
            Err(DomainError::invalid(
                field,
                format!(
                    "{outlet:?} is not a known outlet: neither the hub {} nor one of the {} \
                     districts it knows",
                    self.identity.hub,
                    self.districts.len()
                ),
            )
            .into())
        }
    }

    /// Records a stock movement in this outlet's ledger, durably, unless it would
    /// take stock below zero. A repeated request id returns the first answer.
    pub async fn record(&self, request: MovementRequest) -> Result<MovementAck, EngineError> {
        self.record_at(request, now_ms()).await
    }

    /// [`Engine::record`] as if the clock read `now` (benchmarks and tests that build
    /// months of history; a node in service records at its own clock).
    pub async fn record_at(
        &self,
        request: MovementRequest,
        now: i64,
    ) -> Result<MovementAck, EngineError> {
        let sku = text::identifier("sku", &request.sku)?;
        let request_id = request
            .request_id
            .filter(|id| !id.trim().is_empty())
            .map(|id| text::identifier("request_id", &id))
            .transpose()?;
        let kind = request.kind.validated(&self.identity.node)?;
        match &kind {
            MovementKind::TransferOut { to, .. } => self.check_outlet("to_outlet", to)?,
            MovementKind::TransferIn { from, .. } => self.check_outlet("from_outlet", from)?,
            _ => {}
        }
        let (ack, fresh) = {
            let mut docs = self.docs();
            crate::fault_injection::point("record");
            let (product, _) = Self::find_product(docs.catalogs(), &sku)
                .ok_or_else(|| DomainError::UnknownSku(sku.clone()))?;
            let default_price = product.price_rupiah;
            let default_producer = product.producer_id.clone();
            if let MovementKind::Receipt {
                producer: Some(p), ..
            } = &kind
            {
                if !docs.catalogs().any(|(_, c)| c.producers.contains_key(p)) {
                    return Err(DomainError::UnknownProducer(p.clone()).into());
                }
            }
            let repeated = request_id
                .as_deref()
                .and_then(|id| Self::recorded_position(&docs, id));
            match repeated {
                Some((document, position)) => {
                    let recorded = match docs.held.get(&document) {
                        Some(held) => ledger::read_range(
                            held.replica.doc(),
                            &document.to_string(),
                            position..=position,
                        )?,
                        None => self
                            .period_movements(&docs, &document)?
                            .into_iter()
                            .skip(position)
                            .take(1)
                            .collect(),
                    };
                    let recorded = recorded.first().ok_or_else(|| {
                        DomainError::schema(document.to_string(), "movement index out of range")
                    })?;
                    if !recorded.answers(&sku, &kind) {
                        return Err(DomainError::RequestIdReused(recorded.id.clone()).into());
                    }
                    let ack = MovementAck {
                        movement_id: recorded.id.clone(),
                        quantity_on_hand: docs.own_ledger()?.on_hand(&sku),
                        sku,
                        document,
                        duplicate: true,
                    };
                    (ack, false)
                }
                None => {
                    let mut movement = Movement {
                        id: request_id.unwrap_or_else(|| self.generate_id()),
                        sku: sku.clone(),
                        at_ms: now,
                        kind: kind.filled(Some(default_price), Some(&default_producer)),
                    };
                    // Every rule is checked against the open period's figures (the
                    // next period opens with the same ones) before anything is
                    // written: a refused movement seals no period.
                    let (reserved, asked) = self.check_new_movement(&docs, &mut movement)?;
                    docs.own_ledger()?.check(&movement, reserved)?;
                    let document = self.period_for_write(&mut docs, now)?;
                    let Held { replica, view } = docs.held_mut(&document)?;
                    let View::Ledger(ledger_view) = view else {
                        unreachable!("a ledger document has a ledger view")
                    };
                    let follow_up = Self::quota_shortfall(ledger_view, &movement, reserved - asked);
                    if let Some(asked) = &follow_up {
                        asked.kind.check_numbers()?;
                    }
                    let end = ledger_view.len();
                    replica.commit(&self.store(), |tx| {
                        ledger::append(tx, end, &movement)?;
                        match &follow_up {
                            Some(asked) => ledger::append(tx, end + 1, asked),
                            None => Ok(()),
                        }
                    })?;
                    ledger_view
                        .apply(&movement)
                        .expect("the movement was checked before the commit");
                    if let Some(asked) = &follow_up {
                        tracing::warn!(sku = %movement.sku, units = asked.kind.quantity(), "stock written off below what is reserved for online orders: asking the hub for quota back");
                        ledger_view
                            .apply(asked)
                            .expect("the quota return was checked before the commit");
                    }
                    let ack = MovementAck {
                        movement_id: movement.id,
                        quantity_on_hand: ledger_view.on_hand(&sku),
                        sku,
                        document,
                        duplicate: false,
                    };
                    (ack, true)
                }
            }
        };
        if fresh {
            self.after_local_write().await?;
        } else {
            self.commits.durable().await?;
        }
        Ok(ack)
    }

    /// The period and position of the movement recorded under `id`, searched in every
    /// period of this outlet still in memory (the open one and those the hub has not
    /// acknowledged yet) and in the index of the one archived last, so a request
    /// retried across a period boundary is still answered once.
    pub(super) fn recorded_position(docs: &Documents, id: &str) -> Option<(DocId, usize)> {
        let own = docs.own_ledger.as_ref()?;
        let (node, _) = own.ledger_period()?;
        docs.held
            .iter()
            .rev()
            .filter(|(doc, _)| doc.ledger_period().is_some_and(|(n, _)| n == node))
            .find_map(|(doc, h)| Some((doc.clone(), h.ledger()?.position(id)?)))
            .or_else(|| {
                let (doc, index) = docs.retired_ids.as_ref()?;
                Some((doc.clone(), *index.get(id)?))
            })
    }

    /// A write-off (negative adjustment) is a fact and is never refused, but when it
    /// leaves less on the shelf than is reserved for the hub's online orders (less
    /// what the outlet already asked back), the outlet asks the hub for the
    /// difference in the same change.
    fn quota_shortfall(
        ledger_view: &crate::domain::ledger::Ledger,
        movement: &Movement,
        still_reserved: i64,
    ) -> Option<Movement> {
        let MovementKind::Adjustment { delta, .. } = movement.kind else {
            return None;
        };
        let left = ledger_view.on_hand(&movement.sku) + delta;
        let short = still_reserved - left;
        (delta < 0 && short > 0).then(|| Movement {
            id: format!("{}.quota", movement.id),
            sku: movement.sku.clone(),
            at_ms: movement.at_ms,
            kind: MovementKind::QuotaReturn { quantity: short },
        })
    }

    /// The rules a new movement must keep beyond its own ledger's: an order it
    /// fulfils or cancels must be one the hub placed, for that SKU and quantity; a
    /// receipt must fit the district's budget (or say why not; a reason given for a
    /// receipt that fits is dropped). Returns the units of the SKU reserved for the
    /// hub's online orders, and how many of those the outlet already asked back.
    pub(super) fn check_new_movement(
        &self,
        docs: &Documents,
        movement: &mut Movement,
    ) -> Result<(i64, i64), EngineError> {
        let mut fits_budget = false;
        let node = &self.identity.node;
        let own = docs.own_ledger()?;
        let orders_doc = DocId::Orders(node.clone());
        let orders_view = docs.held.get(&orders_doc).and_then(|h| h.orders());
        match &movement.kind {
            MovementKind::Sale {
                order: Some(order),
                quantity,
                ..
            }
            | MovementKind::OrderCancel { order, quantity } => {
                let placed = orders_view
                    .and_then(|o| o.order(order))
                    .ok_or_else(|| DomainError::UnknownOrder(order.clone()))?;
                if placed.sku != movement.sku || placed.quantity != *quantity {
                    return Err(DomainError::invalid(
                        "order_id",
                        format!(
                            "order {order} is for {} x {}, not {quantity} x {}",
                            placed.quantity, placed.sku, movement.sku
                        ),
                    )
                    .into());
                }
            }
            MovementKind::Receipt {
                quantity,
                unit_cost,
                over_budget,
                ..
            } => {
                let year = wita::year_of(movement.at_ms);
                let allocated = docs
                    .held
                    .get(&DocId::Budget)
                    .and_then(|h| h.budgets())
                    .and_then(|b| b.allocated(node.as_str(), year));
                let over = budget::check_receipt(
                    node.as_str(),
                    year,
                    allocated,
                    own.spent(year),
                    bounds::line_rupiah(*quantity, *unit_cost)?,
                    over_budget.is_some(),
                )?;
                fits_budget = !over;
            }
            _ => {}
        }
        if let (true, MovementKind::Receipt { over_budget, .. }) = (fits_budget, &mut movement.kind)
        {
            *over_budget = None;
        }
        let asked = Self::pending_returns(own, orders_view, &movement.sku)?;
        Ok((orders::reserved(own, orders_view, &movement.sku), asked))
    }

    /// Units of `sku` the outlet asked the hub back that the hub has not answered yet
    /// (a checked sum).
    pub(super) fn pending_returns(
        ledger: &crate::domain::ledger::Ledger,
        orders: Option<&crate::domain::orders::Orders>,
        sku: &str,
    ) -> Result<i64, DomainError> {
        ledger
            .return_requests()
            .iter()
            .filter(|(req, s, _)| s == sku && !orders.is_some_and(|o| o.answered(req)))
            .try_fold(0, |total, (_, _, q)| {
                bounds::add_units(|| format!("units of {sku} asked back"), total, *q)
            })
    }

    /// Stock on hand of one SKU (0 for a catalog SKU never moved), or of every SKU
    /// that has moved.
    pub fn stock(
        &self,
        outlet: Option<&str>,
        sku: Option<&str>,
    ) -> Result<Vec<StockLine>, EngineError> {
        let docs = self.docs();
        let ledger_id = Self::ledger_of(&docs, outlet)?;
        let line = |sku: &str, quantity: i64| {
            let (name, unit) = Self::find_product(docs.catalogs(), sku)
                .map(|(p, _)| (p.name.clone(), p.unit.clone()))
                .unwrap_or_default();
            StockLine {
                sku: sku.to_string(),
                name,
                unit,
                quantity,
            }
        };
        let ledger_view = docs
            .held(&ledger_id)?
            .ledger()
            .expect("a ledger document has a ledger view");
        match sku {
            Some(sku) => {
                let sku = text::identifier("sku", sku)?;
                if Self::find_product(docs.catalogs(), &sku).is_none() {
                    return Err(DomainError::UnknownSku(sku).into());
                }
                Ok(vec![line(&sku, ledger_view.on_hand(&sku))])
            }
            None => Ok(ledger_view
                .stock()
                .iter()
                .map(|(sku, q)| line(sku, *q))
                .collect()),
        }
    }

    /// The newest `limit` movements, optionally of one SKU, oldest first: read from
    /// the newest period back until `limit` are found (with `limit` 0: every movement
    /// of the newest period). With `period`, that period's movements instead, opened
    /// from disk if it is archived.
    pub fn movements(
        &self,
        outlet: Option<&str>,
        sku: Option<&str>,
        limit: usize,
        period: Option<&str>,
    ) -> Result<Vec<Movement>, EngineError> {
        let docs = self.docs();
        let newest = Self::ledger_of(&docs, outlet)?;
        let (node, _) = newest.ledger_period().expect("a ledger period");
        let periods = match period.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => {
                let wanted = DocId::Ledger(node.clone(), PeriodId::parse(p)?);
                if !Self::periods_of(&docs, node).contains(&wanted) {
                    return Err(DomainError::invalid(
                        "period",
                        format!("no period {p} of {node} here"),
                    )
                    .into());
                }
                vec![wanted]
            }
            None if limit == 0 => vec![newest.clone()],
            None => Self::periods_of(&docs, node),
        };
        let mut newest_first: Vec<Movement> = Vec::new();
        for id in periods.iter().rev() {
            let mut movements = self.period_movements(&docs, id)?;
            if let Some(sku) = sku {
                movements.retain(|m| m.sku == sku);
            }
            newest_first.extend(movements.into_iter().rev());
            if limit > 0 && newest_first.len() >= limit {
                break;
            }
        }
        if limit > 0 {
            newest_first.truncate(limit);
        }
        newest_first.reverse();
        Ok(newest_first)
    }

    /// The movements of an outlet's ledger (this node's own when `None`) on the WITA
    /// dates of `range`, oldest first, across every period the dates span (archived
    /// ones read from disk, never taken back into memory); at most the newest `limit`
    /// when `limit` > 0.
    pub fn movements_between(
        &self,
        outlet: Option<&str>,
        sku: Option<&str>,
        limit: usize,
        range: &DateRange,
    ) -> Result<Vec<Movement>, EngineError> {
        let docs = self.docs();
        let newest = Self::ledger_of(&docs, outlet)?;
        let (node, _) = newest.ledger_period().expect("a ledger period");
        let periods = Self::periods_of(&docs, node);
        let from_ms = range.from().start_ms();
        let until_ms = range.to().start_ms().saturating_add(wita::DAY_MS);
        let start_of = |id: &DocId| id.ledger_period().map_or(i64::MAX, |(_, p)| p.start_ms());
        let mut found = Vec::new();
        for (i, id) in periods.iter().enumerate() {
            // A period holds what happened from its start until the next one's.
            let ends_before = periods
                .get(i + 1)
                .is_some_and(|next| start_of(next) <= from_ms);
            if start_of(id) >= until_ms || ends_before {
                continue;
            }
            let mut movements = self.period_movements(&docs, id)?;
            movements.retain(|m| {
                (from_ms..until_ms).contains(&m.at_ms) && sku.is_none_or(|s| m.sku == s)
            });
            found.extend(movements);
        }
        if limit > 0 && found.len() > limit {
            found.drain(..found.len() - limit);
        }
        Ok(found)
    }

    pub fn status(&self) -> NodeStatus {
        // Never waits for a document being worked on: one checked out counts as held,
        // and the own ledger's figures are read only when it is in the map.
        let docs = self.glance();
        let stats = self.commits.stats();
        let ledger_view = docs.own_ledger().ok();
        NodeStatus {
            node: self.identity.node.clone(),
            hub: self.identity.hub.clone(),
            role: self.identity.role(),
            actor_hex: self.actor.to_hex_string(),
            started_at_ms: self.started_at_ms,
            documents: (docs.held.len() + docs.out.busy.len()) as u32,
            movements: ledger_view.map_or(0, |l| l.len() as u64),
            skus_in_stock: ledger_view
                .map_or(0, |l| l.stock().values().filter(|q| **q > 0).count() as u64),
            open_period: docs
                .own_ledger
                .as_ref()
                .and_then(|id| Some(id.ledger_period()?.1)),
            durable_writes: stats.writes.load(Ordering::Relaxed),
            flushes: stats.flushes.load(Ordering::Relaxed),
            clock_warning: self.clock.warning().map(|w| w.to_string()),
        }
    }

    /// Every document held, and every archived ledger period (listed, not loaded).
    pub fn documents(&self) -> Result<Vec<DocumentInfo>, EngineError> {
        use automerge::ReadDoc;
        let docs = self.docs();
        let mut out: Vec<DocumentInfo> = docs
            .held
            .values()
            .map(|h| &h.replica)
            .map(|r| DocumentInfo {
                id: r.id().clone(),
                owner: r.id().owner(&self.identity.hub).clone(),
                heads: r.doc().get_heads().iter().map(|h| h.to_string()).collect(),
                changes: r.doc().stats().num_changes,
                bytes_on_disk: r.bytes_on_disk(),
                chunks_since_snapshot: r.chunks_since_snapshot(),
                period: r
                    .id()
                    .ledger_period()
                    .map(|_| Self::period_state(&docs, r.id())),
                trouble: None,
            })
            .collect();
        let unheld = docs
            .quarantined
            .iter()
            .map(|(id, reason)| (id, Trouble::Quarantined(reason.clone())))
            .chain(docs.wanted.iter().map(|id| (id, Trouble::Refetching)));
        for (id, trouble) in unheld {
            out.push(DocumentInfo {
                id: id.clone(),
                owner: id.owner(&self.identity.hub).clone(),
                heads: Vec::new(),
                changes: 0,
                bytes_on_disk: 0,
                chunks_since_snapshot: 0,
                period: None,
                trouble: Some(trouble),
            });
        }
        for (id, bytes) in docs
            .archived
            .iter()
            .filter(|(id, _)| !docs.held.contains_key(*id) && !docs.quarantined.contains_key(*id))
        {
            out.push(DocumentInfo {
                id: id.clone(),
                owner: id.owner(&self.identity.hub).clone(),
                heads: Vec::new(),
                changes: 0,
                bytes_on_disk: *bytes,
                chunks_since_snapshot: 0,
                period: Some(PeriodState::Archived),
                trouble: None,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
