//! `bench catchup`: a district records N sales while cut off, then reconnects; how
//! many bytes and how long until the hub holds them all, beside automerge's own
//! encodings of the same missing changes and a raw `apply_changes` at the hub.
//!
//! Both nodes are real engines on sled in the scratch dir, driven by the real sync
//! session state machine, each side on its own task for the catch-up itself (so the
//! district cuts bundles while the hub applies); the link is the message queues
//! between them, so the bytes
//! are the protobuf bytes of every sync message (gRPC framing, HTTP/2 and TLS add
//! a few bytes per message on a real link, not per sale).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use automerge::Automerge;
use mart_node::domain::doc_id::NodeId;
use mart_node::domain::movement::{Buyer, Channel, MovementKind};
use mart_node::engine::{Engine, Identity, MovementRequest};
use mart_node::store::{Backend, SledBackend};
use mart_node::sync::{PeerBook, Session};
use mart_proto::v1::SyncMessage;
use prost::Message;

/// Seeded SKUs a sale picks from.
pub const SKUS: [&str; 12] = [
    "TTU-MKP-060",
    "TTU-MKP-120",
    "TTU-TNN-SLD",
    "NGD-KOP-250",
    "NGD-KOP-1KG",
    "KPG-MDU-500",
    "SKA-MET-250",
    "RTN-GLL-500",
    "KOT-SEI-250",
    "KOT-KLR-100",
    "FLT-SRG-1KG",
    "STM-TNN-KAIN",
];

/// What one catch-up measured.
pub struct CatchUp {
    pub sales: usize,
    /// Time to record the sales locally: first and last tenth, per sale.
    pub first_write: Duration,
    pub last_write: Duration,
    pub wire_bytes: u64,
    pub messages: u64,
    pub wall: Duration,
    /// Time the hub spent applying bundles (inside `wall`).
    pub hub_apply: Duration,
    /// Time the district takes to cut the missing changes into bundles (measured
    /// once beside the catch-up; inside `wall` the district does the same work).
    pub bundling: Duration,
    pub save_after_bytes: u64,
    pub one_by_one_bytes: u64,
    pub raw_apply: Duration,
    /// Resident memory of the whole process (district and hub engines) just before
    /// the reconnect, and its peak during the catch-up.
    pub rss_before: Option<u64>,
    pub peak_during: Option<u64>,
}

struct Node {
    engine: Arc<Engine>,
    book: Arc<PeerBook>,
}

fn open(dir: &Path, id: &str) -> Result<Node> {
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(&dir.join(id))?);
    let identity = Identity {
        node: NodeId::parse(id)?,
        hub: NodeId::parse("kupang")?,
    };
    let engine = Arc::new(Engine::open(backend.clone(), identity)?);
    Ok(Node {
        engine,
        book: Arc::new(PeerBook::load(backend)),
    })
}

/// Runs both sessions until neither has anything to say; returns the bytes and
/// messages that crossed, and the time the hub spent handling its side.
async fn exchange(at_hub: &mut Session, at_district: &mut Session) -> Result<(u64, u64, Duration)> {
    let (mut to_hub, mut to_district) = (at_district.opening().await?, at_hub.opening().await?);
    let (mut bytes, mut messages, mut hub_time) = (0u64, 0u64, Duration::ZERO);
    let size = |m: &[SyncMessage]| m.iter().map(|m| m.encoded_len() as u64).sum::<u64>();
    while !to_hub.is_empty() || !to_district.is_empty() {
        bytes += size(&to_hub) + size(&to_district);
        messages += (to_hub.len() + to_district.len()) as u64;
        let started = Instant::now();
        let mut next_district = Vec::new();
        for m in to_hub.drain(..) {
            next_district.extend(at_hub.handle(m).await?);
        }
        hub_time += started.elapsed();
        let mut next_hub = Vec::new();
        for m in to_district.drain(..) {
            next_hub.extend(at_district.handle(m).await?);
        }
        to_hub = next_hub;
        to_district = next_district;
    }
    Ok((bytes, messages, hub_time))
}

/// Runs both sessions at once, each on its own task (as two processes would), the
/// link being a pair of message queues, until the district's session is in sync:
/// the district cuts its next bundle while the hub applies the last one. Returns
/// the bytes and messages that crossed and the time the hub spent handling
/// messages.
async fn exchange_concurrently(
    mut at_hub: Session,
    mut at_district: Session,
) -> Result<(u64, u64, Duration)> {
    use tokio::sync::mpsc;
    let size = |m: &SyncMessage| m.encoded_len() as u64;
    let (to_hub, mut hub_inbox) = mpsc::unbounded_channel::<SyncMessage>();
    let (to_district, mut district_inbox) = mpsc::unbounded_channel::<SyncMessage>();
    for m in at_hub.opening().await? {
        to_district.send(m)?;
    }
    let hub = tokio::spawn(async move {
        let (mut bytes, mut messages, mut busy) = (0u64, 0u64, Duration::ZERO);
        while let Some(m) = hub_inbox.recv().await {
            let started = Instant::now();
            let answers = at_hub.handle(m).await?;
            busy += started.elapsed();
            for a in answers {
                bytes += size(&a);
                messages += 1;
                // The district stops listening once in sync.
                let _ = to_district.send(a);
            }
        }
        anyhow::Ok((bytes, messages, busy))
    });
    let (mut bytes, mut messages) = (0u64, 0u64);
    let mut send = |m: SyncMessage| -> Result<()> {
        bytes += size(&m);
        messages += 1;
        to_hub.send(m)?;
        Ok(())
    };
    for m in at_district.opening().await? {
        send(m)?;
    }
    while let Some(m) = district_inbox.recv().await {
        for answer in at_district.handle(m).await? {
            send(answer)?;
        }
        if at_district.in_sync() {
            break;
        }
    }
    drop(to_hub);
    let (hub_bytes, hub_messages, hub_time) = hub.await??;
    Ok((bytes + hub_bytes, messages + hub_messages, hub_time))
}

