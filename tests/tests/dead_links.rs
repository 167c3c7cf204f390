//! Dead links (invariant 9 of the brief: a link that goes silent is noticed on both
//! ends within 30 s): a link that swallows every byte while its connections stay
//! open (the proxy's stall), and a hub that accepts TCP but never answers (its
//! process frozen with SIGSTOP). Each side notices, says in words that the link is
//! dead, the district keeps redialing with its backoff and never hangs, and once the
//! link (or the hub) is back the two sync again, sales made meanwhile included.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use mart_proto::v1::{ListPeersRequest, PeerInfo};
use mart_tests::cluster::peer_info;
use mart_tests::ops::{movements_of, receive, sell};
use mart_tests::{martctl, wait_until, TestCluster};
use nix::sys::signal::Signal;

const DISTRICT: &str = "ttu";
const SKU: &str = "TTU-MKP-060";
/// The detection budget of the brief; the nodes' own is
/// `mart_node::sync::liveness::DEAD_LINK_BUDGET`.
const BUDGET: Duration = Duration::from_secs(30);
/// What a loaded machine may add to the budget between the node noticing and this
/// test seeing it (timers fire late, status calls queue).
const NOTICE_SLACK: Duration = Duration::from_secs(15);
/// Deadline of every wait: generous, the timing itself is checked separately.
const WAIT: Duration = Duration::from_secs(90);
/// The words a dead link is reported with, at either end.
const DEAD_WORDS: &str = "the link is dead";

async fn district_view(cluster: &TestCluster) -> Result<PeerInfo> {
    peer_info(&mut cluster.admin(DISTRICT).await?, cluster.hub_id()).await
}

/// What the hub knows of the district (nothing before its first session).
async fn hub_view(cluster: &TestCluster) -> Result<PeerInfo> {
    let peers = cluster
        .admin(cluster.hub_id())
        .await?
        .list_peers(ListPeersRequest {
            peer_id: String::new(),
        })
        .await
        .context("ListPeers at the hub")?
        .into_inner()
        .peers;
    Ok(peers
        .into_iter()
        .find(|p| p.peer_id == DISTRICT)
        .unwrap_or_default())
}

/// Waits until both ends show the district connected and a completed sync round.
async fn wait_linked(cluster: &TestCluster) -> Result<()> {
    wait_until("the district and the hub are connected", WAIT, || async {
        let district = district_view(cluster).await?;
        let hub = hub_view(cluster).await?;
        Ok(district.connected
            && district.last_success_unix_ms > 0
            && hub.connected
            && hub.last_success_unix_ms > 0)
    })
    .await
}

/// Waits until `view` shows the peer disconnected with a dead link in words; returns
/// how long after `since` that was first seen and the error shown.
async fn wait_noticed<F, Fut>(what: &str, since: Instant, view: F) -> Result<(Duration, String)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<PeerInfo>>,
{
    let seen = RefCell::new(None);
    wait_until(what, WAIT, || {
        let info = view();
        let seen = &seen;
        async move {
            let info = info.await?;
            if !info.connected && info.last_error.contains(DEAD_WORDS) {
                *seen.borrow_mut() = Some((since.elapsed(), info.last_error));
            }
            Ok(seen.borrow().is_some())
        }
    })
    .await?;
    seen.into_inner().context("seen")
}

