//! An outlet's stock ledger: the document schema and what is derived from it.
//!
//! Schema: one document per period (see [`super::period`]). `movements` is a list of
//! movement records (see [`super::movement`]), appended only by the outlet that owns
//! the ledger; `opening` holds the [`Balances`] the period opened with and, once the
//! outlet sealed the period, `closing` holds those it closed with (both JSON, written
//! once). Stock of a SKU is its opening stock plus the deltas of its movements. [`Ledger`] keeps that sum, the outlet's side of the
//! online quota, its shipments and what its receipts cost per year, and refuses a
//! movement that would take stock below zero or into what is reserved for the hub's
//! online orders, repeat a transfer id, or decide an order twice (invariant 4).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use automerge::{transaction::Transactable, ReadDoc};

use super::basket;
use super::bounds;
pub use super::journal::Growth;
use super::journal::Journal;
use super::movement::{Movement, MovementKind};
use super::DomainError;

const MOVEMENTS: Journal<Movement> = Journal::new("movements");

const OPENING: &str = "opening";
const CLOSING: &str = "closing";

/// Creates the empty movement list of a new ledger document.
pub fn init(tx: &mut impl Transactable) -> Result<(), automerge::AutomergeError> {
    MOVEMENTS.init(tx)
}

/// Writes the balances a period opens with (once, by the owner, before any movement).
pub fn open_with(
    tx: &mut impl Transactable,
    opening: &Balances,
) -> Result<(), automerge::AutomergeError> {
    put_balances(tx, OPENING, opening)
}

/// Seals a period with the balances it closes with: no movement follows.
pub fn seal(
    tx: &mut impl Transactable,
    closing: &Balances,
) -> Result<(), automerge::AutomergeError> {
    put_balances(tx, CLOSING, closing)
}

fn put_balances(
    tx: &mut impl Transactable,
    key: &str,
    balances: &Balances,
) -> Result<(), automerge::AutomergeError> {
    let json = serde_json::to_string(balances).expect("balances serialize");
    tx.put(automerge::ROOT, key, json)?;
    Ok(())
}

/// The balances a period opened with; `None` before the owner's opening arrived.
pub fn opening(doc: &impl ReadDoc, doc_name: &str) -> Result<Option<Balances>, DomainError> {
    read_balances(doc, doc_name, OPENING)
}

/// The balances a sealed period closed with; `None` while it is open.
pub fn closing(doc: &impl ReadDoc, doc_name: &str) -> Result<Option<Balances>, DomainError> {
    read_balances(doc, doc_name, CLOSING)
}

/// Whether the owner sealed this period (cheap: one lookup).
pub fn is_sealed(doc: &impl ReadDoc) -> bool {
    matches!(doc.get(automerge::ROOT, CLOSING), Ok(Some(_)))
}

fn read_balances(
    doc: &impl ReadDoc,
    doc_name: &str,
    key: &str,
) -> Result<Option<Balances>, DomainError> {
    use automerge::{ScalarValue, Value};
    match doc.get(automerge::ROOT, key) {
        Ok(None) => Ok(None),
        Ok(Some((Value::Scalar(scalar), _))) => match scalar.as_ref() {
            ScalarValue::Str(json) => serde_json::from_str(json)
                .map(Some)
                .map_err(|e| DomainError::schema(doc_name, format!("{key}: {e}"))),
            other => Err(DomainError::schema(doc_name, format!("{key} is {other:?}"))),
        },
        Ok(Some(_)) => Err(DomainError::schema(doc_name, format!("{key} is an object"))),
        Err(e) => Err(DomainError::schema(doc_name, format!("{key}: {e}"))),
    }
}

/// The view of a period document: its opening balances plus its movements. History
/// that breaks a rule of [`Ledger::apply`] (a number out of range, stock below zero
/// in the list's order, a balance beyond its bound) is a schema break: the same rules
/// as a local write, whoever wrote it.
pub fn derive(doc: &impl ReadDoc, doc_name: &str) -> Result<Ledger, DomainError> {
    let opening = opening(doc, doc_name)?.unwrap_or_default();
    let ledger = Ledger::replay_from(opening, &read_range(doc, doc_name, ..)?)
        .map_err(|e| DomainError::schema(doc_name, e))?;
    if ledger.open_basket.is_some() {
        return Err(DomainError::schema(doc_name, "the last basket lacks lines"));
    }
    Ok(ledger)
}

/// Appends a movement at position `end`, which must be the current number of
/// movements (the caller's [`Ledger::len`]).
pub fn append(
    tx: &mut impl Transactable,
    end: usize,
    movement: &Movement,
) -> Result<(), automerge::AutomergeError> {
    MOVEMENTS.append(tx, end, movement)
}

/// The movements of a ledger document in `range` of positions, in document order.
pub fn read_range(
    doc: &impl ReadDoc,
    doc_name: &str,
    range: impl std::ops::RangeBounds<usize>,
) -> Result<Vec<Movement>, DomainError> {
    MOVEMENTS.read_range(doc, doc_name, range)
}

