//! Authorization bound to identity, and bad input at the hub's sync endpoint
//! (invariants 5 and 8 of the brief), against a real hub over real mutual TLS:
//!
//! - TLS clients with no certificate, a certificate of another CA, or an expired one
//!   cannot open a sync session (and leave no peer behind), while a district does;
//! - a district certificate may not call the store or admin services over TCP; an
//!   operator certificate may, and may not open a sync session;
//! - a raw client holding sikka's valid certificate sends changes it forged with
//!   automerge into ttu's ledger, the provincial catalog, and its own ledger under
//!   another node's actor: each is refused with PERMISSION_DENIED, counted, and
//!   nothing is stored; garbage bundle bytes get INVALID_ARGUMENT; in the same
//!   session a legitimate change of its own ledger is applied and acknowledged;
//! - an oversize message ends that stream with an error while another district
//!   keeps syncing;
//! - a certificate with a node's id but another role (`nttmart://district/kupang` at
//!   the hub, `nttmart://hub/ttu` at ttu) has none of the node's rights;
//! - the hub opens sessions only for the districts of `[hub] districts` (default the
//!   province's 22) and keeps nothing of any other, not even a peer book entry.
//! - sikka's own certificate and actor, in its own ledger, with changes that break
//!   the ledger's schema (and a far-future period of garbage): INVALID_ARGUMENT,
//!   nothing stored; the hub restarts, serves, and keeps syncing with every district.

use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use automerge::transaction::Transactable;
use automerge::{
    ActorId, Automerge, AutomergeError, ChangeHash, ObjType, ReadDoc, ScalarValueRef, ValueRef,
    ROOT,
};
use mart_proto::tonic::transport::ClientTlsConfig;
use mart_proto::tonic::{Code, Status};
use mart_proto::v1::admin_service_client::AdminServiceClient;
use mart_proto::v1::hub_service_client::HubServiceClient;
use mart_proto::v1::mart_service_client::MartServiceClient;
use mart_proto::v1::sync_message::Body;
use mart_proto::v1::{
    AllocateBudgetRequest, Hello, ListPeersRequest, Refused, StatusRequest, StockRequest,
    SyncMessage,
};
use mart_tests::clock::{now_ms, wita_year};
use mart_tests::cluster::{document_heads, free_local_addr, peer_info, Heads};
use mart_tests::ops::{movements_of, open_ledger, receive, stock_of, StoreState};
use mart_tests::pki::{Issue, Pki, Role};
use mart_tests::raw_sync::{bundle, have, hello, hex_heads, RawSession};
use mart_tests::{connect_tls, wait_until, NodeProcess, NodeSpec, TestCluster};

const CONVERGE: Duration = Duration::from_secs(90);
/// The largest sync message the hub reads (1 MiB plus 4 KiB of framing).
const MAX_SYNC_MESSAGE: usize = (1 << 20) + 4096;

/// The automerge actor of `node` in one incarnation, as node/src/domain/actor.rs
/// builds it: `b"nm1"`, the id's length, the id, the incarnation big-endian.
fn actor(node: &str, incarnation: u32) -> ActorId {
    let mut bytes = b"nm1".to_vec();
    bytes.push(node.len() as u8);
    bytes.extend_from_slice(node.as_bytes());
    bytes.extend_from_slice(&incarnation.to_be_bytes());
    ActorId::from(bytes)
}

/// One transaction on `doc`; returns the bundle of the changes made.
fn change(
    doc: &mut Automerge,
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
) -> Result<Vec<u8>> {
    let before = doc.get_heads();
    doc.transact::<_, _, AutomergeError>(|tx| edit(tx))
        .map_err(|f| anyhow!("automerge transaction: {}", f.error))?;
    let new: Vec<ChangeHash> = doc.get_changes(&before).iter().map(|c| c.hash()).collect();
    ensure!(new.len() == 1, "one transaction made {} changes", new.len());
    Ok(doc.bundle(new)?.bytes().to_vec())
}

/// A brand-new ledger document by `author` holding one receipt of 1000 units.
fn forged_ledger(author: ActorId) -> Result<Vec<u8>> {
    let mut doc = Automerge::new().with_actor(author);
    change(&mut doc, |tx| {
        let list = tx.put_object(ROOT, "movements", ObjType::List)?;
        tx.insert(
            &list,
            0,
            r#"{"id":"forged","sku":"TTU-MKP-060","at":0,"k":"rcv","q":1000,"c":0}"#,
        )?;
        Ok(())
    })
}

/// A brand-new document by `author` claiming to be catalog content.
fn forged_catalog(author: ActorId) -> Result<Vec<u8>> {
    let mut doc = Automerge::new().with_actor(author);
    change(&mut doc, |tx| {
        tx.put(ROOT, "forged", "a product nobody approved")?;
        Ok(())
    })
}

/// Appends `movement` (JSON) to the ledger `base` as `author`.
fn append_movement(base: &Automerge, author: ActorId, movement: &str) -> Result<Vec<u8>> {
    let mut doc = base.fork().with_actor(author);
    let list = match doc.get(ROOT, "movements")? {
        Some((_, id)) => id,
        None => bail!("the ledger has no movements list"),
    };
    let end = doc.length(&list);
    change(&mut doc, |tx| {
        tx.insert(&list, end, movement)?;
        Ok(())
    })
}

