//! Node configuration: TOML with a version field and no unknown fields, loaded and
//! then validated into a typed [`NodeConfig`] whose errors name the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::districts::KnownDistricts;
use crate::domain::doc_id::NodeId;
use crate::domain::period::PeriodLength;
use crate::engine::{Identity, LedgerOptions};

/// The only config version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// The embedded defaults: district `ttu` with data in `./mart-data`.
pub const DEFAULT_CONFIG: &str = r#"
version = 1

[node]
id = "ttu"
role = "district"
hub = "kupang"
data_dir = "./mart-data"

[grpc]
listen = "127.0.0.1:7443"

[admin]
socket = "./mart-data/admin.sock"

# No certificates yet: gRPC over TCP is plaintext, and the node warns at every start.
[tls]
insecure = true
"#;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config {path} is not valid: {reason}")]
    Parse { path: String, reason: String },
    #[error("config {path}: {field}: {reason}")]
    Field {
        path: String,
        field: &'static str,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    version: u32,
    node: RawNode,
    grpc: Option<RawGrpc>,
    admin: Option<RawAdmin>,
    tls: Option<RawTls>,
    sync: Option<RawSync>,
    hub: Option<RawHub>,
    ledger: Option<RawLedger>,
    log: Option<RawLog>,
    metrics: Option<RawMetrics>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
}

/// `[log] format`: how the node writes its log lines to stderr. Which lines it
/// writes is `RUST_LOG`'s (default `info`; e.g. `RUST_LOG=info,mart_node::sync=debug`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line of text per event, `key=value` fields (the default).
    #[default]
    Text,
    /// One JSON object per line, its fields under `fields`, for a log shipper.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLedger {
    months_per_period: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    stale_after_secs: Option<u64>,
    districts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    #[serde(default)]
    insecure: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    hub_url: Option<String>,
    resync_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: String,
    role: String,
    hub: Option<String>,
    data_dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrpc {
    listen: Option<String>,
    max_connections: Option<usize>,
    handshake_timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    socket: Option<PathBuf>,
}

/// The role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Hub,
    District,
}

/// How the node secures gRPC over TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Mutual TLS with certificates issued by the province's CA.
    Mutual {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
    /// Plaintext: only for trying things out; warned about at every start.
    Insecure,
}

/// How a district reaches its hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// `https://host:port` (or `http://` on an insecure node).
    pub hub_url: String,
    pub resync_every: std::time::Duration,
}

/// Default `[grpc] max_connections`: the province's 22 districts, their operators and
/// a wide margin, at a few hundred kilobytes of buffers each.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Largest `[grpc] max_connections` accepted.
pub const MAX_MAX_CONNECTIONS: usize = 65_536;
/// Default `[grpc] handshake_timeout_secs`.
pub const DEFAULT_HANDSHAKE_TIMEOUT_SECS: u64 = 10;
/// Largest `[grpc] handshake_timeout_secs` accepted.
pub const MAX_HANDSHAKE_TIMEOUT_SECS: u64 = 300;

/// How many gRPC connections over TCP a node holds at once, and how long each may
/// take to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `[grpc] max_connections`: connections at once, TLS handshakes in progress
    /// included; one more is closed at once. The node lowers it at start when its
    /// file descriptor limit cannot hold that many (see `server::fd_budget`).
    pub max_connections: usize,
    /// `[grpc] handshake_timeout_secs`: a connection that has not finished its TLS
    /// handshake (without TLS: sent the HTTP/2 preface) by then is closed.
    pub handshake_timeout: std::time::Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: std::time::Duration::from_secs(DEFAULT_HANDSHAKE_TIMEOUT_SECS),
        }
    }
}

