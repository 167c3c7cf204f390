//! Absurd numbers on every write path of the engine (issue 10, item 3): receipts,
//! sales, adjustments, transfers, quota grants and returns, products and their
//! prices and reorder levels at an outlet; orders and budget allocations at the hub.
//! Values are drawn from the extremes of `i64`, 0, -1 and each bound of
//! `domain::bounds` with its neighbours. A write beyond a bound is refused as an
//! invalid field and stores nothing; a write within bounds is never refused as
//! invalid; no figure ever goes below zero or beyond its bound; and the hub, deriving
//! the outlet's history as incoming history, reaches the same stock (the incoming
//! history rules refuse nothing a local write accepted). Real engines on in-memory
//! stores, real sessions pumped against each other.

use proptest::prelude::*;

use super::testkit::{engine, receipt, sync_once};
use crate::domain::bounds::{MAX_BALANCE_UNITS, MAX_BUDGET_RUPIAH, MAX_QUANTITY, MAX_UNIT_RUPIAH};
use crate::domain::catalog::Product;
use crate::domain::movement::{AdjustReason, Buyer, Channel, MovementKind};
use crate::domain::{wita, DomainError};
use crate::engine::{now_ms, Engine, EngineError, MovementRequest};

const SKU: &str = "TTU-MKP-060";
/// A product of ttu's own catalog, whose price and reorder level the test edits.
const LOCAL: &str = "TTU-NUM-001";

/// One write, with the numbers it carries.
#[derive(Debug, Clone)]
enum Write {
    Receipt(i64, i64),
    Sale(i64, Option<i64>),
    Adjust(i64),
    TransferOut(i64),
    TransferIn(i64),
    Grant(i64),
    Return(i64),
    AddProduct(i64, i64),
    UpdateProduct(i64, i64),
    /// At the hub.
    PlaceOrder(i64),
    /// At the hub.
    Allocate(i64),
}

fn extreme() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => 1i64..60,
        3 => prop::sample::select(vec![
            i64::MIN,
            i64::MIN + 1,
            -MAX_QUANTITY - 1,
            -MAX_QUANTITY,
            -1,
            0,
            1,
            MAX_QUANTITY - 1,
            MAX_QUANTITY,
            MAX_QUANTITY + 1,
            MAX_UNIT_RUPIAH,
            MAX_UNIT_RUPIAH + 1,
            MAX_BUDGET_RUPIAH,
            MAX_BUDGET_RUPIAH + 1,
            i64::MAX - 1,
            i64::MAX,
        ]),
    ]
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        (extreme(), extreme()).prop_map(|(q, c)| Write::Receipt(q, c)),
        (extreme(), prop::option::of(extreme())).prop_map(|(q, p)| Write::Sale(q, p)),
        extreme().prop_map(Write::Adjust),
        extreme().prop_map(Write::TransferOut),
        extreme().prop_map(Write::TransferIn),
        extreme().prop_map(Write::Grant),
        extreme().prop_map(Write::Return),
        (extreme(), extreme()).prop_map(|(p, r)| Write::AddProduct(p, r)),
        (extreme(), extreme()).prop_map(|(p, r)| Write::UpdateProduct(p, r)),
        extreme().prop_map(Write::PlaceOrder),
        extreme().prop_map(Write::Allocate),
    ]
}

/// The documented bounds, restated here on their own: whether every number of
/// `write` is within them.
fn in_bounds(write: &Write) -> bool {
    let quantity = |q: &i64| (1..=MAX_QUANTITY).contains(q);
    let rupiah = |p: &i64| (0..=MAX_UNIT_RUPIAH).contains(p);
    let reorder = |r: &i64| (0..=MAX_QUANTITY).contains(r);
    match write {
        Write::Receipt(q, c) => quantity(q) && rupiah(c),
        Write::Sale(q, p) => quantity(q) && p.as_ref().is_none_or(rupiah),
        Write::Adjust(d) => *d != 0 && (-MAX_QUANTITY..=MAX_QUANTITY).contains(d),
        Write::TransferOut(q)
        | Write::TransferIn(q)
        | Write::Grant(q)
        | Write::Return(q)
        | Write::PlaceOrder(q) => quantity(q),
        Write::AddProduct(p, r) | Write::UpdateProduct(p, r) => rupiah(p) && reorder(r),
        Write::Allocate(a) => (0..=MAX_BUDGET_RUPIAH).contains(a),
    }
}