/// Opens a session and reads the hub's first message.
async fn first_message(url: &str, tls: ClientTlsConfig, node: &str) -> Result<Body> {
    RawSession::open(url, tls, node).await?.next().await
}

/// Waits until the hub holds every head of every district.
async fn converged(cluster: &TestCluster) -> Result<()> {
    cluster.wait_converged(CONVERGE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_district_certificates_open_sync_sessions() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .start()
        .await?;
    converged(&cluster).await?;
    let url = cluster.hub_url();
    let pki = cluster.pki();
    let ttu = cluster.tls_of("ttu");

    // Each impostor claims a district the hub has never seen, so a session that
    // opened would leave that peer in the hub's book.
    let other_ca = Pki::init()?;
    let foreign = other_ca
        .issue("rote", Role::District, &[])?
        .trusting(&pki.ca_cert());
    let expired = pki.issue_with(
        "alor",
        Role::District,
        Issue {
            not_before: Some("2020-01-01"),
            not_after: Some("2020-12-31"),
            ..Issue::default()
        },
    )?;
    // The alert the hub's TLS answers each with (another CA's certificate fails its
    // signature check, or is of an unknown issuer).
    let cases = [
        (
            "no client certificate",
            ttu.client_without_certificate()?,
            "sabu",
            &["CertificateRequired"][..],
        ),
        (
            "a certificate of another CA",
            foreign.client()?,
            "rote",
            &["DecryptError", "UnknownCA", "BadCertificate"][..],
        ),
        (
            "an expired certificate",
            expired.client()?,
            "alor",
            &["CertificateExpired"][..],
        ),
    ];
    for (case, tls, claimed, alerts) in cases {
        match first_message(&url, tls, claimed).await {
            Ok(body) => bail!("{case}: the hub opened a session and sent {body:?}"),
            Err(e) => {
                // Refused by TLS, not by a handler: a transport error. With TLS 1.3
                // the client may see the hub's alert or only the connection close;
                // an alert it sees must be the right one.
                let error = format!("{e:#}");
                println!("{case}: {error}");
                if let Some(status) = e.downcast_ref::<Status>() {
                    ensure!(
                        matches!(
                            status.code(),
                            Code::Unknown | Code::Cancelled | Code::Unavailable
                        ) && error.contains("transport error"),
                        "{case}: refused by the service rather than by TLS: {error}"
                    );
                }
                if let Some((_, alert)) = error.split_once("received fatal alert: ") {
                    ensure!(
                        alerts.iter().any(|a| alert.starts_with(a)),
                        "{case}: the hub's TLS alert is not one of {alerts:?}: {error}"
                    );
                }
            }
        }
    }
    // An operator certificate is valid, but not for sync.
    let operator = pki.issue("ops-kupang", Role::Operator, &[])?;
    match RawSession::open(&url, operator.client()?, "ops-kupang").await {
        Ok(_) => bail!("an operator certificate opened a sync session"),
        Err(e) => ensure!(
            e.downcast_ref::<Status>()
                .is_some_and(|s| s.code() == Code::PermissionDenied),
            "an operator's session was refused with the wrong error: {e:#}"
        ),
    }

    let mut hub_admin = cluster.admin(cluster.hub_id()).await?;
    for id in ["sabu", "rote", "alor", "ops-kupang"] {
        let listed = hub_admin
            .list_peers(ListPeersRequest { peer_id: id.into() })
            .await;
        ensure!(
            matches!(&listed, Err(s) if s.code() == Code::NotFound),
            "the hub lists a peer {id} after refusing it: {listed:?}"
        );
    }

    // The hub still serves districts: ttu's certificate opens a session, and the
    // real ttu's sales still reach the hub.
    match first_message(&url, ttu.client()?, "ttu").await? {
        Body::Hello(h) => ensure!(h.node_id == cluster.hub_id(), "{h:?}"),
        other => bail!("a valid session began with {other:?}"),
    }
    let mut mart = cluster.mart("ttu").await?;
    receive(&mut mart, "rcv-after-impostors", "TTU-MKP-060", 5).await?;
    converged(&cluster).await?;
    let at_hub = movements_of(&mut cluster.mart(cluster.hub_id()).await?, "ttu").await?;
    ensure!(at_hub.iter().any(|m| m.id == "rcv-after-impostors"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_admin_over_tcp_need_an_operator_certificate() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .start()
        .await?;
    receive(&mut cluster.mart("ttu").await?, "rcv-1", "TTU-MKP-060", 7).await?;
    converged(&cluster).await?;
    let url = cluster.hub_url();
    let stock = StockRequest {
        sku: String::new(),
        outlet: "ttu".into(),
    };

    let district = connect_tls(&url, cluster.tls_of("ttu").client()?).await?;
    let refused = MartServiceClient::new(district.clone())
        .get_stock(stock.clone())
        .await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == Code::PermissionDenied),
        "a district certificate read the hub's stock: {refused:?}"
    );
    let refused = MartServiceClient::new(district.clone())
        .record_sale(mart_tests::ops::sale("forged-sale", "TTU-MKP-060", 1))
        .await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == Code::PermissionDenied),
        "a district certificate recorded a sale at the hub: {refused:?}"
    );
    let refused = AdminServiceClient::new(district)
        .status(StatusRequest {})
        .await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == Code::PermissionDenied),
        "a district certificate called the hub's admin service: {refused:?}"
    );
    ensure!(
        movements_of(&mut cluster.mart(cluster.hub_id()).await?, "")
            .await?
            .is_empty(),
        "the hub's own ledger changed"
    );

    let operator = cluster.pki().issue("ops-kupang", Role::Operator, &[])?;
    let channel = connect_tls(&url, operator.client()?).await?;
    let levels = MartServiceClient::new(channel.clone())
        .get_stock(stock)
        .await
        .context("GetStock with an operator certificate")?
        .into_inner()
        .levels;
    ensure!(
        levels.len() == 1 && levels[0].sku == "TTU-MKP-060" && levels[0].quantity == 7,
        "{levels:?}"
    );
    let status = AdminServiceClient::new(channel)
        .status(StatusRequest {})
        .await
        .context("Status with an operator certificate")?
        .into_inner();
    ensure!(status.node_id == cluster.hub_id() && status.role == "hub");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_bundles_are_refused_and_the_session_goes_on() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .district("sikka")
        .start()
        .await?;
    let hub = cluster.hub_id().to_string();
    receive(
        &mut cluster.mart("ttu").await?,
        "rcv-ttu",
        "TTU-MKP-060",
        50,
    )
    .await?;
    receive(
        &mut cluster.mart("sikka").await?,
        "rcv-sikka",
        "SKA-MET-250",
        40,
    )
    .await?;
    converged(&cluster).await?;
    // The open period of each district's ledger, as the districts name it.
    let ttu_ledger = open_ledger(&mut cluster.admin("ttu").await?).await?;
    let sikka_ledger = open_ledger(&mut cluster.admin("sikka").await?).await?;
    let (ttu_ledger, sikka_ledger) = (ttu_ledger.as_str(), sikka_ledger.as_str());
    // From here on the test speaks for sikka; the real sikka stays off the link.
    cluster.cut("sikka");
    let mut hub_admin = cluster.admin(&hub).await?;
    let mut hub_mart = cluster.mart(&hub).await?;
    wait_until("the hub sees sikka gone", CONVERGE, || {
        let mut admin = hub_admin.clone();
        async move { Ok(!peer_info(&mut admin, "sikka").await?.connected) }
    })
    .await?;
    let refusals_before = peer_info(&mut hub_admin, "sikka").await?.refusals;
    let before: Heads = document_heads(&mut hub_admin).await?;

    let mut raw = RawSession::open(
        &cluster.hub_url(),
        cluster.tls_of("sikka").client()?,
        "sikka",
    )
    .await?;
    // The hub opens with Hello, then its heads of what it shares with sikka.
    match raw.next().await? {
        Body::Hello(h) => ensure!(h.node_id == hub, "{h:?}"),
        other => bail!("the session began with {other:?}"),
    }
    let mirror = raw.fetch(sikka_ledger, &before[sikka_ledger]).await?;

    // Forgeries: other owners' documents, and sikka's own under other actors.
    let forgeries = [
        (
            ttu_ledger,
            "sikka writes ttu's ledger",
            forged_ledger(actor("sikka", 1))?,
        ),
        (
            ttu_ledger,
            "sikka writes ttu's ledger as ttu",
            forged_ledger(actor("ttu", 77))?,
        ),
        (
            "catalog/province",
            "sikka edits the provincial catalog",
            forged_catalog(actor("sikka", 1))?,
        ),
        (
            "catalog/province",
            "sikka edits the catalog as the hub",
            forged_catalog(actor(&hub, 77))?,
        ),
        (
            sikka_ledger,
            "ttu's actor in sikka's ledger",
            append_movement(
                &mirror,
                actor("ttu", 3),
                r#"{"id":"by-ttu","sku":"SKA-MET-250","at":0,"k":"rcv","q":5,"c":0}"#,
            )?,
        ),
        (
            sikka_ledger,
            "a foreign actor in sikka's ledger",
            append_movement(
                &mirror,
                ActorId::random(),
                r#"{"id":"by-nobody","sku":"SKA-MET-250","at":0,"k":"rcv","q":5,"c":0}"#,
            )?,
        ),
    ];
    for (doc, case, data) in forgeries {
        raw.send(bundle(doc, data, 1)).await?;
        match raw.answer(doc, &before[doc]).await? {
            Body::Refused(Refused { code, message, .. }) => ensure!(
                code == Code::PermissionDenied as i32,
                "{case}: refused with code {code} ({message}), expected PERMISSION_DENIED"
            ),
            other => bail!("{case}: the hub accepted it: {other:?}"),
        }
        ensure!(
            document_heads(&mut hub_admin).await? == before,
            "{case}: the hub's documents changed"
        );
    }

    // Garbage where a bundle belongs: INVALID_ARGUMENT, nothing stored.
    raw.send(bundle(
        sikka_ledger,
        b"\x85\x6f\x4a\x83 not automerge".to_vec(),
        1,
    ))
    .await?;
    match raw.answer(sikka_ledger, &before[sikka_ledger]).await? {
        Body::Refused(Refused { code, message, .. }) => ensure!(
            code == Code::InvalidArgument as i32,
            "garbage refused with code {code} ({message}), expected INVALID_ARGUMENT"
        ),
        other => bail!("garbage bytes were accepted: {other:?}"),
    }
    ensure!(document_heads(&mut hub_admin).await? == before);
    let refusals = peer_info(&mut hub_admin, "sikka").await?.refusals - refusals_before;
    ensure!(
        refusals == 7,
        "the hub counted {refusals} refusals of sikka, expected 7"
    );

    // The same session still carries sikka's own, legitimate change: a receipt by
    // a later incarnation of sikka, acknowledged with the new heads.
    let list = match mirror.get(ROOT, "movements")? {
        Some((_, list)) => list,
        None => bail!("sikka's ledger has no movements list"),
    };
    let template = match mirror.list_range(&list, ..).last().map(|item| item.value) {
        Some(ValueRef::Scalar(ScalarValueRef::Str(json))) => json.to_string(),
        other => bail!("sikka's last movement is {other:?}"),
    };
    let mut receipt: serde_json::Value =
        serde_json::from_str(&template).with_context(|| format!("movement JSON {template}"))?;
    receipt["id"] = "raw-receipt".into();
    let legit = append_movement(&mirror, actor("sikka", 999), &receipt.to_string())?;
    let mut expected = mirror.clone();
    expected.load_incremental(&legit)?;
    raw.send(bundle(sikka_ledger, legit, 1)).await?;
    match raw.answer(sikka_ledger, &before[sikka_ledger]).await? {
        Body::Have(h) => {
            let heads: Vec<ChangeHash> = h
                .heads
                .iter()
                .map(|b| ChangeHash::try_from(b.as_slice()))
                .collect::<Result<_, _>>()?;
            ensure!(hex_heads(&heads) == hex_heads(&expected.get_heads()));
        }
        other => bail!("sikka's own change was not acknowledged: {other:?}"),
    }
    let after = document_heads(&mut hub_admin).await?;
    ensure!(after[sikka_ledger] == hex_heads(&expected.get_heads()));
    for doc in [
        ttu_ledger,
        "catalog/province",
        "catalog/ttu",
        "catalog/sikka",
    ] {
        ensure!(after[doc] == before[doc], "{doc} changed at the hub");
    }
    let at_hub = movements_of(&mut hub_mart, "sikka").await?;
    ensure!(
        at_hub.iter().map(|m| m.id.as_str()).collect::<Vec<_>>() == ["rcv-sikka", "raw-receipt"],
        "the hub's movements of sikka: {at_hub:?}"
    );
    ensure!(stock_of(&mut hub_mart, "sikka").await?["SKA-MET-250"] == 80);

    // The real sikka, back on the link, receives the change the hub accepted for it.
    cluster.heal("sikka");
    converged(&cluster).await?;
    let at_sikka = movements_of(&mut cluster.mart("sikka").await?, "").await?;
    ensure!(
        at_sikka.iter().any(|m| m.id == "raw-receipt"),
        "{at_sikka:?}"
    );
    Ok(())
}

