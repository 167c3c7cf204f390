//! Ledger periods across sync: sealing, carrying balances, archiving once settled,
//! and restoring an outlet from the hub's open period only. Real engines on
//! in-memory stores, real sessions pumped against each other.

use std::sync::Arc;

use mart_proto::tonic::Code;

use super::testkit::{engine_on, receipt, sale, sync_once};
use super::PeerBook;
use crate::domain::doc_id::DocId;
use crate::domain::ledger;
use crate::engine::{now_ms, Engine, LedgerOptions, MovementRequest, PeriodState};
use crate::store::{Backend, MemoryBackend};

const SKU: &str = "TTU-MKP-060";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// These tests move the clock months ahead with `record_at`, as an operator who
/// vouches for it would (`--accept-clock`); the guard has its own tests.
fn simulated() -> LedgerOptions {
    LedgerOptions {
        accept_clock: true,
        ..LedgerOptions::default()
    }
}

/// A node `id` on a fresh in-memory store, its clock accepted.
fn engine(id: &str) -> (Arc<Engine>, Arc<PeerBook>) {
    engine_on(id, Arc::new(MemoryBackend::new()), simulated())
}

fn with_id(mut request: MovementRequest, id: &str) -> MovementRequest {
    request.request_id = Some(id.into());
    request
}

fn state_of(engine: &Engine, doc: &DocId) -> Option<PeriodState> {
    engine
        .documents()
        .unwrap()
        .into_iter()
        .find(|d| &d.id == doc)
        .and_then(|d| d.period)
}

fn on_hand(engine: &Engine, outlet: Option<&str>) -> i64 {
    engine.stock(outlet, Some(SKU)).unwrap()[0].quantity
}

/// Records, at `t1`, a receipt of 50 and a sale of 5 (request `r1`), then at `t2`
/// (in a later period) a sale of 3. Returns the two periods.
async fn two_periods(ttu: &Engine, t1: i64, t2: i64) -> (DocId, DocId) {
    ttu.record_at(receipt(SKU, 50), t1).await.unwrap();
    ttu.record_at(with_id(sale(SKU, 5), "r1"), t1)
        .await
        .unwrap();
    let first = ttu.open_period().unwrap();
    ttu.record_at(sale(SKU, 3), t2).await.unwrap();
    let second = ttu.open_period().unwrap();
    (first, second)
}

#[tokio::test]
async fn a_new_period_opens_with_the_closing_balances_of_the_last() {
    let (ttu, _) = engine("ttu");
    let t1 = now_ms();
    let (first, second) = two_periods(&ttu, t1, t1 + 35 * DAY_MS).await;
    assert!(second > first, "{second} follows {first}");
    assert_eq!(state_of(&ttu, &first), Some(PeriodState::Sealed));
    assert_eq!(state_of(&ttu, &second), Some(PeriodState::Open));
    assert_eq!(on_hand(&ttu, None), 42);

    // The request made before the boundary, retried after it: answered once.
    let retried = ttu
        .record_at(with_id(sale(SKU, 5), "r1"), t1 + 36 * DAY_MS)
        .await
        .unwrap();
    assert!(retried.duplicate);
    assert_eq!(retried.document, first);
    assert_eq!(on_hand(&ttu, None), 42);

    let in_first = ttu.movements(
        None,
        None,
        0,
        Some(&first.ledger_period().unwrap().1.to_string()),
    );
    assert_eq!(in_first.unwrap().len(), 2);
    assert_eq!(ttu.movements(None, None, 0, None).unwrap().len(), 1);
    assert_eq!(ttu.movements(None, None, 10, None).unwrap().len(), 3);
    let unknown = ttu.movements(None, None, 0, Some("1999-01")).unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn movements_between_two_dates_are_read_across_the_periods_they_span() {
    use crate::domain::sales_report::{DateRange, LocalDate};
    let (ttu, _) = engine("ttu");
    let t1 = now_ms();
    let t2 = t1 + 35 * DAY_MS;
    two_periods(&ttu, t1, t2).await;
    let day = |ms: i64| LocalDate::of_unix_ms(ms).unwrap().to_string();
    let between = |from: i64, to: i64, limit: usize| {
        let range = DateRange::parse(&day(from), &day(to)).unwrap();
        ttu.movements_between(None, None, limit, &range).unwrap()
    };
    // Both periods: the first one's receipt and sale, the second one's sale.
    let all = between(t1, t2, 0);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "oldest first: {all:?}"
    );
    assert_eq!(between(t2, t2, 0).len(), 1);
    assert_eq!(between(t1, t1, 0).len(), 2);
    assert_eq!(between(t1 + DAY_MS, t2 - DAY_MS, 0).len(), 0);
    assert_eq!(
        between(t1, t2, 2),
        all[1..].to_vec(),
        "limit keeps the newest"
    );
}

