//! TLS 1.3 session resumption between real processes (issue 12): a district that
//! reconnects to the same hub resumes its session; a resumed session keeps the
//! identity of the full handshake it descends from, whatever certificate the
//! client holds by then; a ticket the hub does not know (it restarted) or of
//! another hub costs a full handshake and the link still comes back. (A ticket
//! older than its lifetime is refused by the hub's cache: see the node's unit
//! tests `sync::tls_dial_tests`, whose clock can be moved a day on.)

use std::time::Duration;

use anyhow::{ensure, Result};
use mart_node::sync::dial::certificate_refusal;
use mart_node::sync::tls_dial::{ticket_store, HubConnector};
use mart_proto::tonic::Code;
use mart_proto::v1::sync_message::Body;
use mart_tests::cluster::{free_local_addr, peer_info};
use mart_tests::ops::{receive, sell};
use mart_tests::pki::Role;
use mart_tests::raw_sync::{hello, RawSession};
use mart_tests::tls_client::{hub_config, SwitchableIdentity};
use mart_tests::{wait_until, NodeProcess, NodeSpec, TestCluster};

const WAIT: Duration = Duration::from_secs(90);
const SKU: &str = "TTU-MKP-060";

/// How many of the district's connects to the hub had a handshake of `kind`
/// ("full" or "resumed"), from its log.
fn connects(cluster: &TestCluster, district: &str, kind: &str) -> usize {
    cluster
        .node(district)
        .stderr()
        .lines()
        .filter(|l| l.contains("connected to the hub") && l.contains(&format!("tls={kind}")))
        .count()
}

/// Waits until the district has connected `n` times with a `kind` handshake.
async fn wait_connects(cluster: &TestCluster, district: &str, kind: &str, n: usize) -> Result<()> {
    wait_until(
        &format!("{district} connected {n} times with a {kind} tls handshake"),
        WAIT,
        || async { Ok(connects(cluster, district, kind) >= n) },
    )
    .await
}

