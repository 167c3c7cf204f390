//! Unit tests of paced sending (protocol 2): a backlog goes out in numbered bundles,
//! at most two unanswered, the first small; a document that matters goes before a
//! ledger backlog; a new session never sends what the last one had answered.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use mart_proto::v1::{sync_message::Body, SyncMessage};

use super::outgoing::{Sizer, WINDOW};
use super::session::Session;
use super::testkit::{engine, node, receipt, sale};
use super::wire;
use super::PeerBook;
use crate::domain::doc_id::DocId;
use crate::engine::Engine;

/// A district `ttu` with `sales` sales recorded while offline, and an empty hub.
async fn district_with_backlog(
    sales: usize,
) -> ((Arc<Engine>, Arc<PeerBook>), (Arc<Engine>, Arc<PeerBook>)) {
    let hub = engine("kupang");
    let ttu = engine("ttu");
    ttu.0
        .record(receipt("TTU-MKP-060", sales as i64))
        .await
        .unwrap();
    for _ in 0..sales {
        ttu.0.record(sale("TTU-MKP-060", 1)).await.unwrap();
    }
    (hub, ttu)
}

fn sessions(
    hub: &(Arc<Engine>, Arc<PeerBook>),
    ttu: &(Arc<Engine>, Arc<PeerBook>),
) -> (Session, Session) {
    (
        Session::new(hub.0.clone(), hub.1.clone(), node("ttu")),
        Session::new(ttu.0.clone(), ttu.1.clone(), node("kupang")),
    )
}

/// A bundle's document, number and change count, if `m` is a bundle.
fn bundle_of(m: &SyncMessage) -> Option<(String, u32, u32)> {
    match &m.body {
        Some(Body::Bundle(b)) => Some((b.doc_id.clone(), b.seq, b.changes)),
        _ => None,
    }
}

/// The bundle number `m` answers, if it answers one.
fn answer_of(m: &SyncMessage) -> Option<u32> {
    match &m.body {
        Some(Body::Have(h)) if h.answers != 0 => Some(h.answers),
        Some(Body::Refused(r)) if r.answers != 0 => Some(r.answers),
        _ => None,
    }
}

/// The link between the two sessions: messages in flight each way, delivered one
/// at a time, alternating sides; bundles from the district are counted against the
/// answers it has read.
#[derive(Default)]
struct Link {
    to_hub: VecDeque<SyncMessage>,
    to_ttu: VecDeque<SyncMessage>,
    /// Bundles the district sent: (document, number, changes).
    bundles: Vec<(String, u32, u32)>,
    unanswered: HashSet<u32>,
    /// Most bundles the district had sent and not yet seen answered.
    most_unanswered: usize,
}

impl Link {
    fn new(from_hub: Vec<SyncMessage>, from_ttu: Vec<SyncMessage>) -> Link {
        let mut link = Link {
            to_ttu: from_hub.into(),
            ..Link::default()
        };
        link.sent_by_ttu(from_ttu);
        link
    }

    fn sent_by_ttu(&mut self, sent: Vec<SyncMessage>) {
        for m in sent {
            if let Some(bundle) = bundle_of(&m) {
                self.unanswered.insert(bundle.1);
                self.bundles.push(bundle);
                self.most_unanswered = self.most_unanswered.max(self.unanswered.len());
            }
            self.to_hub.push_back(m);
        }
    }

    /// Delivers until both sides are quiet, or `stop` holds after a message
    /// reached the district.
    async fn run(
        &mut self,
        at_hub: &mut Session,
        at_ttu: &mut Session,
        mut stop: impl FnMut(&Link) -> bool,
    ) {
        while !self.to_hub.is_empty() || !self.to_ttu.is_empty() {
            if let Some(m) = self.to_hub.pop_front() {
                self.to_ttu.extend(at_hub.handle(m).await.unwrap());
            }
            if let Some(m) = self.to_ttu.pop_front() {
                if let Some(seq) = answer_of(&m) {
                    self.unanswered.remove(&seq);
                }
                let sent = at_ttu.handle(m).await.unwrap();
                self.sent_by_ttu(sent);
                if stop(self) {
                    return;
                }
            }
        }
    }

    fn ledger_bundles(&self, ledger: &DocId) -> Vec<(String, u32, u32)> {
        let name = ledger.to_string();
        self.bundles
            .iter()
            .filter(|b| b.0 == name)
            .cloned()
            .collect()
    }
}

/// Both sessions opened, their openings on the link.
async fn opened(
    hub: &(Arc<Engine>, Arc<PeerBook>),
    ttu: &(Arc<Engine>, Arc<PeerBook>),
) -> (Session, Session, Link) {
    let (mut at_hub, mut at_ttu) = sessions(hub, ttu);
    let (a, b) = (
        at_hub.opening().await.unwrap(),
        at_ttu.opening().await.unwrap(),
    );
    (at_hub, at_ttu, Link::new(a, b))
}