#[tokio::test]
async fn the_seal_holds_the_closing_and_the_next_period_opens_with_it() {
    let (hub, hub_book) = engine("kupang");
    let (ttu, ttu_book) = engine("ttu");
    let t1 = now_ms();
    let (first, second) = two_periods(&ttu, t1, t1 + 35 * DAY_MS).await;
    // Before the district archives the first period, read both documents as the hub
    // receives them.
    let bundles = |doc: &DocId| ttu.bundles_after(doc, &[], usize::MAX).unwrap();
    let mirror_first = read_back(&bundles(&first));
    let mirror_second = read_back(&bundles(&second));
    let closing = ledger::closing(&mirror_first, "first")
        .unwrap()
        .expect("sealed");
    let opening = ledger::opening(&mirror_second, "second")
        .unwrap()
        .expect("opened");
    assert_eq!(closing, opening);
    assert_eq!(closing.stock[SKU], 45);
    assert!(ledger::closing(&mirror_second, "second").unwrap().is_none());
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    assert_eq!(on_hand(&hub, Some("ttu")), 42);
}

fn read_back(bundles: &[crate::engine::OutBundle]) -> automerge::Automerge {
    let mut doc = automerge::Automerge::new();
    for b in bundles {
        let bundle = automerge::Bundle::try_from(&b.data[..]).unwrap();
        doc.apply_changes(bundle.to_changes().unwrap()).unwrap();
    }
    doc
}

