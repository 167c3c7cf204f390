//! The node's documents in memory and on disk, and the store operations on them.
//!
//! Every write is validated against the domain rules, committed as one automerge
//! change, staged in the store, and acknowledged only after a flush made it durable
//! (flushes are shared between concurrent writers by [`GroupCommit`]). Nothing is
//! staged when a rule refuses the write.

mod catalog_edit;
mod error;
mod escrow;
mod exchange;
mod group_commit;
mod held;
mod operations;
mod regional;
mod replica;
mod reports;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use automerge::ActorId;
use tokio::sync::watch;

use crate::domain::actor::actor_for;
use crate::domain::catalog::{self, Catalog};
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::ledger::{self, Ledger};
use crate::domain::seed;
use crate::store::{Backend, DocStore};

pub use error::EngineError;
pub use escrow::{BudgetStatus, OrderInfo, QuotaInfo};
pub use exchange::OutBundle;
pub use group_commit::GroupCommit;
use held::Held;
pub use operations::{DocumentInfo, MovementAck, MovementRequest, NodeStatus, StockLine};
pub use regional::{
    DistrictQuantity, DistrictSummary, LowStock, RegionalLine, Shipment, DEFAULT_REORDER_LEVEL,
};
use replica::Replica;

/// Where a fresh store's first incarnation is drawn from: never 0 (the genesis
/// actor), and far enough below `u32::MAX` for millions of restarts.
const FIRST_INCARNATIONS: std::ops::Range<u32> = 1 << 16..1 << 30;

/// Who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub node: NodeId,
    pub hub: NodeId,
}

impl Identity {
    pub fn is_hub(&self) -> bool {
        self.node == self.hub
    }

    pub fn role(&self) -> &'static str {
        if self.is_hub() {
            "hub"
        } else {
            "district"
        }
    }
}

/// Every document the node holds, behind one lock.
struct Documents {
    held: BTreeMap<DocId, Held>,
    /// The catalog this node writes: `catalog/<node>`, or the provincial one at the hub.
    own_catalog: DocId,
    own_ledger: DocId,
}

impl Documents {
    fn held(&self, id: &DocId) -> &Held {
        self.held
            .get(id)
            .expect("the node's own documents are always held")
    }

    fn held_mut(&mut self, id: &DocId) -> &mut Held {
        self.held
            .get_mut(id)
            .expect("the node's own documents are always held")
    }

    /// The catalogs products are looked up in: the provincial one and the node's own.
    fn catalogs(&self) -> impl Iterator<Item = (&DocId, &Catalog)> {
        let mut ids = vec![&DocId::ProvincialCatalog];
        if self.own_catalog != DocId::ProvincialCatalog {
            ids.push(&self.own_catalog);
        }
        ids.into_iter()
            .filter_map(|id| self.held.get(id).and_then(|h| h.catalog()).map(|c| (id, c)))
    }

    fn own_ledger(&self) -> &Ledger {
        self.held(&self.own_ledger)
            .ledger()
            .expect("a ledger document has a ledger view")
    }
}

/// The local node.
pub struct Engine {
    identity: Identity,
    incarnation: u32,
    actor: ActorId,
    backend: Arc<dyn Backend>,
    docs: Mutex<Documents>,
    commits: GroupCommit,
    next_generated_id: AtomicU64,
    started_at_ms: i64,
    /// Counts durable local writes; sync sessions watch it to push soon after one.
    local_writes: watch::Sender<u64>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Opens (or creates) the node's documents: verifies every stored record, bumps
    /// the incarnation so this start writes with a fresh actor, and creates whatever
    /// document does not exist yet.
    pub fn open(backend: Arc<dyn Backend>, identity: Identity) -> Result<Engine, EngineError> {
        let store = DocStore::new(backend.as_ref());
        // A fresh store starts at a random incarnation, so a district that lost its
        // disk never writes again under an actor id it used before.
        let incarnation = store.next_incarnation(rand::random_range(FIRST_INCARNATIONS))?;
        let actor = actor_for(&identity.node, incarnation);

        let own_catalog = DocId::own_catalog(&identity.node, &identity.hub);
        let own_ledger = DocId::Ledger(identity.node.clone());
        let mut held = BTreeMap::new();
        let provincial = Replica::open(&store, DocId::ProvincialCatalog, &actor, || {
            Replica::provincial_genesis(&identity.hub, &seed::provincial_catalog())
        })?;
        held.insert(DocId::ProvincialCatalog, Held::new(provincial)?);
        if own_catalog != DocId::ProvincialCatalog {
            let replica = Replica::open(&store, own_catalog.clone(), &actor, || {
                Replica::genesis(&identity.node, |tx| catalog::init(tx))
            })?;
            held.insert(own_catalog.clone(), Held::new(replica)?);
        }
        let replica = Replica::open(&store, own_ledger.clone(), &actor, || {
            Replica::genesis(&identity.node, |tx| ledger::init(tx))
        })?;
        held.insert(own_ledger.clone(), Held::new(replica)?);
        // Documents received from peers (at the hub: every district's).
        for name in store.document_ids()? {
            let id = DocId::parse(&name).map_err(|e| EngineError::Document {
                doc: name.clone(),
                reason: e.to_string(),
            })?;
            if let std::collections::btree_map::Entry::Vacant(slot) = held.entry(id.clone()) {
                let replica = Replica::open(&store, id, &actor, || {
                    unreachable!("a listed document has records")
                })?;
                slot.insert(Held::new(replica)?);
            }
        }
        backend.flush()?;

        let docs = Documents {
            held,
            own_catalog,
            own_ledger,
        };
        Ok(Engine {
            commits: GroupCommit::start(backend.clone()),
            identity,
            incarnation,
            actor,
            backend,
            docs: Mutex::new(docs),
            next_generated_id: AtomicU64::new(1),
            started_at_ms: now_ms(),
            local_writes: watch::Sender::new(0),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    fn docs(&self) -> MutexGuard<'_, Documents> {
        // A panic while holding the lock leaves documents that may not match the
        // store: refuse to go on rather than serve them.
        self.docs
            .lock()
            .expect("documents lock poisoned: restart the node")
    }

    fn store(&self) -> DocStore<'_> {
        DocStore::new(self.backend.as_ref())
    }

    fn generate_id(&self) -> String {
        let n = self.next_generated_id.fetch_add(1, Ordering::Relaxed);
        format!("@{}.{n}", self.incarnation)
    }

    /// Waits until a local write is durable, then tells the sync sessions about it.
    async fn after_local_write(&self) -> Result<(), EngineError> {
        self.commits.durable().await?;
        self.local_writes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// A receiver that changes after every durable local write.
    pub fn watch_local_writes(&self) -> watch::Receiver<u64> {
        self.local_writes.subscribe()
    }

    /// Waits until every change staged so far is durable (before sync sends any).
    pub async fn durable(&self) -> Result<(), EngineError> {
        self.commits.durable().await
    }

    /// Makes every staged write durable (used at shutdown).
    pub fn flush(&self) -> Result<(), EngineError> {
        Ok(self.backend.flush()?)
    }
}
