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

/// A free TCP port on 127.0.0.1, found by binding port 0 and releasing it. Another
/// process could take it before the node binds it; the node then fails to start
/// with "listen on ...", never silently.
pub fn free_local_addr() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Heads of every document a node holds: id -> sorted hex heads.
pub type Heads = BTreeMap<String, Vec<String>>;

/// Reads the heads of every document a node holds.
pub async fn document_heads(admin: &mut AdminClient) -> Result<Heads> {
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
            (d.id, heads)
        })
        .collect())
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
            let url = format!("https://localhost:{}", proxy.addr().port());
            let node = NodeProcess::start(
                NodeSpec::district(id, &self.hub)
                    .with_tls(tls)
                    .with_sync(&url, self.resync_secs),
            )
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

    /// Stops a node with SIGTERM (it must exit cleanly) and starts it again on the
    /// same data dir.
    pub async fn restart(&mut self, id: &str) -> Result<()> {
        let node = self.node_mut(id);
        let status = node.terminate().await?;
        ensure!(
            status.success(),
            "node {id} exited with {status} after SIGTERM:\n{}",
            node.stderr()
        );
        node.restart().await
    }

    /// Kills a node with SIGKILL and starts it again on the same data dir.
    pub async fn kill_and_restart(&mut self, id: &str) -> Result<()> {
        let node = self.node_mut(id);
        node.kill_9()?;
        node.restart().await
    }

    /// Kills a node with SIGKILL, deletes its data dir (a lost disk; its config and
    /// certificates stay) and starts it again.
    pub async fn wipe_and_restart(&mut self, id: &str) -> Result<()> {
        let node = self.node_mut(id);
        node.kill_9()?;
        let data = node.data_dir();
        std::fs::remove_dir_all(&data).with_context(|| format!("wipe {}", data.display()))?;
        node.restart().await
    }

    /// The first difference between `district`'s documents and the hub's copies, both
    /// ways: a document of the district the hub lacks or holds other heads of, or a
    /// document the hub holds for the district (the provincial catalog and budget,
    /// the district's ledger and catalog, the hub's orders for it) that the district
    /// lacks or holds other heads of; `None` when they agree on everything they share.
    pub async fn difference_of(&self, district: &str) -> Result<Option<String>> {
        let hub = document_heads(&mut self.hub.admin().await?).await?;
        let held = document_heads(&mut self.district(district).node.admin().await?).await?;
        for (doc, heads) in &held {
            match hub.get(doc) {
                None => return Ok(Some(format!("the hub lacks {doc} of {district}"))),
                Some(at_hub) if at_hub != heads => {
                    return Ok(Some(format!(
                        "{doc}: {district} has heads {heads:?}, the hub {at_hub:?}"
                    )))
                }
                Some(_) => {}
            }
        }
        let meant_for = |doc: &str| {
            matches!(doc, "catalog/province" | "budget/province")
                || doc
                    .split_once('/')
                    .is_some_and(|(_, owner)| owner == district)
        };
        for (doc, heads) in hub.iter().filter(|(doc, _)| meant_for(doc)) {
            match held.get(doc) {
                None => return Ok(Some(format!("{district} lacks the hub's {doc}"))),
                Some(at_district) if at_district != heads => {
                    return Ok(Some(format!(
                        "{doc}: the hub has heads {heads:?}, {district} {at_district:?}"
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
