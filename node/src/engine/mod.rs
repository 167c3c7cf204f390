//! The node's documents in memory and on disk, and the store operations on them.
//!
//! Every write is validated against the domain rules, committed as one automerge
//! change, staged in the store, and acknowledged only after a flush made it durable
//! (flushes are shared between concurrent writers by [`GroupCommit`]). Nothing is
//! staged when a rule refuses the write. A read served to a client waits until what
//! it read is durable ([`Engine::durable_read`]). A store that failed a write or a
//! flush takes no more (see `group_commit.rs`): the node stops, and its next start
//! loads exactly what the disk holds.

mod basket;
pub(crate) mod bundle_parser;
mod catalog_edit;
mod checkout;
mod clock;
#[cfg(test)]
mod disk_failure_tests;
mod error;
mod escrow;
mod exchange;
mod export;
mod group_commit;
mod held;
mod operations;
mod pending;
mod periods;
mod quarantine;
mod regional;
mod replica;
mod reports;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use automerge::ActorId;
use tokio::sync::watch;

use crate::domain::actor::actor_for;
use crate::domain::catalog::{self, Catalog};
use crate::domain::districts::KnownDistricts;
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::ledger::Ledger;
use crate::domain::period::PeriodLength;
use crate::domain::seed;
use crate::store::{Backend, DocStore};

pub use basket::{BasketAck, BasketLine, BasketRequest, LineAck};
pub use clock::{EvidenceSource, CLOCK_MARGIN_MS};
pub use error::EngineError;
pub use escrow::{BudgetStatus, OrderInfo, QuotaInfo};
pub use exchange::{OutBundle, Planned};
pub use export::{BackupScope, ExportForm, SavedDocument};
pub use group_commit::GroupCommit;
use held::Held;
pub use operations::{DocumentInfo, MovementAck, MovementRequest, NodeStatus, StockLine, Trouble};
pub use periods::PeriodState;
pub use quarantine::Dropped;
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

/// How a node keeps its ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerOptions {
    /// How many months one ledger document covers.
    pub period: PeriodLength,
    /// The store is empty because the outlet lost its disk: take this outlet's ledger
    /// back from the hub before recording any movement.
    pub restore: bool,
    /// The operator vouches for the clock (`mart-node run --accept-clock`): a new
    /// period opens wherever the clock says, however far ahead of the evidence.
    pub accept_clock: bool,
}

/// Every document the node holds, behind one lock held only for lookups and short
/// reads (see `checkout.rs`: a document is worked on checked out of the map).
struct Documents {
    held: BTreeMap<DocId, Held>,
    /// Ledger periods sealed and settled: on disk, not in memory (opened on demand).
    /// (With the bytes each takes on disk.)
    archived: BTreeMap<DocId, u64>,
    /// The catalog this node writes: `catalog/<node>`, or the provincial one at the hub.
    own_catalog: DocId,
    /// The open period of this outlet's ledger; `None` while it is restored from the hub.
    own_ledger: Option<DocId>,
    /// The movement ids of this outlet's most recently archived period, so a request
    /// made just before a period turned and retried just after is still answered once.
    retired_ids: Option<(DocId, periods::IdIndex)>,
    /// Documents that failed to load or to derive their view, with the reason: not in
    /// memory, not synced, not written, until an operator drops or refetches them.
    quarantined: BTreeMap<DocId, String>,
    /// Documents an operator dropped, asked of peers again (see `quarantine.rs`).
    wanted: std::collections::BTreeSet<DocId>,
    /// Documents checked out of `held` while a peer's bundle is applied to them.
    out: checkout::CheckedOut,
}

impl Documents {
    /// A document in memory; a quarantined or dropped one is a clear error.
    fn held(&self, id: &DocId) -> Result<&Held, EngineError> {
        match self.held.get(id) {
            Some(held) => Ok(held),
            None => Err(self.unheld(id)),
        }
    }