/// Issue 10, item 3: a district sends, in its own ledger and under its own actor, a
/// receipt of `i64::MAX` units (and other movements no rule allows). The hub refuses
/// each with a reason naming the rule, its figures of the district do not wrap, and
/// it keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_movements_in_a_districts_own_ledger_are_refused_at_the_hub() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .start()
        .await?;
    let hub = cluster.hub_id().to_string();
    let mut ttu_mart = cluster.mart("ttu").await?;
    receive(&mut ttu_mart, "rcv-ttu", "TTU-MKP-060", 50).await?;
    converged(&cluster).await?;
    let ttu_ledger = open_ledger(&mut cluster.admin("ttu").await?).await?;
    let ttu_ledger = ttu_ledger.as_str();
    cluster.cut("ttu");
    let mut hub_admin = cluster.admin(&hub).await?;
    let mut hub_mart = cluster.mart(&hub).await?;
    wait_until("the hub sees ttu gone", CONVERGE, || {
        let mut admin = hub_admin.clone();
        async move { Ok(!peer_info(&mut admin, "ttu").await?.connected) }
    })
    .await?;
    let before: Heads = document_heads(&mut hub_admin).await?;

    let mut raw =
        RawSession::open(&cluster.hub_url(), cluster.tls_of("ttu").client()?, "ttu").await?;
    match raw.next().await? {
        Body::Hello(h) => ensure!(h.node_id == hub, "{h:?}"),
        other => bail!("the session began with {other:?}"),
    }
    raw.send(have(ttu_ledger, &[])).await?;
    let mut mirror = Automerge::new();
    while hex_heads(&mirror.get_heads()) != before[ttu_ledger] {
        match raw.next().await? {
            Body::Bundle(b) if b.doc_id == ttu_ledger => {
                mirror.load_incremental(&b.data)?;
            }
            Body::Have(_) | Body::Announced(_) => {}
            other => bail!("unexpected while fetching {ttu_ledger}: {other:?}"),
        }
    }
    let absurd = [
        (
            "a receipt of i64::MAX",
            r#"{"id":"huge","sku":"TTU-MKP-060","at":0,"k":"rcv","q":9223372036854775807,"c":0}"#,
        ),
        (
            "an adjustment of i64::MIN",
            r#"{"id":"min","sku":"TTU-MKP-060","at":0,"k":"adj","q":-9223372036854775808,"r":"count"}"#,
        ),
        (
            "a sale of more than is on hand",
            r#"{"id":"oversold","sku":"TTU-MKP-060","at":0,"k":"sal","q":51,"p":1,"ch":"store","b":"public"}"#,
        ),
        (
            "a receipt at Rp 10^12 a unit",
            r#"{"id":"dear","sku":"TTU-MKP-060","at":0,"k":"rcv","q":1,"c":1000000000000}"#,
        ),
    ];
    // Each from a new incarnation of ttu, as a restarted node would write.
    for ((case, movement), incarnation) in absurd.into_iter().zip(900..) {
        let data = append_movement(&mirror, actor("ttu", incarnation), movement)?;
        raw.send(bundle(ttu_ledger, data, 1)).await?;
        match raw.answer(ttu_ledger, &before[ttu_ledger]).await? {
            Body::Refused(Refused { message, .. }) => ensure!(
                message.contains("quantity")
                    || message.contains("stock")
                    || message.contains("unit_cost"),
                "{case}: refused, but the reason does not name the rule: {message}"
            ),
            other => bail!("{case}: the hub accepted it: {other:?}"),
        }
        ensure!(
            stock_of(&mut hub_mart, "ttu").await?["TTU-MKP-060"] == 50,
            "{case}: the hub's stock of ttu changed"
        );
    }
    // The hub keeps serving, holds nothing of what it refused, and its figures of
    // ttu are whole.
    hub_admin.status(StatusRequest {}).await?;
    ensure!(
        document_heads(&mut hub_admin).await? == before,
        "the hub kept something of the refused bundles"
    );
    let stock = stock_of(&mut hub_mart, "ttu").await?;
    ensure!(stock.values().all(|q| *q >= 0), "{stock:?}");
    // Back on its link, ttu gets nothing of them relayed and stays in step.
    drop(raw);
    cluster.heal("ttu");
    converged(&cluster).await?;
    let at_ttu = open_ledger(&mut cluster.admin("ttu").await?).await?;
    ensure!(at_ttu == ttu_ledger, "ttu's open period moved to {at_ttu}");
    ensure!(
        document_heads(&mut cluster.admin("ttu").await?).await?[ttu_ledger] == before[ttu_ledger],
        "ttu's ledger changed"
    );
    Ok(())
}

