//! Unit tests of the sync session state machine: two sessions driven against each
//! other without sockets (convergence, hub documents, protocol versions, clocks,
//! forged changes).

use super::session::*;
use super::wire;
use crate::domain::actor::actor_for;
use crate::domain::doc_id::{DocId, NodeId};
use crate::domain::ledger;
use crate::domain::movement::{Buyer, Movement, MovementKind};
use crate::engine::MovementRequest;
use crate::engine::{now_ms, Engine};
use crate::sync::testkit::{engine, node, pump, receipt, sale};
use automerge::{transaction::Transactable, Automerge, ReadDoc};
use mart_proto::tonic::Code;
use mart_proto::v1::{sync_message::Body, SyncMessage};

#[tokio::test]
async fn district_and_hub_converge_both_ways() {
    let (hub, hub_book) = engine("kupang");
    let (ttu, ttu_book) = engine("ttu");
    ttu.record(receipt("TTU-MKP-060", 50)).await.unwrap();
    for _ in 0..20 {
        ttu.record(sale("TTU-MKP-060", 2)).await.unwrap();
    }
    let mut at_hub = Session::new(hub.clone(), hub_book, node("ttu"));
    let mut at_ttu = Session::new(ttu.clone(), ttu_book, node("kupang"));
    let (from_hub, from_ttu) = (
        at_hub.opening().await.unwrap(),
        at_ttu.opening().await.unwrap(),
    );
    pump(&mut at_hub, &mut at_ttu, from_hub, from_ttu).await;

    let ledger = ttu.open_period().unwrap();
    assert_eq!(hub.heads(&ledger), ttu.heads(&ledger));
    assert_eq!(
        hub.heads(&DocId::LocalCatalog(node("ttu"))),
        ttu.heads(&DocId::LocalCatalog(node("ttu")))
    );
    assert!(at_hub.in_sync() && at_ttu.in_sync());

    // A catalog edit at the hub reaches the district on the next push.
    let mut product = ttu.product("TTU-MKP-060").unwrap().0;
    product.sku = "TTU-MKP-250".into();
    hub.add_product(product).await.unwrap();
    let pushed = at_hub.push_all().await.unwrap();
    assert!(!pushed.is_empty());
    pump(&mut at_hub, &mut at_ttu, pushed, vec![]).await;
    assert!(ttu.product("TTU-MKP-250").is_ok());
    assert_eq!(
        hub.heads(&DocId::ProvincialCatalog),
        ttu.heads(&DocId::ProvincialCatalog)
    );
    // Nothing is sent twice: a second push has nothing to say.
    assert!(at_ttu.push_all().await.unwrap().is_empty());
}