/// The movements of a ledger document from position `start` to its end (reads only
/// those: see [`Journal::read_from`]).
pub fn read_from(
    doc: &impl ReadDoc,
    doc_name: &str,
    start: usize,
) -> Result<Vec<Movement>, DomainError> {
    MOVEMENTS.read_from(doc, doc_name, start)
}

/// What `changes`, about to be applied to the ledger `doc`, do to its movements, in
/// one pass (see [`Journal::growth`]). A ledger only grows, and its `opening`
/// balances are written once, when the period opens: lowering the quota granted
/// there would undo what the hub's orders were accepted against.
pub fn growth(doc: &impl ReadDoc, changes: &[automerge::Change]) -> Growth {
    let opened = matches!(doc.get(automerge::ROOT, OPENING), Ok(Some(_)));
    MOVEMENTS.growth(doc, changes, opened.then_some(OPENING))
}

/// The automerge element of the movement at `position` (see [`Journal::element`]).
pub fn movement_element(doc: &impl ReadDoc, position: usize) -> Option<automerge::ObjId> {
    MOVEMENTS.element(doc, position)
}

/// Number of movements in a ledger document.
pub fn len(doc: &impl ReadDoc) -> usize {
    MOVEMENTS.len(doc)
}

/// One side of a shipment between outlets, as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentSide {
    pub sku: String,
    pub quantity: i64,
    /// The other outlet: the receiver of a dispatch, the sender of a receipt.
    pub counterpart: String,
    pub at_ms: i64,
}

/// A receipt recorded beyond the remaining budget, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverBudget {
    pub movement_id: String,
    pub year: i32,
    pub cost: i64,
    pub reason: String,
}

/// What the outlet decided about one of the hub's online orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderOutcome {
    Fulfilled,
    Cancelled,
}

/// Everything derived from a ledger's movements: stock on hand per SKU, the index of
/// movement ids, the outlet's side of the online quota, its shipments, and what its
/// receipts cost per year.
///
/// Laws: after any sequence of [`Ledger::apply`] calls, `on_hand(sku)` equals the
/// sum of the deltas applied for `sku` and is never negative, and every running
/// balance stays within [`bounds::MAX_BALANCE_UNITS`] (spend within `i64`): `apply`
/// refuses, and changes nothing, rather than break either. With each movement
/// accepted through [`Ledger::check`] too, a transfer id is dispatched at most once
/// and received at most once, and an order has at most one outcome.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// What carries from one period to the next (see [`Balances`]).
    carried: Balances,
    /// Movement ids of this document, for repeated requests: kept only for the
    /// outlet's own ledger (see [`Ledger::forget_ids`]).
    by_id: Option<HashMap<String, usize>>,
    len: usize,
    /// The basket whose lines are being read (see [`basket::next_state`]); boxed,
    /// as it is rarely there and the view is held per document.
    open_basket: Option<Box<basket::OpenBasket>>,
}

impl Default for Ledger {
    /// An empty ledger that keeps movement ids.
    fn default() -> Self {
        Ledger {
            carried: Balances::default(),
            by_id: Some(HashMap::new()),
            len: 0,
            open_basket: None,
        }
    }
}

/// Everything a ledger's history adds up to, as one value: what an outlet's next
/// period opens with, so that a period's view is its opening balances plus its own
/// movements (the law `period_by_period_equals_one_history` in [`super::period`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub stock: BTreeMap<String, i64>,
    pub newest_ms: i64,
    pub granted: BTreeMap<String, i64>,
    pub fulfilled: BTreeMap<String, i64>,
    pub cancelled: BTreeMap<String, i64>,
    pub outcomes: BTreeMap<String, OrderOutcome>,
    pub return_requests: Vec<(String, String, i64)>,
    pub dispatched: BTreeMap<String, ShipmentSide>,
    /// By (sender, transfer id): transfer ids are unique per sender only.
    #[serde(with = "pair_keys")]
    pub received: BTreeMap<(String, String), ShipmentSide>,
    pub spent_by_year: BTreeMap<i32, i64>,
    pub over_budget: Vec<OverBudget>,
    /// Receipt numbers given so far (baskets recorded with a mark): absent in
    /// balances written before baskets.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub receipts: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// JSON maps take string keys only: a map keyed by pairs travels as a list.
mod pair_keys {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Pairs<V> = BTreeMap<(String, String), V>;