/// Waits until the hub holds the district's movement `id`.
async fn wait_at_hub(cluster: &TestCluster, id: &str) -> Result<()> {
    let hub = cluster.mart(cluster.hub_id()).await?;
    wait_until(&format!("the hub holds {id}"), WAIT, || {
        let mut hub = hub.clone();
        async move {
            Ok(movements_of(&mut hub, DISTRICT)
                .await?
                .iter()
                .any(|m| m.id == id))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_link_is_noticed_at_both_ends_within_30_s() -> Result<()> {
    let cluster = TestCluster::builder().district(DISTRICT).start().await?;
    let mut ttu = cluster.mart(DISTRICT).await?;
    receive(&mut ttu, "stock", SKU, 10).await?;
    wait_linked(&cluster).await?;

    cluster.proxy(DISTRICT).stall();
    let stalled = Instant::now();
    let (at_district, district_error) =
        wait_noticed("the district sees the hub's link dead", stalled, || {
            district_view(&cluster)
        })
        .await?;
    let (at_hub, hub_error) =
        wait_noticed("the hub sees the district's link dead", stalled, || {
            hub_view(&cluster)
        })
        .await?;
    eprintln!("noticed after {at_district:?} at the district ({district_error:?}), {at_hub:?} at the hub ({hub_error:?})");
    for (side, noticed) in [("district", at_district), ("hub", at_hub)] {
        ensure!(
            noticed <= BUDGET + NOTICE_SLACK,
            "the {side} noticed the dead link {noticed:?} after the stall, beyond {BUDGET:?} (+{NOTICE_SLACK:?} for a loaded machine)"
        );
    }
    let status = martctl::ok(&cluster.node(DISTRICT).admin_socket(), &["sync", "status"]).await?;
    ensure!(
        status.contains(DEAD_WORDS),
        "`martctl sync status` does not say the link is dead:\n{status}"
    );

    // Sales go on offline; once the link is back they reach the hub.
    sell(&mut ttu, "during-stall", SKU, 1).await?;
    cluster.heal(DISTRICT);
    wait_at_hub(&cluster, "during-stall").await?;
    wait_linked(&cluster).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_hub_is_noticed_and_redialed_until_it_answers() -> Result<()> {
    let cluster = TestCluster::builder().district(DISTRICT).start().await?;
    let mut ttu = cluster.mart(DISTRICT).await?;
    receive(&mut ttu, "stock", SKU, 10).await?;
    wait_linked(&cluster).await?;
    let failures_logged = || {
        cluster
            .node(DISTRICT)
            .stderr()
            .lines()
            .filter(|l| {
                l.contains("sync with the hub failed")
                    || (l.contains("sync session ended") && l.contains("WARN"))
            })
            .count()
    };
    let failures_before = failures_logged();

    // A frozen process: the kernel still accepts its TCP connections, nothing answers.
    cluster.hub().signal(Signal::SIGSTOP)?;
    let frozen = Instant::now();
    let thawed = Thaw(&cluster);
    let (noticed, error) = wait_noticed("the district sees the hub's link dead", frozen, || {
        district_view(&cluster)
    })
    .await?;
    eprintln!("noticed after {noticed:?}: {error:?}");
    ensure!(
        noticed <= BUDGET + NOTICE_SLACK,
        "the district noticed the frozen hub {noticed:?} after it froze, beyond {BUDGET:?} (+{NOTICE_SLACK:?})"
    );
    sell(&mut ttu, "while-frozen", SKU, 1).await?;

    // It keeps dialing: each attempt ends on its own (a new attempt time, a new log
    // line, the dead link in words), none hangs. Meanwhile an operator asking for a
    // round gets an answer within its timeout, in words.
    let first_attempt = district_view(&cluster).await?.last_attempt_unix_ms;
    let redials = wait_until("the district redials", WAIT, || async {
        let info = district_view(&cluster).await?;
        Ok(info.last_attempt_unix_ms > first_attempt
            && failures_logged() >= failures_before + 2
            && info.last_error.contains(DEAD_WORDS))
    });
    let args = ["sync", "now", "--timeout", "10"];
    let sync_now = async {
        let asked = Instant::now();
        let out = tokio::time::timeout(
            WAIT,
            martctl::run(&cluster.node(DISTRICT).admin_socket(), &args),
        )
        .await
        .context("`martctl sync now --timeout 10` hung")??;
        eprintln!("sync now answered in {:?}", asked.elapsed());
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(1) && stderr.contains(DEAD_WORDS),
            "{}",
            martctl::describe(&args, &out)
        );
        Ok(())
    };
    let (redials, sync_now) = tokio::join!(redials, sync_now);
    redials?;
    sync_now?;

    drop(thawed);
    wait_at_hub(&cluster, "while-frozen").await?;
    wait_linked(&cluster).await
}

/// Sends SIGCONT to the hub when dropped, so a failing test never leaves it frozen
/// (its handle kills it either way).
struct Thaw<'a>(&'a TestCluster);

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        let _ = self.0.hub().signal(Signal::SIGCONT);
    }
}