/// The hub's documents for a district (orders, budgets) and its promotion of a
/// district product travel through the same sessions, including documents that did
/// not exist when the session opened.
#[tokio::test]
async fn orders_budgets_and_promotions_travel_through_open_sessions() {
    let (hub, hub_book) = engine("kupang");
    let (ttu, ttu_book) = engine("ttu");
    let mut at_hub = Session::new(hub.clone(), hub_book, node("ttu"));
    let mut at_ttu = Session::new(ttu.clone(), ttu_book, node("kupang"));
    let (from_hub, from_ttu) = (
        at_hub.opening().await.unwrap(),
        at_ttu.opening().await.unwrap(),
    );
    pump(&mut at_hub, &mut at_ttu, from_hub, from_ttu).await;

    // The outlet grants quota; the hub learns it.
    ttu.record(receipt("TTU-MKP-060", 10)).await.unwrap();
    ttu.change_quota(None, "TTU-MKP-060", 4, true)
        .await
        .unwrap();
    let pushed = at_ttu.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, vec![], pushed).await;

    // The hub sells online within the quota and refuses beyond it.
    let order = hub
        .place_order(Some("web-1".into()), "ttu", "TTU-MKP-060", 3, Buyer::Asn)
        .await
        .unwrap();
    let refused = hub
        .place_order(None, "ttu", "TTU-MKP-060", 2, Buyer::Public)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused}");
    assert!(refused.to_string().contains("1 available"), "{refused}");
    hub.allocate_budget("ttu", 2026, 1_000_000).await.unwrap();

    // Both new hub documents reach the district on the next push.
    let pushed = at_hub.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, pushed, vec![]).await;
    let orders = ttu.orders(None, None).unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].order.id, order.order.id);
    assert_eq!(
        ttu.budgets(None, 2026).unwrap()[0].allocated,
        Some(1_000_000)
    );
    // Sellable stock excludes the 4 reserved for the hub.
    assert!(ttu.record(sale("TTU-MKP-060", 7)).await.is_err());
    ttu.record(sale("TTU-MKP-060", 6)).await.unwrap();

    // The outlet fulfils; the hub sees it and its view of quota follows.
    ttu.fulfil_order(None, "web-1").await.unwrap();
    ttu.change_quota(None, "TTU-MKP-060", 1, false)
        .await
        .unwrap();
    let pushed = at_ttu.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, vec![], pushed).await;
    let at_hub_orders = hub.orders(Some("ttu"), Some("fulfilled")).unwrap();
    assert_eq!(at_hub_orders.len(), 1);
    // The hub answered the return request with a release of the unsold unit.
    let pushed = at_hub.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, pushed, vec![]).await;
    let quota = ttu.quota(None).unwrap();
    assert_eq!(
        (
            quota[0].granted,
            quota[0].fulfilled,
            quota[0].released,
            quota[0].reserved
        ),
        (4, 3, 1, 0)
    );
    assert_eq!(ttu.stock(None, Some("TTU-MKP-060")).unwrap()[0].quantity, 1);

    // A district product promoted at the hub comes back as a provincial one.
    let mut local = ttu.product("TTU-MKP-060").unwrap().0;
    local.sku = "TTU-MDU-250".into();
    ttu.add_product(local).await.unwrap();
    let pushed = at_ttu.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, vec![], pushed).await;
    hub.promote_product("TTU-MDU-250", "ttu").await.unwrap();
    let pushed = at_hub.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, pushed, vec![]).await;
    assert_eq!(
        ttu.product("TTU-MDU-250").unwrap().1,
        DocId::ProvincialCatalog
    );
    // Only the hub edits provincial products.
    let provincial = ttu.product("TTU-MKP-120").unwrap().0;
    let refused = ttu.update_product(provincial).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused}");

    // A write-off below what is reserved asks the hub for the difference back.
    ttu.record(receipt("TTU-MKP-120", 5)).await.unwrap();
    ttu.change_quota(None, "TTU-MKP-120", 5, true)
        .await
        .unwrap();
    let damage = MovementRequest {
        request_id: Some("pecah-1".into()),
        sku: "TTU-MKP-120".into(),
        kind: MovementKind::Adjustment {
            delta: -3,
            reason: crate::domain::movement::AdjustReason::Damage,
            note: String::new(),
        },
    };
    ttu.record(damage).await.unwrap();
    let pushed = at_ttu.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, vec![], pushed).await;
    let pushed = at_hub.push_all().await.unwrap();
    pump(&mut at_hub, &mut at_ttu, pushed, vec![]).await;
    let quota = ttu.quota(None).unwrap();
    let line = quota.iter().find(|q| q.sku == "TTU-MKP-120").unwrap();
    assert_eq!((line.released, line.reserved), (3, 2), "{line:?}");
    let at_hub = hub.quota(Some("ttu")).unwrap();
    let line = at_hub.iter().find(|q| q.sku == "TTU-MKP-120").unwrap();
    assert_eq!(line.available, 2, "{line:?}");
}

fn hello_of(node: &str, protocol: u32, min: u32, max: u32) -> SyncMessage {
    SyncMessage {
        body: Some(Body::Hello(mart_proto::v1::Hello {
            node_id: node.into(),
            protocol,
            protocol_min: min,
            protocol_max: max,
            ..Default::default()
        })),
    }
}

/// A peer that speaks only protocol 3 is refused with FAILED_PRECONDITION naming
/// both ranges, and its peer state says so.
#[tokio::test]
async fn a_peer_with_no_common_protocol_is_refused_naming_both_ranges() {
    let (hub, book) = engine("kupang");
    let mut at_hub = Session::new(hub.clone(), book.clone(), node("ttu"));
    let refused = at_hub.handle(hello_of("ttu", 3, 3, 3)).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused}");
    let text = refused.to_string();
    assert!(
        text.contains("ttu speaks protocol 3") && text.contains("kupang speaks protocols 1..=2"),
        "{text}"
    );
    assert_eq!(at_hub.protocol(), None);
    // A district checks the hub's range the same way.
    let (ttu, ttu_book) = engine("ttu");
    let mut at_ttu = Session::new(ttu, ttu_book, node("kupang"));
    let refused = at_ttu
        .handle(hello_of("kupang", 3, 3, 4))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("kupang speaks protocols 3..=4"),
        "{refused}"
    );
}

