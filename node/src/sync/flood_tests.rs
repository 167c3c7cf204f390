//! What one peer can make a node remember through a session: the limits of
//! `limits.rs` as the session applies them (a claim that cannot exist is refused and
//! the session goes on; a cap passed ends it with RESOURCE_EXHAUSTED), and the peer
//! book's writes (one key per document, nothing for documents not held).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use automerge::ChangeHash;
use mart_proto::tonic::Code;
use mart_proto::v1::{sync_message::Body, SyncMessage};

use super::limits::{MAX_DOCS_PER_SESSION, MAX_HEADS_PER_DOC};
use super::testkit::{engine, node, pump, receipt};
use super::{wire, PeerBook, Session, PROTOCOLS};
use crate::domain::doc_id::DocId;
use crate::domain::period::PeriodId;
use crate::engine::now_ms;
use crate::store::{Backend, Batch, BatchOp, KeyValue, MemoryBackend, StoreError};
use tokio_util::sync::CancellationToken;

const DAY: i64 = 86_400_000;

fn random_heads(n: usize) -> Vec<ChangeHash> {
    (0..n).map(|_| ChangeHash(rand::random())).collect()
}

fn ledger(period: &str) -> DocId {
    DocId::parse(&format!("ledger/ttu/{period}")).unwrap()
}

fn this_month() -> DocId {
    DocId::Ledger(node("ttu"), PeriodId::of(now_ms()))
}

/// The hub, with a session for ttu that has said hello (its clock at `clock_ms`).
async fn hub_session_at(clock_ms: i64) -> (Arc<crate::engine::Engine>, Arc<PeerBook>, Session) {
    let (hub, book) = engine("kupang");
    let mut session = Session::new(hub.clone(), book.clone(), node("ttu"));
    // Live in the peer book, as a transport makes it: what the peer claims shows.
    session.attach(book.open_session(&node("ttu"), CancellationToken::new()));
    session
        .handle(wire::hello("ttu", PROTOCOLS, clock_ms))
        .await
        .unwrap();
    (hub, book, session)
}

async fn hub_session() -> (Arc<crate::engine::Engine>, Arc<PeerBook>, Session) {
    hub_session_at(now_ms()).await
}