    pub fn serialize<S: Serializer, V: Serialize>(map: &Pairs<V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<Pairs<V>, D::Error> {
        Ok(Vec::<((String, String), V)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

fn count(map: &BTreeMap<String, i64>, sku: &str) -> i64 {
    map.get(sku).copied().unwrap_or(0)
}

impl Ledger {
    /// Replays recorded movements, each through [`Ledger::apply`]: history from a
    /// peer keeps the same number rules as a local write. The error names the first
    /// movement that breaks one.
    pub fn replay<'a>(
        movements: impl IntoIterator<Item = &'a Movement>,
    ) -> Result<Self, DomainError> {
        Self::replay_from(Balances::default(), movements)
    }

    /// Replays a period's movements on top of the balances it opened with (which
    /// must themselves be within their bounds).
    pub fn replay_from<'a>(
        opening: Balances,
        movements: impl IntoIterator<Item = &'a Movement>,
    ) -> Result<Self, DomainError> {
        opening.check()?;
        let mut ledger = Ledger {
            carried: opening,
            ..Ledger::default()
        };
        for (i, m) in movements.into_iter().enumerate() {
            ledger
                .apply(m)
                .map_err(|e| DomainError::invalid("movements", format!("{i} ({}): {e}", m.id)))?;
        }
        Ok(ledger)
    }

    /// What this ledger's history adds up to: the next period's opening balances.
    pub fn closing(&self) -> &Balances {
        &self.carried
    }

    pub fn on_hand(&self, sku: &str) -> i64 {
        count(&self.carried.stock, sku)
    }

    /// Every SKU that has had a movement, with its stock on hand.
    pub fn stock(&self) -> &BTreeMap<String, i64> {
        &self.carried.stock
    }

    /// Movement ids of this document and their positions (kept for retries when the
    /// document itself leaves memory); `None` once [forgotten](Ledger::forget_ids).
    pub fn index(&self) -> Option<&HashMap<String, usize>> {
        self.by_id.as_ref()
    }

    /// Position of the movement with this id in the document, if recorded (and the
    /// ids are kept).
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.as_ref()?.get(id).copied()
    }

    /// Stops keeping movement ids: only the outlet that records into a ledger
    /// answers retries by id, so the hub's views of the districts' ledgers need none
    /// (an id string per movement was most of what a view held per sale).
    pub fn forget_ids(&mut self) {
        self.by_id = None;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Receipt numbers given so far: the next basket gets the one after.
    pub fn receipts(&self) -> u64 {
        self.carried.receipts
    }

    /// Refuses a basket (its sale lines, in order, marked as [`basket`] says) unless
    /// every line may follow the ones before it: the numbers of each line within
    /// their bounds, the units of each SKU taken by this line and the earlier ones
    /// within its sellable stock (`reserved(sku)` units are held for the hub's
    /// online orders), the marks in order, the total within its bound. The error
    /// names the line (0-based). What it accepts, [`Ledger::apply`] accepts line
    /// by line.
    pub fn check_basket(
        &self,
        lines: &[Movement],
        reserved: impl Fn(&str) -> i64,
    ) -> Result<(), (usize, DomainError)> {
        let mut taken: BTreeMap<&str, i64> = BTreeMap::new();
        let mut receipts = self.carried.receipts;
        let mut open = self.open_basket.as_deref().copied();
        for (i, line) in lines.iter().enumerate() {
            let at = |e: DomainError| (i, e);
            let MovementKind::Sale {
                quantity,
                unit_price,
                basket: mark,
                order: None,
                ..
            } = &line.kind
            else {
                return Err(at(DomainError::invalid(
                    "lines",
                    "a basket holds store sales only",
                )));
            };
            line.kind.check_numbers().map_err(at)?;
            bounds::time_ms("at", line.at_ms).map_err(at)?;
            let sku = line.sku.as_str();
            let before = taken.get(sku).copied().unwrap_or(0);
            let total =
                bounds::add_units(|| format!("units of {sku}"), before, *quantity).map_err(at)?;
            let on_hand = self.on_hand(sku);
            let reserved = reserved(sku);
            if i128::from(total) > i128::from(on_hand) - i128::from(reserved) {
                return Err(at(DomainError::NotSellable {
                    sku: sku.to_string(),
                    on_hand,
                    reserved,
                    requested: total,
                }));
            }
            taken.insert(sku, total);
            let value = bounds::line_rupiah(*quantity, unit_price.unwrap_or(0)).map_err(at)?;
            (receipts, open) =
                basket::next_state(receipts, open, mark.as_ref(), value).map_err(at)?;
        }
        match open {
            Some(_) => Err((
                lines.len(),
                DomainError::invalid("lines", "the basket lacks lines"),
            )),
            None => Ok(()),
        }
    }

    /// Time (ms, the outlet's clock) of the newest movement; 0 when there is none.
    pub fn newest_ms(&self) -> i64 {
        self.carried.newest_ms
    }

    /// Units of `sku` granted to the hub as online quota, ever.
    pub fn granted(&self, sku: &str) -> i64 {
        count(&self.carried.granted, sku)
    }

    /// Units of `sku` sold against the hub's online orders.
    pub fn fulfilled(&self, sku: &str) -> i64 {
        count(&self.carried.fulfilled, sku)
    }

    /// Units of `sku` in online orders the outlet cancelled.
    pub fn cancelled(&self, sku: &str) -> i64 {
        count(&self.carried.cancelled, sku)
    }

    /// Every SKU the outlet ever granted quota for.
    pub fn quota_skus(&self) -> impl Iterator<Item = &String> {
        self.carried.granted.keys()
    }

    pub fn outcome(&self, order: &str) -> Option<OrderOutcome> {
        self.carried.outcomes.get(order).copied()
    }

    /// Quota return requests in the order they were made: (movement id, sku, units).
    pub fn return_requests(&self) -> &[(String, String, i64)] {
        &self.carried.return_requests
    }

    /// Shipments this outlet dispatched, by transfer id.
    pub fn dispatched(&self) -> &BTreeMap<String, ShipmentSide> {
        &self.carried.dispatched
    }

    /// Shipments this outlet received, by (sender, transfer id).
    pub fn received(&self) -> &BTreeMap<(String, String), ShipmentSide> {
        &self.carried.received
    }

    /// What the outlet's receipts cost in `year` (WITA), in rupiah.
    pub fn spent(&self, year: i32) -> i64 {
        self.carried.spent_by_year.get(&year).copied().unwrap_or(0)
    }

    pub fn over_budget(&self) -> &[OverBudget] {
        &self.carried.over_budget
    }

    /// Refuses a movement that would take the stock of its SKU below zero, take from
    /// sellable stock more than is there (`reserved` units of the SKU are held for the
    /// hub's online orders), repeat a transfer id, or decide an order twice.
    pub fn check(&self, movement: &Movement, reserved: i64) -> Result<(), DomainError> {
        let kind = &movement.kind;
        kind.check_numbers()?;
        let on_hand = self.on_hand(&movement.sku);
        let taken = match kind {
            MovementKind::QuotaGrant { quantity } => *quantity,
            _ => -kind.delta(),
        };
        // Widened: `reserved` is what the caller worked out from two documents.
        if kind.takes_sellable() && i128::from(taken) > i128::from(on_hand) - i128::from(reserved) {
            return Err(DomainError::NotSellable {
                sku: movement.sku.clone(),
                on_hand,
                reserved,
                requested: taken,
            });
        }
        self.next(movement)?;
        match kind {
            MovementKind::TransferOut { transfer_id, .. }
                if self.carried.dispatched.contains_key(transfer_id) =>
            {
                Err(DomainError::DuplicateTransfer(transfer_id.clone()))
            }
            MovementKind::TransferIn {
                transfer_id, from, ..
            } if self
                .carried
                .received
                .contains_key(&(from.clone(), transfer_id.clone())) =>
            {
                Err(DomainError::DuplicateTransfer(transfer_id.clone()))
            }
            MovementKind::Sale {
                order: Some(order), ..
            }
            | MovementKind::OrderCancel { order, .. } => match self.outcome(order) {
                Some(outcome) => Err(DomainError::OrderClosed {
                    order: order.clone(),
                    outcome: match outcome {
                        OrderOutcome::Fulfilled => "fulfilled",
                        OrderOutcome::Cancelled => "cancelled",
                    },
                }),
                None => Ok(()),
            },
            MovementKind::QuotaReturn { quantity } if *quantity > reserved => {
                Err(DomainError::QuotaExceeded {
                    outlet: "this outlet (reserved for the hub)".into(),
                    sku: movement.sku.clone(),
                    available: reserved,
                    requested: *quantity,
                })
            }
            _ => Ok(()),
        }
    }

    /// What applying `movement` would make of the balances it touches, or why it
    /// may not be applied: a number out of range, stock below zero, a balance beyond
    /// its bound. One definition for local writes ([`Ledger::check`]) and incoming
    /// history ([`Ledger::apply`]).
    fn next(&self, movement: &Movement) -> Result<Next, DomainError> {
        let kind = &movement.kind;
        kind.check_numbers()?;
        bounds::time_ms("at", movement.at_ms)?;
        let sku = &movement.sku;
        let on_hand = self.on_hand(sku);
        let delta = kind.delta();
        if delta < 0 && on_hand + delta < 0 {
            return Err(DomainError::InsufficientStock {
                sku: sku.clone(),
                on_hand,
                requested: -delta,
            });
        }
        let stock = bounds::add_units(|| format!("stock of {sku}"), on_hand, delta)?;
        let counter = |map: &BTreeMap<String, i64>, what: &str, quantity: i64| {
            bounds::add_units(|| format!("{what} of {sku}"), count(map, sku), quantity)
        };
        let carried = &self.carried;
        let (spent, counter) = match kind {
            MovementKind::Receipt {
                quantity,
                unit_cost,
                ..
            } => {
                let year = super::wita::year_of(movement.at_ms);
                let cost = bounds::line_rupiah(*quantity, *unit_cost)?;
                let spent = bounds::add(
                    || format!("spend of {year}"),
                    carried.spent_by_year.get(&year).copied().unwrap_or(0),
                    cost,
                )?;
                (Some((year, spent, cost)), None)
            }
            MovementKind::Sale {
                quantity,
                order: Some(order),
                ..
            } => {
                // Online orders are accepted against the quota the outlet granted the
                // hub, so what they fulfil never exceeds it (a forged history made the
                // hub show a negative reserve: found by `sync::fuzz_tests`).
                let fulfilled = counter(&carried.fulfilled, "quota fulfilled", *quantity)?;
                let granted = count(&carried.granted, sku);
                if fulfilled > granted {
                    return Err(DomainError::invalid(
                        "quantity",
                        format!(
                            "sale for order {order} would make {fulfilled} units of {sku} \
                             fulfilled online, beyond the {granted} granted to the hub"
                        ),
                    ));
                }
                (None, Some((Counter::Fulfilled, fulfilled)))
            }
            MovementKind::OrderCancel { quantity, .. } => (
                None,
                Some((
                    Counter::Cancelled,
                    counter(&carried.cancelled, "quota cancelled", *quantity)?,
                )),
            ),
            MovementKind::QuotaGrant { quantity } => (
                None,
                Some((
                    Counter::Granted,
                    counter(&carried.granted, "quota granted", *quantity)?,
                )),
            ),
            _ => (None, None),
        };
        let (receipts, open_basket) = match kind {
            MovementKind::Sale {
                quantity,
                unit_price,
                basket: mark,
                ..
            } => basket::next_state(
                carried.receipts,
                self.open_basket.as_deref().copied(),
                mark.as_ref(),
                bounds::line_rupiah(*quantity, unit_price.unwrap_or(0))?,
            )?,
            _ => basket::next_state(
                carried.receipts,
                self.open_basket.as_deref().copied(),
                None,
                0,
            )?,
        };
        Ok(Next {
            stock,
            spent,
            counter,
            receipts,
            open_basket,
        })
    }

    /// Adds a movement to the derived view, unless it breaks a rule of
    /// [`Ledger::next`]: then nothing changes and the error says why.
    pub fn apply(&mut self, movement: &Movement) -> Result<(), DomainError> {
        let next = self.next(movement)?;
        let sku = &movement.sku;
        self.carried.stock.insert(sku.clone(), next.stock);
        self.carried.receipts = next.receipts;
        self.open_basket = next.open_basket.map(Box::new);
        if let Some((counter, value)) = next.counter {
            let map = match counter {
                Counter::Granted => &mut self.carried.granted,
                Counter::Fulfilled => &mut self.carried.fulfilled,
                Counter::Cancelled => &mut self.carried.cancelled,
            };
            map.insert(sku.clone(), value);
        }
        if let Some(by_id) = &mut self.by_id {
            by_id.insert(movement.id.clone(), self.len);
        }
        self.len += 1;
        self.carried.newest_ms = self.carried.newest_ms.max(movement.at_ms);
        let side = |quantity: i64, counterpart: &str| ShipmentSide {
            sku: sku.clone(),
            quantity,
            counterpart: counterpart.to_string(),
            at_ms: movement.at_ms,
        };
        match &movement.kind {
            MovementKind::Receipt { over_budget, .. } => {
                let (year, spent, cost) = next.spent.expect("a receipt is charged");
                self.carried.spent_by_year.insert(year, spent);
                if let Some(reason) = over_budget {
                    self.carried.over_budget.push(OverBudget {
                        movement_id: movement.id.clone(),
                        year,
                        cost,
                        reason: reason.clone(),
                    });
                }
            }
            MovementKind::Sale {
                order: Some(order), ..
            } => {
                self.carried
                    .outcomes
                    .insert(order.clone(), OrderOutcome::Fulfilled);
            }
            MovementKind::OrderCancel { order, .. } => {
                self.carried
                    .outcomes
                    .insert(order.clone(), OrderOutcome::Cancelled);
            }
            MovementKind::QuotaReturn { quantity } => {
                self.carried
                    .return_requests
                    .push((movement.id.clone(), sku.clone(), *quantity));
            }
            MovementKind::TransferOut {
                quantity,
                transfer_id,
                to,
            } => {
                self.carried
                    .dispatched
                    .insert(transfer_id.clone(), side(*quantity, to));
            }
            MovementKind::TransferIn {
                quantity,
                transfer_id,
                from,
            } => {
                self.carried
                    .received
                    .insert((from.clone(), transfer_id.clone()), side(*quantity, from));
            }
            MovementKind::Sale { .. }
            | MovementKind::Adjustment { .. }
            | MovementKind::QuotaGrant { .. } => {}
        }
        Ok(())
    }
}

/// The running quota counters of a SKU a movement may raise.
enum Counter {
    Granted,
    Fulfilled,
    Cancelled,
}

/// The balances one movement changes, worked out (and checked) before any changes.
struct Next {
    stock: i64,
    /// (year, spend of that year after the receipt, the receipt's cost).
    spent: Option<(i32, i64, i64)>,
    counter: Option<(Counter, i64)>,
    receipts: u64,
    open_basket: Option<basket::OpenBasket>,
}

impl Balances {
    /// Refuses balances beyond their bounds: what a forged opening or closing might
    /// hold.
    pub fn check(&self) -> Result<(), DomainError> {
        let units = [
            ("stock", &self.stock),
            ("granted", &self.granted),
            ("fulfilled", &self.fulfilled),
            ("cancelled", &self.cancelled),
        ];
        for (what, map) in units {
            if let Some((sku, q)) = map
                .iter()
                .find(|(_, q)| !(0..=bounds::MAX_BALANCE_UNITS).contains(*q))
            {
                return Err(DomainError::invalid(
                    "balances",
                    format!(
                        "{what} of {sku} is {q}, beyond 0..={}",
                        bounds::MAX_BALANCE_UNITS
                    ),
                ));
            }
        }
        if let Some((year, spent)) = self.spent_by_year.iter().find(|(_, s)| **s < 0) {
            return Err(DomainError::invalid(
                "balances",
                format!("spend of {year} is {spent}"),
            ));
        }
        let shipments = self.dispatched.values().chain(self.received.values());
        let quantities = self.return_requests.iter().map(|(_, _, q)| *q);
        for q in shipments.map(|s| s.quantity).chain(quantities) {
            bounds::quantity("balances", q)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::movement::{AdjustReason, Buyer, Channel, MovementKind};
    use crate::domain::wita;
    use automerge::Automerge;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = (usize, MovementKind)> {
        let sku = 0usize..3;
        let kind = prop_oneof![
            (1i64..20, 0i64..100_000).prop_map(|(q, c)| MovementKind::Receipt {
                quantity: q,
                unit_cost: c,
                producer: None,
                over_budget: None,
            }),
            (1i64..20).prop_map(|q| MovementKind::Sale {
                quantity: q,
                unit_price: Some(1_000),
                channel: Channel::Store,
                buyer: Buyer::Public,
                order: None,
                basket: None,
            }),
            (-20i64..20)
                .prop_filter("non-zero", |d| *d != 0)
                .prop_map(|d| MovementKind::Adjustment {
                    delta: d,
                    reason: AdjustReason::Count,
                    note: String::new()
                }),
            (1i64..20, 0u32..1000).prop_map(|(q, t)| MovementKind::TransferOut {
                quantity: q,
                transfer_id: format!("t{t}"),
                to: "sikka".into()
            }),
            (1i64..20, 0u32..1000).prop_map(|(q, t)| MovementKind::TransferIn {
                quantity: q,
                transfer_id: format!("t{t}"),
                from: "sikka".into()
            }),
            (1i64..20).prop_map(|q| MovementKind::QuotaGrant { quantity: q }),
        ];
        (sku, kind)
    }

    proptest! {
        #[test]
        fn stock_is_the_sum_of_accepted_movements_and_never_negative(ops in prop::collection::vec(op(), 0..120)) {
            let mut ledger = Ledger::default();
            let mut accepted: Vec<Movement> = Vec::new();
            for (i, (sku, kind)) in ops.into_iter().enumerate() {
                let m = Movement { id: format!("m{i}"), sku: format!("SKU-{sku}"), at_ms: i as i64, kind };
                if ledger.check(&m, ledger.granted(&m.sku)).is_ok() {
                    ledger.apply(&m).unwrap();
                    accepted.push(m);
                }
                for (s, q) in ledger.stock() {
                    prop_assert!(*q >= 0, "{s} went to {q}");
                }
            }
            for sku in ["SKU-0", "SKU-1", "SKU-2"] {
                let sum: i64 = accepted.iter().filter(|m| m.sku == sku).map(|m| m.kind.delta()).sum();
                prop_assert_eq!(ledger.on_hand(sku), sum);
            }
            // The same movements written to a document and read back give the same view.
            let mut doc = Automerge::new();
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                init(tx)?;
                for (i, m) in accepted.iter().enumerate() { append(tx, i, m)?; }
                Ok(())
            }).unwrap();
            let read = read_range(&doc, "ledger/test", ..).unwrap();
            prop_assert_eq!(&read, &accepted);
            for start in [0, read.len() / 2, read.len(), read.len() + 1] {
                let tail = read_from(&doc, "ledger/test", start).unwrap();
                prop_assert_eq!(&tail[..], &read[start.min(read.len())..]);
            }
            let replayed = Ledger::replay(&read).unwrap();
            prop_assert_eq!(replayed.stock(), ledger.stock());
        }
    }

    /// A period document holding `movements` (no opening balances).
    fn document(movements: &[Movement]) -> Automerge {
        let mut doc = Automerge::new();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            init(tx)?;
            for (i, m) in movements.iter().enumerate() {
                append(tx, i, m)?;
            }
            Ok(())
        })
        .unwrap();
        doc
    }

