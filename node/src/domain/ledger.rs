//! An outlet's stock ledger: the document schema and the stock derived from it.
//!
//! Schema: `movements` is a list of movement records (see [`super::movement`]),
//! appended only by the outlet that owns the ledger. Stock of a SKU is the sum of
//! the deltas of its movements; [`Ledger`] keeps that sum and refuses any movement
//! that would take it below zero (invariant 4 for store sales).

use std::collections::{BTreeMap, HashMap};

use automerge::{
    transaction::Transactable, ObjId, ObjType, ReadDoc, ScalarValueRef, Value, ValueRef, ROOT,
};

use super::movement::Movement;
use super::DomainError;

const MOVEMENTS: &str = "movements";

/// Creates the empty movement list of a new ledger document.
pub fn init(tx: &mut impl Transactable) -> Result<(), automerge::AutomergeError> {
    tx.put_object(ROOT, MOVEMENTS, ObjType::List)?;
    Ok(())
}

fn movements_list(doc: &impl ReadDoc) -> Option<ObjId> {
    match doc.get(ROOT, MOVEMENTS) {
        Ok(Some((Value::Object(ObjType::List), id))) => Some(id),
        _ => None,
    }
}

/// Appends a movement at position `end`, which must be the current number of
/// movements (the caller's [`Ledger::len`]). Asking the document for its length
/// instead costs time proportional to the history, at every write.
pub fn append(
    tx: &mut impl Transactable,
    end: usize,
    movement: &Movement,
) -> Result<(), automerge::AutomergeError> {
    let list = movements_list(tx)
        .ok_or_else(|| automerge::AutomergeError::InvalidObjId(MOVEMENTS.to_string()))?;
    tx.insert(&list, end, movement.to_json())?;
    Ok(())
}

/// The movements of a ledger document in `range` of positions, in document order.
pub fn read_range(
    doc: &impl ReadDoc,
    doc_name: &str,
    range: impl std::ops::RangeBounds<usize>,
) -> Result<Vec<Movement>, DomainError> {
    let list =
        movements_list(doc).ok_or_else(|| DomainError::schema(doc_name, "no movements list"))?;
    doc.list_range(&list, range)
        .map(|item| match item.value {
            ValueRef::Scalar(ScalarValueRef::Str(json)) => {
                Movement::from_json(&json).map_err(|e| {
                    DomainError::schema(doc_name, format!("movement {}: {e}", item.index))
                })
            }
            ValueRef::Scalar(other) => Err(DomainError::schema(
                doc_name,
                format!("movement {} is {other:?}", item.index),
            )),
            ValueRef::Object(_) => Err(DomainError::schema(
                doc_name,
                format!("movement {} is an object", item.index),
            )),
        })
        .collect()
}

/// Number of movements in a ledger document.
pub fn len(doc: &impl ReadDoc) -> usize {
    movements_list(doc).map(|l| doc.length(&l)).unwrap_or(0)
}

/// Stock on hand per SKU and the index of movement ids, derived from the movements.
///
/// Laws: after any sequence of [`Ledger::apply`] calls, each accepted through
/// [`Ledger::check`], `on_hand(sku)` equals the sum of the deltas applied for `sku`
/// and is never negative.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    stock: BTreeMap<String, i64>,
    by_id: HashMap<String, usize>,
    len: usize,
}

impl Ledger {
    /// Replays recorded movements. Recorded history is fact: it is not re-checked.
    pub fn replay<'a>(movements: impl IntoIterator<Item = &'a Movement>) -> Self {
        let mut ledger = Ledger::default();
        for m in movements {
            ledger.apply(m);
        }
        ledger
    }

    pub fn on_hand(&self, sku: &str) -> i64 {
        self.stock.get(sku).copied().unwrap_or(0)
    }

    /// Every SKU that has had a movement, with its stock on hand.
    pub fn stock(&self) -> &BTreeMap<String, i64> {
        &self.stock
    }

    /// Position of the movement with this id in the document, if recorded.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Refuses a movement that would take the stock of its SKU below zero.
    pub fn check(&self, movement: &Movement) -> Result<(), DomainError> {
        let delta = movement.kind.delta();
        let on_hand = self.on_hand(&movement.sku);
        if delta < 0 && on_hand + delta < 0 {
            return Err(DomainError::InsufficientStock {
                sku: movement.sku.clone(),
                on_hand,
                requested: -delta,
            });
        }
        Ok(())
    }

    /// Adds a recorded movement to the derived view.
    pub fn apply(&mut self, movement: &Movement) {
        *self.stock.entry(movement.sku.clone()).or_insert(0) += movement.kind.delta();
        self.by_id.insert(movement.id.clone(), self.len);
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::movement::{AdjustReason, Buyer, Channel, MovementKind};
    use automerge::Automerge;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = (usize, MovementKind)> {
        let sku = 0usize..3;
        let kind = prop_oneof![
            (1i64..20, 0i64..100_000).prop_map(|(q, c)| MovementKind::Receipt {
                quantity: q,
                unit_cost: c,
                producer: None
            }),
            (1i64..20).prop_map(|q| MovementKind::Sale {
                quantity: q,
                unit_price: Some(1_000),
                channel: Channel::Store,
                buyer: Buyer::Public
            }),
            (-20i64..20)
                .prop_filter("non-zero", |d| *d != 0)
                .prop_map(|d| MovementKind::Adjustment {
                    delta: d,
                    reason: AdjustReason::Count,
                    note: String::new()
                }),
            (1i64..20).prop_map(|q| MovementKind::TransferOut {
                quantity: q,
                transfer_id: "t".into(),
                to: "sikka".into()
            }),
            (1i64..20).prop_map(|q| MovementKind::TransferIn {
                quantity: q,
                transfer_id: "t".into(),
                from: "sikka".into()
            }),
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
                if ledger.check(&m).is_ok() {
                    ledger.apply(&m);
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
            let replayed = Ledger::replay(&read);
            prop_assert_eq!(replayed.stock(), ledger.stock());
        }
    }
}