/// Default `[metrics] listen`: loopback only (see [`metrics_listen`]).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// Default staleness threshold of the hub: 24 hours.
pub const DEFAULT_STALE_AFTER_SECS: u64 = 24 * 3600;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub identity: Identity,
    pub role: Role,
    pub data_dir: PathBuf,
    /// TCP address of the gRPC API; `None` serves only the admin socket.
    pub grpc_listen: Option<SocketAddr>,
    /// The cap and handshake timeout of gRPC connections over TCP.
    pub connections: ConnectionLimits,
    /// The local admin socket (gRPC over a Unix socket, no certificate needed).
    pub admin_socket: PathBuf,
    /// `None` when the node neither listens on TCP nor dials a hub.
    pub tls: Option<TlsMode>,
    /// Districts only: the hub to sync with; `None` runs the district alone.
    pub sync: Option<SyncConfig>,
    /// Hub only (`[hub] stale_after_secs`, default 24 hours): a district whose newest
    /// change and last sync are both older than this is shown as stale.
    pub stale_after: std::time::Duration,
    /// `[hub] districts` (default: the province's 22): the only districts the hub
    /// syncs with, ships to and budgets for. A district knows the 22.
    pub districts: KnownDistricts,
    /// `[ledger] months_per_period` (default 1: one ledger document per month), and
    /// whether this start restores the ledger from the hub (`mart-node run --restore`,
    /// never from the file).
    pub ledger: LedgerOptions,
    /// `mart-node run --restore-from DIR` (never from the file): start from the backup
    /// in DIR (`martctl backup`), into an empty data dir.
    pub restore_from: Option<PathBuf>,
    /// `[log] format`, `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `[metrics] listen` (default `127.0.0.1:9464`): the HTTP listener of `/metrics`
    /// and the status page; `None` when `listen = ""` or `enabled = false`.
    pub metrics_listen: Option<SocketAddr>,
}