/// A peer of this build (1..=2) gets protocol 2 (paced bundles); an older one
/// (1..=1, or `protocol = 1` alone) gets protocol 1, every bundle at once, and
/// syncs all the same.
#[tokio::test]
async fn a_peer_of_this_build_gets_protocol_2_and_an_old_one_protocol_1() {
    for (protocol, min, max, speaks) in [(1, 1, 2, 2), (1, 1, 1, 1), (1, 0, 0, 1)] {
        let (hub, book) = engine("kupang");
        let (ttu, ttu_book) = engine("ttu");
        let mut at_hub = Session::new(hub.clone(), book.clone(), node("ttu"));
        at_hub.attach(book.open_session(&node("ttu"), Default::default()));
        at_hub
            .handle(hello_of("ttu", protocol, min, max))
            .await
            .unwrap();
        assert_eq!(at_hub.protocol(), Some(speaks), "{protocol} {min}..={max}");
        let listed = book.status(&hub);
        assert_eq!(listed[0].protocol, Some(speaks));
        // And the session goes on: the hub's opening reaches a district.
        let mut at_ttu = Session::new(ttu.clone(), ttu_book, node("kupang"));
        let from_hub = at_hub.opening().await.unwrap();
        let from_ttu = at_ttu.opening().await.unwrap();
        pump(&mut at_hub, &mut at_ttu, from_hub, from_ttu[1..].to_vec()).await;
        assert!(at_ttu.in_sync());
    }
}

/// The hub learns each district's clock offset from its `Hello` and `Announced`;
/// beyond 5 minutes it is marked wrong.
#[tokio::test]
async fn the_hub_learns_each_districts_clock_offset() {
    let (hub, book) = engine("kupang");
    let mut at_hub = Session::new(hub.clone(), book.clone(), node("ttu"));
    at_hub
        .handle(wire::hello("ttu", super::PROTOCOLS, now_ms()))
        .await
        .unwrap();
    let clock = book.clock(&node("ttu")).expect("an offset");
    assert!(!clock.wrong(), "{clock:?}");
    let an_hour_ahead = now_ms() + 3_600_000;
    at_hub.handle(wire::announced(an_hour_ahead)).await.unwrap();
    let clock = book.clock(&node("ttu")).expect("an offset");
    assert!(clock.wrong() && clock.offset_ms > 3_500_000, "{clock:?}");
}

/// Issue 10, item 5: a district whose clock jumps to 2099 books into the open
/// period (it seals nothing and opens no period years away), says why in its
/// status, and goes on in the right period once the clock is back. A month ahead
/// of the hub's clock, it waits for the hub's time to turn the month.
#[tokio::test]
async fn a_clock_far_ahead_of_the_evidence_opens_no_period() {
    const DAY: i64 = 86_400_000;
    let (hub, hub_book) = engine("kupang");
    let (ttu, ttu_book) = engine("ttu");
    ttu.record(receipt("TTU-MKP-060", 20)).await.unwrap();
    let mut at_hub = Session::new(hub.clone(), hub_book, node("ttu"));
    let mut at_ttu = Session::new(ttu.clone(), ttu_book, node("kupang"));
    let (a, b) = (
        at_hub.opening().await.unwrap(),
        at_ttu.opening().await.unwrap(),
    );
    pump(&mut at_hub, &mut at_ttu, a, b).await;
    let open = ttu.open_period().unwrap();

    let in_2099 = crate::domain::period::PeriodId::parse("2099-12")
        .unwrap()
        .start_ms()
        + 6 * DAY;
    let ack = ttu
        .record_at(sale("TTU-MKP-060", 1), in_2099)
        .await
        .unwrap();
    assert_eq!(ack.document, open, "booked into the open period");
    assert_eq!(ttu.open_period(), Some(open.clone()));
    let warning = ttu.status().clock_warning.expect("a clock warning");
    assert!(warning.contains("--accept-clock"), "{warning}");
    // The clock is back: the same period, nothing sealed, the warning gone.
    let ack = ttu.record(sale("TTU-MKP-060", 1)).await.unwrap();
    assert_eq!(ack.document, open);
    assert_eq!(ack.quantity_on_hand, 18);
    assert!(ttu.status().clock_warning.is_none());
    assert!(ttu.documents().unwrap().iter().all(|d| d
        .period
        .is_none_or(|p| p == crate::engine::PeriodState::Open)));

    // Forty days ahead: held back until the hub's clock says the month turned.
    let later = now_ms() + 40 * DAY;
    let ack = ttu.record_at(sale("TTU-MKP-060", 1), later).await.unwrap();
    assert_eq!(ack.document, open);
    at_ttu.handle(wire::announced(later - DAY)).await.unwrap();
    let ack = ttu.record_at(sale("TTU-MKP-060", 1), later).await.unwrap();
    assert_ne!(ack.document, open, "the hub's time lets the month turn");
    assert_eq!(ack.quantity_on_hand, 16);
}