    fn held_mut(&mut self, id: &DocId) -> Result<&mut Held, EngineError> {
        if !self.held.contains_key(id) {
            return Err(self.unheld(id));
        }
        Ok(self.held.get_mut(id).expect("checked above"))
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

    /// The open period of this outlet's ledger.
    fn own_ledger_id(&self) -> Result<&DocId, EngineError> {
        self.own_ledger
            .as_ref()
            .ok_or_else(|| EngineError::Restoring("waiting for the hub".into()))
    }

    fn own_ledger(&self) -> Result<&Ledger, EngineError> {
        Ok(self
            .held(self.own_ledger_id()?)?
            .ledger()
            .expect("a ledger document has a ledger view"))
    }
}

/// The local node.
pub struct Engine {
    identity: Identity,
    /// The districts this node accepts as outlets (and, at the hub, as sync peers).
    districts: KnownDistricts,
    ledger_options: LedgerOptions,
    incarnation: u32,
    actor: ActorId,
    backend: Arc<dyn Backend>,
    /// The documents, behind a lock held only for lookups (see `checkout.rs`).
    docs: Arc<checkout::Slots>,
    /// What peers lack of each document, counted incrementally.
    pending: pending::PendingCounts,
    commits: GroupCommit,
    next_generated_id: AtomicU64,
    started_at_ms: i64,
    /// Whether the clock may open a new ledger period.
    clock: clock::ClockGuard,
    /// Counts durable local writes; sync sessions watch it to push soon after one.
    local_writes: watch::Sender<u64>,
    /// Parses peers' bundles off the async threads, within a deadline.
    parser: bundle_parser::BundleParser,
}

impl Engine {
    /// Sets how long a peer's bundle may take to parse (tests of a stuck parse).
    #[cfg(test)]
    pub(crate) fn set_parse_deadline(&self, deadline: std::time::Duration) {
        self.parser.set_deadline(deadline);
    }
}

/// Milliseconds added to the system clock: 0 unless `MART_TEST_CLOCK_OFFSET_MS` is
/// set (tests that run a node through simulated months) or a benchmark sets it.
static CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(i64::MIN);

/// The node's clock (ms since the epoch): every timestamp it writes comes from here.
pub fn now_ms() -> i64 {
    let system = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut offset = CLOCK_OFFSET_MS.load(Ordering::Relaxed);
    if offset == i64::MIN {
        offset = std::env::var("MART_TEST_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        CLOCK_OFFSET_MS.store(offset, Ordering::Relaxed);
    }
    system + offset
}

/// Moves the node's clock (tests and benchmarks only: a node in service never
/// calls it).
pub fn set_clock_offset_ms(offset: i64) {
    CLOCK_OFFSET_MS.store(offset, Ordering::Relaxed);
}

impl Engine {
    /// Opens (or creates) the node's documents: verifies every stored record, bumps
    /// the incarnation so this start writes with a fresh actor, and creates whatever
    /// document does not exist yet.
    pub fn open(backend: Arc<dyn Backend>, identity: Identity) -> Result<Engine, EngineError> {
        Self::open_with(backend, identity, LedgerOptions::default())
    }

    /// [`Engine::open`] with how the ledger is kept. Only the open period of each
    /// ledger (and periods not yet settled) is loaded; archived periods stay on disk.
    pub fn open_with(
        backend: Arc<dyn Backend>,
        identity: Identity,
        ledger_options: LedgerOptions,
    ) -> Result<Engine, EngineError> {
        let store = DocStore::new(backend.as_ref());
        // A fresh store starts at a random incarnation, so a district that lost its
        // disk never writes again under an actor id it used before.
        let incarnation = store.next_incarnation(rand::random_range(FIRST_INCARNATIONS))?;
        let actor = actor_for(&identity.node, incarnation);

        let own_catalog = DocId::own_catalog(&identity.node, &identity.hub);
        let mut held = BTreeMap::new();
        let mut quarantined = BTreeMap::new();
        type Genesis<'a> =
            Option<&'a dyn Fn() -> Result<automerge::Automerge, automerge::AutomergeError>>;
        let mut load = |id: DocId, genesis: Genesis<'_>| {
            quarantine::open_held(&store, &id, &actor, genesis).map(|loaded| match loaded {
                Ok(h) => {
                    held.insert(id, h);
                }
                Err(reason) => {
                    quarantined.insert(id, reason);
                }
            })
        };
        load(
            DocId::ProvincialCatalog,
            Some(&|| Replica::provincial_genesis(&identity.hub, &seed::provincial_catalog())),
        )?;
        if own_catalog != DocId::ProvincialCatalog {
            load(
                own_catalog.clone(),
                Some(&|| Replica::genesis(&identity.node, |tx| catalog::init(tx))),
            )?;
        }
        // Every other stored document: ledger periods of this outlet (at the hub:
        // of every district), orders, budgets. Archived periods stay on disk.
        let archived = store.archived()?;
        let mut stored = Vec::new();
        for name in store.document_ids()? {
            match DocId::parse(&name) {
                Ok(id) => stored.push(id),
                Err(e) => {
                    tracing::error!(doc = %name, error = %e, "a stored document has no valid id: left on disk, not loaded")
                }
            }
        }
        let archived: BTreeMap<DocId, u64> = stored
            .iter()
            .filter_map(|id| Some((id.clone(), *archived.get(&id.to_string())?)))
            .collect();
        for id in stored {
            if archived.contains_key(&id) || id == DocId::ProvincialCatalog || id == own_catalog {
                continue;
            }
            load(id, None)?;
        }
        let mut docs = Documents {
            held,
            archived,
            own_catalog,
            own_ledger: None,
            retired_ids: periods::load_retired_ids(&store)?,
            quarantined,
            wanted: Default::default(),
            out: Default::default(),
        };
        // A restore asked for now, or one a killed node had begun: until it ends, the
        // store says so, and the node records no movement.
        if ledger_options.restore && identity.is_hub() {
            return Err(EngineError::Document {
                doc: format!("ledger/{}", identity.node),
                reason: "a hub is restored from its own backup, not with --restore".into(),
            });
        }
        let resumed = store.restoring()?;
        let restoring = !identity.is_hub() && (ledger_options.restore || resumed);
        if ledger_options.restore && !resumed && docs.newest_period_of(&identity.node).is_some() {
            return Err(EngineError::Document {
                doc: format!("ledger/{}", identity.node),
                reason:
                    "restore needs an empty data dir: this one already holds the outlet's ledger"
                        .into(),
            });
        }
        if restoring {
            store.set_restoring(true)?;
        }
        if !restoring {
            periods::open_own_ledger(
                &store,
                &actor,
                &identity.node,
                &mut docs,
                ledger_options.period,
                now_ms(),
            )?;
        }
        // The hub's clock is the province's reference: nothing is evidence against
        // it, so only districts are guarded.
        let (evidence, new) =
            clock::ClockGuard::evidence_at_start(store.clock_evidence()?, now_ms());
        if new {
            store.set_clock_evidence(evidence)?;
        }
        let clock =
            clock::ClockGuard::new(evidence, ledger_options.accept_clock || identity.is_hub());
        backend.flush()?;

        // From here on every write goes through the group commit's counting backend.
        let commits = GroupCommit::start(backend);
        let backend = commits.backend();
        Ok(Engine {
            clock,
            commits,
            identity,
            districts: KnownDistricts::default(),
            ledger_options,
            incarnation,
            actor,
            backend,
            docs: checkout::Slots::new(docs),
            pending: Default::default(),
            next_generated_id: AtomicU64::new(1),
            started_at_ms: now_ms(),
            local_writes: watch::Sender::new(0),
            parser: bundle_parser::BundleParser::new(bundle_parser::PARSE_DEADLINE),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Accepts `districts` (the hub's `[hub] districts`) instead of the province's 22.
    pub fn with_known_districts(mut self, districts: KnownDistricts) -> Self {
        self.districts = districts;
        self
    }

    pub fn known_districts(&self) -> &KnownDistricts {
        &self.districts
    }

    /// Runs `read` and returns its answer once everything it could see is durable:
    /// never a write whose flush is still pending or failed. Fails with the store's
    /// failure once a write or flush failed.
    pub async fn durable_read<R>(
        &self,
        read: impl FnOnce(&Self) -> Result<R, EngineError>,
    ) -> Result<R, EngineError> {
        let answer = read(self)?;
        self.reads_durable().await?;
        Ok(answer)
    }

    /// Returns once everything read before this call is durable (see
    /// [`Engine::durable_read`], for reads that run elsewhere first).
    pub async fn reads_durable(&self) -> Result<(), EngineError> {
        self.commits.durable_reads().await
    }

    /// Becomes `Some(failure)` once the store failed a write or a flush: the node
    /// must stop, so that its next start loads what the disk holds.
    pub fn watch_storage_failure(&self) -> watch::Receiver<Option<String>> {
        self.commits.watch_failure()
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