impl NodeConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The embedded defaults.
    pub fn embedded_default() -> Self {
        Self::parse(DEFAULT_CONFIG, "<embedded defaults>").expect("embedded defaults are valid")
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            reason: e.to_string().trim().to_string(),
        })?;
        let field = |field: &'static str, reason: String| ConfigError::Field {
            path: origin.to_string(),
            field,
            reason,
        };
        if raw.version != CONFIG_VERSION {
            return Err(field(
                "version",
                format!(
                    "unsupported version {}, this build reads version {CONFIG_VERSION}",
                    raw.version
                ),
            ));
        }
        let node = NodeId::parse(&raw.node.id).map_err(|e| field("node.id", e.to_string()))?;
        let role = match raw.node.role.as_str() {
            "hub" => Role::Hub,
            "district" => Role::District,
            other => {
                return Err(field(
                    "node.role",
                    format!("must be \"hub\" or \"district\", got {other:?}"),
                ))
            }
        };
        let hub = match (&raw.node.hub, role) {
            (None, Role::Hub) => node.clone(),
            (None, Role::District) => {
                return Err(field("node.hub", "a district must name its hub".into()));
            }
            (Some(hub), _) => NodeId::parse(hub).map_err(|e| field("node.hub", e.to_string()))?,
        };
        match role {
            Role::Hub if hub != node => {
                return Err(field(
                    "node.hub",
                    format!("a hub is its own hub, expected \"{node}\", got \"{hub}\""),
                ))
            }
            Role::District if hub == node => {
                return Err(field("node.hub", "a district cannot be its own hub".into()))
            }
            _ => {}
        }
        if raw.node.data_dir.as_os_str().is_empty() {
            return Err(field("node.data_dir", "must not be empty".into()));
        }
        let raw_grpc = raw.grpc.unwrap_or(RawGrpc {
            listen: None,
            max_connections: None,
            handshake_timeout_secs: None,
        });
        let grpc_listen = raw_grpc
            .listen
            .map(|addr| {
                addr.parse::<SocketAddr>()
                    .map_err(|e| field("grpc.listen", format!("{addr:?} is not host:port: {e}")))
            })
            .transpose()?;
        let max_connections = match raw_grpc.max_connections {
            None => DEFAULT_MAX_CONNECTIONS,
            Some(n) if (1..=MAX_MAX_CONNECTIONS).contains(&n) => n,
            Some(n) => {
                return Err(field(
                    "grpc.max_connections",
                    format!("must be between 1 and {MAX_MAX_CONNECTIONS}, got {n}"),
                ))
            }
        };
        let handshake_timeout_secs = match raw_grpc.handshake_timeout_secs {
            None => DEFAULT_HANDSHAKE_TIMEOUT_SECS,
            Some(secs) if (1..=MAX_HANDSHAKE_TIMEOUT_SECS).contains(&secs) => secs,
            Some(secs) => {
                return Err(field(
                    "grpc.handshake_timeout_secs",
                    format!("must be between 1 and {MAX_HANDSHAKE_TIMEOUT_SECS}, got {secs}"),
                ))
            }
        };
        let connections = ConnectionLimits {
            max_connections,
            handshake_timeout: std::time::Duration::from_secs(handshake_timeout_secs),
        };
        let admin_socket = raw
            .admin
            .and_then(|a| a.socket)
            .unwrap_or_else(|| raw.node.data_dir.join("admin.sock"));
        let sync = match raw.sync {
            None => None,
            Some(_) if role == Role::Hub => {
                return Err(field(
                    "sync",
                    "the hub never dials out; remove [sync]".into(),
                ))
            }
            Some(sync) => {
                let hub_url = sync
                    .hub_url
                    .ok_or_else(|| field("sync.hub_url", "is required in [sync]".into()))?;
                if !(hub_url.starts_with("https://") || hub_url.starts_with("http://")) {
                    return Err(field(
                        "sync.hub_url",
                        format!("must be https://host:port, got {hub_url:?}"),
                    ));
                }
                let secs = sync.resync_secs.unwrap_or(30);
                let most = crate::sync::liveness::MAX_ANNOUNCE_EVERY.as_secs();
                if secs == 0 || secs > most {
                    // The hub ends a session silent for longer than a district
                    // may go between announces (plus a slow message).
                    return Err(field(
                        "sync.resync_secs",
                        format!("must be between 1 and {most}, got {secs}"),
                    ));
                }
                Some(SyncConfig {
                    hub_url,
                    resync_every: std::time::Duration::from_secs(secs),
                })
            }
        };
        let needs_tls = grpc_listen.is_some() || sync.is_some();
        let tls = match raw.tls {
            Some(RawTls { insecure: true, ca: None, cert: None, key: None }) => Some(TlsMode::Insecure),
            Some(RawTls { insecure: true, .. }) => {
                return Err(field("tls.insecure", "cannot be combined with ca, cert or key".into()))
            }
            Some(RawTls { ca, cert, key, insecure: false }) => {
                let ca = ca.ok_or_else(|| field("tls.ca", "is required (or insecure = true)".into()))?;
                let cert = cert.ok_or_else(|| field("tls.cert", "is required (or insecure = true)".into()))?;
                let key = key.ok_or_else(|| field("tls.key", "is required (or insecure = true)".into()))?;
                Some(TlsMode::Mutual { ca, cert, key })
            }
            None if needs_tls => {
                return Err(field(
                    "tls",
                    "gRPC over TCP needs [tls] with ca, cert and key (or insecure = true to run plaintext)".into(),
                ))
            }
            None => None,
        };
        if let (Some(SyncConfig { hub_url, .. }), Some(TlsMode::Mutual { .. })) = (&sync, &tls) {
            if !hub_url.starts_with("https://") {
                return Err(field(
                    "sync.hub_url",
                    "must be https:// when tls is on".into(),
                ));
            }
        }
        let (stale_after_secs, districts) = match (raw.hub, role) {
            (None, _) => (DEFAULT_STALE_AFTER_SECS, KnownDistricts::default()),
            (Some(_), Role::District) => {
                return Err(field("hub", "only the hub takes a [hub] section".into()))
            }
            (Some(h), Role::Hub) => {
                let secs = match h.stale_after_secs {
                    Some(0) => {
                        return Err(field("hub.stale_after_secs", "must be at least 1".into()))
                    }
                    Some(secs) => secs,
                    None => DEFAULT_STALE_AFTER_SECS,
                };
                let districts = match h.districts {
                    None => KnownDistricts::default(),
                    Some(ids) => known_districts(&ids, &node)
                        .map_err(|reason| field("hub.districts", reason))?,
                };
                (secs, districts)
            }
        };
        let period = match raw.ledger.and_then(|l| l.months_per_period) {
            None => PeriodLength::default(),
            Some(months) => PeriodLength::months_of(months)
                .map_err(|e| field("ledger.months_per_period", e.to_string()))?,
        };
        let log_format = match raw.log.and_then(|l| l.format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(field(
                    "log.format",
                    format!("must be \"text\" or \"json\", got \"{other}\""),
                ))
            }
        };
        let metrics_listen =
            metrics_listen(raw.metrics).map_err(|reason| field("metrics.listen", reason))?;
        Ok(NodeConfig {
            log_format,
            metrics_listen,
            ledger: LedgerOptions {
                period,
                restore: false,
                accept_clock: false,
            },
            identity: Identity { node, hub },
            role,
            data_dir: raw.node.data_dir,
            grpc_listen,
            connections,
            admin_socket,
            tls,
            sync,
            stale_after: std::time::Duration::from_secs(stale_after_secs),
            districts,
            restore_from: None,
        })
    }
}

