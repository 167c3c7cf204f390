//! A legitimate author's change that breaks its document's schema, through real
//! sessions on in-memory stores: refused before anything is staged, the store holds
//! nothing of it, a fresh engine on the same store starts, and the document's sync
//! goes on with the author's next legitimate bundle.

use std::sync::Arc;

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, AutomergeError, ReadDoc};
use mart_proto::tonic::Code;
use mart_proto::v1::{sync_message::Body, SyncMessage};

use super::testkit::{engine, engine_on, node, pump, receipt, sale, sync_once};
use super::{wire, Session};
use crate::domain::actor::actor_for;
use crate::domain::doc_id::DocId;
use crate::domain::ledger;
use crate::domain::movement::{Buyer, Channel, Movement, MovementKind};
use crate::engine::{Engine, LedgerOptions, Trouble};
use crate::store::{Backend, MemoryBackend};

const SKU: &str = "TTU-MKP-060";

/// Every record key the store holds for `doc` (its chunks, snapshot and listing).
fn records_of(backend: &dyn Backend, doc: &DocId) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for prefix in [
        format!("d/{doc}/"),
        format!("snap/{doc}"),
        format!("i/{doc}"),
        format!("a/{doc}"),
    ] {
        keys.extend(
            backend
                .scan_prefix(prefix.as_bytes())
                .unwrap()
                .into_iter()
                .map(|(k, _)| k),
        );
    }
    keys
}

/// A bundle of one change by `ttu` (a fresh incarnation) made by `f` on top of what
/// `target` holds of `doc` (on an empty document when it holds none).
fn by_ttu(
    target: &Engine,
    doc: &DocId,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
) -> Vec<u8> {
    let mut forged = Automerge::new();
    for b in target.bundles_after(doc, &[], usize::MAX).unwrap() {
        forged.load_incremental(&b.data).unwrap();
    }
    let before = forged.get_heads();
    forged.set_actor(actor_for(&node("ttu"), 7));
    forged.transact(f).map_err(|f| f.error).unwrap();
    let new = forged.get_changes(&before);
    forged
        .bundle(new.iter().map(|c| c.hash()))
        .unwrap()
        .bytes()
        .to_vec()
}

