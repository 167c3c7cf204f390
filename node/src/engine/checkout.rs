//! One document at a time: how the engine works on a document without holding every
//! other one, and how that work leaves the async threads.
//!
//! The documents' mutex ([`Slots`]) guards the map of documents and the state that
//! spans documents (own ledger, archive, quarantine). It is held for lookups, inserts
//! and short reads, never while a peer's bundle is applied: the document is checked
//! out of the map ([`Engine::check_out`], leaving a [`Busy`] snapshot of its heads
//! and change count), the bundle is applied and staged on a blocking thread with no
//! lock held, and that same thread checks it back in ([`Apply::run`]), so a check-in
//! never waits for an async worker. Callers see the map in one of three ways:
//! - [`Engine::docs`]: every document, once none is checked out (new check-outs
//!   wait meanwhile, so it is never starved). The default: code written for one
//!   lock over everything stays correct unchanged.
//! - [`Engine::docs_for`]: once the named documents are checked in; others may be out.
//! - [`Engine::glance`]: no wait; a checked-out document is seen through its
//!   snapshot (its state before the apply, all a reader may rely on until the apply
//!   is durable). Status and the sync session's lookups read this way.
//!
//! Lock order: the documents' mutex, then (inside it, briefly) the pending counts'
//! mutex; no other lock is taken under it. A caller checks out one document at a
//! time. It must never run automerge work or a store write for a peer's bundle on a
//! tokio worker, and never wait for a check-in on a worker without handing the
//! worker's tasks over first ([`off_async`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use automerge::{ActorId, Change, ChangeHash, ReadDoc};

use super::held::Held;
use super::replica::Replica;
use super::{Documents, Engine, EngineError};
use crate::domain::doc_id::{DocId, NodeId};
use crate::store::{Backend, DocStore};

const POISONED: &str = "documents lock poisoned: restart the node";

/// The documents behind their mutex, and the signal of every check-in.
pub(super) struct Slots {
    map: Mutex<Documents>,
    checked_in: Condvar,
}

/// What readers see of a document while it is checked out: its state before.
#[derive(Debug, Clone)]
pub(super) struct Busy {
    pub heads: Vec<ChangeHash>,
    pub changes: u64,
}

/// The documents checked out, and how many callers wait to see them all.
#[derive(Default)]
pub(super) struct CheckedOut {
    pub busy: BTreeMap<DocId, Busy>,
    whole_waiters: usize,
}

/// Runs `work`, which may block: on a multi-threaded runtime's worker, the worker
/// hands its other tasks to a fresh one first (`block_in_place`); elsewhere (a
/// blocking thread, a test's current-thread runtime) it simply runs.
pub(super) fn off_async<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

impl Slots {
    pub fn new(docs: Documents) -> Arc<Slots> {
        Arc::new(Slots {
            map: Mutex::new(docs),
            checked_in: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Documents> {
        // A panic while holding the lock leaves documents that may not match the
        // store: refuse to go on rather than serve them.
        self.map.lock().expect(POISONED)
    }

    /// Waits (off the async threads) until `blocked` no longer holds.
    fn wait_while<'a>(
        &'a self,
        docs: MutexGuard<'a, Documents>,
        blocked: impl Fn(&Documents) -> bool,
    ) -> MutexGuard<'a, Documents> {
        if !blocked(&docs) {
            return docs;
        }
        off_async(|| {
            self.checked_in
                .wait_while(docs, |d| blocked(d))
                .expect(POISONED)
        })
    }

    /// Puts `doc` back (or, when it may hold part of a refused bundle, loads it
    /// again from the store) and wakes whoever waits.
    fn check_in(&self, doc: &DocId, held: Option<Held>, reload: Option<(&DocStore<'_>, &ActorId)>) {
        let mut docs = self.lock();
        docs.out.busy.remove(doc);
        if let Some(held) = held {
            docs.held.insert(doc.clone(), held);
        } else if let Some((store, actor)) = reload {
            super::quarantine::reload_from(store, actor, &mut docs, doc);
        }
        drop(docs);
        self.checked_in.notify_all();
    }
}

impl Engine {
    /// Every document, once none is checked out.
    pub(super) fn docs(&self) -> MutexGuard<'_, Documents> {
        let mut docs = self.docs.lock();
        if docs.out.busy.is_empty() {
            return docs;
        }
        docs.out.whole_waiters += 1;
        let mut docs = self.docs.wait_while(docs, |d| !d.out.busy.is_empty());
        docs.out.whole_waiters -= 1;
        docs
    }

    /// The documents once none of `ids` is checked out (others may be: they are
    /// missing from `held` and seen in `out.busy`).
    pub(super) fn docs_for(&self, ids: &[&DocId]) -> MutexGuard<'_, Documents> {
        let docs = self.docs.lock();
        self.docs
            .wait_while(docs, |d| ids.iter().any(|id| d.out.busy.contains_key(*id)))
    }