fn refusal(answer: &[SyncMessage]) -> Option<(i32, String)> {
    match answer {
        [SyncMessage {
            body: Some(Body::Refused(r)),
        }] => Some((r.code, r.message.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn too_many_heads_end_the_session_and_nothing_is_kept() {
    let (_hub, book, mut session) = hub_session().await;
    let doc = this_month();
    let ok = wire::have(&doc, &random_heads(MAX_HEADS_PER_DOC), 0);
    session.handle(ok).await.unwrap();
    let flood = wire::have(&ledger("2026-01"), &random_heads(500), 0);
    let ended = session.handle(flood).await.unwrap_err();
    assert_eq!(ended.code(), Code::ResourceExhausted, "{ended}");
    let text = ended.to_string();
    assert!(text.contains("ttu") && text.contains("32 heads"), "{text}");
    assert_eq!(book.acked(&node("ttu"), &ledger("2026-01")), None);
}

#[tokio::test]
async fn periods_that_cannot_exist_are_refused_and_the_session_goes_on() {
    let (hub, book, mut session) = hub_session().await;
    let far_ahead = PeriodId::of(now_ms() + 70 * DAY).to_string();
    for period in ["1969-12", "1900-01", "2099-12", far_ahead.as_str()] {
        let doc = ledger(period);
        let answer = session
            .handle(wire::have(&doc, &random_heads(1), 0))
            .await
            .unwrap();
        let (code, message) = refusal(&answer).unwrap_or_else(|| panic!("{period}: {answer:?}"));
        assert_eq!(code, Code::InvalidArgument as i32, "{message}");
        assert!(
            message.contains("cannot exist") && message.contains(period),
            "{message}"
        );
        assert_eq!(book.acked(&node("ttu"), &doc), None);
        // A bundle for it: refused the same way, nothing stored.
        let answer = session
            .handle(wire::bundle(&doc, b"anything".to_vec(), 1, 1))
            .await
            .unwrap();
        let (code, message) = refusal(&answer).expect("a refusal");
        assert_eq!(code, Code::InvalidArgument as i32, "{message}");
        assert!(message.contains("nothing stored"), "{message}");
        assert!(hub.heads(&doc).is_none());
    }
    let listed = book.status(&hub);
    assert!(
        listed[0].docs.iter().all(|d| d
            .doc
            .ledger_period()
            .is_none_or(|(_, p)| p >= PeriodId::FIRST && p.start_ms() < now_ms() + 31 * DAY)),
        "{:?}",
        listed[0].docs
    );
    // The session goes on: ttu's real period is asked for.
    let answer = session
        .handle(wire::have(&this_month(), &random_heads(1), 3))
        .await
        .unwrap();
    assert!(
        matches!(&answer[..], [SyncMessage { body: Some(Body::Have(h)) }] if h.doc_id == this_month().to_string()),
        "{answer:?}"
    );
}

/// A district whose operator vouched for a clock ahead of the hub's (`--accept-clock`)
/// still syncs its periods: the peer's own clock, as it said, counts.
#[tokio::test]
async fn a_period_within_the_peers_own_clock_exists() {
    let ahead = now_ms() + 400 * DAY;
    let (_hub, _book, mut session) = hub_session_at(ahead).await;
    let doc = DocId::Ledger(node("ttu"), PeriodId::of(ahead));
    let answer = session
        .handle(wire::have(&doc, &random_heads(1), 1))
        .await
        .unwrap();
    assert!(refusal(&answer).is_none(), "{answer:?}");
}

#[tokio::test]
async fn a_session_may_name_256_documents_and_no_more() {
    let (_hub, _book, mut session) = hub_session().await;
    let periods = (1990..2100).flat_map(|y| (1..=12).map(move |m| format!("{y}-{m:02}")));
    for (i, period) in periods.take(MAX_DOCS_PER_SESSION + 1).enumerate() {
        let answer = session
            .handle(wire::have(&ledger(&period), &random_heads(1), 0))
            .await;
        if i < MAX_DOCS_PER_SESSION {
            answer.unwrap();
            // Naming one again costs nothing.
            session
                .handle(wire::have(&ledger("1990-01"), &random_heads(1), 0))
                .await
                .unwrap();
        } else {
            let ended = answer.unwrap_err();
            assert_eq!(ended.code(), Code::ResourceExhausted, "{ended}");
            assert!(ended.to_string().contains("256 documents"), "{ended}");
        }
    }
}

/// Heads claimed for a document this node does not hold are kept for the session
/// only; once the document arrives they are recorded.
#[tokio::test]
async fn heads_of_documents_not_held_are_not_persisted_until_they_arrive() {
    let (hub, book, mut session) = hub_session().await;
    let past = ledger("2001-01");
    session
        .handle(wire::have(&past, &random_heads(3), 9))
        .await
        .unwrap();
    assert_eq!(book.acked(&node("ttu"), &past), None);
    // The claim shows while the session lasts, and is forgotten by the next one.
    assert!(book.status(&hub)[0].docs.iter().any(|d| d.doc == past));
    drop(session);
    let _next = book.open_session(&node("ttu"), CancellationToken::new());
    assert!(book.status(&hub)[0].docs.iter().all(|d| d.doc != past));

    // A real district's documents: recorded once held.
    let (ttu, ttu_book) = engine("ttu");
    ttu.record(receipt("TTU-MKP-060", 5)).await.unwrap();
    let mut at_hub = Session::new(hub.clone(), book.clone(), node("ttu"));
    let mut at_ttu = Session::new(ttu.clone(), ttu_book, node("kupang"));
    let (a, b) = (
        at_hub.opening().await.unwrap(),
        at_ttu.opening().await.unwrap(),
    );
    pump(&mut at_hub, &mut at_ttu, a, b).await;
    let open = ttu.open_period().unwrap();
    assert_eq!(book.acked(&node("ttu"), &open), ttu.heads(&open));
}

/// A backend that counts the bytes every write puts.
#[derive(Default)]
struct Counting {
    inner: MemoryBackend,
    written: AtomicU64,
}

impl Backend for Counting {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.inner.scan_prefix(prefix)
    }
    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        let bytes: usize = batch
            .ops
            .iter()
            .map(|op| match op {
                BatchOp::Put(k, v) => k.len() + v.len(),
                BatchOp::Delete(k) => k.len(),
            })
            .sum();
        self.written.fetch_add(bytes as u64, Ordering::Relaxed);
        self.inner.write(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
    fn close(self: Box<Self>) -> Result<(), StoreError> {
        Box::new(self.inner).close()
    }
}

/// Recording one document's heads writes that document's key, whatever else the
/// peer book holds; the same heads again write nothing.
#[tokio::test]
async fn peer_book_writes_do_not_grow_with_the_record() {
    let backend = Arc::new(Counting::default());
    let book = PeerBook::load(backend.clone());
    let ttu = node("ttu");
    let heads = random_heads(MAX_HEADS_PER_DOC);
    let mut per_write = Vec::new();
    for year in 2001..2021 {
        for month in 1..=12 {
            let before = backend.written.load(Ordering::Relaxed);
            book.record_peer_heads(&ttu, &ledger(&format!("{year}-{month:02}")), &heads);
            per_write.push(backend.written.load(Ordering::Relaxed) - before);
        }
    }
    let most = *per_write.iter().max().unwrap();
    assert!(most < 2600, "one write put {most} bytes");
    let before = backend.written.load(Ordering::Relaxed);
    book.record_peer_heads(&ttu, &ledger("2001-01"), &heads);
    book.record_error(&ttu, "something");
    let since = backend.written.load(Ordering::Relaxed) - before;
    assert!(
        since < 300,
        "{since} bytes for an unchanged claim and an error"
    );
    // And it all loads again.
    let again = PeerBook::load(backend.clone());
    assert_eq!(again.acked(&ttu, &ledger("2020-12")), Some(heads));
}

/// A peer's refusal message is kept clipped: its words reach the log and the peer
/// book, not its megabyte.
#[tokio::test]
async fn a_refusal_from_the_peer_is_kept_short() {
    let (hub, book, mut session) = hub_session().await;
    let huge = "x".repeat(1 << 20);
    session
        .handle(wire::refused(
            &huge,
            Code::InvalidArgument as i32,
            huge.clone(),
        ))
        .await
        .unwrap();
    let error = book.status(&hub)[0].last_error.clone().unwrap();
    assert!(error.len() < 1000, "{} bytes", error.len());
}
