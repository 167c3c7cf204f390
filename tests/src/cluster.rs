//! [`TestCluster`]: a hub and its districts as real `mart-node` processes over real
//! mutual TLS, each district dialing the hub through its own [`Proxy`] so a test can
//! cut, heal and measure that link, restart any node on its data dir, and wait until
//! every district and the hub hold the same heads of every document they share.
//!
//! It must never decide that the cluster converged from anything but what the nodes
//! answer (ListDocuments heads), and never retry an operation under test.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mart_proto::v1::{
    ListDocumentsRequest, ListPeersRequest, PeerInfo, SyncNowRequest, SyncNowResponse,
};

use crate::client::{AdminClient, HubClient, MartClient};
use crate::node::{NodeProcess, NodeSpec};
use crate::pki::{Pki, Role, TlsFiles};
use crate::proxy::Proxy;
use crate::wait::wait_until;

/// Default `sync.resync_secs` of the districts: long enough that no test relies on
/// the timer to converge.
pub const DEFAULT_RESYNC_SECS: u64 = 30;
/// How long a district started with `--restore` may take to get its ledger back
/// while the hub is reachable (it takes well under a few seconds; the margin is for
/// a loaded machine).
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(30);

/// Lowest and highest port [`free_local_addr`] hands out: below Linux's ephemeral
/// range (32768 and up by default), which the kernel draws from for outgoing
/// connections and for binds to port 0.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// The lock files of the ports this test process reserved, held until it ends.
static RESERVED_PORTS: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());

/// A free TCP port on 127.0.0.1 for a node to listen on. A port the kernel handed
/// out for port 0 and released was taken by another process before the node bound
/// it (a failed run: "Address already in use"): these ports lie outside the range the
/// kernel draws from, and each is reserved with a lock file that this test process
/// holds until it ends, so no two test processes pick the same one.
pub fn free_local_addr() -> Result<SocketAddr> {
    use rand::Rng;
    let dir = std::env::temp_dir().join("mart-test-ports");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let mut rng = rand::rng();
    for _ in 0..10_000 {
        let port = rng.random_range(TEST_PORTS);
        let path = dir.join(port.to_string());
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        if lock.try_lock().is_err() {
            continue; // another test process holds this port
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpListener::bind(addr).is_err() {
            continue; // something outside the tests listens on it
        }
        RESERVED_PORTS.lock().expect("never poisoned").push(lock);
        return Ok(addr);
    }
    bail!("no free port in {TEST_PORTS:?} after 10,000 tries")
}

/// Heads of every document a node holds: id -> sorted hex heads.
pub type Heads = BTreeMap<String, Vec<String>>;

/// Reads the heads of every document a node holds (archived ledger periods: empty).
pub async fn document_heads(admin: &mut AdminClient) -> Result<Heads> {
    Ok(list_documents(admin)
        .await?
        .into_iter()
        .map(|(id, listed)| (id, listed.heads))
        .collect())
}

/// One document as a node lists it (ListDocuments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Sorted hex heads; empty for an archived ledger period (not read to list it).
    pub heads: Vec<String>,
    /// `"open"`, `"sealed"` or `"archived"` for a ledger period; empty otherwise.
    pub period_state: String,
    /// Bytes its records take in the store (snapshot plus chunks), as the node says.
    pub bytes_on_disk: u64,
}

impl Listed {
    /// An archived ledger period: settled, on disk only; its heads are not listed.
    pub fn archived(&self) -> bool {
        self.period_state == "archived"
    }
}

/// Every document a node holds, open or archived: id -> heads and period state.
pub async fn list_documents(admin: &mut AdminClient) -> Result<BTreeMap<String, Listed>> {
    Ok(admin
        .list_documents(ListDocumentsRequest {})
        .await
        .context("ListDocuments")?
        .into_inner()
        .documents
        .into_iter()
        .map(|d| {
            let mut heads = d.heads;
            heads.sort();
            (
                d.id,
                Listed {
                    heads,
                    period_state: d.period_state,
                    bytes_on_disk: d.bytes_on_disk,
                },
            )
        })
        .collect())
}