fn product(sku: &str, producer: &str, price_rupiah: i64, reorder_level: i64) -> Product {
    Product {
        sku: sku.into(),
        name: "Madu hutan Timor 250 g".into(),
        producer_id: producer.into(),
        category: "madu".into(),
        unit: "250 g jar".into(),
        price_rupiah,
        certifications: Vec::new(),
        reorder_level,
    }
}

fn movement(i: usize, kind: MovementKind) -> MovementRequest {
    MovementRequest {
        request_id: Some(format!("w{i}")),
        sku: SKU.into(),
        kind,
    }
}

/// Performs `write` (the `i`th) at ttu or the hub.
async fn perform(
    ttu: &Engine,
    hub: &Engine,
    producer: &str,
    i: usize,
    write: &Write,
) -> Result<(), EngineError> {
    let record = |kind| ttu.record(movement(i, kind));
    match write.clone() {
        Write::Receipt(quantity, unit_cost) => record(MovementKind::Receipt {
            quantity,
            unit_cost,
            producer: None,
            over_budget: Some("test".into()),
        })
        .await
        .map(drop),
        Write::Sale(quantity, unit_price) => record(MovementKind::Sale {
            quantity,
            unit_price,
            channel: Channel::Store,
            buyer: Buyer::Asn,
            order: None,
            basket: None,
        })
        .await
        .map(drop),
        Write::Adjust(delta) => record(MovementKind::Adjustment {
            delta,
            reason: AdjustReason::Damage,
            note: String::new(),
        })
        .await
        .map(drop),
        Write::TransferOut(quantity) => record(MovementKind::TransferOut {
            quantity,
            transfer_id: format!("t{i}"),
            to: "sikka".into(),
        })
        .await
        .map(drop),
        Write::TransferIn(quantity) => record(MovementKind::TransferIn {
            quantity,
            transfer_id: format!("t{i}"),
            from: "sikka".into(),
        })
        .await
        .map(drop),
        Write::Grant(quantity) => ttu
            .change_quota(Some(format!("w{i}")), SKU, quantity, true)
            .await
            .map(drop),
        Write::Return(quantity) => ttu
            .change_quota(Some(format!("w{i}")), SKU, quantity, false)
            .await
            .map(drop),
        Write::AddProduct(price, reorder) => ttu
            .add_product(product(&format!("TTU-NUM-X{i}"), producer, price, reorder))
            .await
            .map(drop),
        Write::UpdateProduct(price, reorder) => ttu
            .update_product(product(LOCAL, producer, price, reorder))
            .await
            .map(drop),
        Write::PlaceOrder(quantity) => hub
            .place_order(Some(format!("o{i}")), "ttu", SKU, quantity, Buyer::Public)
            .await
            .map(drop),
        Write::Allocate(amount) => hub
            .allocate_budget("ttu", wita::year_of(now_ms()), amount)
            .await
            .map(drop),
    }
}

fn stock(engine: &Engine, outlet: Option<&str>) -> Vec<(String, i64)> {
    engine
        .stock(outlet, None)
        .unwrap()
        .into_iter()
        .map(|l| (l.sku, l.quantity))
        .collect()
}

