//! Recording a cashier's basket: all its lines or none, as one automerge change, one
//! durable write, under the outlet's next receipt number (schema in
//! [`crate::domain::basket`]).
//!
//! It must never write a line before every line is checked (a refused line refuses
//! the basket, naming the line), never acknowledge before the write is durable, and
//! never record a basket twice for one request id.

use super::held::{Held, View};
use super::{now_ms, Engine, EngineError, CLOCK_MARGIN_MS};
use crate::domain::basket::{self, BasketMark, Payment, MAX_LINES};
use crate::domain::doc_id::DocId;
use crate::domain::ledger;
use crate::domain::movement::{Buyer, Channel, Movement, MovementKind};
use crate::domain::{bounds, text, DomainError};

/// One line a cashier rang up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasketLine {
    pub sku: String,
    pub quantity: i64,
    /// Absent for the catalog price.
    pub unit_price: Option<i64>,
}

/// A basket a client asks to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasketRequest {
    /// Idempotency key: a repeated request with the same id records nothing new.
    pub request_id: Option<String>,
    pub lines: Vec<BasketLine>,
    pub channel: Channel,
    pub buyer: Buyer,
    pub payment: Payment,
    /// When the till rang it up (ms); absent for the node's clock. Not more than
    /// [`CLOCK_MARGIN_MS`] ahead of the node's clock, not before its open period.
    pub rung_up_ms: Option<i64>,
}

/// Stock of one line's SKU after the basket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAck {
    pub sku: String,
    pub quantity_on_hand: i64,
}

/// The answer to a recorded (or repeated) basket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasketAck {
    /// The basket's id (its first line's movement id): the request id when given.
    pub basket_id: String,
    pub receipt: u64,
    pub lines: Vec<LineAck>,
    pub total_rupiah: i64,
    pub document: DocId,
    pub at_ms: i64,
    pub duplicate: bool,
}

/// Names the line (1-based) a refusal is about.
fn on_line(line: usize, sku: &str) -> impl FnOnce(EngineError) -> EngineError + '_ {
    move |error| EngineError::Line {
        line,
        sku: sku.to_string(),
        source: Box::new(error),
    }
}

impl Engine {
    /// Records a basket in this outlet's ledger, durably, all lines or none.
    pub async fn record_basket(&self, request: BasketRequest) -> Result<BasketAck, EngineError> {
        self.record_basket_at(request, now_ms()).await
    }

    /// [`Engine::record_basket`] as if the clock read `now`.
    pub async fn record_basket_at(
        &self,
        request: BasketRequest,
        now: i64,
    ) -> Result<BasketAck, EngineError> {
        let count = request.lines.len();
        if !(1..=MAX_LINES).contains(&count) {
            return Err(DomainError::invalid(
                "lines",
                format!("a basket holds 1 to {MAX_LINES} lines, got {count}"),
            )
            .into());
        }
        let request_id = request
            .request_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .map(|id| text::identifier("request_id", &id))
            .transpose()?;
        let at = match request.rung_up_ms {
            None => now,
            Some(at) => {
                bounds::time_ms("rung_up_at", at)?;
                if at > now.saturating_add(CLOCK_MARGIN_MS) {
                    return Err(DomainError::invalid(
                        "rung_up_at",
                        format!("{at} is ahead of this node's clock ({now}) by more than the clock margin"),
                    )
                    .into());
                }
                at
            }
        };
        let mut kinds = Vec::with_capacity(count);
        for (i, line) in request.lines.iter().enumerate() {
            let sku = text::identifier("sku", &line.sku)
                .map_err(|e| on_line(i + 1, &line.sku)(e.into()))?;
            let kind = MovementKind::Sale {
                quantity: line.quantity,
                unit_price: line.unit_price,
                channel: request.channel,
                buyer: request.buyer,
                order: None,
                basket: None,
            }
            .validated(&self.identity.node)
            .map_err(|e| on_line(i + 1, &sku)(e.into()))?;
            kinds.push((sku, kind));
        }
        let (ack, fresh) = {
            let mut docs = self.docs();
            crate::fault_injection::point("record");
            let repeated = request_id
                .as_deref()
                .and_then(|id| Self::recorded_position(&docs, id));
            if let Some((document, position)) = repeated {
                let recorded = match docs.held.get(&document) {
                    Some(held) => ledger::read_range(
                        held.replica.doc(),
                        &document.to_string(),
                        position..position + count,
                    )?,
                    None => self
                        .period_movements(&docs, &document)?
                        .into_iter()
                        .skip(position)
                        .take(count)
                        .collect(),
                };
                let own = docs.own_ledger()?;
                let mut ack = Self::answer_repeat(&recorded, &kinds, request.payment, document)?;
                for line in &mut ack.lines {
                    line.quantity_on_hand = own.on_hand(&line.sku);
                }
                (ack, false)
            } else {
                self.record_new_basket(&mut docs, request_id, kinds, &request, at, now)?
            }
        };
        if fresh {
            self.after_local_write().await?;
        } else {
            self.commits.durable().await?;
        }
        Ok(ack)
    }