#[tokio::test]
async fn sealed_periods_are_archived_once_the_hub_holds_them() {
    let (hub, hub_book) = engine("kupang");
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let (ttu, ttu_book) = engine_on("ttu", backend.clone(), simulated());
    let t1 = now_ms();
    // Both periods are written while the hub is unreachable.
    let (first, second) = two_periods(&ttu, t1, t1 + 35 * DAY_MS).await;
    assert_eq!(state_of(&ttu, &first), Some(PeriodState::Sealed));

    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    assert_eq!(state_of(&ttu, &first), Some(PeriodState::Archived));
    assert_eq!(state_of(&hub, &first), Some(PeriodState::Archived));
    assert_eq!(state_of(&hub, &second), Some(PeriodState::Open));
    assert!(
        ttu.heads(&first).is_none(),
        "an archived period is not in memory"
    );
    assert_eq!(on_hand(&hub, Some("ttu")), 42);
    assert_eq!(hub.heads(&second), ttu.heads(&second));
    // A request made before the period turned and retried after it was archived is
    // still answered once.
    let retried = ttu
        .record_at(with_id(sale(SKU, 5), "r1"), t1 + 36 * DAY_MS)
        .await
        .unwrap();
    assert!(retried.duplicate);
    assert_eq!(
        (retried.document, retried.quantity_on_hand),
        (first.clone(), 42)
    );
    // Archived, still on disk for audit, at both ends.
    let period = first.ledger_period().unwrap().1.to_string();
    assert_eq!(
        ttu.movements(None, None, 0, Some(&period)).unwrap().len(),
        2
    );
    assert_eq!(
        hub.movements(Some("ttu"), None, 0, Some(&period))
            .unwrap()
            .len(),
        2
    );

    // A restart does not load it.
    drop(ttu);
    let (ttu, _) = engine_on("ttu", backend, simulated());
    assert!(!ttu.held_heads().iter().any(|(doc, _)| doc == &first));
    assert_eq!(state_of(&ttu, &first), Some(PeriodState::Archived));
    assert_eq!(ttu.open_period(), Some(second));
    assert_eq!(on_hand(&ttu, None), 42);
    // ... and still answers the retry from before the boundary once.
    let retried = ttu
        .record_at(with_id(sale(SKU, 5), "r1"), t1 + 37 * DAY_MS)
        .await
        .unwrap();
    assert!(retried.duplicate, "{retried:?}");
    assert_eq!(on_hand(&ttu, None), 42);
    // Nothing archived shows as pending or behind in the sync state.
    for peer in ttu_book
        .status(&ttu)
        .into_iter()
        .chain(hub_book.status(&hub))
    {
        for doc in peer.docs {
            assert!(
                !doc.behind && doc.changes_to_send == 0 && doc.changes_to_receive == 0,
                "{doc:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_refused_movement_seals_nothing() {
    let (ttu, _) = engine("ttu");
    let t1 = now_ms();
    ttu.record_at(receipt(SKU, 5), t1).await.unwrap();
    let open = ttu.open_period().unwrap();
    let refused = ttu
        .record_at(sale(SKU, 6), t1 + 35 * DAY_MS)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(ttu.open_period(), Some(open.clone()));
    assert_eq!(state_of(&ttu, &open), Some(PeriodState::Open));
}

#[tokio::test]
async fn the_hub_archives_its_own_sealed_periods() {
    let (hub, _) = engine("kupang");
    let t1 = now_ms();
    let mut periods = Vec::new();
    for month in 0..3 {
        hub.record_at(receipt(SKU, 1), t1 + month * 35 * DAY_MS)
            .await
            .unwrap();
        periods.push(hub.open_period().unwrap());
    }
    assert_eq!(state_of(&hub, &periods[0]), Some(PeriodState::Archived));
    assert_eq!(state_of(&hub, &periods[1]), Some(PeriodState::Sealed));
    assert_eq!(state_of(&hub, &periods[2]), Some(PeriodState::Open));
    assert_eq!(on_hand(&hub, None), 3);
}

#[tokio::test]
async fn a_restored_outlet_gets_only_its_open_period_and_writes_with_a_fresh_actor() {
    let (hub, hub_book) = engine("kupang");
    let (ttu, ttu_book) = engine("ttu");
    let t1 = now_ms();
    let t2 = t1 + 35 * DAY_MS;
    let (first, second) = two_periods(&ttu, t1, t2).await;
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    let old_actor = ttu.status().actor_hex;
    drop(ttu);

    // The disk is lost: a fresh store, started to restore.
    let restore = LedgerOptions {
        restore: true,
        ..simulated()
    };
    let (ttu, ttu_book) = engine_on("ttu", Arc::new(MemoryBackend::new()), restore);
    assert!(ttu.restoring());
    let refused = ttu.record_at(sale(SKU, 1), t2).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");
    // Nor its own catalog: the hub's copy may still be on its way.
    let mut product = ttu.product(SKU).unwrap().0;
    product.sku = "TTU-NEW-001".into();
    let refused = ttu.add_product(product).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");

    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    assert!(!ttu.restoring());
    assert_eq!(ttu.open_period(), Some(second.clone()));
    assert!(
        ttu.heads(&first).is_none(),
        "the sealed period is not replayed"
    );
    assert_eq!(on_hand(&ttu, None), 42);
    assert_ne!(ttu.status().actor_hex, old_actor);

    // Sells on; the hub counts each movement once.
    let ack = ttu.record_at(sale(SKU, 2), t2).await.unwrap();
    assert_eq!(ack.quantity_on_hand, 40);
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    assert_eq!(hub.heads(&second), ttu.heads(&second));
    assert_eq!(on_hand(&hub, Some("ttu")), 40);
    assert_eq!(hub.movements(Some("ttu"), None, 0, None).unwrap().len(), 2);
}

#[tokio::test]
async fn a_restore_with_nothing_at_the_hub_starts_a_new_outlet() {
    let (hub, hub_book) = engine("kupang");
    let restore = LedgerOptions {
        restore: true,
        ..simulated()
    };
    let (ttu, ttu_book) = engine_on("ttu", Arc::new(MemoryBackend::new()), restore);
    assert!(ttu.restoring());
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    assert!(!ttu.restoring());
    ttu.record(receipt(SKU, 5)).await.unwrap();
    assert_eq!(on_hand(&ttu, None), 5);
}

#[tokio::test]
async fn a_restore_cut_short_goes_on_at_the_next_start_whatever_the_command_line() {
    let (hub, hub_book) = engine("kupang");
    let (ttu, ttu_book) = engine("ttu");
    ttu.record(receipt(SKU, 30)).await.unwrap();
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    drop(ttu);

    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let restore = LedgerOptions {
        restore: true,
        ..simulated()
    };
    let (ttu, _) = engine_on("ttu", backend.clone(), restore);
    assert!(ttu.restoring());
    drop(ttu);
    // Killed before the hub answered; started again without --restore.
    let (ttu, ttu_book) = engine_on("ttu", backend.clone(), simulated());
    assert!(ttu.restoring(), "a restore begun is not forgotten");
    let refused = ttu.record(sale(SKU, 1)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    assert!(!ttu.restoring());
    assert_eq!(on_hand(&ttu, None), 30);
    drop(ttu);
    let (ttu, _) = engine_on("ttu", backend, simulated());
    assert!(!ttu.restoring(), "a finished restore is not resumed");
}

#[tokio::test]
async fn a_district_that_lost_its_data_and_wrote_again_is_told_so() {
    let (hub, hub_book) = engine("kupang");
    let (ttu, ttu_book) = engine("ttu");
    ttu.record(receipt(SKU, 30)).await.unwrap();
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    drop(ttu);
    // Wiped and started as a new outlet (no --restore): a second opening.
    let (ttu, ttu_book) = engine("ttu");
    ttu.record(receipt(SKU, 5)).await.unwrap();
    sync_once((&hub, &hub_book), (&ttu, &ttu_book)).await;
    let hub_id = crate::domain::doc_id::NodeId::parse("kupang").unwrap();
    let error = ttu_book
        .status(&ttu)
        .into_iter()
        .find(|p| p.peer == hub_id)
        .and_then(|p| p.last_error)
        .unwrap_or_default();
    assert!(error.contains("started without --restore"), "{error:?}");
}