/// The ledger periods of `outlet` a node lists: period (`2026-11`) -> its state
/// (`open`, `sealed`, `archived`).
pub async fn ledger_periods(
    admin: &mut AdminClient,
    outlet: &str,
) -> Result<BTreeMap<String, String>> {
    Ok(list_documents(admin)
        .await?
        .into_iter()
        .filter_map(|(doc, listed)| {
            let (node, period) = ledger_period(&doc)?;
            (node == outlet).then(|| (period.to_string(), listed.period_state))
        })
        .collect())
}

/// `ledger/<node>/<period>` -> (node, period).
pub fn ledger_period(doc: &str) -> Option<(&str, &str)> {
    let rest = doc.strip_prefix("ledger/")?;
    rest.split_once('/')
}

/// The node a document is about: the second part of its id (`ledger/ttu/2026-11`,
/// `catalog/ttu`, `orders/ttu` -> `ttu`; `catalog/province` -> `province`).
fn doc_subject(doc: &str) -> Option<&str> {
    let (_, rest) = doc.split_once('/')?;
    Some(rest.split_once('/').map_or(rest, |(subject, _)| subject))
}

/// What a node knows of one sync peer.
pub async fn peer_info(admin: &mut AdminClient, peer: &str) -> Result<PeerInfo> {
    let peers = admin
        .list_peers(ListPeersRequest {
            peer_id: peer.into(),
        })
        .await
        .with_context(|| format!("ListPeers {peer}"))?
        .into_inner()
        .peers;
    match <[PeerInfo; 1]>::try_from(peers) {
        Ok([info]) => Ok(info),
        Err(peers) => bail!("ListPeers {peer} returned {} peers", peers.len()),
    }
}

/// A district node and the proxy its link to the hub runs through.
pub struct District {
    pub node: NodeProcess,
    pub proxy: Proxy,
}

/// Builds a [`TestCluster`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    hub: String,
    districts: Vec<String>,
    resync_secs: u64,
    stale_after_secs: Option<u64>,
    direct_links: bool,
    metrics: bool,
}

impl ClusterBuilder {
    /// The hub's node id (default `kupang`).
    pub fn hub(mut self, id: &str) -> Self {
        self.hub = id.into();
        self
    }

    /// Adds a district.
    pub fn district(mut self, id: &str) -> Self {
        self.districts.push(id.into());
        self
    }

    /// `sync.resync_secs` of every district.
    pub fn resync_secs(mut self, secs: u64) -> Self {
        self.resync_secs = secs;
        self
    }

    /// `[hub] stale_after_secs` of the hub (default: the node's own, 24 hours).
    pub fn stale_after_secs(mut self, secs: u64) -> Self {
        self.stale_after_secs = Some(secs);
        self
    }

    /// Every node serves `/metrics` and its status page on a port of its own (see
    /// [`NodeProcess::metrics_addr`]).
    pub fn metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// Every district dials the hub's own address instead of its proxy's (the proxy
    /// still starts, unused): a stopped hub is then a refused connect at the
    /// district, as on a real link, where the proxy would accept and close.
    pub fn direct_links(mut self) -> Self {
        self.direct_links = true;
        self
    }

    /// Makes the certificates, starts the hub, then each district behind its proxy,
    /// and waits until each answers (not until they synced: see
    /// [`TestCluster::wait_converged`]).
    pub async fn start(self) -> Result<TestCluster> {
        let pki = Pki::init()?;
        let hub_addr = free_local_addr()?;
        let hub_tls = pki.issue(&self.hub, Role::Hub, &["localhost"])?;
        let mut hub_spec = NodeSpec::hub(&self.hub)
            .with_grpc_listen(hub_addr)
            .with_tls(hub_tls);
        if let Some(secs) = self.stale_after_secs {
            hub_spec = hub_spec.with_stale_after_secs(secs);
        }
        if self.metrics {
            hub_spec = hub_spec.with_metrics_listen(free_local_addr()?);
        }
        let hub = NodeProcess::start(hub_spec)
            .await
            .with_context(|| format!("start hub {}", self.hub))?;
        let mut districts = BTreeMap::new();
        for id in &self.districts {
            ensure!(
                !districts.contains_key(id) && id != &self.hub,
                "node id {id} used twice"
            );
            let tls = pki.issue(id, Role::District, &[])?;
            let proxy = Proxy::start(hub_addr)
                .await
                .context("start a district's proxy")?;
            let port = if self.direct_links {
                hub_addr.port()
            } else {
                proxy.addr().port()
            };
            let url = format!("https://localhost:{port}");
            let mut spec = NodeSpec::district(id, &self.hub)
                .with_tls(tls)
                .with_sync(&url, self.resync_secs);
            if self.metrics {
                spec = spec.with_metrics_listen(free_local_addr()?);
            }
            let node = NodeProcess::start(spec)
                .await
                .with_context(|| format!("start district {id}"))?;
            districts.insert(id.clone(), District { node, proxy });
        }
        Ok(TestCluster {
            pki,
            hub,
            hub_addr,
            districts,
        })
    }
}