    fn receipt(id: &str, quantity: i64, unit_cost: i64) -> Movement {
        Movement {
            id: id.into(),
            sku: "SKU-0".into(),
            at_ms: 1_000,
            kind: MovementKind::Receipt {
                quantity,
                unit_cost,
                producer: None,
                over_budget: None,
            },
        }
    }

    #[test]
    fn history_beyond_the_bounds_or_below_zero_is_a_schema_break() {
        let adjust = |delta| Movement {
            kind: MovementKind::Adjustment {
                delta,
                reason: AdjustReason::Count,
                note: String::new(),
            },
            ..receipt("adj", 0, 0)
        };
        let cases = [
            (
                "a receipt of i64::MAX",
                vec![receipt("a", 50, 1), receipt("b", i64::MAX, 0)],
            ),
            (
                "an adjustment of i64::MIN",
                vec![receipt("a", 50, 1), adjust(i64::MIN)],
            ),
            (
                "a write-off below zero",
                vec![receipt("a", 50, 1), adjust(-51)],
            ),
            (
                "a unit cost of Rp 10^12",
                vec![receipt("a", 1, 1_000_000_000_000)],
            ),
            ("a negative receipt", vec![receipt("a", -5, 1)]),
        ];
        for (case, movements) in cases {
            let err = derive(&document(&movements), "ledger/ttu/2026-12");
            assert!(
                matches!(err, Err(DomainError::Schema { .. })),
                "{case}: derived {:?}",
                err.map(|l| l.stock().clone())
            );
        }
        let fine = derive(
            &document(&[receipt("a", 50, 1), adjust(-50)]),
            "ledger/ttu/2026-12",
        );
        assert_eq!(fine.unwrap().on_hand("SKU-0"), 0);
    }

