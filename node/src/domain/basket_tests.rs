//! Ledgers written before baskets keep loading (issue 14): a period document saved
//! with the movement strings the writer before baskets produced, byte for byte,
//! loads, derives, reads as one-line baskets in the sales report, and takes a
//! basket after them with receipt number 1.

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT};

use super::basket::{self, BasketMark, Payment};
use super::doc_id::NodeId;
use super::ledger::{self, Balances};
use super::movement::{Buyer, Channel, Movement, MovementKind};
use super::sales_report::{DateRange, Listed, SalesReport};

/// What the writer before baskets stored: its opening balances and three movements
/// (a receipt, a store sale, an ASN sale), as JSON strings in the `movements` list.
const OPENING_BEFORE_BASKETS: &str = r#"{"stock":{"TTU-MKP-060":4},"newest_ms":1764483000000,"granted":{},"fulfilled":{},"cancelled":{},"outcomes":{},"return_requests":[],"dispatched":{},"received":[],"spent_by_year":{"2025":80000},"over_budget":[]}"#;
const MOVEMENTS_BEFORE_BASKETS: [&str; 3] = [
    r#"{"id":"rcv-1","sku":"TTU-MKP-060","at":1764483000000,"k":"rcv","q":10,"c":20000,"pr":"p-1"}"#,
    r#"{"id":"r-1","sku":"TTU-MKP-060","at":1764483000000,"k":"sal","q":2,"p":35000,"ch":"store","b":"public"}"#,
    r#"{"id":"r-2","sku":"TTU-MKP-060","at":1764483000001,"k":"sal","q":1,"p":35000,"ch":"store","b":"asn"}"#,
];

fn saved_before_baskets() -> Vec<u8> {
    let mut doc = Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        let list = tx.put_object(ROOT, "movements", ObjType::List)?;
        tx.put(ROOT, "opening", OPENING_BEFORE_BASKETS)?;
        for (i, json) in MOVEMENTS_BEFORE_BASKETS.iter().enumerate() {
            tx.insert(&list, i, *json)?;
        }
        Ok(())
    })
    .unwrap();
    doc.save()
}

#[test]
fn a_ledger_saved_before_baskets_loads_and_reads_as_one_line_baskets() {
    let name = "ledger/ttu/2025-11";
    let mut doc = Automerge::load(&saved_before_baskets()).unwrap();
    let view = ledger::derive(&doc, name).unwrap();
    assert_eq!(view.on_hand("TTU-MKP-060"), 4 + 10 - 3);
    assert_eq!(view.receipts(), 0, "no receipt numbers before baskets");
    let movements = ledger::read_range(&doc, name, ..).unwrap();
    assert!(movements.iter().all(|m| !matches!(
        m.kind,
        MovementKind::Sale {
            basket: Some(_),
            ..
        }
    )));
    let mut report = SalesReport::new(DateRange::parse("2025-11-30", "2025-11-30").unwrap());
    let ttu = NodeId::parse("ttu").unwrap();
    let totals = report.add_ledger(&ttu, &movements, Listed::Always).unwrap();
    assert_eq!((totals.baskets, totals.sales, totals.units), (2, 2, 3));
    let opening: Balances = serde_json::from_str(OPENING_BEFORE_BASKETS).unwrap();
    assert_eq!(opening.receipts, 0);
    assert_eq!(
        serde_json::to_string(&opening).unwrap(),
        OPENING_BEFORE_BASKETS,
        "balances without receipts are written as before"
    );

    // A basket after them: receipt 1, read back whole, counted as one basket.
    let lines: Vec<Movement> = (1..=2u32)
        .map(|line| Movement {
            id: basket::line_id("b-1", line as usize),
            sku: "TTU-MKP-060".into(),
            at_ms: 1_764_483_000_002,
            kind: MovementKind::Sale {
                quantity: 1,
                unit_price: Some(35_000),
                channel: Channel::Store,
                buyer: Buyer::Public,
                order: None,
                basket: Some(if line == 1 {
                    BasketMark::first(2, 1, Payment::Qris)
                } else {
                    BasketMark::later(2)
                }),
            },
        })
        .collect();
    view.check_basket(&lines, |_| 0).unwrap();
    let end = view.len();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        for (i, m) in lines.iter().enumerate() {
            ledger::append(tx, end + i, m)?;
        }
        Ok(())
    })
    .unwrap();
    let view = ledger::derive(&doc, name).unwrap();
    assert_eq!((view.receipts(), view.on_hand("TTU-MKP-060")), (1, 9));
    let movements = ledger::read_range(&doc, name, ..).unwrap();
    let mut report = SalesReport::new(DateRange::parse("2025-11-30", "2025-11-30").unwrap());
    let totals = report.add_ledger(&ttu, &movements, Listed::Always).unwrap();
    assert_eq!((totals.baskets, totals.sales), (3, 4));
    // Half a basket is a schema break, as is a receipt number out of turn.
    assert!(view.check_basket(&lines[..1], |_| 0).is_err());
    assert!(view.check_basket(&lines, |_| 0).is_err(), "receipt 1 again");
}
