//! The demo's directory: made fresh (replacing only one an earlier demo made), holding
//! the province's CA, the certificates of the hub, the districts and the demo's
//! operator, and one config file per node, written the way an operator would write
//! them so each node starts exactly as `mart-node run --config` starts it.
//!
//! It must never delete a directory it did not make, nor one a running demo still uses.

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mart_pki::leaf::Request;
use mart_pki::{Host, Role, Validity};

/// Marks a directory as made by `mart-node demo`, and so safe to replace.
const MARKER: &str = ".mart-demo";

/// The certificate files one node or operator presents.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where one node of the demo lives and listens.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub id: String,
    pub role: Role,
    pub grpc: SocketAddr,
    /// `[metrics] listen`: `/metrics` and the node's status page.
    pub metrics: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_socket: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub tls: TlsFiles,
}

/// Everything the demo made before starting a node.
#[derive(Debug)]
pub struct Plan {
    pub root: PathBuf,
    pub hub: NodePlan,
    pub districts: Vec<NodePlan>,
    pub operator: TlsFiles,
}

/// Makes `root` afresh with a CA and certificates for `hub`, `districts` and the
/// operator `demo`, and picks a free loopback port for each node.
pub fn prepare(root: &Path, hub: &str, districts: &[&str]) -> Result<Plan> {
    fresh_dir(root)?;
    let ca_dir = root.join("pki").join("ca");
    mart_pki::ca::init(
        &ca_dir,
        "NTT Mart Demo CA",
        30,
        time::OffsetDateTime::now_utc(),
    )?;
    let issue = |id: &str, role: Role| -> Result<TlsFiles> {
        let req = Request {
            node_id: id.to_string(),
            role,
            hosts: if role.serves() {
                vec![
                    Host::Dns("localhost".into()),
                    Host::Ip([127, 0, 0, 1].into()),
                ]
            } else {
                Vec::new()
            },
            validity: Validity::from_now(time::OffsetDateTime::now_utc(), 30)
                .map_err(anyhow::Error::msg)?,
        };
        let issued = mart_pki::issue(&ca_dir, &req, &root.join("pki").join(id))
            .with_context(|| format!("issue the certificate of {id}"))?;
        Ok(TlsFiles {
            ca: issued.ca_path,
            cert: issued.cert_path,
            key: issued.key_path,
        })
    };
    let node = |id: &str, role: Role| -> Result<NodePlan> {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let data_dir = dir.join("data");
        Ok(NodePlan {
            id: id.to_string(),
            role,
            grpc: free_loopback_addr()?,
            metrics: free_loopback_addr()?,
            admin_socket: data_dir.join("admin.sock"),
            data_dir,
            config: dir.join("node.toml"),
            log: dir.join("node.log"),
            tls: issue(id, role)?,
        })
    };
    Ok(Plan {
        root: root.to_path_buf(),
        hub: node(hub, Role::Hub)?,
        districts: districts
            .iter()
            .map(|id| node(id, Role::District))
            .collect::<Result<_>>()?,
        operator: issue("demo", Role::Operator)?,
    })
}

/// Writes the node's config file; a district dials the hub at `hub_url`.
pub fn write_config(node: &NodePlan, hub: &str, hub_url: Option<&str>) -> Result<()> {
    let path = |p: &Path| toml::Value::String(p.display().to_string());
    let mut table = toml::Table::new();
    table.insert("version".into(), toml::Value::Integer(1));
    let mut section = toml::Table::new();
    section.insert("id".into(), node.id.clone().into());
    section.insert("role".into(), node.role.as_str().into());
    if node.role == Role::District {
        section.insert("hub".into(), hub.into());
    }
    section.insert("data_dir".into(), path(&node.data_dir));
    table.insert("node".into(), section.into());
    let mut grpc = toml::Table::new();
    grpc.insert("listen".into(), node.grpc.to_string().into());
    table.insert("grpc".into(), grpc.into());
    let mut metrics = toml::Table::new();
    metrics.insert("listen".into(), node.metrics.to_string().into());
    table.insert("metrics".into(), metrics.into());
    let mut tls = toml::Table::new();
    tls.insert("ca".into(), path(&node.tls.ca));
    tls.insert("cert".into(), path(&node.tls.cert));
    tls.insert("key".into(), path(&node.tls.key));
    table.insert("tls".into(), tls.into());
    if let Some(url) = hub_url {
        let mut sync = toml::Table::new();
        sync.insert("hub_url".into(), url.into());
        sync.insert("resync_secs".into(), toml::Value::Integer(10));
        table.insert("sync".into(), sync.into());
    }
    let text = format!(
        "# Written by mart-node demo for {} ({}); run it alone with\n# mart-node run --config {}\n{}",
        node.id,
        node.role,
        node.config.display(),
        toml::to_string(&table).context("write a config")?
    );
    std::fs::write(&node.config, text).with_context(|| format!("write {}", node.config.display()))
}

/// Empties `root` if an earlier demo made it, or creates it; refuses a directory the
/// demo did not make, or one whose nodes still answer.
fn fresh_dir(root: &Path) -> Result<()> {
    if root.symlink_metadata().is_ok() {
        if !root.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by mart-node demo: remove it or pass --dir",
                root.display()
            );
        }
        if let Some(socket) = live_socket(root) {
            bail!(
                "a demo is still running in {} (its admin socket {} answers): stop it first",
                root.display(),
                socket.display()
            );
        }
        std::fs::remove_dir_all(root).with_context(|| format!("remove {}", root.display()))?;
    }
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    std::fs::write(
        root.join(MARKER),
        "made by mart-node demo; the next demo replaces this directory\n",
    )
    .with_context(|| format!("mark {}", root.display()))
}

/// The admin socket of an earlier demo's node that still answers, if any.
fn live_socket(root: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    entries
        .flatten()
        .map(|e| e.path().join("data").join("admin.sock"))
        .find(|socket| UnixStream::connect(socket).is_ok())
}

/// A free TCP port on 127.0.0.1. Another process could take it before the node binds
/// it; the node then fails to start with "listen on ...", never silently.
fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