    #[test]
    fn online_sales_never_fulfil_more_than_the_quota_granted() {
        let grant = |quantity| Movement {
            kind: MovementKind::QuotaGrant { quantity },
            ..receipt("grant", 0, 0)
        };
        let online = |id: &str, quantity| Movement {
            kind: MovementKind::Sale {
                quantity,
                unit_price: None,
                channel: Channel::Online,
                buyer: Buyer::Public,
                order: Some("web-9".into()),
                basket: None,
            },
            ..receipt(id, 0, 0)
        };
        let stocked = [receipt("a", 50, 1), grant(10)];
        let fine = [&stocked[..], &[online("s1", 6), online("s2", 4)]].concat();
        let ledger = derive(&document(&fine), "ledger/ttu/2026-12").unwrap();
        assert_eq!(ledger.on_hand("SKU-0"), 40);
        for beyond in [
            vec![online("s1", 11)],
            vec![online("s1", 6), online("s2", 5)],
        ] {
            let history = [&stocked[..], &beyond].concat();
            let err = derive(&document(&history), "ledger/ttu/2026-12");
            assert!(
                matches!(&err, Err(DomainError::Schema { reason, .. }) if reason.contains("beyond the 10 granted")),
                "{err:?}"
            );
        }
        let ungranted = [receipt("a", 50, 1), online("s1", 1)];
        assert!(derive(&document(&ungranted), "ledger/ttu/2026-12").is_err());
    }