/// A running hub and districts; every process is killed when it drops.
pub struct TestCluster {
    // Dropped last: the nodes read their certificates from it.
    districts: BTreeMap<String, District>,
    hub: NodeProcess,
    hub_addr: SocketAddr,
    pki: Pki,
}

impl TestCluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            hub: "kupang".into(),
            districts: Vec::new(),
            resync_secs: DEFAULT_RESYNC_SECS,
            stale_after_secs: None,
            direct_links: false,
            metrics: false,
        }
    }

    /// The CA every node's certificate comes from.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    pub fn hub(&self) -> &NodeProcess {
        &self.hub
    }

    pub fn hub_id(&self) -> &str {
        self.hub.id()
    }

    /// The hub's own gRPC address (not through any proxy).
    pub fn hub_addr(&self) -> SocketAddr {
        self.hub_addr
    }

    /// `https://localhost:PORT` of the hub itself, for clients of the test.
    pub fn hub_url(&self) -> String {
        format!("https://localhost:{}", self.hub_addr.port())
    }

    /// District ids, sorted.
    pub fn district_ids(&self) -> Vec<String> {
        self.districts.keys().cloned().collect()
    }

    fn district(&self, id: &str) -> &District {
        self.districts
            .get(id)
            .unwrap_or_else(|| panic!("no district {id} in this cluster"))
    }

    /// The hub or a district.
    pub fn node(&self, id: &str) -> &NodeProcess {
        if id == self.hub.id() {
            &self.hub
        } else {
            &self.district(id).node
        }
    }

    fn node_mut(&mut self, id: &str) -> &mut NodeProcess {
        if id == self.hub.id() {
            &mut self.hub
        } else {
            &mut self
                .districts
                .get_mut(id)
                .unwrap_or_else(|| panic!("no district {id} in this cluster"))
                .node
        }
    }

    /// The certificate files of a node.
    pub fn tls_of(&self, id: &str) -> &TlsFiles {
        self.node(id)
            .spec()
            .tls
            .as_ref()
            .expect("every cluster node has certificates")
    }

    /// The proxy between `district` and the hub.
    pub fn proxy(&self, district: &str) -> &Proxy {
        &self.district(district).proxy
    }

    /// Drops the district's link and refuses new connections until [`Self::heal`].
    pub fn cut(&self, district: &str) {
        self.proxy(district).cut();
    }

    /// Restores the district's link.
    pub fn heal(&self, district: &str) {
        self.proxy(district).heal();
    }

    pub async fn mart(&self, id: &str) -> Result<MartClient> {
        self.node(id).mart().await
    }

    pub async fn admin(&self, id: &str) -> Result<AdminClient> {
        self.node(id).admin().await
    }

    /// The hub service of a node over its admin socket (at a district every call
    /// is PERMISSION_DENIED).
    pub async fn hub_service(&self, id: &str) -> Result<HubClient> {
        self.node(id).hub_service().await
    }

    /// Asks a district for a sync round now, as `martctl sync now` does (it also cuts
    /// a reconnect backoff short), and returns once the round ended or after
    /// `timeout_secs`. Whether the round completed is for the caller to check by
    /// what the nodes hold, e.g. with [`Self::wait_in_step`].
    pub async fn sync_now(&self, district: &str, timeout_secs: u32) -> Result<SyncNowResponse> {
        Ok(self
            .district(district)
            .node
            .admin()
            .await?
            .sync_now(SyncNowRequest {
                timeout_seconds: timeout_secs,
            })
            .await
            .with_context(|| format!("SyncNow at {district}"))?
            .into_inner())
    }

    /// Points `district` at another hub URL (e.g. [`Self::hub_url`], around its
    /// proxy) from its next (re)start on.
    pub fn set_hub_url(&mut self, district: &str, hub_url: &str) -> Result<()> {
        self.node_mut(district).set_hub_url(hub_url)
    }

    /// Stops a node with SIGTERM (it must exit cleanly) and starts it again on the
    /// same data dir.
    pub async fn restart(&mut self, id: &str) -> Result<()> {
        self.stop(id).await?;
        self.start(id).await
    }

    /// Stops a node with SIGTERM; it must exit cleanly. [`Self::start`] brings it back.
    pub async fn stop(&mut self, id: &str) -> Result<()> {
        let node = self.node_mut(id);
        let status = node.terminate().await?;
        ensure!(
            status.success(),
            "node {id} exited with {status} after SIGTERM:\n{}",
            node.stderr()
        );
        Ok(())
    }

    /// Starts a stopped node again on its data dir and waits until it answers.
    pub async fn start(&mut self, id: &str) -> Result<()> {
        self.node_mut(id).restart().await
    }

    /// Stops a node with SIGTERM, runs `offline` on its stopped store (its sled
    /// path), e.g. to corrupt a record, and starts it again.
    pub async fn restart_after(
        &mut self,
        id: &str,
        offline: impl FnOnce(&std::path::Path) -> Result<()>,
    ) -> Result<()> {
        let node = self.node_mut(id);
        let status = node.terminate().await?;
        ensure!(status.success(), "node {id} exited with {status}");
        offline(&node.db_path())?;
        node.restart().await
    }

    /// Kills a node with SIGKILL and starts it again on the same data dir.
    pub async fn kill_and_restart(&mut self, id: &str) -> Result<()> {
        let node = self.node_mut(id);
        node.kill_9()?;
        node.restart().await
    }

    /// Kills a node with SIGKILL, deletes its data dir (a lost disk; its config and
    /// certificates stay) and starts it again, without `--restore`: a district so
    /// started opens its current period afresh (empty opening balances, new actor),
    /// beside the hub's copy of the same period. A district that lost its disk is
    /// meant to start with `--restore`: see [`Self::wipe_and_restore`].
    pub async fn wipe_and_restart(&mut self, id: &str) -> Result<()> {
        let node = self.node_mut(id);
        node.kill_9()?;
        node.wipe_data()?;
        node.restart().await
    }

    /// Shifts the clock of node `id` by `ms` from its next (re)start on (the node
    /// reads `MART_TEST_CLOCK_OFFSET_MS` once when it starts): restart it, e.g. with
    /// [`Self::restart`], for the offset to take effect.
    pub fn set_clock_offset_ms(&mut self, id: &str, ms: i64) {
        self.node_mut(id).set_clock_offset_ms(ms);
    }

    /// See [`NodeProcess::set_accept_clock`].
    pub fn set_accept_clock(&mut self, id: &str, accept: bool) {
        self.node_mut(id).set_accept_clock(accept);
    }

    /// A district that lost its disk: kills it with SIGKILL, deletes its data dir,
    /// starts it with `mart-node run --restore` and waits until it answers Status,
    /// without waiting for the restore to end (movements are refused with
    /// UNAVAILABLE until then); see [`Self::wait_restored`].
    pub async fn wipe_and_start_restore(&mut self, id: &str) -> Result<()> {
        ensure!(id != self.hub.id(), "only a district restores from the hub");
        let node = self.node_mut(id);
        node.kill_9()?;
        node.wipe_data()?;
        node.restore_on_next_start();
        node.restart().await
    }

    /// Waits until district `id` says it is no longer restoring (its Status has
    /// `restoring = false` and an open period), for at most [`RESTORE_TIMEOUT`];
    /// returns how long it waited.
    pub async fn wait_restored(&mut self, id: &str) -> Result<Duration> {
        self.node_mut(id)
            .wait_restored(RESTORE_TIMEOUT)
            .await
            .with_context(|| format!("{id} restores its ledger from the hub"))
    }

    /// [`Self::wipe_and_start_restore`], then [`Self::wait_restored`]: the district
    /// is back with its ledger from the hub and records movements again. Returns how
    /// long the restore took from the node answering Status.
    pub async fn wipe_and_restore(&mut self, id: &str) -> Result<Duration> {
        self.wipe_and_start_restore(id).await?;
        self.wait_restored(id).await
    }

    /// The first difference between `district`'s documents and the hub's copies, both
    /// ways; `None` when they agree on everything they share:
    ///
    /// - every document the district holds, except its archived ledger periods,
    ///   must be at the hub with the same heads (unless the hub archived it: settled
    ///   there, its heads are not listed);
    /// - every document the hub holds for the district (the provincial catalog and
    ///   budget, the district's catalog, the hub's orders for it, and the newest
    ///   period of the district's ledger: the only one the hub announces to it), except
    ///   archived ones, must be at the district with the same heads (unless archived
    ///   there). An older period of the district's ledger the hub has not archived yet
    ///   is compared only when the district holds it too: a district restored from the
    ///   hub gets only the newest one.
    ///
    /// Archived periods are not compared: they are sealed, and each side archives a
    /// period only once it is settled (the district once the hub acknowledged it
    /// whole, the hub once a later period arrived).
    pub async fn difference_of(&self, district: &str) -> Result<Option<String>> {
        let hub = list_documents(&mut self.hub.admin().await?).await?;
        let held = list_documents(&mut self.district(district).node.admin().await?).await?;
        for (doc, ours) in held.iter().filter(|(_, d)| !d.archived()) {
            match hub.get(doc) {
                None => return Ok(Some(format!("the hub lacks {doc} of {district}"))),
                Some(at_hub) if at_hub.archived() => {}
                Some(at_hub) if at_hub.heads != ours.heads => {
                    return Ok(Some(format!(
                        "{doc}: {district} has heads {:?}, the hub {:?}",
                        ours.heads, at_hub.heads
                    )))
                }
                Some(_) => {}
            }
        }
        let own_period = |doc: &str| ledger_period(doc).is_some_and(|(node, _)| node == district);
        // Document ids sort by outlet, then period: the last one is the newest.
        let newest = hub.keys().filter(|doc| own_period(doc)).max();
        let meant_for = |doc: &str| {
            matches!(doc, "catalog/province" | "budget/province")
                || doc_subject(doc) == Some(district)
        };
        for (doc, theirs) in hub
            .iter()
            .filter(|(doc, d)| meant_for(doc) && !d.archived())
        {
            let older_period = own_period(doc) && Some(doc) != newest;
            match held.get(doc) {
                None if older_period => {}
                None => return Ok(Some(format!("{district} lacks the hub's {doc}"))),
                Some(at_district) if at_district.archived() => {}
                Some(at_district) if at_district.heads != theirs.heads => {
                    return Ok(Some(format!(
                        "{doc}: the hub has heads {:?}, {district} {:?}",
                        theirs.heads, at_district.heads
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(None)
    }

    /// Whether the hub and `district` hold the same heads of every document they
    /// share ([`Self::difference_of`]).
    pub async fn in_step(&self, district: &str) -> Result<bool> {
        Ok(self.difference_of(district).await?.is_none())
    }

    /// Waits until each of `districts` is [in step](Self::in_step) with the hub; on
    /// timeout names the last difference seen.
    pub async fn wait_in_step(&self, districts: &[&str], timeout: Duration) -> Result<()> {
        let last = RefCell::new(String::new());
        let what = format!("{districts:?} and the hub hold the same heads of what they share");
        let waited = wait_until(&what, timeout, || {
            let last = &last;
            async move {
                for district in districts {
                    if let Some(difference) = self.difference_of(district).await? {
                        *last.borrow_mut() = difference;
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        })
        .await;
        waited.with_context(|| format!("last difference: {}", last.borrow()))
    }

    /// Waits until every district is [in step](Self::in_step) with the hub.
    pub async fn wait_converged(&self, timeout: Duration) -> Result<()> {
        let ids = self.district_ids();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.wait_in_step(&ids, timeout).await
    }
}
