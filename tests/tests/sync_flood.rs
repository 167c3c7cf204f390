//! What one district can make the hub remember is bounded (invariant 9 of the brief),
//! against a real hub over real mutual TLS, the test speaking for sikka with sikka's
//! own certificate:
//!
//! - a `Have` flood (200 future periods of its own ledger, 500 random heads each, 3.2
//!   MB in all) ends the session with RESOURCE_EXHAUSTED naming sikka and the cap on
//!   heads; the hub's memory and data dir stay flat, nothing is remembered of the
//!   bogus documents, and sikka and ttu sync on afterwards;
//! - claims about periods that cannot exist (before 1970, decades ahead) are refused
//!   one by one with INVALID_ARGUMENT while the session goes on; too many heads on a
//!   legitimate document, or too many distinct documents in one session, end it with
//!   RESOURCE_EXHAUSTED; again the hub stays flat and serves on.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use automerge::ChangeHash;
use mart_proto::tonic::{Code, Status};
use mart_proto::v1::sync_message::Body;
use mart_proto::v1::SyncMessage;
use mart_tests::cluster::{document_heads, peer_info};
use mart_tests::footprint::Footprint;
use mart_tests::ops::{open_ledger, receive, stock_of};
use mart_tests::raw_sync::{have, RawSession};
use mart_tests::{wait_until, TestCluster};

const CONVERGE: Duration = Duration::from_secs(90);
/// Growth of the hub's resident memory a flood may cause: allocator noise and
/// buffers, far below the 500 MB the first flood took.
const RSS_GROWTH_MB: f64 = 30.0;
/// Growth of the hub's data dir a flood may cause (the first one took 690 MB).
const DISK_GROWTH_MB: f64 = 10.0;

fn random_heads(n: usize) -> Vec<ChangeHash> {
    (0..n).map(|_| ChangeHash(rand::random())).collect()
}

/// `count` consecutive months from `year`-01, as `YYYY-MM`.
fn months_from(year: i32, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{:04}-{:02}", year + (i / 12) as i32, i % 12 + 1))
        .collect()
}

/// A hub, ttu and sikka, converged; sikka cut from the hub so the test speaks for it.
async fn cluster_with_sikka_cut() -> Result<TestCluster> {
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district("ttu")
        .district("sikka")
        .start()
        .await?;
    receive(
        &mut cluster.mart("sikka").await?,
        "rcv-1",
        "SKA-MET-250",
        40,
    )
    .await?;
    cluster.wait_converged(CONVERGE).await?;
    cluster.cut("sikka");
    let hub_admin = cluster.admin(cluster.hub_id()).await?;
    wait_until("the hub sees sikka gone", CONVERGE, || {
        let mut admin = hub_admin.clone();
        async move { Ok(!peer_info(&mut admin, "sikka").await?.connected) }
    })
    .await?;
    Ok(cluster)
}

/// Opens a session as sikka with its own certificate and reads the hub's hello.
async fn open_as_sikka(cluster: &TestCluster) -> Result<RawSession> {
    let mut raw = RawSession::open(
        &cluster.hub_url(),
        cluster.tls_of("sikka").client()?,
        "sikka",
    )
    .await?;
    match raw.next().await? {
        Body::Hello(h) => ensure!(h.node_id == cluster.hub_id(), "{h:?}"),
        other => bail!("the session began with {other:?}"),
    }
    Ok(raw)
}

fn hub_footprint(cluster: &TestCluster) -> Result<Footprint> {
    let hub = cluster.hub();
    Footprint::of(hub.pid().context("the hub runs")?, &hub.data_dir())
}

/// Sends every message, stopping once the hub closed the stream.
async fn send_all(raw: &RawSession, messages: Vec<SyncMessage>) {
    for m in messages {
        if raw.send(m).await.is_err() {
            break;
        }
    }
}

/// The session ended with `code`, in words naming sikka and `limit`.
fn ensure_ended(end: Result<Option<Status>>, code: Code, limit: &str) -> Result<()> {
    let status = end?.context("the hub ended the session without an error")?;
    ensure!(
        status.code() == code
            && status.message().contains("sikka")
            && status.message().contains(limit),
        "ended with {:?} {:?}, expected {code:?} naming sikka and {limit:?}",
        status.code(),
        status.message()
    );
    Ok(())
}

/// The hub grew less than the bounds since `before`.
fn ensure_flat(cluster: &TestCluster, before: &Footprint, what: &str) -> Result<()> {
    let after = hub_footprint(cluster)?;
    let (rss, disk) = after.growth_mb(before);
    println!(
        "{what}: hub rss {:.1} -> {:.1} MB, data dir {:.1} -> {:.1} MB",
        before.rss as f64 / 1e6,
        after.rss as f64 / 1e6,
        before.disk as f64 / 1e6,
        after.disk as f64 / 1e6
    );
    ensure!(
        rss < RSS_GROWTH_MB && disk < DISK_GROWTH_MB,
        "{what}: the hub grew by {rss:.1} MB of memory and {disk:.1} MB of disk"
    );
    Ok(())
}