    /// The documents as they are, without waiting: checked-out ones are in
    /// `out.busy` with their state from before.
    pub(super) fn glance(&self) -> MutexGuard<'_, Documents> {
        self.docs.lock()
    }

    /// Every document of `outlet` here (its ledger periods, held or checked out,
    /// and its orders): what a hub operation on one outlet waits for.
    pub(super) fn outlet_documents(&self, outlet: &NodeId) -> Vec<DocId> {
        let docs = self.glance();
        let mut ids: Vec<DocId> = docs
            .held
            .keys()
            .chain(docs.out.busy.keys())
            .filter(|id| id.ledger_period().is_some_and(|(n, _)| n == outlet))
            .cloned()
            .collect();
        ids.push(DocId::Orders(outlet.clone()));
        ids
    }

    /// Takes `doc` out of the map to work on it without the lock (`None` if it is not
    /// held: the caller creates it). At the hub an archived period is opened first.
    /// Waits while another caller has it out, or someone waits to see every document.
    pub(super) fn check_out(&self, doc: &DocId) -> Result<Option<Held>, EngineError> {
        let docs = self.docs.lock();
        let mut docs = self.docs.wait_while(docs, |d| {
            d.out.busy.contains_key(doc) || d.out.whole_waiters > 0
        });
        if self.identity.is_hub() {
            if let Err(e) = self.load_archived(&mut docs, doc) {
                tracing::error!(doc = %doc, error = %e, "cannot open an archived period");
            }
        }
        docs.check_not_quarantined(doc)?;
        let held = docs.held.remove(doc);
        let busy = match &held {
            Some(h) => Busy {
                heads: h.replica.doc().get_heads(),
                changes: h.replica.doc().stats().num_changes,
            },
            None => Busy {
                heads: Vec::new(),
                changes: 0,
            },
        };
        docs.out.busy.insert(doc.clone(), busy);
        Ok(held)
    }

    /// Checks `doc` back in after the thread that had it out died: loaded again
    /// from the store (or quarantined).
    pub(super) fn check_in_after_failure(&self, doc: &DocId) {
        let store = self.store();
        self.docs.check_in(doc, None, Some((&store, &self.actor)));
    }
}

/// A peer's bundle applied to a checked-out document: run on a blocking thread,
/// which checks the document back in.
pub(super) struct Apply {
    pub slots: Arc<Slots>,
    pub doc: DocId,
    pub held: Option<Held>,
    pub actor: ActorId,
    pub backend: Arc<dyn Backend>,
    pub data: Vec<u8>,
    pub deps: Vec<ChangeHash>,
    pub changes: Vec<Change>,
}

impl Apply {
    /// Validates, then persists: the changes are applied and the view derived in
    /// memory first; only a document whose rules hold is staged. Returns whether the
    /// document was new here.
    pub fn run(self) -> Result<bool, EngineError> {
        let store = DocStore::new(self.backend.as_ref());
        let doc = &self.doc;
        let (held, reload, outcome) = match self.held {
            None if !self.deps.is_empty() => (
                None,
                false,
                Err(super::exchange::missing(doc, self.deps.len())),
            ),
            None => {
                let mut replica = Replica::empty(doc.clone(), &self.actor);
                let made = replica
                    .apply_in_memory(self.changes)
                    .and_then(|_| Held::new(replica))
                    .map_err(|e| super::exchange::refused(doc, e));
                match made {
                    Ok(mut held) => match held.replica.stage_remote(&store, &self.data) {
                        Ok(_) => (Some(held), false, Ok(true)),
                        Err(e) => (None, false, Err(e)),
                    },
                    Err(e) => (None, false, Err(e)),
                }
            }
            Some(mut held) => {
                let unknown =
                    self.deps.len() - super::exchange::known(held.replica.doc(), &self.deps).len();
                if unknown > 0 {
                    (
                        Some(held),
                        false,
                        Err(super::exchange::missing(doc, unknown)),
                    )
                } else {
                    match held.apply_remote(self.changes) {
                        Ok(true) => {
                            let staged = held.replica.stage_remote(&store, &self.data);
                            (Some(held), false, staged.map(|_| false))
                        }
                        Ok(false) => (Some(held), false, Ok(false)),
                        // It may hold part of the bundle: loaded again from the store.
                        Err(e) => (None, true, Err(super::exchange::refused(doc, e))),
                    }
                }
            }
        };
        self.slots
            .check_in(doc, held, reload.then_some((&store, &self.actor)));
        outcome
    }
}
