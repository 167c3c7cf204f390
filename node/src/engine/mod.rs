//! The node's documents in memory and on disk, and the store operations on them.
//!
//! Every write is validated against the domain rules, committed as one automerge
//! change, staged in the store, and acknowledged only after a flush made it durable
//! (flushes are shared between concurrent writers by [`GroupCommit`]). Nothing is
//! staged when a rule refuses the write.

mod error;
mod group_commit;
mod operations;
mod replica;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use automerge::ActorId;

use crate::domain::actor::actor_for;
use crate::domain::catalog::{self, Catalog};
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::ledger::{self, Ledger};
use crate::domain::seed;
use crate::store::{Backend, DocStore};

pub use error::EngineError;
pub use group_commit::GroupCommit;
pub use operations::{DocumentInfo, MovementAck, MovementRequest, NodeStatus, StockLine};
use replica::Replica;

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

/// A catalog document and the catalog read from it.
struct CatalogReplica {
    replica: Replica,
    catalog: Catalog,
}

/// The ledger document and the stock derived from it.
struct LedgerReplica {
    replica: Replica,
    ledger: Ledger,
}

/// Every document the node holds, behind one lock.
struct Documents {
    provincial: CatalogReplica,
    /// The catalog this node writes: its local catalog, or for the hub the provincial
    /// one (then `None` and writes go to `provincial`).
    own_catalog: Option<CatalogReplica>,
    ledger: LedgerReplica,
}

impl Documents {
    fn own_catalog_mut(&mut self) -> &mut CatalogReplica {
        match &mut self.own_catalog {
            Some(own) => own,
            None => &mut self.provincial,
        }
    }

    fn catalogs(&self) -> impl Iterator<Item = &CatalogReplica> {
        std::iter::once(&self.provincial).chain(self.own_catalog.as_ref())
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
        let incarnation = store.next_incarnation()?;
        let actor = actor_for(&identity.node, incarnation);

        let provincial = Replica::open(&store, DocId::ProvincialCatalog, &actor, || {
            Replica::provincial_genesis(&identity.hub, &seed::provincial_catalog())
        })?;
        let provincial = CatalogReplica::read(provincial)?;
        let own_catalog = match DocId::own_catalog(&identity.node, &identity.hub) {
            DocId::ProvincialCatalog => None,
            own => {
                let replica = Replica::open(&store, own, &actor, || {
                    Replica::genesis(&actor, |tx| catalog::init(tx))
                })?;
                Some(CatalogReplica::read(replica)?)
            }
        };
        let ledger_replica =
            Replica::open(&store, DocId::Ledger(identity.node.clone()), &actor, || {
                Replica::genesis(&actor, |tx| ledger::init(tx))
            })?;
        let movements = ledger::read_range(ledger_replica.doc(), &ledger_replica.name(), ..)?;
        let ledger = LedgerReplica {
            ledger: Ledger::replay(&movements),
            replica: ledger_replica,
        };
        backend.flush()?;

        let docs = Documents {
            provincial,
            own_catalog,
            ledger,
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

    /// Makes every staged write durable (used at shutdown).
    pub fn flush(&self) -> Result<(), EngineError> {
        Ok(self.backend.flush()?)
    }
}

impl CatalogReplica {
    fn read(replica: Replica) -> Result<Self, EngineError> {
        let catalog = catalog::read(replica.doc(), &replica.name())?;
        Ok(CatalogReplica { replica, catalog })
    }
}