    /// A period document opened with `opening` (as its owner writes it) and holding
    /// `movements`.
    fn opened(opening: &Balances, movements: &[Movement]) -> Automerge {
        let mut doc = document(&[]);
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            open_with(tx, opening)?;
            for (i, m) in movements.iter().enumerate() {
                append(tx, i, m)?;
            }
            Ok(())
        })
        .unwrap();
        doc
    }

    #[test]
    fn forged_openings_and_balances_beyond_their_bound_are_schema_breaks() {
        let name = "ledger/ttu/2026-12";
        let with = |edit: fn(&mut Balances)| {
            let mut b = Balances::default();
            edit(&mut b);
            b
        };
        let forged = [
            with(|b| {
                b.stock.insert("SKU-0".into(), i64::MAX);
            }),
            with(|b| {
                b.stock.insert("SKU-0".into(), -1);
            }),
            with(|b| {
                b.granted.insert("SKU-0".into(), i64::MIN);
            }),
            with(|b| {
                b.spent_by_year.insert(2026, -5);
            }),
            with(|b| {
                b.return_requests
                    .push(("r".into(), "SKU-0".into(), i64::MAX))
            }),
        ];
        for opening in &forged {
            assert!(
                matches!(
                    derive(&opened(opening, &[]), name),
                    Err(DomainError::Schema { .. })
                ),
                "{opening:?}"
            );
        }
        // Stock at its bound: the next receipt would take it beyond, and is refused.
        let full = with(|b| {
            b.stock.insert("SKU-0".into(), bounds::MAX_BALANCE_UNITS);
        });
        let ledger = derive(&opened(&full, &[]), name).unwrap();
        assert_eq!(ledger.on_hand("SKU-0"), bounds::MAX_BALANCE_UNITS);
        let one_more = receipt("r1", 1, 1);
        assert!(matches!(
            ledger.check(&one_more, 0),
            Err(DomainError::Overflow { .. })
        ));
        assert!(derive(&opened(&full, &[one_more]), name).is_err());
        // A year's spend at the end of i64: the next receipt is refused, never wrapped.
        let spent = with(|b| {
            b.spent_by_year.insert(wita::year_of(1_000), i64::MAX - 5);
        });
        let dear = receipt("r2", 1, 6);
        let err = derive(&opened(&spent, &[dear]), name).unwrap_err();
        assert!(err.to_string().contains("spend"), "{err}");
    }

    /// Quantities and amounts at and around every bound, and the extremes of `i64`.
    fn extreme() -> impl Strategy<Value = i64> {
        prop_oneof![
            3 => 1i64..40,
            1 => prop::sample::select(vec![
                i64::MIN, i64::MIN + 1, -1_000_001, -1_000_000, -1, 0, 1, 999_999,
                1_000_000, 1_000_001, 1_000_000_000, 1_000_000_001, i64::MAX - 1, i64::MAX,
            ]),
        ]
    }

    fn hostile_kind() -> impl Strategy<Value = MovementKind> {
        prop_oneof![
            (extreme(), extreme()).prop_map(|(q, c)| MovementKind::Receipt {
                quantity: q,
                unit_cost: c,
                producer: None,
                over_budget: None,
            }),
            (extreme(), extreme()).prop_map(|(q, p)| MovementKind::Sale {
                quantity: q,
                unit_price: Some(p),
                channel: Channel::Store,
                buyer: Buyer::Public,
                order: None,
                basket: None,
            }),
            extreme().prop_map(|d| MovementKind::Adjustment {
                delta: d,
                reason: AdjustReason::Damage,
                note: String::new()
            }),
            (extreme(), 0u32..1000).prop_map(|(q, t)| MovementKind::TransferOut {
                quantity: q,
                transfer_id: format!("t{t}"),
                to: "sikka".into()
            }),
            (extreme(), 0u32..1000).prop_map(|(q, t)| MovementKind::TransferIn {
                quantity: q,
                transfer_id: format!("t{t}"),
                from: "sikka".into()
            }),
            extreme().prop_map(|q| MovementKind::QuotaGrant { quantity: q }),
            extreme().prop_map(|q| MovementKind::QuotaReturn { quantity: q }),
        ]
    }

    /// The rules incoming history must keep, computed here in `i128` on their own:
    /// `None` when the whole history keeps them, else the position of the first
    /// movement that breaks one.
    fn first_break(movements: &[Movement]) -> Option<usize> {
        let unit = |r: i64| (0..=1_000_000_000).contains(&r);
        let quantity = |q: i64| (1..=1_000_000).contains(&q);
        let mut stock: BTreeMap<&str, i128> = BTreeMap::new();
        for (i, m) in movements.iter().enumerate() {
            let in_range = match &m.kind {
                MovementKind::Receipt {
                    quantity: q,
                    unit_cost: c,
                    ..
                } => quantity(*q) && unit(*c),
                MovementKind::Sale {
                    quantity: q,
                    unit_price,
                    ..
                } => quantity(*q) && unit_price.is_none_or(unit),
                MovementKind::Adjustment { delta, .. } => {
                    *delta != 0 && (-1_000_000..=1_000_000).contains(delta)
                }
                other => quantity(other.quantity()),
            };
            if !in_range {
                return Some(i);
            }
            let on_hand = stock.entry(&m.sku).or_insert(0);
            *on_hand += i128::from(m.kind.delta());
            if *on_hand < 0 {
                return Some(i);
            }
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Incoming history with extreme numbers: derive refuses exactly the histories
        /// that break a rule (a number out of range, stock below zero in the owner's
        /// order), and never wraps.
        #[test]
        fn derive_refuses_exactly_the_histories_that_break_a_rule(
            kinds in prop::collection::vec((0usize..2, hostile_kind()), 0..24)
        ) {
            let movements: Vec<Movement> = kinds
                .into_iter()
                .enumerate()
                .map(|(i, (sku, kind))| Movement {
                    id: format!("m{i}"),
                    sku: format!("SKU-{sku}"),
                    at_ms: 1_000 + i as i64,
                    kind,
                })
                .collect();
            let derived = derive(&document(&movements), "ledger/ttu/2026-12");
            match first_break(&movements) {
                Some(i) => prop_assert!(
                    matches!(derived, Err(DomainError::Schema { .. })),
                    "movement {} breaks a rule: {:?}", i, movements[i]
                ),
                None => {
                    let ledger = derived.unwrap();
                    for sku in ["SKU-0", "SKU-1"] {
                        let sum: i64 = movements.iter().filter(|m| m.sku == sku).map(|m| m.kind.delta()).sum();
                        prop_assert_eq!(ledger.on_hand(sku), sum);
                    }
                }
            }
        }
    }
}
