//! Test support for the sync layer: in-memory nodes and a pump that delivers
//! messages between two sessions until both are quiet. Tests only.

use std::sync::Arc;

use mart_proto::v1::SyncMessage;

use super::{PeerBook, Session};
use crate::domain::doc_id::NodeId;
use crate::domain::movement::{Buyer, Channel, MovementKind};
use crate::engine::{Engine, Identity, LedgerOptions, MovementRequest};
use crate::store::{Backend, MemoryBackend};

pub fn node(id: &str) -> NodeId {
    NodeId::parse(id).unwrap()
}

/// A node `id` (hub `kupang`) on a fresh in-memory store.
pub fn engine(id: &str) -> (Arc<Engine>, Arc<PeerBook>) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    engine_on(id, backend, LedgerOptions::default())
}

/// A node `id` (hub `kupang`) on `backend`.
pub fn engine_on(
    id: &str,
    backend: Arc<dyn Backend>,
    options: LedgerOptions,
) -> (Arc<Engine>, Arc<PeerBook>) {
    let identity = Identity {
        node: node(id),
        hub: node("kupang"),
    };
    let engine = Arc::new(Engine::open_with(backend.clone(), identity, options).unwrap());
    (engine, Arc::new(PeerBook::load(backend)))
}

/// Delivers messages both ways until neither side has anything to say:
/// `to_b` are messages `a` sent, `to_a` messages `b` sent.
pub async fn pump(
    a: &mut Session,
    b: &mut Session,
    mut to_b: Vec<SyncMessage>,
    mut to_a: Vec<SyncMessage>,
) {
    while !to_a.is_empty() || !to_b.is_empty() {
        let mut next_a = Vec::new();
        for m in to_b.drain(..) {
            next_a.extend(b.handle(m).await.unwrap());
        }
        let mut next_b = Vec::new();
        for m in to_a.drain(..) {
            next_b.extend(a.handle(m).await.unwrap());
        }
        to_a = next_a;
        to_b = next_b;
    }
}

/// One session between a district and the hub, run until both are quiet.
pub async fn sync_once(
    hub: (&Arc<Engine>, &Arc<PeerBook>),
    district: (&Arc<Engine>, &Arc<PeerBook>),
) {
    let district_id = district.0.identity().node.clone();
    let mut at_hub = Session::new(hub.0.clone(), hub.1.clone(), district_id);
    let mut at_district = Session::new(district.0.clone(), district.1.clone(), node("kupang"));
    let (a, b) = (
        at_hub.opening().await.unwrap(),
        at_district.opening().await.unwrap(),
    );
    pump(&mut at_hub, &mut at_district, a, b).await;
    let (a, b) = (
        at_hub.push_all().await.unwrap(),
        at_district.push_all().await.unwrap(),
    );
    pump(&mut at_hub, &mut at_district, a, b).await;
}

pub fn sale(sku: &str, qty: i64) -> MovementRequest {
    MovementRequest {
        request_id: None,
        sku: sku.into(),
        kind: MovementKind::Sale {
            quantity: qty,
            unit_price: None,
            channel: Channel::Store,
            buyer: Buyer::Public,
            order: None,
            basket: None,
        },
    }
}

pub fn receipt(sku: &str, qty: i64) -> MovementRequest {
    MovementRequest {
        request_id: None,
        sku: sku.into(),
        kind: MovementKind::Receipt {
            quantity: qty,
            unit_cost: 1000,
            producer: None,
            over_budget: None,
        },
    }
}
