//! Bad input is harmless (invariant 8 of the brief): every refused request gets the
//! right gRPC status code and a message naming what was wrong, the node keeps serving
//! (a Status call and a sale succeed right after), and nothing is stored (movement
//! count, document heads and change counts unchanged; a refused request id is not
//! taken, so a later valid request with it is recorded as new).
//!
//! One test per status code, each against its own node.

use std::fmt::Debug;

use anyhow::{ensure, Context, Result};
use mart_proto::tonic::{Code, Response, Status};
use mart_proto::v1::{
    AddProducerRequest, AddProductRequest, AllocateBudgetRequest, Certification, Producer, Product,
    SaleRequest, StatusRequest, TransferInRequest, TransferOutRequest,
};
use mart_tests::clock::{now_ms, wita_year};
use mart_tests::ops::{on_hand, receipt, receive, sale, StoreState};
use mart_tests::{AdminClient, MartClient, NodeProcess, NodeSpec};

/// The SKU every fixture holds stock of.
const SKU: &str = "TTU-MKP-060";
/// Stock of [`SKU`] received when a fixture starts.
const STOCK: i64 = 100;

struct Fixture {
    // Kept alive (and killed on drop) for the clients below.
    _node: NodeProcess,
    mart: MartClient,
    admin: AdminClient,
}

impl Fixture {
    async fn start() -> Result<Self> {
        let node = NodeProcess::start_default().await?;
        let mut mart = node.mart().await?;
        let admin = node.admin().await?;
        receive(&mut mart, "rcv-fixture", SKU, STOCK).await?;
        Ok(Fixture {
            _node: node,
            mart,
            admin,
        })
    }

    async fn state(&mut self) -> Result<StoreState> {
        StoreState::read(&mut self.admin).await
    }

    /// Checks that `result` is a refusal with `code` whose message mentions
    /// `mentions`, that nothing was stored since `before`, and that the node still
    /// serves: Status answers and a sale with request id `then_sell_as` is recorded as
    /// a new movement.
    async fn refused<T: Debug>(
        &mut self,
        case: &str,
        result: Result<Response<T>, Status>,
        code: Code,
        mentions: &str,
        before: StoreState,
        then_sell_as: &str,
    ) -> Result<()> {
        let status = match result {
            Ok(answer) => anyhow::bail!(
                "{case}: accepted, expected {code:?}: {:?}",
                answer.into_inner()
            ),
            Err(status) => status,
        };
        ensure!(
            status.code() == code,
            "{case}: got {:?} ({}), expected {code:?}",
            status.code(),
            status.message()
        );
        ensure!(
            status.message().contains(mentions),
            "{case}: the message {:?} does not mention {mentions:?}",
            status.message()
        );
        let after = self
            .state()
            .await
            .with_context(|| format!("{case}: read state"))?;
        ensure!(
            after == before,
            "{case}: something was stored:\nbefore {before:?}\nafter  {after:?}"
        );

        self.admin
            .status(StatusRequest {})
            .await
            .with_context(|| format!("{case}: Status after the refusal"))?;
        let stock = on_hand(&mut self.mart, SKU).await?;
        let ack = self
            .mart
            .record_sale(sale(then_sell_as, SKU, 1))
            .await
            .with_context(|| format!("{case}: a valid sale after the refusal"))?
            .into_inner();
        ensure!(
            !ack.duplicate && ack.movement_id == then_sell_as && ack.quantity_on_hand == stock - 1,
            "{case}: the sale after the refusal was not recorded as new: {ack:?}"
        );
        let after_sale = self.state().await?;
        // The same observation does see a stored write, so "unchanged" above means something.
        ensure!(
            after_sale.movements == before.movements + 1
                && after_sale.documents != before.documents,
            "{case}: a recorded sale did not show in the state: {after_sale:?}"
        );
        Ok(())
    }
}

fn producer(id: &str) -> Producer {
    Producer {
        id: id.into(),
        group_name: "Kelompok Tenun Ikat Insana".into(),
        leader: "Maria Taek".into(),
        village: "Oelolok".into(),
        subdistrict: "Insana".into(),
        district: "ttu".into(),
        ..Default::default()
    }
}