/// The `i`-th sale of the brief's workload: 1 to 3 units, one in five online, one
/// in four to a civil servant (ASN). Shared by every benchmark that records sales.
pub fn sale_kind(i: usize, unit_price: Option<i64>) -> MovementKind {
    MovementKind::Sale {
        quantity: 1 + (i % 3) as i64,
        unit_price,
        channel: if i.is_multiple_of(5) {
            Channel::Online
        } else {
            Channel::Store
        },
        buyer: if i.is_multiple_of(4) {
            Buyer::Asn
        } else {
            Buyer::Public
        },
        order: None,
        basket: None,
    }
}

fn sale(i: usize) -> MovementRequest {
    MovementRequest {
        request_id: Some(format!("s{i}")),
        sku: SKUS[(i * 7) % SKUS.len()].to_string(),
        kind: sale_kind(i, None),
    }
}

/// One catch-up of `sales` sales, in a fresh pair of stores under `dir`.
pub async fn run(dir: &Path, sales: usize) -> Result<CatchUp> {
    let hub = open(dir, "kupang")?;
    let ttu = open(dir, "ttu")?;
    let hub_id = NodeId::parse("kupang")?;
    let ttu_id = NodeId::parse("ttu")?;
    let ledger = ttu
        .engine
        .open_period()
        .context("the district has an open ledger period")?;
    let mut at_hub = Session::new(hub.engine.clone(), hub.book.clone(), ttu_id.clone());
    let mut at_ttu = Session::new(ttu.engine.clone(), ttu.book.clone(), hub_id.clone());
    exchange(&mut at_hub, &mut at_ttu)
        .await
        .context("first sync")?;

    // Stock for every sale, synced; then the link goes down.
    for sku in SKUS {
        let receipt = MovementRequest {
            request_id: None,
            sku: sku.into(),
            kind: MovementKind::Receipt {
                quantity: 1_000_000,
                unit_cost: 1,
                producer: None,
                over_budget: None,
            },
        };
        ttu.engine.record(receipt).await?;
    }
    let mut at_hub = Session::new(hub.engine.clone(), hub.book.clone(), ttu_id.clone());
    let mut at_ttu = Session::new(ttu.engine.clone(), ttu.book.clone(), hub_id.clone());
    exchange(&mut at_hub, &mut at_ttu).await?;
    let before = ttu.engine.heads(&ledger).context("ledger")?;

    let tenth = (sales / 10).max(1);
    let (mut first_write, mut last_write) = (Duration::ZERO, Duration::ZERO);
    for i in 0..sales {
        let started = Instant::now();
        ttu.engine.record(sale(i)).await?;
        if i < tenth {
            first_write += started.elapsed();
        } else if i >= sales - tenth {
            last_write += started.elapsed();
        }
    }

    // References, from the district's document.
    let started = Instant::now();
    let bundles = ttu.engine.bundles_after(&ledger, &before, usize::MAX)?;
    let bundling = started.elapsed();
    let mut reference = Automerge::new();
    let changes = ttu.engine.changes_after(&ledger, &before)?;
    let save_after_bytes: u64 = changes.iter().map(|c| c.raw_bytes().len() as u64).sum();
    let one_by_one_bytes: u64 = changes
        .iter()
        .map(|c| {
            mart_proto::v1::SyncMessage {
                body: Some(mart_proto::v1::sync_message::Body::Bundle(
                    mart_proto::v1::Bundle {
                        doc_id: ledger.to_string(),
                        data: c.raw_bytes().to_vec(),
                        changes: 1,
                        seq: 0,
                    },
                )),
            }
            .encoded_len() as u64
        })
        .sum();
    drop(bundles);
    for b in hub.engine.bundles_after(&ledger, &[], usize::MAX)? {
        reference.load_incremental(&b.data)?;
    }
    let started = Instant::now();
    reference.apply_changes(changes)?;
    let raw_apply = started.elapsed();
    drop(reference);

    // Reconnect: new sessions, as after a cut, each side on its own task.
    let at_hub = Session::new(hub.engine.clone(), hub.book.clone(), ttu_id.clone());
    let at_ttu = Session::new(ttu.engine.clone(), ttu.book.clone(), hub_id);
    let peak_reset = crate::memory::reset_peak();
    let rss_before = crate::memory::rss();
    let started = Instant::now();
    let (wire_bytes, messages, hub_apply) = exchange_concurrently(at_hub, at_ttu).await?;
    let wall = started.elapsed();
    let peak_during = crate::memory::peak().filter(|_| peak_reset);
    anyhow::ensure!(
        hub.engine.heads(&ledger) == ttu.engine.heads(&ledger),
        "the hub did not catch up"
    );
    Ok(CatchUp {
        sales,
        first_write: first_write / tenth as u32,
        last_write: last_write / tenth as u32,
        wire_bytes,
        messages,
        wall,
        hub_apply,
        bundling,
        save_after_bytes,
        one_by_one_bytes,
        raw_apply,
        rss_before,
        peak_during,
    })
}
