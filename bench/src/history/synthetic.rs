//! The other districts at the hub. Generating 21 more years of sales through 21
//! engines would take far longer than the bench may run, and `ttu`'s bundles cannot
//! be fed to the hub under other identities: every change's actor names its author,
//! and the hub refuses a change by anyone but the document's owner.
//!
//! So each other district gets:
//! - its sealed, archived periods as byte-for-byte copies of `ttu`'s records of the
//!   same periods at the hub (snapshot and chunks, written with `DocStore` under the
//!   district's name and marked archived, as the hub marks them). The hub never loads
//!   an archived period at start-up; only its records' bytes on disk matter there,
//!   and they are the same as a real district's;
//! - its newest period, the one the hub keeps in memory, built in automerge like the
//!   engine builds it: the owner's deterministic genesis, then with the district's own
//!   actor the opening balances and one change per sale (`ttu`'s movements: same
//!   SKUs, quantities, prices and times), applied by the hub's real engine through
//!   `apply_bundle` one bundle per day, as `ttu`'s daily syncs brought its own.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, ChangeHash};
use mart_node::domain::actor::{actor_for, GENESIS_INCARNATION};
use mart_node::domain::doc_id::{DocId, NodeId};
use mart_node::domain::ledger::{self, Balances, Ledger};
use mart_node::domain::movement::Movement;
use mart_node::domain::period::{PeriodId, PeriodLength};
use mart_node::engine::Engine;
use mart_node::store::{Backend, DocStore, StoredDoc};

use super::timeline::{price, receipt_kind, sale_kind, sku, sku_of_sale, Day, PRODUCER};

/// What adding the other districts took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Synthetic {
    pub districts: usize,
    /// Archived periods copied per district.
    pub copied_periods: usize,
    /// Movements in each district's newest period.
    pub newest_movements: usize,
    /// Building the newest periods in automerge (on a thread of its own).
    pub build: Duration,
    /// Copying the archived periods' records and the hub's `apply_bundle` of the
    /// newest ones.
    pub apply: Duration,
    pub wall: Duration,
}

/// Adds the districts `ids` to the hub: `ttu`'s archived periods copied, and the
/// newest period `newest` built on a thread of its own while the hub applies the
/// ones already built.
#[allow(clippy::too_many_arguments)]
pub async fn add_to_hub(
    hub: &Engine,
    backend: &dyn Backend,
    ids: Vec<NodeId>,
    length: PeriodLength,
    start_ms: i64,
    days: &[Day],
    skus: usize,
    newest: PeriodId,
) -> Result<Synthetic> {
    let started = Instant::now();
    let store = DocStore::new(backend);
    let archived = store.archived()?;
    let mut model: Vec<(PeriodId, StoredDoc)> = Vec::new();
    for name in store.document_ids()? {
        if let (true, Ok(DocId::Ledger(node, period))) =
            (archived.contains_key(&name), DocId::parse(&name))
        {
            if node.as_str() == super::DISTRICT {
                let stored = store
                    .load(&name)?
                    .context("an archived period has records")?;
                model.push((period, stored));
            }
        }
    }
    // Every district opens its newest period with the same balances: the closing of
    // the same movements before it.
    let (before, newest_movements) = movements(start_ms, days, skus, length, newest);
    let opening = Ledger::replay(before.iter())
        .expect("a synthetic history keeps the rules")
        .closing()
        .clone();
    let newest_count = newest_movements.len();
    let districts = ids.len();
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<(NodeId, Vec<Vec<u8>>)>>(1);
    let build_ids = ids.clone();
    let builder = std::thread::spawn(move || {
        let mut build = Duration::ZERO;
        for node in build_ids {
            let started = Instant::now();
            let built = newest_period(&node, &opening, &newest_movements);
            build += started.elapsed();
            if sender.blocking_send(built.map(|b| (node, b))).is_err() {
                break;
            }
        }
        build
    });
    let apply_started = Instant::now();
    let mut building = Duration::ZERO;
    for node in &ids {
        for (period, stored) in &model {
            let name = DocId::Ledger(node.clone(), *period).to_string();
            if let Some(snapshot) = &stored.snapshot {
                store.compact(&name, snapshot, 0)?;
            }
            let first = stored.next_chunk - stored.chunks.len() as u64;
            for (k, chunk) in stored.chunks.iter().enumerate() {
                store.append_chunk(&name, first + k as u64, chunk)?;
            }
            store.set_archived(&name, stored.bytes)?;
        }
    }
    hub.flush()?;
    while let Some(built) = {
        let waiting = Instant::now();
        let next = receiver.recv().await;
        building += waiting.elapsed();
        next
    } {
        let (node, bundles) = built?;
        let doc = DocId::Ledger(node.clone(), newest);
        for bytes in bundles {
            hub.apply_bundle(&node, &doc, &bytes)
                .await
                .with_context(|| format!("the hub applies {doc}"))?;
        }
    }
    let apply = apply_started.elapsed() - building;
    let build = builder
        .join()
        .map_err(|_| anyhow::anyhow!("the builder thread panicked"))?;
    Ok(Synthetic {
        districts,
        copied_periods: model.len(),
        newest_movements: newest_count,
        build,
        apply,
        wall: started.elapsed(),
    })
}

