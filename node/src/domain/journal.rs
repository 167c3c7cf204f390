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
use crate::fail_stop::catch_expected;

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

    /// The entries from position `start` on (see [`read_from`]: a view that follows
    /// the journal's end reads only what is new).
    pub fn read_from(
        &self,
        doc: &impl ReadDoc,
        doc_name: &str,
        start: usize,
    ) -> Result<Vec<T>, DomainError> {
        read_from(doc, self.key, doc_name, start)
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

    /// What `changes`, about to be applied to `doc`, do to this journal, read in
    /// one pass over their operations (not the document's):
    /// - [`Growth::Rewrites`]: an entry overwritten or removed, the list replaced or
    ///   removed at its key, a put on the root key `written_once` (a value written
    ///   when the document was made), or a change automerge cannot expand. A journal
    ///   only grows.
    /// - [`Growth::Appends`]: nothing but plain entries inserted into the list, the
    ///   one shape a view may follow entry by entry.
    /// - [`Growth::Other`]: anything else (other keys, objects inserted).
    pub fn growth(
        &self,
        doc: &impl ReadDoc,
        changes: &[automerge::Change],
        written_once: Option<&str>,
    ) -> Growth {
        use automerge::legacy::{Key, ObjectId, OpType};
        let list = match list(doc, self.key) {
            Some(ObjId::Id(counter, actor, _)) => Some((counter, actor)),
            _ => None,
        };
        let guarded = |key: &str| {
            (list.is_some() && key == self.key) || written_once.is_some_and(|once| key == once)
        };
        let mut appends = list.is_some();
        for change in changes {
            let Some(expanded) = expand(change) else {
                return Growth::Rewrites;
            };
            for op in &expanded.operations {
                match (&op.obj, &list) {
                    (ObjectId::Id(id), Some((counter, actor)))
                        if id.0 == *counter && &id.1 == actor =>
                    {
                        if !op.insert {
                            return Growth::Rewrites;
                        }
                        appends &= matches!(op.action, OpType::Put(_));
                    }
                    (ObjectId::Root, _) => {
                        if matches!(&op.key, Key::Map(k) if guarded(k.as_str())) {
                            return Growth::Rewrites;
                        }
                        appends = false;
                    }
                    _ => appends = false,
                }
            }
        }
        if appends {
            Growth::Appends
        } else {
            Growth::Other
        }
    }
}

/// What a peer's changes do to a journal: see [`Journal::growth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    Rewrites,
    Appends,
    Other,
}

/// The operations of `change`, or `None` when automerge cannot expand them (its
/// expansion panics on an action it does not know): a caller counts such a change
/// as the worst case.
pub(crate) fn expand(change: &automerge::Change) -> Option<automerge::ExpandedChange> {
    catch_expected(AssertUnwindSafe(|| change.decode())).ok()
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

/// The entries from position `start` to the end, read one by one by position.
/// automerge 0.12's `list_range` walks (and copies the value of) every entry before
/// the range's start, so a view following a long journal paid for its whole history
/// at every change (issue 16); a read by position seeks through the list's index.
pub fn read_from<T: DeserializeOwned>(
    doc: &impl ReadDoc,
    key: &str,
    doc_name: &str,
    start: usize,
) -> Result<Vec<T>, DomainError> {
    let list =
        list(doc, key).ok_or_else(|| DomainError::schema(doc_name, format!("no {key} list")))?;
    let mut out = Vec::new();
    for index in start.. {
        let value = match doc.get(&list, index) {
            Ok(Some((value, _))) => value,
            Ok(None) => break,
            Err(e) => return Err(DomainError::schema(doc_name, format!("{key} {index}: {e}"))),
        };
        let entry = match value {
            Value::Scalar(scalar) => match scalar.as_ref() {
                automerge::ScalarValue::Str(json) => serde_json::from_str(json)
                    .map_err(|e| DomainError::schema(doc_name, format!("{key} {index}: {e}")))?,
                other => {
                    return Err(DomainError::schema(
                        doc_name,
                        format!("{key} {index} is {other:?}"),
                    ))
                }
            },
            Value::Object(_) => {
                return Err(DomainError::schema(
                    doc_name,
                    format!("{key} {index} is an object"),
                ))
            }
        };
        out.push(entry);
    }
    Ok(out)
}

/// Number of entries (time proportional to the history: for views, not writes).
pub fn len(doc: &impl ReadDoc, key: &str) -> usize {
    list(doc, key).map(|l| doc.length(&l)).unwrap_or(0)
}