fn product(sku: &str, producer_id: &str) -> Product {
    Product {
        sku: sku.into(),
        name: "Selimut Tenun Ikat Insana".into(),
        producer_id: producer_id.into(),
        category: "tenun".into(),
        unit: "piece".into(),
        price_rupiah: 450_000,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_argument_names_the_field() -> Result<()> {
    let mut fx = Fixture::start().await?;
    let ten_kb = "x".repeat(10 * 1024);
    let sales: Vec<(&str, SaleRequest, &str)> = vec![
        ("zero quantity", sale("bad-zero", SKU, 0), "quantity"),
        (
            "negative quantity",
            sale("bad-negative", SKU, -3),
            "quantity",
        ),
        (
            "negative price",
            SaleRequest {
                unit_price_rupiah: Some(-35_000),
                ..sale("bad-price", SKU, 1)
            },
            "unit_price_rupiah",
        ),
        ("empty sku", sale("bad-empty-sku", "", 1), "sku"),
        (
            "sku with spaces",
            sale("bad-sku-spaces", "TTU MKP 060", 1),
            "sku",
        ),
        (
            "unknown channel",
            SaleRequest {
                channel: 99,
                ..sale("bad-channel", SKU, 1)
            },
            "channel",
        ),
        (
            "unknown buyer",
            SaleRequest {
                buyer: 7,
                ..sale("bad-buyer", SKU, 1)
            },
            "buyer",
        ),
    ];
    for (case, request, field) in sales {
        let then_sell_as = format!("ok-{}", request.request_id);
        let before = fx.state().await?;
        let result = fx.mart.record_sale(request).await;
        fx.refused(
            case,
            result,
            Code::InvalidArgument,
            field,
            before,
            &then_sell_as,
        )
        .await?;
    }

    let before = fx.state().await?;
    let result = fx.mart.record_sale(sale(&ten_kb, SKU, 1)).await;
    fx.refused(
        "10 KB request id",
        result,
        Code::InvalidArgument,
        "request_id",
        before,
        "ok-long-id",
    )
    .await?;

    let before = fx.state().await?;
    let result = fx
        .mart
        .record_receipt(receipt("bad-cost", SKU, 5, -1))
        .await;
    fx.refused(
        "negative unit cost",
        result,
        Code::InvalidArgument,
        "unit_cost_rupiah",
        before,
        "ok-cost",
    )
    .await?;

    let before = fx.state().await?;
    let oversize = Producer {
        group_name: ten_kb.clone(),
        ..producer("ikm-tenun-insana")
    };
    let result = fx
        .mart
        .add_producer(AddProducerRequest {
            producer: Some(oversize),
        })
        .await;
    fx.refused(
        "10 KB producer name",
        result,
        Code::InvalidArgument,
        "group_name",
        before,
        "ok-producer",
    )
    .await?;

    let before = fx.state().await?;
    let result = fx
        .mart
        .add_producer(AddProducerRequest { producer: None })
        .await;
    fx.refused(
        "missing producer",
        result,
        Code::InvalidArgument,
        "producer",
        before,
        "ok-missing",
    )
    .await?;

    let before = fx.state().await?;
    let negative = Product {
        price_rupiah: -1,
        ..product("TTU-SLM-001", "ikm-humusu-wini")
    };
    let result = fx
        .mart
        .add_product(AddProductRequest {
            product: Some(negative),
        })
        .await;
    fx.refused(
        "negative product price",
        result,
        Code::InvalidArgument,
        "price_rupiah",
        before,
        "ok-neg-price",
    )
    .await?;

    let before = fx.state().await?;
    let odd_cert = Product {
        certifications: vec![Certification {
            kind: 42,
            number: "POM TR 1".into(),
            expires_on: String::new(),
        }],
        ..product("TTU-SLM-002", "ikm-humusu-wini")
    };
    let result = fx
        .mart
        .add_product(AddProductRequest {
            product: Some(odd_cert),
        })
        .await;
    fx.refused(
        "unknown certification kind",
        result,
        Code::InvalidArgument,
        "certifications.kind",
        before,
        "ok-cert",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_for_unknown_sku_and_producer() -> Result<()> {
    let mut fx = Fixture::start().await?;

    let before = fx.state().await?;
    let result = fx.mart.record_sale(sale("nf-sale", "TTU-XXX-999", 1)).await;
    fx.refused(
        "sale of an unknown sku",
        result,
        Code::NotFound,
        "TTU-XXX-999",
        before,
        "nf-sale",
    )
    .await?;

    let before = fx.state().await?;
    let result = fx
        .mart
        .record_receipt(receipt("nf-receipt", "TTU-XXX-998", 5, 1000))
        .await;
    fx.refused(
        "receipt of an unknown sku",
        result,
        Code::NotFound,
        "TTU-XXX-998",
        before,
        "nf-receipt",
    )
    .await?;

    let before = fx.state().await?;
    let request = mart_proto::v1::ReceiptRequest {
        producer_id: "ikm-nowhere".into(),
        ..receipt("nf-receipt-producer", SKU, 5, 1000)
    };
    let result = fx.mart.record_receipt(request).await;
    fx.refused(
        "receipt from an unknown producer",
        result,
        Code::NotFound,
        "ikm-nowhere",
        before,
        "nf-receipt-producer",
    )
    .await?;

    let before = fx.state().await?;
    let request = AddProductRequest {
        product: Some(product("TTU-SLM-003", "ikm-nowhere")),
    };
    let result = fx.mart.add_product(request).await;
    fx.refused(
        "product of an unknown producer",
        result,
        Code::NotFound,
        "ikm-nowhere",
        before,
        "nf-product",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_exists_for_duplicate_sku_producer_and_reused_request_id() -> Result<()> {
    let mut fx = Fixture::start().await?;

    let before = fx.state().await?;
    let request = AddProductRequest {
        product: Some(product(SKU, "ikm-humusu-wini")),
    };
    let result = fx.mart.add_product(request).await;
    fx.refused(
        "duplicate sku",
        result,
        Code::AlreadyExists,
        SKU,
        before,
        "ae-sku",
    )
    .await?;

    let before = fx.state().await?;
    let request = AddProducerRequest {
        producer: Some(producer("ikm-humusu-wini")),
    };
    let result = fx.mart.add_producer(request).await;
    fx.refused(
        "duplicate producer",
        result,
        Code::AlreadyExists,
        "ikm-humusu-wini",
        before,
        "ae-producer",
    )
    .await?;

    let first = fx
        .mart
        .record_sale(sale("sale-reused", SKU, 1))
        .await?
        .into_inner();
    ensure!(!first.duplicate, "{first:?}");
    let reuses: Vec<(&str, SaleRequest)> = vec![
        (
            "request id reused with another quantity",
            sale("sale-reused", SKU, 2),
        ),
        (
            "request id reused with another sku",
            sale("sale-reused", "NGD-KOP-250", 1),
        ),
        (
            "request id reused with another price",
            SaleRequest {
                unit_price_rupiah: Some(30_000),
                ..sale("sale-reused", SKU, 1)
            },
        ),
        ("receipt id reused for a sale", sale("rcv-fixture", SKU, 1)),
    ];
    for (i, (case, request)) in reuses.into_iter().enumerate() {
        let reused = request.request_id.clone();
        let before = fx.state().await?;
        let result = fx.mart.record_sale(request).await;
        fx.refused(
            case,
            result,
            Code::AlreadyExists,
            &reused,
            before,
            &format!("ae-after-{i}"),
        )
        .await?;
    }

    // The original request is still answered as the first time.
    let again = fx
        .mart
        .record_sale(sale("sale-reused", SKU, 1))
        .await?
        .into_inner();
    ensure!(
        again.duplicate && again.movement_id == "sale-reused",
        "{again:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_precondition_for_a_sale_beyond_stock() -> Result<()> {
    let mut fx = Fixture::start().await?;

    let before = fx.state().await?;
    let result = fx.mart.record_sale(sale("fp-beyond", SKU, STOCK + 1)).await;
    fx.refused(
        "sale of one more than on hand",
        result,
        Code::FailedPrecondition,
        SKU,
        before,
        "fp-beyond",
    )
    .await?;

    let before = fx.state().await?;
    let result = fx.mart.record_sale(sale("fp-none", "KPG-MDU-500", 1)).await;
    fx.refused(
        "sale of a sku never received",
        result,
        Code::FailedPrecondition,
        "KPG-MDU-500",
        before,
        "fp-none",
    )
    .await?;

    // Selling exactly what is on hand is allowed, one more is not.
    let left = on_hand(&mut fx.mart, SKU).await?;
    let ack = fx
        .mart
        .record_sale(sale("fp-all", SKU, left))
        .await?
        .into_inner();
    ensure!(ack.quantity_on_hand == 0, "{ack:?}");
    let before = fx.state().await?;
    let result = fx.mart.record_sale(sale("fp-empty", SKU, 1)).await;
    let status = result.expect_err("a sale from empty stock was accepted");
    ensure!(status.code() == Code::FailedPrecondition, "{status:?}");
    ensure!(
        fx.state().await? == before,
        "a refused sale from empty stock stored something"
    );
    ensure!(on_hand(&mut fx.mart, SKU).await? == 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_exhausted_for_a_request_over_64_kib() -> Result<()> {
    let mut fx = Fixture::start().await?;
    let huge = "x".repeat(70 * 1024);

    let before = fx.state().await?;
    let result = fx.mart.record_sale(sale(&huge, SKU, 1)).await;
    fx.refused(
        "70 KiB sale request",
        result,
        Code::ResourceExhausted,
        "",
        before,
        "re-sale",
    )
    .await?;

    let before = fx.state().await?;
    let oversize = Producer {
        group_name: huge.clone(),
        ..producer("ikm-tenun-insana")
    };
    let result = fx
        .mart
        .add_producer(AddProducerRequest {
            producer: Some(oversize),
        })
        .await;
    fx.refused(
        "70 KiB producer",
        result,
        Code::ResourceExhausted,
        "",
        before,
        "re-producer",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_argument_for_transfers_and_budgets_to_outlets_nobody_knows() -> Result<()> {
    let mut fx = Fixture::start().await?;
    let transfer_out = |request_id: &str, to: &str| TransferOutRequest {
        request_id: request_id.into(),
        transfer_id: format!("tr-{request_id}"),
        sku: SKU.into(),
        quantity: 1,
        to_outlet: to.into(),
    };
    let transfer_in = |request_id: &str, from: &str| TransferInRequest {
        request_id: request_id.into(),
        transfer_id: format!("tr-{request_id}"),
        sku: SKU.into(),
        quantity: 1,
        from_outlet: from.into(),
    };
    let before = fx.state().await?;
    let refused = fx
        .mart
        .record_transfer_out(transfer_out("out-evil", "evil"))
        .await;
    fx.refused(
        "a transfer to an unknown outlet",
        refused,
        Code::InvalidArgument,
        "to_outlet",
        before,
        "sale-after-out-evil",
    )
    .await?;
    let before = fx.state().await?;
    let refused = fx
        .mart
        .record_transfer_in(transfer_in("in-evil", "evil"))
        .await;
    fx.refused(
        "a transfer from an unknown outlet",
        refused,
        Code::InvalidArgument,
        "from_outlet",
        before,
        "sale-after-in-evil",
    )
    .await?;
    // Known outlets: another district and the hub.
    for (id, to) in [("out-sikka", "sikka"), ("out-hub", "kupang")] {
        fx.mart
            .record_transfer_out(transfer_out(id, to))
            .await
            .with_context(|| format!("a transfer to {to}"))?;
    }

    // At the hub: budgets only for the districts it knows, never for itself.
    let hub = NodeProcess::start(NodeSpec::hub("kupang")).await?;
    let mut hub_service = hub.hub_service().await?;
    let mut hub_admin = hub.admin().await?;
    let year = wita_year(now_ms());
    let allocate = |district: &str| AllocateBudgetRequest {
        district: district.into(),
        year,
        amount_rupiah: 50_000_000,
    };
    for (case, district) in [
        ("an unknown district", "evil"),
        ("the hub itself", "kupang"),
    ] {
        let before = StoreState::read(&mut hub_admin).await?;
        let refused = hub_service.allocate_budget(allocate(district)).await;
        match refused {
            Ok(line) => anyhow::bail!("a budget for {case} was accepted: {line:?}"),
            Err(status) => ensure!(
                status.code() == Code::InvalidArgument && status.message().contains("district"),
                "a budget for {case}: {:?} {}",
                status.code(),
                status.message()
            ),
        }
        ensure!(
            StoreState::read(&mut hub_admin).await? == before,
            "a budget for {case} was stored"
        );
    }
    hub_service
        .allocate_budget(allocate("ttu"))
        .await
        .context("a budget for ttu")?;
    Ok(())
}