/// sikka comes back and syncs, ttu syncs, and the hub remembers none of `bogus`.
async fn ensure_serving_and_clean(cluster: &TestCluster, bogus: &[String]) -> Result<()> {
    let hub = cluster.hub_id().to_string();
    cluster.heal("sikka");
    receive(&mut cluster.mart("sikka").await?, "rcv-2", "SKA-MET-250", 2).await?;
    receive(&mut cluster.mart("ttu").await?, "rcv-ttu", "TTU-MKP-060", 3).await?;
    cluster.wait_converged(CONVERGE).await?;
    let mut hub_mart = cluster.mart(&hub).await?;
    ensure!(stock_of(&mut hub_mart, "sikka").await?["SKA-MET-250"] == 42);
    ensure!(stock_of(&mut hub_mart, "ttu").await?["TTU-MKP-060"] == 3);
    let mut hub_admin = cluster.admin(&hub).await?;
    let held = document_heads(&mut hub_admin).await?;
    let listed = peer_info(&mut hub_admin, "sikka").await?.documents;
    for doc in bogus {
        ensure!(!held.contains_key(doc), "the hub holds {doc}");
        ensure!(
            listed.iter().all(|d| &d.doc_id != doc),
            "the hub's peer book lists {doc} for sikka"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_have_flood_ends_the_session_and_leaves_the_hub_flat() -> Result<()> {
    let cluster = cluster_with_sikka_cut().await?;
    let before = hub_footprint(&cluster)?;
    let raw = open_as_sikka(&cluster).await?;
    let bogus: Vec<String> = months_from(2030, 200)
        .iter()
        .map(|p| format!("ledger/sikka/{p}"))
        .collect();
    let flood = bogus.iter().map(|doc| have(doc, &random_heads(500)));
    let mut raw = raw;
    send_all(&raw, flood.collect()).await;
    let end = raw.end().await;
    drop(raw);
    // Figures first: on a hub that remembers everything they are the story.
    let flat = ensure_flat(&cluster, &before, "200 Haves x 500 heads");
    ensure_ended(end, Code::ResourceExhausted, "32 heads")?;
    flat?;
    ensure_serving_and_clean(&cluster, &bogus).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_periods_are_refused_and_caps_end_the_session() -> Result<()> {
    let cluster = cluster_with_sikka_cut().await?;
    let sikka_ledger = open_ledger(&mut cluster.admin("sikka").await?).await?;
    let before = hub_footprint(&cluster)?;

    // Periods before the Unix epoch and decades ahead: refused one by one.
    let mut raw = open_as_sikka(&cluster).await?;
    let impossible: Vec<String> = months_from(1900, 60)
        .into_iter()
        .chain(months_from(2090, 60))
        .map(|p| format!("ledger/sikka/{p}"))
        .collect();
    send_all(
        &raw,
        impossible
            .iter()
            .map(|d| have(d, &random_heads(1)))
            .collect(),
    )
    .await;
    let mut refused = std::collections::BTreeSet::new();
    while refused.len() < impossible.len() {
        match raw.next().await.context("the session should go on")? {
            Body::Refused(r) => {
                ensure!(
                    r.code == Code::InvalidArgument as i32 && r.message.contains("cannot exist"),
                    "{} refused with {} ({})",
                    r.doc_id,
                    r.code,
                    r.message
                );
                refused.insert(r.doc_id);
            }
            Body::Have(h) => ensure!(
                !impossible.contains(&h.doc_id),
                "the hub asked for {}",
                h.doc_id
            ),
            _ => {}
        }
    }
    // Too many heads on sikka's real ledger: the session ends.
    raw.send(have(&sikka_ledger, &random_heads(100))).await?;
    ensure_ended(raw.end().await, Code::ResourceExhausted, "32 heads")?;
    drop(raw);

    // Too many distinct documents in one session (past periods that could exist).
    let raw = open_as_sikka(&cluster).await?;
    let many: Vec<String> = months_from(1990, 300)
        .iter()
        .map(|p| format!("ledger/sikka/{p}"))
        .collect();
    send_all(
        &raw,
        many.iter().map(|d| have(d, &random_heads(1))).collect(),
    )
    .await;
    let mut raw = raw;
    let end = raw.end().await;
    drop(raw);
    let flat = ensure_flat(&cluster, &before, "impossible periods and caps");
    ensure_ended(end, Code::ResourceExhausted, "256 documents")?;
    flat?;
    let bogus: Vec<String> = impossible.into_iter().chain(many).collect();
    ensure_serving_and_clean(&cluster, &bogus).await
}
