//! Session bookkeeping at the hub (issue 11, section 3), against a real hub and
//! district over real mutual TLS: the newest session of a district owns its live
//! state, so an older session ending never shows a live district as disconnected.
//!
//! - ttu's link stalls mid-push (a black hole: the hub's end of it stays open), ttu
//!   is killed and comes back straight to the hub, then the old link is cut: the hub
//!   still shows ttu connected and `martctl sync now` at the hub succeeds;
//! - a second short session under ttu's own certificate, opened and closed by the
//!   test, leaves the live ttu connected at the hub.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use mart_proto::v1::sync_message::Body;
use mart_proto::v1::sync_service_client::SyncServiceClient;
use mart_proto::v1::{Hello, SyncMessage};
use mart_tests::cluster::peer_info;
use mart_tests::ops::receive;
use mart_tests::{connect_tls, martctl, wait_until, TestCluster};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const CONVERGE: Duration = Duration::from_secs(90);
const SKU: &str = "TTU-MKP-060";

/// How many of `district`'s sessions the hub has logged as ended so far.
fn ended_sessions(cluster: &TestCluster, district: &str) -> usize {
    let peer = format!("peer={district}");
    cluster
        .hub()
        .stderr()
        .lines()
        .filter(|l| l.contains("sync session ended") || l.contains("sync session closed"))
        .filter(|l| l.contains(&peer))
        .count()
}

/// Waits until the hub logged one more end of `district`'s sessions than `before`.
async fn wait_session_ended(cluster: &TestCluster, district: &str, before: usize) -> Result<()> {
    wait_until(
        &format!("the hub ended an old session of {district}"),
        CONVERGE,
        || async move { Ok(ended_sessions(cluster, district) > before) },
    )
    .await
}

/// The hub shows `district` connected, and `martctl sync now` at the hub succeeds.
async fn hub_shows_connected(cluster: &TestCluster, district: &str) -> Result<()> {
    let hub = cluster.hub_id().to_string();
    let mut admin = cluster.admin(&hub).await?;
    wait_until(
        &format!("the hub shows {district} connected"),
        CONVERGE,
        || {
            let mut admin = admin.clone();
            async move { Ok(peer_info(&mut admin, district).await?.connected) }
        },
    )
    .await?;
    let socket = cluster.node(&hub).admin_socket();
    martctl::ok(&socket, &["sync", "now", "--timeout", "30"])
        .await
        .context("sync now at the hub")?;
    let info = peer_info(&mut admin, district).await?;
    anyhow::ensure!(info.connected, "the hub shows {district} as {info:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_back_by_another_route_stays_connected_when_its_old_link_dies() -> Result<()> {
    let mut cluster = TestCluster::builder().district("ttu").start().await?;
    cluster.wait_converged(CONVERGE).await?;
    hub_shows_connected(&cluster, "ttu").await?;
    let ended = ended_sessions(&cluster, "ttu");

    // Mid-push, the link turns into a black hole: the hub's session stays open.
    cluster.proxy("ttu").stall();
    let mut mart = cluster.mart("ttu").await?;
    for i in 0..10 {
        receive(&mut mart, &format!("stalled-{i}"), SKU, 5).await?;
    }
    // ttu dies and comes back by another route, straight to the hub.
    let direct = cluster.hub_url();
    cluster.set_hub_url("ttu", &direct)?;
    cluster.kill_and_restart("ttu").await?;
    cluster.wait_in_step(&["ttu"], CONVERGE).await?;

    // The old link is cut at last: the hub ends the stalled session (if it had
    // not already), and that changes nothing of ttu's live state.
    cluster.cut("ttu");
    wait_session_ended(&cluster, "ttu", ended).await?;
    hub_shows_connected(&cluster, "ttu").await?;
    let mut mart = cluster.mart("ttu").await?;
    receive(&mut mart, "after-the-cut", SKU, 1).await?;
    cluster.wait_in_step(&["ttu"], CONVERGE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_short_session_under_a_districts_certificate_leaves_it_connected() -> Result<()> {
    let cluster = TestCluster::builder().district("ttu").start().await?;
    cluster.wait_converged(CONVERGE).await?;
    hub_shows_connected(&cluster, "ttu").await?;
    let ended = ended_sessions(&cluster, "ttu");

    // A second session under ttu's certificate, straight to the hub: it says hello,
    // hears the hub's first message and hangs up.
    let channel = connect_tls(&cluster.hub_url(), cluster.tls_of("ttu").client()?).await?;
    let (out, rx) = mpsc::channel(4);
    out.send(SyncMessage {
        body: Some(Body::Hello(Hello {
            node_id: "ttu".into(),
            protocol: 1,
            ..Hello::default()
        })),
    })
    .await?;
    let mut inbound = SyncServiceClient::new(channel)
        .session(ReceiverStream::new(rx))
        .await
        .context("the hub refused the second session")?
        .into_inner();
    match tokio::time::timeout(CONVERGE, inbound.message()).await {
        Ok(Ok(Some(_))) => {}
        other => bail!("no first message in the second session: {other:?}"),
    }
    drop(out);
    drop(inbound);
    wait_session_ended(&cluster, "ttu", ended).await?;

    hub_shows_connected(&cluster, "ttu").await?;
    let mut mart = cluster.mart("ttu").await?;
    receive(&mut mart, "after-the-second-session", SKU, 1).await?;
    cluster.wait_in_step(&["ttu"], CONVERGE).await
}