/// A change authored in a document the sender does not own.
fn forged_bundle(target: &Engine, doc: &DocId, author: &NodeId) -> Vec<u8> {
    let heads = target.heads(doc).unwrap();
    let mut forged = Automerge::new().with_actor(actor_for(author, 9));
    for b in target.bundles_after(doc, &[], usize::MAX).unwrap() {
        forged.load_incremental(&b.data).unwrap();
    }
    let list = match forged.get(automerge::ROOT, "movements").unwrap() {
        Some((_, id)) => id,
        None => automerge::ROOT,
    };
    let n = ledger::len(&forged);
    let movement = Movement {
        id: "forged".into(),
        sku: "TTU-MKP-060".into(),
        at_ms: 0,
        kind: MovementKind::Receipt {
            quantity: 1000,
            unit_cost: 0,
            producer: None,
            over_budget: None,
        },
    };
    forged
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.insert(&list, n, movement.to_json())?;
            Ok(())
        })
        .unwrap();
    let new = forged.get_changes(&heads);
    forged
        .bundle(new.iter().map(|c| c.hash()))
        .unwrap()
        .bytes()
        .to_vec()
}

#[tokio::test]
async fn forged_changes_are_refused_and_the_session_goes_on() {
    let (hub, hub_book) = engine("kupang");
    let (sikka, sikka_book) = engine("sikka");
    let (ttu, ttu_book) = engine("ttu");
    // The hub first learns sikka's ledger.
    let mut hub_sikka = Session::new(hub.clone(), hub_book.clone(), node("sikka"));
    let mut at_sikka = Session::new(sikka.clone(), sikka_book, node("kupang"));
    let (a, b) = (
        hub_sikka.opening().await.unwrap(),
        at_sikka.opening().await.unwrap(),
    );
    pump(&mut hub_sikka, &mut at_sikka, a, b).await;

    let mut hub_ttu = Session::new(hub.clone(), hub_book, node("ttu"));
    let mut at_ttu = Session::new(ttu.clone(), ttu_book, node("kupang"));
    let (a, b) = (
        hub_ttu.opening().await.unwrap(),
        at_ttu.opening().await.unwrap(),
    );
    pump(&mut hub_ttu, &mut at_ttu, a, b).await;

    let sikka_ledger = DocId::Ledger(
        node("sikka"),
        crate::domain::period::PeriodId::of(crate::engine::now_ms()),
    );
    let before = hub.heads(&sikka_ledger);
    // ttu writes into sikka's ledger with its own actor, and with sikka's actor.
    for author in [node("ttu"), node("sikka")] {
        let data = forged_bundle(&hub, &sikka_ledger, &author);
        let answer = hub_ttu
            .handle(wire::bundle(&sikka_ledger, data, 1, 1))
            .await
            .unwrap();
        match &answer[..] {
            [SyncMessage {
                body: Some(Body::Refused(r)),
            }] => {
                assert_eq!(r.code, Code::PermissionDenied as i32, "{}", r.message);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(hub.heads(&sikka_ledger), before, "nothing stored");
    }
    // Garbage bytes in a bundle of ttu's own ledger: refused, nothing stored.
    let ttu_ledger = DocId::Ledger(
        node("ttu"),
        crate::domain::period::PeriodId::of(crate::engine::now_ms()),
    );
    let answer = hub_ttu
        .handle(wire::bundle(&ttu_ledger, b"garbage".to_vec(), 1, 1))
        .await
        .unwrap();
    assert!(
        matches!(&answer[..], [SyncMessage { body: Some(Body::Refused(r)) }] if r.code == Code::InvalidArgument as i32)
    );

    // ttu's own documents still sync in the same session.
    ttu.record(receipt("TTU-MKP-060", 5)).await.unwrap();
    let pushed = at_ttu.push_all().await.unwrap();
    pump(&mut hub_ttu, &mut at_ttu, vec![], pushed).await;
    assert_eq!(hub.heads(&ttu_ledger), ttu.heads(&ttu_ledger));
}

/// Issue 11: a peer's older session (a half-open link the hub has not noticed yet)
/// writes none of the peer's acknowledged heads once a newer session opened: what it
/// says is older than what the newer one says, and would take them back.
#[tokio::test]
async fn a_replaced_session_records_no_acknowledgement() {
    let (hub, book) = engine("kupang");
    let catalog = DocId::ProvincialCatalog;
    let mut older = Session::new(hub.clone(), book.clone(), node("ttu"));
    older.attach(book.open_session(&node("ttu"), tokio_util::sync::CancellationToken::new()));
    older
        .handle(wire::hello("ttu", super::PROTOCOLS, now_ms()))
        .await
        .unwrap();
    let first = hub.heads(&catalog).unwrap();
    older.handle(wire::have(&catalog, &first, 1)).await.unwrap();
    assert_eq!(book.acked(&node("ttu"), &catalog), Some(first.clone()));

    let _newer = book.open_session(&node("ttu"), tokio_util::sync::CancellationToken::new());
    assert!(older.replaced());
    older.handle(wire::have(&catalog, &[], 0)).await.unwrap();
    assert_eq!(
        book.acked(&node("ttu"), &catalog),
        Some(first),
        "the replaced session took the acknowledgement back"
    );
}