/// `ttu`'s movements (its receipts on the first morning, then every sale of `days`):
/// those before period `newest`, and those in it.
fn movements(
    start_ms: i64,
    days: &[Day],
    skus: usize,
    length: PeriodLength,
    newest: PeriodId,
) -> (Vec<Movement>, Vec<Movement>) {
    let receipts = (0..skus).map(|i| Movement {
        id: format!("r{i}"),
        sku: sku(i),
        at_ms: start_ms,
        kind: receipt_kind().filled(None, Some(PRODUCER)),
    });
    let sales = days.iter().flat_map(|day| {
        (0..day.sales).map(move |j| {
            let i = day.first + j;
            let s = sku_of_sale(i, skus);
            Movement {
                id: format!("s{i}"),
                sku: sku(s),
                at_ms: day.at(j),
                kind: sale_kind(i, Some(price(s))),
            }
        })
    });
    receipts
        .chain(sales)
        .partition(|m| PeriodId::of_length(m.at_ms, length) < newest)
}

/// The newest period of `node`'s ledger, unsealed, one change per movement, as one
/// bundle per day.
fn newest_period(
    node: &NodeId,
    opening: &Balances,
    movements: &[Movement],
) -> Result<Vec<Vec<u8>>> {
    period_bundles(node, &actor_for(node, 1), opening, movements)
}

/// One open period document: the owner's genesis, then by `actor` the opening
/// balances and one change per movement; one bundle per (WITA) day of movements.
fn period_bundles(
    node: &NodeId,
    actor: &ActorId,
    opening: &Balances,
    movements: &[Movement],
) -> Result<Vec<Vec<u8>>> {
    let mut doc = Automerge::new().with_actor(actor_for(node, GENESIS_INCARNATION));
    let mut hashes: Vec<ChangeHash> = Vec::new();
    commit(&mut doc, &mut hashes, 0, |tx| ledger::init(tx))?;
    doc.set_actor(actor.clone());
    let first_ms = movements.first().map_or(0, |m| m.at_ms);
    commit(&mut doc, &mut hashes, first_ms, |tx| {
        ledger::open_with(tx, opening)
    })?;
    let day_of = |m: &Movement| mart_node::domain::wita::day_of(m.at_ms);
    let mut bundles = Vec::new();
    for (end, m) in movements.iter().enumerate() {
        commit(&mut doc, &mut hashes, m.at_ms, |tx| {
            ledger::append(tx, end, m)
        })?;
        if movements
            .get(end + 1)
            .is_none_or(|next| day_of(next) != day_of(m))
        {
            bundles.push(doc.bundle(hashes.drain(..))?.bytes().to_vec());
        }
    }
    if !hashes.is_empty() {
        bundles.push(doc.bundle(hashes)?.bytes().to_vec());
    }
    Ok(bundles)
}

/// Commits one change made by `f` at `at_ms` and keeps its hash.
fn commit(
    doc: &mut Automerge,
    hashes: &mut Vec<ChangeHash>,
    at_ms: i64,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
) -> Result<()> {
    let done = doc
        .transact_with(|_| CommitOptions::default().with_time(at_ms), f)
        .map_err(|failure| failure.error)?;
    hashes.extend(done.hash);
    Ok(())
}