fn refusal(answer: &[SyncMessage]) -> (i32, String) {
    match answer {
        [SyncMessage {
            body: Some(Body::Refused(r)),
        }] => (r.code, r.message.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_schema_breaking_bundle_from_its_owner_is_refused_before_staging() {
    let backend = MemoryBackend::new();
    let (hub, hub_book) = engine_on(
        "kupang",
        Arc::new(backend.clone()),
        LedgerOptions::default(),
    );
    let (ttu, ttu_book) = engine("ttu");
    ttu.record(receipt(SKU, 10)).await.unwrap();
    ttu.record(sale(SKU, 3)).await.unwrap();
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    let open = ttu.open_period().unwrap();
    let future = DocId::parse("ledger/ttu/2099-12").unwrap();

    let mut at_hub = Session::new(hub.clone(), hub_book.clone(), node("ttu"));
    let mut at_ttu = Session::new(ttu.clone(), ttu_book.clone(), node("kupang"));
    let (a, b) = (
        at_hub.opening().await.unwrap(),
        at_ttu.opening().await.unwrap(),
    );
    pump(&mut at_hub, &mut at_ttu, a, b).await;

    type Break = Box<dyn Fn(&Engine) -> (DocId, Vec<u8>)>;
    let breaks: Vec<(&str, Break)> = vec![
        (
            "a movement that is not movement JSON",
            Box::new(|hub: &Engine| {
                let doc = open_of(hub);
                let data = by_ttu(hub, &doc, |tx| {
                    let list = tx.get(automerge::ROOT, "movements")?.unwrap().1;
                    let n = tx.length(&list);
                    tx.insert(&list, n, "{\"not\": \"a movement\"}")?;
                    Ok(())
                });
                (doc, data)
            }),
        ),
        (
            "movements of the wrong type",
            Box::new(|hub: &Engine| {
                let doc = open_of(hub);
                let data = by_ttu(hub, &doc, |tx| tx.put(automerge::ROOT, "movements", 5_i64));
                (doc, data)
            }),
        ),
        // The three below were accepted while the hub followed a ledger movement by
        // movement: the view checked only what was appended, the store kept the
        // rest, and the next start quarantined the document (sync::fuzz_tests).
        (
            "an opening overwritten in place",
            Box::new(|hub: &Engine| {
                let doc = open_of(hub);
                let data = by_ttu(hub, &doc, |tx| tx.put(automerge::ROOT, "opening", "{}"));
                (doc, data)
            }),
        ),
        (
            "a receipt rewritten as a sale of more than the stock, under its own id",
            Box::new(|hub: &Engine| {
                let doc = open_of(hub);
                let data = by_ttu(hub, &doc, |tx| {
                    let list = tx.get(automerge::ROOT, "movements")?.unwrap().1;
                    let first = ledger::read_range(&*tx, "ledger", 0..=0).unwrap().remove(0);
                    let oversold = Movement {
                        kind: MovementKind::Sale {
                            quantity: 1_000,
                            unit_price: None,
                            channel: Channel::Store,
                            buyer: Buyer::Public,
                            order: None,
                            basket: None,
                        },
                        ..first
                    };
                    tx.put(&list, 0, oversold.to_json())
                });
                (doc, data)
            }),
        ),
        (
            "the receipt replaced by a smaller one under the sale",
            Box::new(|hub: &Engine| {
                let doc = open_of(hub);
                let data = by_ttu(hub, &doc, |tx| {
                    let list = tx.get(automerge::ROOT, "movements")?.unwrap().1;
                    let first = ledger::read_range(&*tx, "ledger", 0..=0).unwrap().remove(0);
                    tx.delete(&list, 0)?;
                    let smaller = Movement {
                        id: "forged".into(),
                        kind: MovementKind::Receipt {
                            quantity: 1,
                            unit_cost: 1000,
                            producer: None,
                            over_budget: None,
                        },
                        ..first
                    };
                    tx.insert(&list, 0, smaller.to_json())
                });
                (doc, data)
            }),
        ),
        (
            "a movement out of range inserted before the last one, under its id",
            Box::new(|hub: &Engine| {
                let doc = open_of(hub);
                let data = by_ttu(hub, &doc, |tx| {
                    let list = tx.get(automerge::ROOT, "movements")?.unwrap().1;
                    let n = tx.length(&list);
                    let last = ledger::read_range(&*tx, "ledger", n - 1..)
                        .unwrap()
                        .remove(0);
                    let far = Movement {
                        at_ms: i64::MAX,
                        ..last
                    };
                    tx.insert(&list, n - 1, far.to_json())
                });
                (doc, data)
            }),
        ),
        // A ledger only grows: these two derive well (a sale less, or none at all),
        // and were accepted, erasing recorded sales at the hub.
        (
            "a recorded sale removed",
            Box::new(|hub: &Engine| {
                let doc = open_of(hub);
                let data = by_ttu(hub, &doc, |tx| {
                    let list = tx.get(automerge::ROOT, "movements")?.unwrap().1;
                    let n = tx.length(&list);
                    tx.delete(&list, n - 1)
                });
                (doc, data)
            }),
        ),
        (
            "the movements replaced by an empty list",
            Box::new(|hub: &Engine| {
                let doc = open_of(hub);
                let data = by_ttu(hub, &doc, |tx| {
                    tx.put_object(automerge::ROOT, "movements", automerge::ObjType::List)?;
                    Ok(())
                });
                (doc, data)
            }),
        ),
        (
            "a far-future period with garbage balances",
            Box::new(|hub: &Engine| {
                let doc = DocId::parse("ledger/ttu/2099-12").unwrap();
                let mut data = Automerge::new().with_actor(actor_for(&node("ttu"), 7));
                data.transact(|tx| {
                    ledger::init(tx)?;
                    tx.put(automerge::ROOT, "opening", "garbage")
                })
                .map_err(|f| f.error)
                .unwrap();
                assert!(hub.heads(&doc).is_none());
                let all = data.get_changes(&[]);
                let bundle = data.bundle(all.iter().map(|c| c.hash())).unwrap();
                (doc, bundle.bytes().to_vec())
            }),
        ),
    ];
    for (what, make) in breaks {
        let (doc, data) = make(&hub);
        let heads_before = hub.heads(&doc);
        let records_before = records_of(&backend, &doc);
        let answer = at_hub.handle(wire::bundle(&doc, data, 1, 1)).await.unwrap();
        let (code, message) = refusal(&answer);
        assert_eq!(code, Code::InvalidArgument as i32, "{what}: {message}");
        assert!(message.contains("nothing stored"), "{what}: {message}");
        assert_eq!(
            hub.heads(&doc),
            heads_before,
            "{what}: memory as the store has it"
        );
        assert_eq!(
            records_of(&backend, &doc),
            records_before,
            "{what}: nothing staged"
        );
    }
    assert!(hub.heads(&future).is_none());
    hub.flush().unwrap();

    // The district's next legitimate change still goes through: sync did not halt.
    ttu.record(receipt(SKU, 5)).await.unwrap();
    let pushed = at_ttu.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, vec![], pushed).await;
    assert_eq!(hub.heads(&open), ttu.heads(&open));
    assert_eq!(hub.stock(Some("ttu"), Some(SKU)).unwrap()[0].quantity, 12);

    // A fresh engine on the same store starts and serves the same figures.
    drop((at_hub, at_ttu));
    hub.flush().unwrap();
    let (again, _) = engine_on(
        "kupang",
        Arc::new(backend.crash_and_reopen()),
        LedgerOptions::default(),
    );
    assert_eq!(again.heads(&open), ttu.heads(&open));
    assert!(again.heads(&future).is_none());
    assert_eq!(again.stock(Some("ttu"), Some(SKU)).unwrap()[0].quantity, 12);
}

/// The newest period of ttu's ledger the hub holds.
fn open_of(hub: &Engine) -> DocId {
    hub.documents()
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .filter(|id| id.ledger_period().is_some_and(|(n, _)| n.as_str() == "ttu"))
        .max()
        .unwrap()
}

/// Flips the last byte of every record of `doc` in `backend` (a rotten sector), and
/// makes it durable.
fn corrupt(backend: &MemoryBackend, doc: &DocId) {
    let mut batch = crate::store::Batch::default();
    let records = [format!("d/{doc}/"), format!("snap/{doc}")]
        .into_iter()
        .flat_map(|prefix| backend.scan_prefix(prefix.as_bytes()).unwrap());
    for (key, mut value) in records {
        *value.last_mut().unwrap() ^= 0xff;
        batch.put(key, value);
    }
    backend.write(batch).unwrap();
    backend.flush().unwrap();
}

fn trouble_of(engine: &Engine, doc: &DocId) -> Option<Trouble> {
    engine
        .documents()
        .unwrap()
        .into_iter()
        .find(|d| &d.id == doc)
        .and_then(|d| d.trouble)
}

#[tokio::test]
async fn a_document_that_cannot_load_is_quarantined_and_the_node_serves_the_rest() {
    let hub_store = MemoryBackend::new();
    let (hub, hub_book) = engine_on(
        "kupang",
        Arc::new(hub_store.clone()),
        LedgerOptions::default(),
    );
    let ttu_store = MemoryBackend::new();
    let (ttu, ttu_book) = engine_on("ttu", Arc::new(ttu_store.clone()), LedgerOptions::default());
    ttu.record(receipt(SKU, 10)).await.unwrap();
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    let ledger = ttu.open_period().unwrap();
    hub.flush().unwrap();
    drop(hub);

    // The hub's copy of ttu's ledger rots on disk: the hub starts all the same.
    corrupt(&hub_store, &ledger);
    let (hub, hub_book) = engine_on(
        "kupang",
        Arc::new(hub_store.crash_and_reopen()),
        LedgerOptions::default(),
    );
    match trouble_of(&hub, &ledger) {
        Some(Trouble::Quarantined(reason)) => {
            assert!(reason.contains("checksum"), "{reason}")
        }
        other => panic!("expected {ledger} quarantined, got {other:?}"),
    }
    let e = hub.stock(Some("ttu"), Some(SKU)).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert!(e.to_string().contains("quarantined"), "{e}");

    // Its bundles are refused with the reason; every other document still syncs.
    let mut at_hub = Session::new(hub.clone(), hub_book.clone(), node("ttu"));
    let data = ttu.bundles_after(&ledger, &[], usize::MAX).unwrap()[0]
        .data
        .clone();
    at_hub.opening().await.unwrap();
    at_hub
        .handle(wire::hello(
            "ttu",
            super::PROTOCOLS,
            crate::engine::now_ms(),
        ))
        .await
        .unwrap();
    let (code, message) = refusal(
        &at_hub
            .handle(wire::bundle(&ledger, data, 1, 1))
            .await
            .unwrap(),
    );
    assert_eq!(code, Code::FailedPrecondition as i32, "{message}");
    assert!(message.contains("quarantined"), "{message}");
    drop(at_hub);
    hub.allocate_budget("ttu", 2026, 5_000_000).await.unwrap();
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    assert_eq!(
        ttu.budgets(None, 2026).unwrap()[0].allocated,
        Some(5_000_000)
    );
    assert!(matches!(
        trouble_of(&hub, &ledger),
        Some(Trouble::Quarantined(_))
    ));

    // Dropped at the hub (safe: ttu holds its newest period), it comes back whole.
    let dropped = hub.drop_document(&ledger, false).unwrap();
    assert!(
        dropped.was_quarantined && dropped.records > 0,
        "{dropped:?}"
    );
    assert_eq!(trouble_of(&hub, &ledger), Some(Trouble::Refetching));
    assert!(
        !hub_store.scan_prefix(b"q/").unwrap().is_empty(),
        "the records were moved aside, not deleted"
    );
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    assert_eq!(trouble_of(&hub, &ledger), None);
    assert_eq!(hub.heads(&ledger), ttu.heads(&ledger));
    assert_eq!(hub.stock(Some("ttu"), Some(SKU)).unwrap()[0].quantity, 10);

    // A district whose own open period rots starts too; a sale gets a clear error,
    // and dropping its own ledger is refused without --force.
    ttu.flush().unwrap();
    drop(ttu);
    corrupt(&ttu_store, &ledger);
    let (ttu, _) = engine_on(
        "ttu",
        Arc::new(ttu_store.crash_and_reopen()),
        LedgerOptions::default(),
    );
    let e = ttu.record(receipt(SKU, 1)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert!(e.to_string().contains("quarantined"), "{e}");
    let e = ttu.drop_document(&ledger, false).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert!(e.to_string().contains("--force"), "{e}");
    assert!(ttu.is_quarantined(&ledger));
}

#[tokio::test]
async fn a_document_of_a_newer_schema_is_refused_and_quarantined_not_fatal() {
    let backend = MemoryBackend::new();
    let (hub, hub_book) = engine_on(
        "kupang",
        Arc::new(backend.clone()),
        LedgerOptions::default(),
    );
    let (ttu, ttu_book) = engine("ttu");
    ttu.record(receipt(SKU, 10)).await.unwrap();
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    let ledger = ttu.open_period().unwrap();

    // From a peer: a change that marks ttu's ledger as written by schema 2 is refused.
    let mut at_hub = Session::new(hub.clone(), hub_book.clone(), node("ttu"));
    at_hub.opening().await.unwrap();
    at_hub
        .handle(wire::hello(
            "ttu",
            super::PROTOCOLS,
            crate::engine::now_ms(),
        ))
        .await
        .unwrap();
    let data = by_ttu(&hub, &ledger, |tx| tx.put(automerge::ROOT, "schema", 2_i64));
    let (code, message) = refusal(
        &at_hub
            .handle(wire::bundle(&ledger, data, 1, 1))
            .await
            .unwrap(),
    );
    assert_eq!(code, Code::InvalidArgument as i32, "{message}");
    assert!(message.contains("schema version 2"), "{message}");
    drop(at_hub);

    // On disk (a newer build wrote it, then the node was downgraded): quarantined.
    let mut newer = Automerge::new().with_actor(actor_for(&node("kupang"), 5));
    newer
        .transact(|tx| {
            crate::domain::budget::JOURNAL.init(tx)?;
            tx.put(automerge::ROOT, "schema", 2_i64)
        })
        .map_err(|f| f.error)
        .unwrap();
    hub.flush().unwrap();
    drop(hub);
    crate::store::DocStore::new(&backend)
        .compact("budget/province", &newer.save(), 0)
        .unwrap();
    backend.flush().unwrap();
    let (hub, _) = engine_on(
        "kupang",
        Arc::new(backend.crash_and_reopen()),
        LedgerOptions::default(),
    );
    match trouble_of(&hub, &DocId::Budget) {
        Some(Trouble::Quarantined(reason)) => {
            assert!(reason.contains("schema version 2"), "{reason}")
        }
        other => panic!("expected budget/province quarantined, got {other:?}"),
    }
    let e = hub.allocate_budget("ttu", 2026, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert_eq!(hub.stock(Some("ttu"), Some(SKU)).unwrap()[0].quantity, 10);
}

#[tokio::test]
async fn a_dropped_document_is_asked_for_again_in_the_open_session_and_unsafe_drops_need_force() {
    let (hub, hub_book) = engine("kupang");
    // TTU's clock moves 40 days ahead below, as an operator who vouches for it would
    // let it (`--accept-clock`).
    let (ttu, ttu_book) = engine_on(
        "ttu",
        Arc::new(crate::store::MemoryBackend::new()),
        LedgerOptions {
            accept_clock: true,
            ..LedgerOptions::default()
        },
    );
    let t1 = crate::engine::now_ms();
    ttu.record_at(receipt(SKU, 10), t1).await.unwrap();
    let first = ttu.open_period().unwrap();
    ttu.record_at(receipt(SKU, 1), t1 + 40 * 24 * 3600 * 1000)
        .await
        .unwrap();
    let mut at_hub = Session::new(hub.clone(), hub_book, node("ttu"));
    let mut at_ttu = Session::new(ttu.clone(), ttu_book, node("kupang"));
    let (a, b) = (
        at_hub.opening().await.unwrap(),
        at_ttu.opening().await.unwrap(),
    );
    pump(&mut at_hub, &mut at_ttu, a, b).await;
    let provincial = hub.heads(&DocId::ProvincialCatalog);
    hub.allocate_budget("ttu", 2026, 1_000).await.unwrap();
    let pushed = at_hub.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, pushed, vec![]).await;
    assert_eq!(ttu.heads(&DocId::Budget), hub.heads(&DocId::Budget));

    // A district drops a hub document: safe, and the same session brings it back.
    let dropped = ttu.drop_document(&DocId::Budget, false).unwrap();
    assert!(!dropped.was_quarantined && dropped.records > 0);
    assert!(ttu.heads(&DocId::Budget).is_none());
    assert_eq!(trouble_of(&ttu, &DocId::Budget), Some(Trouble::Refetching));
    let asked = at_ttu.announce().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, vec![], asked).await;
    assert_eq!(ttu.heads(&DocId::Budget), hub.heads(&DocId::Budget));
    assert_eq!(trouble_of(&ttu, &DocId::Budget), None);
    assert_eq!(ttu.budgets(None, 2026).unwrap()[0].allocated, Some(1_000));

    // Unsafe without --force: a node's own documents; at the hub, a district's
    // period older than its newest (the district archived it and never resends it).
    for (engine, doc) in [
        (&hub, DocId::ProvincialCatalog),
        (&ttu, ttu.open_period().unwrap()),
        (&ttu, DocId::LocalCatalog(node("ttu"))),
    ] {
        let e = engine.drop_document(&doc, false).unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{doc}: {e}");
        assert!(e.to_string().contains("own document"), "{doc}: {e}");
    }
    assert_eq!(hub.heads(&DocId::ProvincialCatalog), provincial);
    let e = hub.drop_document(&first, false).unwrap_err();
    assert!(e.to_string().contains("not the newest period"), "{e}");
    assert!(hub.drop_document(&first, true).is_ok());
}