    /// Checks every line of a new basket and, when all pass, commits them as one
    /// change (staged, not yet durable).
    fn record_new_basket(
        &self,
        docs: &mut super::Documents,
        request_id: Option<String>,
        kinds: Vec<(String, MovementKind)>,
        request: &BasketRequest,
        at: i64,
        now: i64,
    ) -> Result<(BasketAck, bool), EngineError> {
        let count = kinds.len();
        {
            let basket_id = request_id.unwrap_or_else(|| self.generate_id());
            let own = docs.own_ledger()?;
            let open_start = docs
                .own_ledger_id()?
                .ledger_period()
                .expect("the own ledger is a ledger period")
                .1
                .start_ms();
            if at < open_start {
                return Err(DomainError::invalid(
                    "rung_up_at",
                    format!("{at} is before the open ledger period (from {open_start})"),
                )
                .into());
            }
            let receipt = own.receipts() + 1;
            let mut lines = Vec::with_capacity(count);
            let mut reserved = std::collections::BTreeMap::new();
            for (i, (sku, kind)) in kinds.into_iter().enumerate() {
                let (product, _) = Self::find_product(docs.catalogs(), &sku).ok_or_else(|| {
                    on_line(i + 1, &sku)(DomainError::UnknownSku(sku.clone()).into())
                })?;
                let price = product.price_rupiah;
                let mark = if i == 0 {
                    BasketMark::first(count as u32, receipt, request.payment)
                } else {
                    BasketMark::later(i as u32 + 1)
                };
                let MovementKind::Sale {
                    quantity,
                    unit_price,
                    channel,
                    buyer,
                    ..
                } = kind.filled(Some(price), None)
                else {
                    unreachable!("a basket line is a sale")
                };
                let mut movement = Movement {
                    id: basket::line_id(&basket_id, i + 1),
                    sku: sku.clone(),
                    at_ms: at,
                    kind: MovementKind::Sale {
                        quantity,
                        unit_price,
                        channel,
                        buyer,
                        order: None,
                        basket: Some(mark),
                    },
                };
                let (held_back, _) = self
                    .check_new_movement(docs, &mut movement)
                    .map_err(on_line(i + 1, &sku))?;
                reserved.insert(sku, held_back);
                lines.push(movement);
            }
            let own = docs.own_ledger()?;
            own.check_basket(&lines, |sku| reserved.get(sku).copied().unwrap_or(0))
                .map_err(|(i, e)| {
                    let sku = lines.get(i).map_or("", |m| m.sku.as_str());
                    on_line(i + 1, sku)(e.into())
                })?;
            let document = self.period_for_write(docs, at.min(now))?;
            let Held { replica, view } = docs.held_mut(&document)?;
            let View::Ledger(ledger_view) = view else {
                unreachable!("a ledger document has a ledger view")
            };
            let end = ledger_view.len();
            replica.commit(&self.store(), |tx| {
                for (i, line) in lines.iter().enumerate() {
                    ledger::append(tx, end + i, line)?;
                }
                Ok(())
            })?;
            for line in &lines {
                ledger_view
                    .apply(line)
                    .expect("the basket was checked before the commit");
            }
            let mut ack = Self::ack_of(&lines, document, false)?;
            for line in &mut ack.lines {
                line.quantity_on_hand = ledger_view.on_hand(&line.sku);
            }
            Ok((ack, true))
        }
    }

    /// The answer to a repeated request: the basket recorded under its id, if it
    /// holds the same lines, channel, buyer and payment (a price the request left
    /// out matches whatever was recorded).
    fn answer_repeat(
        recorded: &[Movement],
        requested: &[(String, MovementKind)],
        payment: Payment,
        document: DocId,
    ) -> Result<BasketAck, EngineError> {
        let reused = || {
            let id = recorded.first().map_or("", |m| m.id.as_str());
            EngineError::from(DomainError::RequestIdReused(id.to_string()))
        };
        // The recorded basket's own size: a request of fewer lines must not match
        // the first lines of a longer one.
        let recorded_lines = match recorded.first().map(|m| &m.kind) {
            Some(MovementKind::Sale {
                basket: Some(mark), ..
            }) => mark.lines as usize,
            _ => 1,
        };
        if recorded.len() != requested.len() || recorded_lines != requested.len() {
            return Err(reused());
        }
        for (line, (sku, kind)) in recorded.iter().zip(requested) {
            let MovementKind::Sale { basket: mark, .. } = &line.kind else {
                return Err(reused());
            };
            let mut kind = kind.clone();
            if let MovementKind::Sale { basket, .. } = &mut kind {
                *basket = *mark;
            }
            if !line.answers(sku, &kind) {
                return Err(reused());
            }
        }
        let paid = match &recorded[0].kind {
            MovementKind::Sale {
                basket: Some(mark), ..
            } => mark.payment,
            _ => None,
        };
        if paid.is_some_and(|p| p != payment) {
            return Err(reused());
        }
        Self::ack_of(recorded, document, true)
    }

    /// The answer for a basket's recorded lines (stock on hand left at 0).
    fn ack_of(
        lines: &[Movement],
        document: DocId,
        duplicate: bool,
    ) -> Result<BasketAck, EngineError> {
        let mut total = 0i64;
        for line in lines {
            if let MovementKind::Sale {
                quantity,
                unit_price,
                ..
            } = &line.kind
            {
                let value = bounds::line_rupiah(*quantity, unit_price.unwrap_or(0))?;
                total = bounds::add(|| "basket total".into(), total, value)?;
            }
        }
        let receipt = match lines.first().map(|m| &m.kind) {
            Some(MovementKind::Sale {
                basket: Some(mark), ..
            }) => mark.receipt,
            _ => 0,
        };
        Ok(BasketAck {
            basket_id: lines.first().map(|m| m.id.clone()).unwrap_or_default(),
            receipt,
            lines: lines
                .iter()
                .map(|m| LineAck {
                    sku: m.sku.clone(),
                    quantity_on_hand: 0,
                })
                .collect(),
            total_rupiah: total,
            document,
            at_ms: lines.first().map_or(0, |m| m.at_ms),
            duplicate,
        })
    }
}
