//! What crosses a district's link to the hub, as its [`Proxy`] counts it: [`Bytes`]
//! each way, [`session_setup`] (what a session with nothing to send costs: the TLS
//! handshake with both certificates, HTTP/2, `Hello` and `Have` both ways), and
//! [`exactly_once_at_hub`], the check that a catch-up, however often it was cut,
//! left every movement of the district once at the hub; and the steps of a catch-up
//! measured on its link: [`sell_offline`], then [`catch_up`].
//!
//! It must never change the link it measures beyond cutting and healing it, and
//! never decide a test's bound: it reports what crossed.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::cluster::{peer_info, TestCluster};
use crate::ops::{movements_of, sell_all, stock_of};
use crate::proxy::Proxy;
use crate::wait::wait_until;

/// Bytes each way through a proxy: district to hub (`up`), hub to district (`down`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes {
    pub up: u64,
    pub down: u64,
}

impl Bytes {
    /// What crossed `proxy` so far.
    pub fn of(proxy: &Proxy) -> Bytes {
        Bytes {
            up: proxy.upstream_bytes(),
            down: proxy.downstream_bytes(),
        }
    }

    /// What crossed `proxy` since `before` was read.
    pub fn since(proxy: &Proxy, before: Bytes) -> Bytes {
        let now = Bytes::of(proxy);
        Bytes {
            up: now.up - before.up,
            down: now.down - before.down,
        }
    }

    pub fn total(self) -> u64 {
        self.up + self.down
    }
}

/// Bytes of a session with nothing to send: cuts `district`'s link, heals it, and
/// counts until the district has heard the hub's heads of everything again. Waits
/// at most `timeout` for each step.
pub async fn session_setup(
    cluster: &TestCluster,
    district: &str,
    timeout: Duration,
) -> Result<Bytes> {
    let proxy = cluster.proxy(district);
    let hub = cluster.hub_id().to_string();
    let admin = cluster.admin(district).await?;
    cluster.cut(district);
    wait_until("the district sees the link down", timeout, || {
        let mut admin = admin.clone();
        let hub = hub.clone();
        async move { Ok(!peer_info(&mut admin, &hub).await?.connected) }
    })
    .await?;
    let since = peer_info(&mut admin.clone(), &hub)
        .await?
        .last_success_unix_ms;
    let before = Bytes::of(proxy);
    cluster.heal(district);
    wait_until("the district is in sync again", timeout, || {
        let mut admin = admin.clone();
        let hub = hub.clone();
        async move {
            let info = peer_info(&mut admin, &hub).await?;
            Ok(info.connected && info.last_success_unix_ms > since)
        }
    })
    .await?;
    Ok(Bytes::since(proxy, before))
}

/// Checks that the hub holds every movement of `district` once, the same as the
/// district does (`expected` of them), and the same stock per SKU.
pub async fn exactly_once_at_hub(
    cluster: &TestCluster,
    district: &str,
    expected: usize,
) -> Result<()> {
    let mut hub_mart = cluster.mart(cluster.hub_id()).await?;
    let mut mart = cluster.mart(district).await?;
    let ours = movements_of(&mut mart, "").await?;
    let at_hub = movements_of(&mut hub_mart, district).await?;
    ensure!(
        ours.len() == expected,
        "{district} holds {} movements, {expected} were recorded",
        ours.len()
    );
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &at_hub {
        *seen.entry(m.id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(
        twice.is_empty(),
        "{district}: held twice at the hub: {twice:?}"
    );
    ensure!(
        at_hub == ours,
        "{district}: the hub holds {} movements, the district {}",
        at_hub.len(),
        ours.len()
    );
    let stock = stock_of(&mut mart, "").await?;
    let stock_at_hub = stock_of(&mut hub_mart, district).await?;
    ensure!(
        stock == stock_at_hub,
        "{district}: stock {stock:?}, at the hub {stock_at_hub:?}"
    );
    Ok(())
}

/// Cuts each of `districts` off and has each record the same `sales` (request id,
/// SKU, quantity), at most `in_flight` at a time each, all at once; returns how long
/// that took. Their links stay cut.
pub async fn sell_offline(
    cluster: &TestCluster,
    districts: &[&str],
    sales: &[(String, String, i64)],
    in_flight: usize,
) -> Result<Duration> {
    let started = std::time::Instant::now();
    let mut selling = tokio::task::JoinSet::new();
    for district in districts {
        cluster.cut(district);
        let mart = cluster.mart(district).await?;
        let sales = sales.to_vec();
        selling.spawn(async move { sell_all(&mart, sales, in_flight).await });
    }
    while let Some(sold) = selling.join_next().await {
        sold.context("a district's seller panicked")??;
    }
    Ok(started.elapsed())
}

/// Heals `district`'s link, asks it for a sync round at once (as an operator would
/// once the link is back: the backoff of the dials refused while it was cut is not
/// the link's), and waits until it is in step with the hub; returns what crossed its
/// link and how long that took from the heal.
pub async fn catch_up(
    cluster: &TestCluster,
    district: &str,
    timeout: Duration,
) -> Result<(Bytes, Duration)> {
    let proxy = cluster.proxy(district);
    let before = Bytes::of(proxy);
    let healed = std::time::Instant::now();
    cluster.heal(district);
    cluster.sync_now(district, 1).await?;
    cluster.wait_in_step(&[district], timeout).await?;
    Ok((Bytes::since(proxy, before), healed.elapsed()))
}