/// Whether `end` is an error status with `code`.
fn ended_with(end: &Option<Status>, code: Code) -> bool {
    end.as_ref().is_some_and(|s| s.code() == code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_ends_only_that_stream_with_an_error() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .district("sikka")
        .start()
        .await?;
    converged(&cluster).await?;
    let sikka_ledger = open_ledger(&mut cluster.admin("sikka").await?).await?;
    // The test speaks for sikka; the real sikka stays off the link.
    cluster.cut("sikka");
    let mut hub_admin = cluster.admin(cluster.hub_id()).await?;
    let before = document_heads(&mut hub_admin).await?;
    let url = cluster.hub_url();
    let sikka = cluster.tls_of("sikka");

    let mut raw = RawSession::open(&url, sikka.client()?, "sikka").await?;
    raw.send(bundle(&sikka_ledger, vec![0u8; MAX_SYNC_MESSAGE + 4096], 1))
        .await?;
    let end = raw.end().await?;
    println!("an oversize message ended the stream with {end:?}");

    // Only that stream ended: ttu keeps syncing, and a new session opens.
    receive(
        &mut cluster.mart("ttu").await?,
        "rcv-after-oversize",
        "TTU-MKP-060",
        3,
    )
    .await?;
    cluster.heal("sikka");
    converged(&cluster).await?;
    let at_hub = movements_of(&mut cluster.mart(cluster.hub_id()).await?, "ttu").await?;
    ensure!(at_hub.iter().any(|m| m.id == "rcv-after-oversize"));
    let after = document_heads(&mut hub_admin).await?;
    ensure!(
        after[&sikka_ledger] == before[&sikka_ledger],
        "sikka's ledger changed"
    );
    match first_message(&url, sikka.client()?, "sikka").await? {
        Body::Hello(_) => {}
        other => bail!("a new session began with {other:?}"),
    }
    ensure!(
        ended_with(&end, Code::ResourceExhausted),
        "a {} byte sync message (limit {MAX_SYNC_MESSAGE}) should end the stream with \
         RESOURCE_EXHAUSTED, as oversize store requests do; it ended with {end:?} \
         (None: a clean end, the client cannot tell why)",
        MAX_SYNC_MESSAGE + 4096
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_breaks_the_protocol_ends_with_the_right_code() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .district("sikka")
        .start()
        .await?;
    converged(&cluster).await?;
    let sikka_ledger = open_ledger(&mut cluster.admin("sikka").await?).await?;
    cluster.cut("sikka");
    let url = cluster.hub_url();
    let sikka = cluster.tls_of("sikka");
    let cases = [
        (
            "a first message that is not hello",
            have(&sikka_ledger, &[]),
            Code::InvalidArgument,
        ),
        (
            "sikka's certificate saying hello as ttu",
            hello("ttu"),
            Code::PermissionDenied,
        ),
        (
            "protocol version 3",
            SyncMessage {
                body: Some(Body::Hello(Hello {
                    node_id: "sikka".into(),
                    protocol: 3,
                    ..Hello::default()
                })),
            },
            Code::FailedPrecondition,
        ),
    ];
    let mut wrong = Vec::new();
    for (case, first, code) in cases {
        let end = match RawSession::open_with(&url, sikka.client()?, first).await {
            // Refused before the session opened.
            Err(e) => match e.downcast_ref::<Status>() {
                Some(status) => Some(status.clone()),
                None => bail!("{case}: {e:#}"),
            },
            Ok(mut raw) => raw.end().await?,
        };
        println!("{case}: {end:?}");
        if !ended_with(&end, code) {
            wrong.push(format!("{case}: expected {code:?}, got {end:?}"));
        }
    }
    // A second hello in an open session (it would renegotiate the version and the
    // clock) ends it.
    let mut raw = RawSession::open_with(&url, sikka.client()?, hello("sikka")).await?;
    raw.send(hello("sikka")).await?;
    let end = raw.end().await?;
    println!("a second hello: {end:?}");
    if !ended_with(&end, Code::InvalidArgument) {
        wrong.push(format!(
            "a second hello: expected InvalidArgument, got {end:?}"
        ));
    }
    // The hub still serves ttu.
    receive(
        &mut cluster.mart("ttu").await?,
        "rcv-after",
        "TTU-MKP-060",
        3,
    )
    .await?;
    cluster.heal("sikka");
    converged(&cluster).await?;
    ensure!(wrong.is_empty(), "wrong endings: {wrong:#?}");
    Ok(())
}

/// Issue 10, item 6: a peer on a newer build. One that speaks only protocol 3 is
/// refused with FAILED_PRECONDITION naming both ranges, and the hub's peer state says
/// so; one that speaks 1..=2 speaks 2 (paced bundles), one that speaks 1..=1 and an
/// old-style `protocol = 1` peer (no range) are accepted as before and speak 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_on_another_protocol_range_meets_on_a_common_version_or_is_told_why() -> Result<()> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("sikka")
        .start()
        .await?;
    converged(&cluster).await?;
    cluster.cut("sikka");
    // The real sikka's session has ended (and said why) before the raw client's.
    let mut hub_admin = cluster.admin("kupang").await?;
    wait_until("the hub sees sikka's session end", CONVERGE, || {
        let mut admin = hub_admin.clone();
        async move {
            let state = peer_info(&mut admin, "sikka").await?;
            Ok(!state.connected && !state.last_error.is_empty())
        }
    })
    .await?;
    let url = cluster.hub_url();
    let sikka = cluster.tls_of("sikka");
    let ranged = |min: u32, max: u32| SyncMessage {
        body: Some(Body::Hello(Hello {
            node_id: "sikka".into(),
            protocol: min,
            protocol_min: min,
            protocol_max: max,
            ..Hello::default()
        })),
    };

    let mut raw = RawSession::open_with(&url, sikka.client()?, ranged(3, 3)).await?;
    let end = raw.end().await?;
    ensure!(
        ended_with(&end, Code::FailedPrecondition),
        "protocol 3 only: ended with {end:?}"
    );
    let message = end.map(|s| s.message().to_string()).unwrap_or_default();
    ensure!(
        message.contains("sikka speaks protocol 3")
            && message.contains("kupang speaks protocols 1..=2"),
        "the refusal does not name both ranges: {message}"
    );
    let state = peer_info(&mut hub_admin, "sikka").await?;
    ensure!(
        state
            .last_error
            .contains("no sync protocol version in common"),
        "the hub's peer state: {:?}",
        state.last_error
    );

    for (case, first, speaks) in [
        ("1..=2", ranged(1, 2), 2),
        ("1..=1", ranged(1, 1), 1),
        ("old-style 1", hello("sikka"), 1),
    ] {
        let mut raw = RawSession::open_with(&url, sikka.client()?, first).await?;
        match raw.next().await.with_context(|| case.to_string())? {
            Body::Hello(h) => ensure!(
                (h.protocol, h.protocol_min, h.protocol_max) == (1, 1, 2) && h.sent_at_unix_ms > 0,
                "{case}: the hub said {h:?}"
            ),
            other => anyhow::bail!("{case}: the hub began with {other:?}"),
        }
        let state = peer_info(&mut hub_admin, "sikka").await?;
        ensure!(
            state.protocol == speaks,
            "{case}: speaks {}",
            state.protocol
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_with_a_nodes_id_but_another_role_has_none_of_its_rights() -> Result<()> {
    let cluster = TestCluster::builder().hub("kupang").start().await?;
    let pki = cluster.pki();
    let ttu = NodeProcess::start(
        NodeSpec::district("ttu", "kupang")
            .with_grpc_listen(free_local_addr()?)
            .with_tls(pki.issue("ttu", Role::District, &["localhost"])?),
    )
    .await?;
    let ttu_url = format!(
        "https://localhost:{}",
        ttu.grpc_addr().context("ttu serves TCP")?.port()
    );
    let mut hub_admin = cluster.admin(cluster.hub_id()).await?;
    let mut ttu_admin = ttu.admin().await?;
    let hub_before = StoreState::read(&mut hub_admin).await?;
    let ttu_before = StoreState::read(&mut ttu_admin).await?;
    let denied = |case: &str, result: Result<(), Status>| -> Result<()> {
        match result {
            Ok(()) => bail!("{case}: accepted"),
            Err(s) => ensure!(
                s.code() == Code::PermissionDenied,
                "{case}: {:?} {}",
                s.code(),
                s.message()
            ),
        }
        Ok(())
    };

    // nttmart://district/kupang at the hub kupang.
    let channel = connect_tls(
        &cluster.hub_url(),
        pki.issue("kupang", Role::District, &[])?.client()?,
    )
    .await?;
    let budget = HubServiceClient::new(channel.clone())
        .allocate_budget(AllocateBudgetRequest {
            district: "ttu".into(),
            year: wita_year(now_ms()),
            amount_rupiah: 1_000_000_000,
        })
        .await;
    denied(
        "a district certificate named kupang allocates a budget at the hub",
        budget.map(|_| ()),
    )?;
    let receipt = MartServiceClient::new(channel)
        .record_receipt(mart_tests::ops::receipt("forged", "TTU-MKP-060", 5, 1))
        .await;
    denied(
        "a district certificate named kupang records a receipt at the hub",
        receipt.map(|_| ()),
    )?;

    // nttmart://hub/ttu at the district ttu.
    let channel = connect_tls(&ttu_url, pki.issue("ttu", Role::Hub, &[])?.client()?).await?;
    let sale = MartServiceClient::new(channel.clone())
        .record_receipt(mart_tests::ops::receipt("forged", "TTU-MKP-060", 5, 1))
        .await;
    denied(
        "a hub certificate named ttu records a receipt at ttu",
        sale.map(|_| ()),
    )?;
    let status = AdminServiceClient::new(channel)
        .status(StatusRequest {})
        .await;
    denied(
        "a hub certificate named ttu calls ttu's admin service",
        status.map(|_| ()),
    )?;
    ensure!(StoreState::read(&mut hub_admin).await? == hub_before);
    ensure!(StoreState::read(&mut ttu_admin).await? == ttu_before);

    // Each node's own certificate keeps its rights.
    let own = connect_tls(
        &ttu_url,
        cluster.pki().issue("ttu", Role::District, &[])?.client()?,
    )
    .await?;
    AdminServiceClient::new(own)
        .status(StatusRequest {})
        .await
        .context("ttu's own certificate calls ttu's admin service")?;
    let own = connect_tls(&cluster.hub_url(), cluster.tls_of("kupang").client()?).await?;
    AdminServiceClient::new(own)
        .status(StatusRequest {})
        .await
        .context("the hub's own certificate calls its admin service")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_refuses_a_district_it_does_not_know_and_keeps_nothing_of_it() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .start()
        .await?;
    converged(&cluster).await?;
    let hub = cluster.hub_id().to_string();
    let evil = cluster.pki().issue("evil", Role::District, &[])?;
    let before = document_heads(&mut cluster.admin(&hub).await?).await?;
    match RawSession::open(&cluster.hub_url(), evil.client()?, "evil").await {
        Ok(_) => bail!("the hub opened a sync session for evil, a district it does not know"),
        Err(e) => ensure!(
            e.downcast_ref::<Status>()
                .is_some_and(|s| s.code() == Code::PermissionDenied
                    && s.message().contains("evil")),
            "evil's session was refused with the wrong error: {e:#}"
        ),
    }
    // Nothing of evil at the hub, then or after a restart (the peer book is on disk).
    for when in ["at once", "after a restart"] {
        if when == "after a restart" {
            cluster.restart(&hub).await?;
        }
        let mut admin = cluster.admin(&hub).await?;
        let listed = admin
            .list_peers(ListPeersRequest {
                peer_id: "evil".into(),
            })
            .await;
        ensure!(
            matches!(&listed, Err(s) if s.code() == Code::NotFound),
            "{when}: the hub lists a peer evil: {listed:?}"
        );
        let docs = document_heads(&mut admin).await?;
        ensure!(
            !docs.keys().any(|d| d.contains("evil")),
            "{when}: the hub holds a document of evil: {docs:?}"
        );
        ensure!(docs == before, "{when}: the hub's documents changed");
    }
    // ttu, which the hub knows, still syncs.
    receive(
        &mut cluster.mart("ttu").await?,
        "rcv-after-evil",
        "TTU-MKP-060",
        2,
    )
    .await?;
    converged(&cluster).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_knows_exactly_the_districts_its_config_lists() -> Result<()> {
    let pki = Pki::init()?;
    let hub = NodeProcess::start(
        NodeSpec::hub("kupang")
            .with_grpc_listen(free_local_addr()?)
            .with_tls(pki.issue("kupang", Role::Hub, &["localhost"])?)
            .with_districts(&["ttu", "evil"]),
    )
    .await?;
    let url = format!(
        "https://localhost:{}",
        hub.grpc_addr().context("the hub serves TCP")?.port()
    );
    // A district outside the province's 22, listed: welcome.
    let evil = pki.issue("evil", Role::District, &[])?;
    match first_message(&url, evil.client()?, "evil").await? {
        Body::Hello(h) => ensure!(h.node_id == "kupang", "{h:?}"),
        other => bail!("evil's session began with {other:?}"),
    }
    // One of the 22, not listed: refused.
    let sikka = pki.issue("sikka", Role::District, &[])?;
    match RawSession::open(&url, sikka.client()?, "sikka").await {
        Ok(_) => bail!("the hub opened a session for sikka, which its config does not list"),
        Err(e) => ensure!(
            e.downcast_ref::<Status>()
                .is_some_and(|s| s.code() == Code::PermissionDenied),
            "sikka was refused with the wrong error: {e:#}"
        ),
    }
    let listed = hub
        .admin()
        .await?
        .list_peers(ListPeersRequest {
            peer_id: "sikka".into(),
        })
        .await;
    ensure!(
        matches!(&listed, Err(s) if s.code() == Code::NotFound),
        "the hub lists sikka: {listed:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_breaking_bundle_from_its_owner_is_refused_and_the_hub_restarts() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .district("sikka")
        .start()
        .await?;
    let hub = cluster.hub_id().to_string();
    receive(
        &mut cluster.mart("sikka").await?,
        "rcv-sikka",
        "SKA-MET-250",
        40,
    )
    .await?;
    converged(&cluster).await?;
    let sikka_ledger = open_ledger(&mut cluster.admin("sikka").await?).await?;
    let future = "ledger/sikka/2099-12";
    // The test speaks for sikka, with sikka's own certificate and actor.
    cluster.cut("sikka");
    let mut hub_admin = cluster.admin(&hub).await?;
    wait_until("the hub sees sikka gone", CONVERGE, || {
        let mut admin = hub_admin.clone();
        async move { Ok(!peer_info(&mut admin, "sikka").await?.connected) }
    })
    .await?;
    let before: Heads = document_heads(&mut hub_admin).await?;
    let mut raw = RawSession::open(
        &cluster.hub_url(),
        cluster.tls_of("sikka").client()?,
        "sikka",
    )
    .await?;
    match raw.next().await? {
        Body::Hello(h) => ensure!(h.node_id == hub, "{h:?}"),
        other => bail!("the session began with {other:?}"),
    }
    let mirror = raw.fetch(&sikka_ledger, &before[&sikka_ledger]).await?;
    let author = actor("sikka", 4242);
    let mut retyped = mirror.fork().with_actor(author.clone());
    let mut garbage_period = Automerge::new().with_actor(author.clone());
    let breaks = [
        (
            sikka_ledger.as_str(),
            "a movement that is not movement JSON",
            append_movement(&mirror, author.clone(), r#"{"not":"a movement"}"#)?,
        ),
        (
            sikka_ledger.as_str(),
            "movements of the wrong type",
            change(&mut retyped, |tx| tx.put(ROOT, "movements", 5_i64))?,
        ),
        (
            future,
            "a far-future period with garbage balances",
            change(&mut garbage_period, |tx| {
                tx.put_object(ROOT, "movements", ObjType::List)?;
                tx.put(ROOT, "opening", "garbage")
            })?,
        ),
    ];
    for (doc, case, data) in breaks {
        println!("{case}: {} bytes", data.len());
        raw.send(bundle(doc, data, 1)).await?;
        let known = before.get(doc).cloned().unwrap_or_default();
        match raw.answer(doc, &known).await? {
            Body::Refused(Refused { code, message, .. }) => ensure!(
                code == Code::InvalidArgument as i32 && message.contains("nothing stored"),
                "{case}: refused with code {code} ({message}), expected INVALID_ARGUMENT"
            ),
            other => bail!("{case}: the hub accepted it: {other:?}"),
        }
        ensure!(
            document_heads(&mut hub_admin).await? == before,
            "{case}: the hub's documents changed"
        );
    }
    drop(raw);

    // The hub starts again on the same disk, holds what it held, and syncs on.
    cluster.restart(&hub).await?;
    let mut hub_admin = cluster.admin(&hub).await?;
    ensure!(
        document_heads(&mut hub_admin).await? == before,
        "the restarted hub holds other documents"
    );
    cluster.heal("sikka");
    receive(
        &mut cluster.mart("sikka").await?,
        "rcv-sikka-2",
        "SKA-MET-250",
        2,
    )
    .await?;
    receive(
        &mut cluster.mart("ttu").await?,
        "rcv-ttu-2",
        "TTU-MKP-060",
        3,
    )
    .await?;
    converged(&cluster).await?;
    let mut hub_mart = cluster.mart(&hub).await?;
    ensure!(stock_of(&mut hub_mart, "sikka").await?["SKA-MET-250"] == 42);
    ensure!(stock_of(&mut hub_mart, "ttu").await?["TTU-MKP-060"] == 3);
    ensure!(!document_heads(&mut hub_admin).await?.contains_key(future));
    Ok(())
}