async fn run(writes: Vec<Write>) -> Result<(), TestCaseError> {
    let (hub, hub_peers) = engine("kupang");
    let (ttu, ttu_peers) = engine("ttu");
    let producer = ttu.product(SKU).unwrap().0.producer_id;
    ttu.record(receipt(SKU, 100)).await.unwrap();
    ttu.add_product(product(LOCAL, &producer, 45_000, 0))
        .await
        .unwrap();
    sync_once((&hub, &hub_peers), (&ttu, &ttu_peers)).await;
    for (i, write) in writes.iter().enumerate() {
        let before = (ttu.held_heads(), hub.held_heads());
        let result = perform(&ttu, &hub, &producer, i, write).await;
        let invalid = matches!(
            result,
            Err(EngineError::Domain(DomainError::InvalidField { .. }))
        );
        prop_assert_eq!(
            invalid,
            !in_bounds(write),
            "{:?} answered {:?}",
            write,
            result.as_ref().err().map(ToString::to_string)
        );
        if result.is_err() {
            prop_assert!(
                (ttu.held_heads(), hub.held_heads()) == before,
                "{:?} was refused but stored",
                write
            );
        }
        for (sku, q) in stock(&ttu, None) {
            prop_assert!((0..=MAX_BALANCE_UNITS).contains(&q), "{} at {}", sku, q);
        }
        for budget in ttu.budgets(None, 0).unwrap() {
            prop_assert!(budget.spent >= 0);
        }
        for quota in ttu.quota(None).unwrap() {
            prop_assert!(quota.reserved >= 0 && quota.granted >= 0, "{:?}", quota);
        }
        if i % 8 == 7 {
            sync_once((&hub, &hub_peers), (&ttu, &ttu_peers)).await;
        }
    }
    // The hub derives ttu's history as incoming history: it refuses nothing ttu
    // accepted, and reaches the same figures.
    sync_once((&hub, &hub_peers), (&ttu, &ttu_peers)).await;
    prop_assert_eq!(stock(&hub, Some("ttu")), stock(&ttu, None));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_write_path_refuses_absurd_numbers_and_stores_nothing(
        writes in prop::collection::vec(write(), 1..24)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(writes))?;
    }
}

#[tokio::test]
async fn the_bounds_themselves_are_accepted_on_every_path() {
    let (hub, hub_peers) = engine("kupang");
    let (ttu, ttu_peers) = engine("ttu");
    let producer = ttu.product(SKU).unwrap().0.producer_id;
    ttu.add_product(product(LOCAL, &producer, 45_000, 0))
        .await
        .unwrap();
    let writes = [
        Write::Allocate(MAX_BUDGET_RUPIAH),
        Write::Receipt(MAX_QUANTITY, MAX_UNIT_RUPIAH),
        Write::Receipt(MAX_QUANTITY, 0),
        Write::Sale(MAX_QUANTITY, Some(MAX_UNIT_RUPIAH)),
        Write::Adjust(-MAX_QUANTITY),
        Write::Adjust(MAX_QUANTITY),
        Write::Grant(MAX_QUANTITY),
        Write::Return(MAX_QUANTITY),
        Write::AddProduct(MAX_UNIT_RUPIAH, MAX_QUANTITY),
        Write::UpdateProduct(MAX_UNIT_RUPIAH, MAX_QUANTITY),
        Write::TransferIn(MAX_QUANTITY),
        Write::TransferOut(1),
    ];
    for (i, write) in writes.iter().enumerate() {
        perform(&ttu, &hub, &producer, i, write)
            .await
            .unwrap_or_else(|e| panic!("{write:?}: {e}"));
        if i == 0 {
            sync_once((&hub, &hub_peers), (&ttu, &ttu_peers)).await;
        }
    }
    sync_once((&hub, &hub_peers), (&ttu, &ttu_peers)).await;
    assert_eq!(stock(&hub, Some("ttu")), stock(&ttu, None));
    let spent = ttu.budgets(None, 0).unwrap()[0].spent;
    assert_eq!(spent, MAX_QUANTITY * MAX_UNIT_RUPIAH);
}