/// Cuts the district's link and heals it once the district has seen it dropped.
async fn drop_link(cluster: &TestCluster, district: &str) -> Result<()> {
    let connections = cluster.proxy(district).connections();
    cluster.cut(district);
    wait_until("the district sees its link down", WAIT, || async {
        let mut admin = cluster.admin(district).await?;
        Ok(!peer_info(&mut admin, cluster.hub_id()).await?.connected)
    })
    .await?;
    cluster.heal(district);
    wait_until("the district redials", WAIT, || async {
        Ok(cluster.proxy(district).connections() > connections)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_resumes_and_a_restarted_hub_costs_one_full_handshake() -> Result<()> {
    let mut cluster = TestCluster::builder().district("ttu").start().await?;
    let mut ttu = cluster.mart("ttu").await?;
    receive(&mut ttu, "stock", SKU, 10).await?;
    cluster.wait_converged(WAIT).await?;
    wait_connects(&cluster, "ttu", "full", 1).await?;
    ensure!(
        connects(&cluster, "ttu", "resumed") == 0,
        "resumed before any ticket"
    );

    // A dropped link: the district resumes its session.
    drop_link(&cluster, "ttu").await?;
    wait_connects(&cluster, "ttu", "resumed", 1).await?;
    sell(&mut ttu, "after-resume", SKU, 1).await?;
    cluster.wait_converged(WAIT).await?;

    // A restarted hub knows no ticket: one full handshake, and sync goes on.
    let full_before = connects(&cluster, "ttu", "full");
    let hub = cluster.hub_id().to_string();
    cluster.restart(&hub).await?;
    wait_connects(&cluster, "ttu", "full", full_before + 1).await?;
    sell(&mut ttu, "after-hub-restart", SKU, 1).await?;
    cluster.wait_converged(WAIT).await?;

    // And the ticket of that full handshake resumes the next reconnect.
    let resumed_before = connects(&cluster, "ttu", "resumed");
    drop_link(&cluster, "ttu").await?;
    wait_connects(&cluster, "ttu", "resumed", resumed_before + 1).await?;
    cluster.wait_converged(WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_keeps_its_identity_and_stays_with_its_hub() -> Result<()> {
    let cluster = TestCluster::builder()
        .district("ttu")
        .district("sikka")
        .start()
        .await?;
    cluster.wait_converged(WAIT).await?;
    // The test speaks for both districts: their own links stay down.
    cluster.cut("ttu");
    cluster.cut("sikka");
    let mut hub_admin = cluster.admin(cluster.hub_id()).await?;
    let sikka_before = peer_info(&mut hub_admin, "sikka").await?;

    // A client with ttu's certificate opens a session as ttu: a full handshake,
    // and a ticket for ttu's session.
    let (ttu_files, sikka_files) = (cluster.tls_of("ttu"), cluster.tls_of("sikka"));
    let identity = SwitchableIdentity::new(ttu_files)?;
    let config = hub_config(
        ttu_files,
        cluster.hub_id(),
        identity.clone(),
        ticket_store(),
    )?;
    let client =
        HubConnector::new(&cluster.hub_url(), config.clone()).map_err(anyhow::Error::msg)?;
    let mut as_ttu = RawSession::open_on(client.connect().await?, hello("ttu")).await?;
    ensure!(
        matches!(as_ttu.next().await?, Body::Hello(_)),
        "the hub answers ttu's hello with its own"
    );
    drop(as_ttu);

    // The same client now holds sikka's certificate, and still ttu's ticket.
    identity.switch_to(sikka_files)?;
    let channel = client.connect().await?;
    let handshakes = client.handshakes();
    ensure!(
        (handshakes.full(), handshakes.resumed()) == (1, 1),
        "expected one full and one resumed handshake, got {} and {}",
        handshakes.full(),
        handshakes.resumed()
    );
    // The hub reads ttu from the resumed session: a hello as sikka is refused...
    let as_sikka = match RawSession::open_on(channel.clone(), hello("sikka")).await {
        Ok(mut raw) => raw.end().await?,
        Err(e) => e.downcast_ref::<mart_proto::tonic::Status>().cloned(),
    };
    ensure!(
        as_sikka.as_ref().map(|s| s.code()) == Some(Code::PermissionDenied),
        "a hello as sikka over ttu's resumed session: expected PermissionDenied, got {as_sikka:?}"
    );
    // ...one as ttu is served, over the same connection.
    let mut as_ttu = RawSession::open_on(channel, hello("ttu")).await?;
    ensure!(matches!(as_ttu.next().await?, Body::Hello(_)), "ttu served");
    drop(as_ttu);
    // The hub never opened a session for sikka.
    let sikka_after = peer_info(&mut hub_admin, "sikka").await?;
    ensure!(
        sikka_after.last_attempt_unix_ms == sikka_before.last_attempt_unix_ms,
        "the hub recorded a sync attempt of sikka: {sikka_before:?} -> {sikka_after:?}"
    );

    // Another hub of the same CA, at a name the ticket store knows: the ticket is
    // not resumed there, and the full handshake refuses the server.
    let flores_files = cluster.pki().issue("flores", Role::Hub, &["localhost"])?;
    let flores_addr = free_local_addr()?;
    let _flores = NodeProcess::start(
        NodeSpec::hub("flores")
            .with_grpc_listen(flores_addr)
            .with_tls(flores_files),
    )
    .await?;
    let flores_url = format!("https://localhost:{}", flores_addr.port());
    let elsewhere = HubConnector::new(&flores_url, config).map_err(anyhow::Error::msg)?;
    let refused = match elsewhere.connect().await {
        Ok(_) => "connected".to_string(),
        Err(e) => certificate_refusal(&e).unwrap_or_else(|| format!("{e:?}")),
    };
    ensure!(
        refused.contains("not the hub nttmart://hub/kupang"),
        "a client of kupang at flores: {refused}"
    );
    ensure!(
        elsewhere.handshakes().resumed() == 0,
        "resumed a session at another hub"
    );
    Ok(())
}