/// `[metrics]`: the address of the metrics and status page listener, or `None` when
/// it is turned off. Only a loopback address is accepted: the page and the metrics
/// are served over plain HTTP without authentication, so they must never be reachable
/// from another machine (a reverse proxy or an SSH tunnel reaches them from there).
fn metrics_listen(raw: Option<RawMetrics>) -> Result<Option<SocketAddr>, String> {
    let (listen, enabled) = match raw {
        None => (None, true),
        Some(m) => (m.listen, m.enabled.unwrap_or(true)),
    };
    let listen = listen.unwrap_or_else(|| DEFAULT_METRICS_LISTEN.to_string());
    if !enabled || listen.trim().is_empty() {
        return Ok(None);
    }
    let addr = listen
        .parse::<SocketAddr>()
        .map_err(|e| format!("{listen:?} is not host:port: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: the status page and /metrics are served \
             without authentication (mTLS for them is not implemented), so they bind to \
             127.0.0.1 or ::1 only; reach them from elsewhere through an SSH tunnel or a \
             reverse proxy that authenticates"
        ));
    }
    Ok(Some(addr))
}

/// `[hub] districts`: node ids, none twice, not the hub's own.
fn known_districts(ids: &[String], hub: &NodeId) -> Result<KnownDistricts, String> {
    if ids.is_empty() {
        return Err("must list at least one district (leave it out for the province's 22)".into());
    }
    let mut parsed = Vec::with_capacity(ids.len());
    for id in ids {
        let id = NodeId::parse(id).map_err(|e| format!("{id:?}: {e}"))?;
        if &id == hub {
            return Err(format!("{id} is the hub itself, not a district"));
        }
        if parsed.contains(&id) {
            return Err(format!("{id} is listed twice"));
        }
        parsed.push(id);
    }
    Ok(KnownDistricts::new(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                NodeConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(seen >= 2, "expected config files in {}", dir.display());
    }

    #[test]
    fn embedded_defaults_are_district_ttu() {
        let config = NodeConfig::embedded_default();
        assert_eq!(config.identity.node.as_str(), "ttu");
        assert_eq!(config.role, Role::District);
        assert_eq!(config.grpc_listen, Some("127.0.0.1:7443".parse().unwrap()));
        assert_eq!(config.admin_socket, PathBuf::from("./mart-data/admin.sock"));
        assert_eq!(config.connections, ConnectionLimits::default());
    }

    #[test]
    fn metrics_listen_is_loopback_on_by_default_and_can_be_turned_off() {
        let with = |section: &str| format!("{DEFAULT_CONFIG}\n[metrics]\n{section}\n");
        let default = NodeConfig::embedded_default().metrics_listen;
        assert_eq!(default, Some(DEFAULT_METRICS_LISTEN.parse().unwrap()));
        let listen = |section: &str| {
            NodeConfig::parse(&with(section), "t")
                .unwrap()
                .metrics_listen
        };
        assert_eq!(listen("listen = \"\""), None);
        assert_eq!(listen("enabled = false"), None);
        assert_eq!(
            listen("listen = \"[::1]:0\""),
            Some("[::1]:0".parse().unwrap())
        );
        for section in [
            "listen = \"0.0.0.0:9464\"",
            "listen = \"10.1.2.3:9464\"",
            "listen = \"nowhere\"",
        ] {
            let e = error_of(&with(section));
            assert!(e.contains("metrics.listen"), "{section}: {e}");
        }
        assert!(error_of(&with("listen = \"0.0.0.0:9464\"")).contains("loopback"));
    }

    #[test]
    fn connection_limits_are_bounded() {
        let with = |line: &str| DEFAULT_CONFIG.replace("[grpc]", &format!("[grpc]\n{line}"));
        let limits = NodeConfig::parse(
            &with("max_connections = 40\nhandshake_timeout_secs = 3"),
            "t",
        )
        .unwrap()
        .connections;
        assert_eq!(limits.max_connections, 40);
        assert_eq!(limits.handshake_timeout, std::time::Duration::from_secs(3));
        for (line, field) in [
            ("max_connections = 0", "grpc.max_connections"),
            ("max_connections = 70000", "grpc.max_connections"),
            ("handshake_timeout_secs = 0", "grpc.handshake_timeout_secs"),
            (
                "handshake_timeout_secs = 301",
                "grpc.handshake_timeout_secs",
            ),
        ] {
            let e = error_of(&with(line));
            assert!(e.contains(field), "{line}: {e}");
        }
    }

    fn error_of(text: &str) -> String {
        NodeConfig::parse(text, "test.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        let base = DEFAULT_CONFIG;
        assert_eq!(NodeConfig::embedded_default().log_format, LogFormat::Text);
        let json = NodeConfig::parse(&format!("{base}[log]\nformat = \"json\"\n"), "t").unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
        let bad = error_of(&format!("{base}[log]\nformat = \"xml\"\n"));
        assert!(
            bad.contains("log.format") && bad.contains("\"xml\""),
            "{bad}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let base = DEFAULT_CONFIG;
        assert!(error_of(&base.replace("version = 1", "version = 2")).contains("version"));
        assert!(error_of(&base.replace("\"district\"", "\"outlet\"")).contains("node.role"));
        assert!(error_of(&base.replace("id = \"ttu\"", "id = \"TTU!\"")).contains("node.id"));
        assert!(error_of(&base.replace("hub = \"kupang\"", "hub = \"ttu\"")).contains("node.hub"));
        assert!(error_of(&base.replace("127.0.0.1:7443", "nowhere")).contains("grpc.listen"));
        let unknown = error_of(&base.replace("[grpc]", "[grpc]\nlisten_tls = true"));
        assert!(unknown.contains("listen_tls"), "{unknown}");
        let no_tls = error_of(&base.replace("[tls]\ninsecure = true", ""));
        assert!(no_tls.contains("tls"), "{no_tls}");
        let half_tls = error_of(&base.replace("insecure = true", "ca = \"ca.pem\""));
        assert!(half_tls.contains("tls.cert"), "{half_tls}");
        let hub = base
            .replace("role = \"district\"", "role = \"hub\"")
            .replace("hub = \"kupang\"", "");
        let hub_sync = error_of(&format!("{hub}[sync]\nhub_url = \"https://h:1\"\n"));
        assert!(hub_sync.contains("sync"), "{hub_sync}");
        let sync =
            |secs: u64| format!("{base}[sync]\nhub_url = \"https://h:1\"\nresync_secs = {secs}\n");
        for secs in [0, 301] {
            let resync = error_of(&sync(secs));
            assert!(
                resync.contains("sync.resync_secs") && resync.contains("between 1 and 300"),
                "{resync}"
            );
        }
        NodeConfig::parse(&sync(300), "test.toml").expect("300 s is the longest resync");
        let period = error_of(&format!("{base}[ledger]\nmonths_per_period = 5\n"));
        assert!(period.contains("ledger.months_per_period"), "{period}");
        let hub_base = base
            .replace("role = \"district\"", "role = \"hub\"")
            .replace("hub = \"kupang\"", "")
            .replace("id = \"ttu\"", "id = \"kupang\"");
        for (list, reason) in [
            ("[]", "at least one"),
            ("[\"ttu\", \"TTU!\"]", "TTU!"),
            ("[\"ttu\", \"ttu\"]", "twice"),
            ("[\"ttu\", \"kupang\"]", "the hub itself"),
        ] {
            let e = error_of(&format!("{hub_base}[hub]\ndistricts = {list}\n"));
            assert!(
                e.contains("hub.districts") && e.contains(reason),
                "{list}: {e}"
            );
        }
        let district_list = error_of(&format!("{base}[hub]\ndistricts = [\"ttu\"]\n"));
        assert!(district_list.contains("only the hub"), "{district_list}");
        let listed = NodeConfig::parse(
            &format!("{hub_base}[hub]\ndistricts = [\"ttu\", \"evil\"]\n"),
            "t",
        )
        .unwrap();
        assert_eq!(listed.districts.len(), 2);
        assert!(listed.districts.contains(&NodeId::parse("evil").unwrap()));
        assert_eq!(
            NodeConfig::parse(&hub_base, "t").unwrap().districts,
            KnownDistricts::default()
        );
        let quarterly =
            NodeConfig::parse(&format!("{base}[ledger]\nmonths_per_period = 3\n"), "t").unwrap();
        assert_eq!(quarterly.ledger.period.months(), 3);
        assert!(
            !quarterly.ledger.restore,
            "restore comes from the command line only"
        );
    }
}