#[tokio::test]
async fn a_backlog_goes_in_numbered_bundles_at_most_two_unanswered() {
    let (hub, ttu) = district_with_backlog(3 * Sizer::FIRST).await;
    let (mut at_hub, mut at_ttu, mut link) = opened(&hub, &ttu).await;
    link.run(&mut at_hub, &mut at_ttu, |_| false).await;

    let ledger = ttu.0.open_period().unwrap();
    assert_eq!(hub.0.heads(&ledger), ttu.0.heads(&ledger));
    assert!(at_hub.in_sync() && at_ttu.in_sync());
    let ledger_bundles = link.ledger_bundles(&ledger);
    assert!(ledger_bundles.len() >= 2, "{:?}", link.bundles);
    assert!(
        ledger_bundles[0].2 as usize <= Sizer::FIRST,
        "the first bundle is small: {:?}",
        ledger_bundles[0]
    );
    let seqs: Vec<u32> = link.bundles.iter().map(|b| b.1).collect();
    assert_eq!(seqs, (1..=seqs.len() as u32).collect::<Vec<_>>());
    assert!(
        link.most_unanswered <= WINDOW,
        "{} bundles unanswered at once",
        link.most_unanswered
    );
    // Every change went exactly once.
    let sent: u64 = ledger_bundles.iter().map(|b| b.2 as u64).sum();
    assert_eq!(sent, ttu.0.change_count(&ledger));
}

#[tokio::test]
async fn a_catalog_change_goes_before_the_rest_of_a_ledger_backlog() {
    let (hub, ttu) = district_with_backlog(4 * Sizer::FIRST).await;
    let (mut at_hub, mut at_ttu, mut link) = opened(&hub, &ttu).await;
    let ledger = ttu.0.open_period().unwrap();
    // Until the district has sent its first ledger bundles.
    link.run(&mut at_hub, &mut at_ttu, |l| {
        !l.ledger_bundles(&ledger).is_empty()
    })
    .await;
    // A new product of the district's own catalog, while the ledger is pending.
    let mut product = ttu.0.product("TTU-MKP-060").unwrap().0;
    product.sku = "TTU-MKP-250".into();
    ttu.0.add_product(product).await.unwrap();
    let before = link.bundles.len();
    let pushed = at_ttu.push_all().await.unwrap();
    link.sent_by_ttu(pushed);
    link.run(&mut at_hub, &mut at_ttu, |l| l.bundles.len() > before)
        .await;
    assert_eq!(
        link.bundles[before].0,
        DocId::LocalCatalog(node("ttu")).to_string(),
        "the ledger went first: {:?}",
        &link.bundles[before..]
    );
    link.run(&mut at_hub, &mut at_ttu, |_| false).await;
    assert_eq!(hub.0.heads(&ledger), ttu.0.heads(&ledger));
    let catalog = DocId::LocalCatalog(node("ttu"));
    assert_eq!(hub.0.heads(&catalog), ttu.0.heads(&catalog));
}

#[tokio::test]
async fn a_new_session_never_sends_what_the_last_one_had_answered() {
    let (hub, ttu) = district_with_backlog(4 * Sizer::FIRST).await;
    let ledger = ttu.0.open_period().unwrap();
    let (mut at_hub, mut at_ttu, mut link) = opened(&hub, &ttu).await;
    // The link drops once the district has sent three ledger bundles: what the
    // hub had not applied is lost with the session.
    link.run(&mut at_hub, &mut at_ttu, |l| {
        l.ledger_bundles(&ledger).len() >= 3
    })
    .await;
    drop((at_hub, at_ttu, link));
    let held_at_hub = hub.0.change_count(&ledger);
    assert!(held_at_hub > 0 && held_at_hub < ttu.0.change_count(&ledger));

    let (mut at_hub, mut at_ttu, mut link) = opened(&hub, &ttu).await;
    link.run(&mut at_hub, &mut at_ttu, |_| false).await;
    let sent: u64 = link
        .ledger_bundles(&ledger)
        .iter()
        .map(|b| b.2 as u64)
        .sum();
    assert_eq!(sent, ttu.0.change_count(&ledger) - held_at_hub);
    assert_eq!(hub.0.heads(&ledger), ttu.0.heads(&ledger));
}

/// Bundles of `doc` among `messages`, with their numbers.
fn bundles_of(messages: &[SyncMessage], doc: &DocId) -> Vec<u32> {
    messages
        .iter()
        .filter_map(bundle_of)
        .filter(|b| b.0 == doc.to_string())
        .map(|b| b.1)
        .collect()
}

#[tokio::test]
async fn a_new_document_goes_with_its_have_and_once_refused_waits_to_be_asked() {
    let hub = engine("kupang");
    let ttu = engine("ttu");
    let (mut at_hub, mut at_ttu, mut link) = opened(&hub, &ttu).await;
    link.run(&mut at_hub, &mut at_ttu, |_| false).await;
    // A document the district never announced (it holds none): its changes go with
    // its `Have`, without waiting for the district to ask.
    hub.0.allocate_budget("ttu", 2026, 1_000_000).await.unwrap();
    let pushed = at_hub.push_all().await.unwrap();
    let sent = bundles_of(&pushed, &DocId::Budget);
    assert_eq!(sent.len(), 1, "{pushed:?}");
    // The district refuses it (as one holding it quarantined would): not sent again
    // at every push after that ...
    let refusal = wire::answering(
        wire::refused(
            &DocId::Budget.to_string(),
            mart_proto::tonic::Code::FailedPrecondition as i32,
            "quarantined here".into(),
        ),
        sent[0],
    );
    assert!(at_hub.handle(refusal).await.unwrap().is_empty());
    hub.0.allocate_budget("ttu", 2027, 5).await.unwrap();
    let again = at_hub.push_all().await.unwrap();
    assert!(bundles_of(&again, &DocId::Budget).is_empty(), "{again:?}");
    // ... until the district asks for it.
    let asked = at_hub
        .handle(wire::have(&DocId::Budget, &[], 0))
        .await
        .unwrap();
    assert_eq!(bundles_of(&asked, &DocId::Budget).len(), 1, "{asked:?}");
}
