//! `bench regional`: the hub's regional views with 22 districts of 2,000 SKUs each: a
//! one-SKU regional query, the full report, district summaries, and the cost per
//! incoming change of keeping the views up to date (hub apply of a bundle beside a raw
//! automerge apply of the same changes).
//!
//! District ledgers are written with the districts' own actors and reach the hub's
//! real engine (on sled) through `apply_bundle`, as over sync.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use automerge::{transaction::CommitOptions, Automerge, ChangeHash};
use mart_node::domain::actor::actor_for;
use mart_node::domain::doc_id::{DocId, NodeId};
use mart_node::domain::ledger;
use mart_node::domain::movement::{Buyer, Channel, Movement, MovementKind};
use mart_node::domain::period::PeriodId;
use mart_node::engine::{now_ms, Engine, Identity};
use mart_node::store::{Backend, SledBackend};

/// What one run measured.
pub struct Regional {
    pub districts: usize,
    pub skus: usize,
    pub one_sku: Duration,
    pub full_report: Duration,
    pub full_lines: usize,
    pub summaries: Duration,
    pub changes: usize,
    pub hub_apply: Duration,
    pub raw_apply: Duration,
}

fn sku(i: usize) -> String {
    format!("SKU-{i:05}")
}

fn movement(id: usize, sku: String, at_ms: i64, kind: MovementKind) -> Movement {
    Movement {
        id: format!("m{id}"),
        sku,
        at_ms,
        kind,
    }
}

/// A district's ledger with one receipt per SKU, as one change by its own actor.
fn district_ledger(node: &NodeId, skus: usize) -> Result<Automerge> {
    let mut doc = Automerge::new().with_actor(actor_for(node, 1));
    doc.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| CommitOptions::default().with_time(mart_node::engine::now_ms()),
        |tx| {
            ledger::init(tx)?;
            for i in 0..skus {
                let kind = MovementKind::Receipt {
                    quantity: 10 + (i % 40) as i64,
                    unit_cost: 10_000,
                    producer: None,
                    over_budget: None,
                };
                ledger::append(tx, i, &movement(i, sku(i), 1, kind))?;
            }
            Ok(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(doc)
}

fn all_hashes(doc: &Automerge) -> Vec<ChangeHash> {
    doc.get_changes(&[]).iter().map(|c| c.hash()).collect()
}

/// Runs the measurement with `districts` ledgers of `skus` SKUs in a fresh store.
pub async fn run(dir: &Path, districts: usize, skus: usize, changes: usize) -> Result<Regional> {
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(&dir.join("hub"))?);
    let hub_id = NodeId::parse("kupang")?;
    let hub = Engine::open(
        backend,
        Identity {
            node: hub_id.clone(),
            hub: hub_id,
        },
    )?;
    let mut last = None;
    for d in 0..districts {
        let node = NodeId::parse(&format!("district-{d:02}"))?;
        let doc = district_ledger(&node, skus)?;
        let bundle = doc.bundle(all_hashes(&doc))?;
        hub.apply_bundle(
            &node,
            &DocId::Ledger(node.clone(), PeriodId::of(now_ms())),
            bundle.bytes(),
        )
        .await?;
        last = Some((node, doc));
    }
    let (node, mut doc) = last.expect("at least one district");

    let probe = sku(skus / 2);
    let rounds = 1000;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(hub.regional_stock(Some(&probe), None)?);
    }
    let one_sku = started.elapsed() / rounds;
    let started = Instant::now();
    let full = hub.regional_stock(None, None)?;
    let full_report = started.elapsed();
    let full_lines = full.iter().map(|l| l.districts.len()).sum();
    let started = Instant::now();
    std::hint::black_box(hub.district_summaries()?);
    let summaries = started.elapsed();

    // Incoming changes: one sale per change, as a district records them.
    let before = doc.get_heads();
    let base = ledger::len(&doc);
    for i in 0..changes {
        let kind = MovementKind::Sale {
            quantity: 1,
            unit_price: Some(15_000),
            channel: Channel::Store,
            buyer: Buyer::Public,
            order: None,
            basket: None,
        };
        doc.transact_with::<_, _, automerge::AutomergeError, _>(
            |_| CommitOptions::default().with_time(mart_node::engine::now_ms()),
            |tx| ledger::append(tx, base + i, &movement(base + i, sku(i % skus), 2, kind)),
        )
        .map_err(|f| f.error)?;
    }
    let new: Vec<ChangeHash> = doc.get_changes(&before).iter().map(|c| c.hash()).collect();
    let bundle = doc.bundle(new.iter().copied())?;
    // The hub's copy before the sales, as a bare automerge document.
    let mut raw = Automerge::new();
    let old: Vec<_> = doc
        .get_changes(&[])
        .into_iter()
        .filter(|c| !new.contains(&c.hash()))
        .collect();
    raw.apply_changes(old)?;
    let incoming = doc.get_changes(&before);
    let started = Instant::now();
    raw.apply_changes(incoming)?;
    let raw_apply = started.elapsed();
    let started = Instant::now();
    hub.apply_bundle(
        &node,
        &DocId::Ledger(node.clone(), PeriodId::of(now_ms())),
        bundle.bytes(),
    )
    .await?;
    let hub_apply = started.elapsed();
    anyhow::ensure!(
        hub.regional_stock(Some(&sku(0)), Some(node.as_str()))?[0].districts[0].quantity
            == 10 - changes.div_ceil(skus) as i64,
        "the hub's view did not follow the incoming sales"
    );
    Ok(Regional {
        districts,
        skus,
        one_sku,
        full_report,
        full_lines,
        summaries,
        changes,
        hub_apply,
        raw_apply,
    })
}
