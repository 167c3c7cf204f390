//! A journal: the schema every append-only document of NTT Mart shares. One list at
//! a fixed key of the root, each entry one compact JSON string, appended only by the
//! document's single owner at the end it already knows. A ledger's movements, the
//! hub's online orders and budget allocations are journals.
//!
//! It must never ask automerge for the list's length on a write path (that costs time
//! proportional to the history) and never rewrite an entry.

use automerge::{
    transaction::Transactable, ObjId, ObjType, ReadDoc, ScalarValueRef, Value, ValueRef, ROOT,
};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::DomainError;

/// A journal of entries of type `T` under one key of the root: what each journal
/// document declares once (`const JOURNAL: Journal<OrderEntry> = Journal::new("entries")`)
/// instead of repeating the functions below.
pub struct Journal<T> {
    key: &'static str,
    entries: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Journal<T> {
    pub const fn new(key: &'static str) -> Self {
        Journal {
            key,
            entries: PhantomData,
        }
    }

    /// Creates the empty list of a new document.
    pub fn init(&self, tx: &mut impl Transactable) -> Result<(), automerge::AutomergeError> {
        init(tx, self.key)
    }

    /// Appends `entry` at `end`, the number of entries the caller's view counted.
    pub fn append(
        &self,
        tx: &mut impl Transactable,
        end: usize,
        entry: &T,
    ) -> Result<(), automerge::AutomergeError> {
        append(tx, self.key, end, entry)
    }

    /// The entries in `range` of positions, in document order.
    pub fn read_range(
        &self,
        doc: &impl ReadDoc,
        doc_name: &str,
        range: impl std::ops::RangeBounds<usize>,
    ) -> Result<Vec<T>, DomainError> {
        read_range(doc, self.key, doc_name, range)
    }

    /// Number of entries (time proportional to the history: for views, not writes).
    pub fn len(&self, doc: &impl ReadDoc) -> usize {
        len(doc, self.key)
    }

    /// The automerge id of the entry at `position`: the operation that put it there,
    /// unique in the document, so two entries with equal contents (or equal ids of
    /// their own) still differ.
    pub fn element(&self, doc: &impl ReadDoc, position: usize) -> Option<ObjId> {
        let list = list(doc, self.key)?;
        match doc.get(&list, position) {
            Ok(Some((_, id))) => Some(id),
            _ => None,
        }
    }

    /// Whether `changes`, about to be applied to `doc`, change what this journal
    /// already holds: an entry overwritten or removed, or the list itself replaced
    /// or removed at its key. A journal only grows; a change automerge cannot expand
    /// counts as one that does.
    pub fn rewrites(&self, doc: &impl ReadDoc, changes: &[automerge::Change]) -> bool {
        let Some(ObjId::Id(counter, actor, _)) = list(doc, self.key) else {
            return false;
        };
        changes.iter().any(|change| {
            let Some(expanded) = expand(change) else {
                return true;
            };
            expanded.operations.iter().any(|op| match &op.obj {
                automerge::legacy::ObjectId::Id(id) if id.0 == counter && id.1 == actor => {
                    !op.insert
                }
                automerge::legacy::ObjectId::Root => {
                    matches!(&op.key, automerge::legacy::Key::Map(k) if k.as_str() == self.key)
                }
                _ => false,
            })
        })
    }

    /// Whether `changes`, about to be applied to `doc`, do nothing but insert plain
    /// entries into this journal's list: the one shape of history a view may follow
    /// entry by entry. A put or delete anywhere (the root, an entry overwritten or
    /// removed, a new list under the key), or an object inserted, is not. Costs the
    /// changes' operations, not the document.
    pub fn only_inserts(&self, doc: &impl ReadDoc, changes: &[automerge::Change]) -> bool {
        let Some(ObjId::Id(counter, actor, _)) = list(doc, self.key) else {
            return false;
        };
        changes.iter().all(|change| {
            let Some(expanded) = expand(change) else {
                return false;
            };
            expanded.operations.iter().all(|op| {
                op.insert
                    && matches!(op.action, automerge::legacy::OpType::Put(_))
                    && matches!(&op.obj, automerge::legacy::ObjectId::Id(id)
                        if id.0 == counter && id.1 == actor)
            })
        })
    }
}

/// The operations of `change`, or `None` when automerge cannot expand them (its
/// expansion panics on an action it does not know): a caller counts such a change
/// as the worst case.
pub(crate) fn expand(change: &automerge::Change) -> Option<automerge::ExpandedChange> {
    std::panic::catch_unwind(AssertUnwindSafe(|| change.decode())).ok()
}

/// Creates the empty list of a new journal document under `key`.
pub fn init(tx: &mut impl Transactable, key: &str) -> Result<(), automerge::AutomergeError> {
    tx.put_object(ROOT, key, ObjType::List)?;
    Ok(())
}

fn list(doc: &impl ReadDoc, key: &str) -> Option<ObjId> {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Object(ObjType::List), id))) => Some(id),
        _ => None,
    }
}

/// Appends `entry` at position `end`, which must be the number of entries the caller's
/// view has counted.
pub fn append(
    tx: &mut impl Transactable,
    key: &str,
    end: usize,
    entry: &impl Serialize,
) -> Result<(), automerge::AutomergeError> {
    let list =
        list(tx, key).ok_or_else(|| automerge::AutomergeError::InvalidObjId(key.to_string()))?;
    let json = serde_json::to_string(entry).expect("journal entries serialize");
    tx.insert(&list, end, json)?;
    Ok(())
}

/// The entries in `range` of positions, in document order.
pub fn read_range<T: DeserializeOwned>(
    doc: &impl ReadDoc,
    key: &str,
    doc_name: &str,
    range: impl std::ops::RangeBounds<usize>,
) -> Result<Vec<T>, DomainError> {
    let list =
        list(doc, key).ok_or_else(|| DomainError::schema(doc_name, format!("no {key} list")))?;
    doc.list_range(&list, range)
        .map(|item| match item.value {
            ValueRef::Scalar(ScalarValueRef::Str(json)) => serde_json::from_str(&json)
                .map_err(|e| DomainError::schema(doc_name, format!("{key} {}: {e}", item.index))),
            ValueRef::Scalar(other) => Err(DomainError::schema(
                doc_name,
                format!("{key} {} is {other:?}", item.index),
            )),
            ValueRef::Object(_) => Err(DomainError::schema(
                doc_name,
                format!("{key} {} is an object", item.index),
            )),
        })
        .collect()
}

/// Number of entries (time proportional to the history: for views, not writes).
pub fn len(doc: &impl ReadDoc, key: &str) -> usize {
    list(doc, key).map(|l| doc.length(&l)).unwrap_or(0)
}
