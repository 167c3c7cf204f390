//! A district authenticates the hub it dials (issue 10, item 2), against real
//! processes over real mutual TLS: a server holding a valid certificate of the same
//! CA that is not `nttmart://hub/<configured hub>` (a hub with another id, a
//! district serving at the hub's address) is refused during the TLS handshake, so the
//! district sends it nothing of its own and applies nothing from it; the refusal is
//! in the district's peer state (`martctl sync status`) naming both identities; and
//! the same district then syncs with its real hub.

use std::time::Duration;

use anyhow::{ensure, Result};
use mart_proto::tonic::Code;
use mart_proto::v1::{ListPeersRequest, PeerInfo};
use mart_tests::cluster::{document_heads, free_local_addr, peer_info, Heads};
use mart_tests::ops::{open_ledger, receive};
use mart_tests::pki::Role;
use mart_tests::{martctl, wait_until, NodeProcess, NodeSpec, TestCluster};

const HUB: &str = "kupang";
const TTU: &str = "ttu";
const SKU: &str = "TTU-MKP-060";
const WAIT: Duration = Duration::from_secs(30);

/// `https://localhost:PORT` of a node serving gRPC.
fn url_of(node: &NodeProcess) -> String {
    let addr = node.grpc_addr().expect("the node serves gRPC over TCP");
    format!("https://localhost:{}", addr.port())
}

/// Waits until ttu's peer state for its hub shows an error mentioning `presented`,
/// and returns that state.
async fn refusal_of(ttu: &NodeProcess, presented: &str) -> Result<PeerInfo> {
    let mut admin = ttu.admin().await?;
    wait_until(
        &format!("ttu refuses the server presenting {presented}"),
        WAIT,
        || {
            let mut admin = admin.clone();
            async move {
                let info = peer_info(&mut admin, HUB).await?;
                Ok(info.last_error.contains(presented))
            }
        },
    )
    .await?;
    peer_info(&mut admin, HUB).await
}

/// What an impostor server must not hold after ttu dialed it: no peer ttu, no
/// document of ttu's.
async fn got_nothing_from_ttu(impostor: &NodeProcess) -> Result<()> {
    let mut admin = impostor.admin().await?;
    let listed = admin
        .list_peers(ListPeersRequest {
            peer_id: TTU.into(),
        })
        .await;
    ensure!(
        matches!(&listed, Err(s) if s.code() == Code::NotFound),
        "{} has a peer ttu: {listed:?}",
        impostor.id()
    );
    let docs: Heads = document_heads(&mut admin).await?;
    let leaked: Vec<&String> = docs
        .keys()
        .filter(|d| d.starts_with("ledger/ttu/") || *d == "catalog/ttu")
        .collect();
    ensure!(
        leaked.is_empty(),
        "{} holds ttu's documents {leaked:?}",
        impostor.id()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_syncs_only_with_the_hub_its_config_names() -> Result<()> {
    let cluster = TestCluster::builder().hub(HUB).start().await?;
    let pki = cluster.pki();
    // Impostors with valid certificates of the province's CA, each serving under
    // the host name ttu dials: a hub with another id, and district sikka.
    let evil = NodeProcess::start(
        NodeSpec::hub("evil")
            .with_grpc_listen(free_local_addr()?)
            .with_tls(pki.issue("evil", Role::Hub, &["localhost"])?),
    )
    .await?;
    let sikka = NodeProcess::start(
        NodeSpec::district("sikka", HUB)
            .with_grpc_listen(free_local_addr()?)
            .with_tls(pki.issue("sikka", Role::District, &["localhost"])?),
    )
    .await?;

    let mut ttu = NodeProcess::start(
        NodeSpec::district(TTU, HUB)
            .with_tls(pki.issue(TTU, Role::District, &[])?)
            .with_sync(&url_of(&evil), 30),
    )
    .await?;
    receive(&mut ttu.mart().await?, "rcv-1", SKU, 5).await?;
    let before = document_heads(&mut ttu.admin().await?).await?;

    // A hub certificate with another hub id.
    let info = refusal_of(&ttu, "nttmart://hub/evil").await?;
    println!("refused evil: {}", info.last_error);
    ensure!(
        info.last_error.contains("nttmart://hub/kupang"),
        "the error does not say which hub was expected: {}",
        info.last_error
    );
    ensure!(
        !info.connected && info.last_success_unix_ms == 0,
        "ttu took evil for its hub: {info:?}"
    );
    got_nothing_from_ttu(&evil).await?;
    ensure!(
        document_heads(&mut ttu.admin().await?).await? == before,
        "ttu's documents changed while it dialed evil"
    );
    let status = martctl::ok(&ttu.admin_socket(), &["sync", "status"]).await?;
    ensure!(
        status.contains("nttmart://hub/evil"),
        "martctl sync status does not show the refusal:\n{status}"
    );

    // Another district's certificate at the hub's address.
    ttu.set_hub_url(&url_of(&sikka))?;
    ttu.terminate().await?;
    ttu.restart().await?;
    let info = refusal_of(&ttu, "nttmart://district/sikka").await?;
    println!("refused sikka: {}", info.last_error);
    ensure!(
        !info.connected && info.last_success_unix_ms == 0,
        "ttu took sikka for its hub: {info:?}"
    );
    got_nothing_from_ttu(&sikka).await?;
    ensure!(document_heads(&mut ttu.admin().await?).await? == before);

    // The real hub.
    ttu.set_hub_url(&cluster.hub_url())?;
    ttu.terminate().await?;
    ttu.restart().await?;
    let ledger = open_ledger(&mut ttu.admin().await?).await?;
    let hub_admin = cluster.admin(HUB).await?;
    let ttu_admin = ttu.admin().await?;
    wait_until("the hub holds ttu's ledger", WAIT, || {
        let (mut hub, mut ttu, ledger) = (hub_admin.clone(), ttu_admin.clone(), ledger.clone());
        async move {
            let at_hub = document_heads(&mut hub).await?;
            let at_ttu = document_heads(&mut ttu).await?;
            Ok(at_hub.contains_key(&ledger) && at_hub.get(&ledger) == at_ttu.get(&ledger))
        }
    })
    .await?;
    wait_until("ttu records a sync with its hub", WAIT, || {
        let mut admin = ttu_admin.clone();
        async move { Ok(peer_info(&mut admin, HUB).await?.last_success_unix_ms > 0) }
    })
    .await?;
    Ok(())
}
