//! Turns the `--node` address into a gRPC channel: a Unix domain socket
//! (`unix:PATH`), plain TCP (`http://HOST:PORT`) or mutual TLS (`https://HOST:PORT`,
//! with the files of [`crate::tls`]).
//!
//! It must never fall back silently from one transport to another: an `https://` node
//! is reached over TLS with the operator's certificate or not at all.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, Result};
use hyper_util::rt::TokioIo;
use mart_proto::tonic::transport::{Channel, Endpoint, Uri};
use tokio::net::UnixStream;

use crate::exit::Unreachable;
use crate::tls::ClientFiles;

/// Where the node listens, as given by `--node` or `MARTCTL_NODE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAddr {
    /// gRPC over a Unix domain socket at this path.
    Unix(PathBuf),
    /// gRPC over plain TCP; the full `http://HOST:PORT` URI.
    Http(String),
    /// gRPC over mutual TLS; the full `https://HOST:PORT` URI and the host the node's
    /// certificate must name (brackets of an IPv6 address removed).
    Https { uri: String, host: String },
}

impl FromStr for NodeAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:./mart-data/admin.sock".into());
            }
            return Ok(NodeAddr::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("https://") {
            if rest.is_empty() || rest.starts_with('/') {
                return Err("https:// needs HOST:PORT, e.g. https://kupang.example:7440".into());
            }
            let uri = s
                .parse::<Uri>()
                .map_err(|e| format!("not a valid https address: {e}"))?;
            let host = uri
                .host()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                .filter(|h| !h.is_empty())
                .ok_or("https:// needs HOST:PORT, e.g. https://kupang.example:7440")?;
            return Ok(NodeAddr::Https {
                host: host.to_string(),
                uri: s.to_string(),
            });
        }
        if let Some(rest) = s.strip_prefix("http://") {
            if rest.is_empty() || rest.starts_with('/') {
                return Err("http:// needs HOST:PORT, e.g. http://127.0.0.1:50051".into());
            }
            s.parse::<Uri>()
                .map_err(|e| format!("not a valid http address: {e}"))?;
            return Ok(NodeAddr::Http(s.to_string()));
        }
        Err("expected unix:PATH, http://HOST:PORT or https://HOST:PORT".into())
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            NodeAddr::Http(uri) | NodeAddr::Https { uri, .. } => f.write_str(uri),
        }
    }
}

/// Connects eagerly, so that an unreachable node is reported before any request is
/// built, and gives up after `timeout`. `tls` must be given for an `https://` node
/// (see [`crate::tls::TlsFiles::for_node`]) and is ignored otherwise.
pub async fn connect(
    addr: &NodeAddr,
    tls: Option<&ClientFiles>,
    timeout: Duration,
) -> Result<Channel> {
    let tls = match (addr, tls) {
        (NodeAddr::Https { host, .. }, Some(files)) => Some(files.load(host)?),
        (NodeAddr::Https { .. }, None) => {
            return Err(anyhow!("{addr} needs --ca, --cert and --key"));
        }
        _ => None,
    };
    let attempt = async {
        match addr {
            NodeAddr::Unix(path) => {
                let path = path.clone();
                // The URI is a placeholder: the connector ignores it and dials the socket.
                Endpoint::try_from("http://[::]:50051")?
                    .connect_timeout(timeout)
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                        }
                    }))
                    .await
            }
            NodeAddr::Http(uri) => {
                Endpoint::from_shared(uri.clone())?
                    .connect_timeout(timeout)
                    .connect()
                    .await
            }
            NodeAddr::Https { uri, .. } => {
                let mut endpoint = Endpoint::from_shared(uri.clone())?;
                if let Some(tls) = tls {
                    endpoint = endpoint.tls_config(tls)?;
                }
                endpoint.connect_timeout(timeout).connect().await
            }
        }
    };
    let running = "is mart-node running? choose the node with --node or MARTCTL_NODE";
    let hint = match addr {
        NodeAddr::Https { host, .. } => format!(
            "{running}; for TLS, --ca must be the CA that signed the node's certificate, \
             that certificate must name {host}, and --key must be the key of --cert"
        ),
        _ => running.to_string(),
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(Unreachable(format!(
            "cannot connect to node at {addr}: {} ({hint})",
            causes(&e)
        ))
        .into()),
        Err(_) => Err(Unreachable(format!(
            "cannot connect to node at {addr}: no answer within {} s ({hint})",
            timeout.as_secs()
        ))
        .into()),
    }
}

/// The error and its sources joined with `: `, the way anyhow's `{:#}` does, minus
/// the repeats that hyper and tonic produce when they wrap an error in its own words.
fn causes(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_http() {
        assert_eq!(
            "unix:./mart-data/admin.sock".parse::<NodeAddr>().unwrap(),
            NodeAddr::Unix(PathBuf::from("./mart-data/admin.sock"))
        );
        assert_eq!(
            "http://127.0.0.1:50051".parse::<NodeAddr>().unwrap(),
            NodeAddr::Http("http://127.0.0.1:50051".into())
        );
    }

    #[test]
    fn parses_https_with_the_host_to_verify() {
        assert_eq!(
            "https://localhost:7440".parse::<NodeAddr>().unwrap(),
            NodeAddr::Https {
                uri: "https://localhost:7440".into(),
                host: "localhost".into()
            }
        );
        let v6: NodeAddr = "https://[::1]:7440".parse().unwrap();
        assert!(matches!(v6, NodeAddr::Https { ref host, .. } if host == "::1"));
        assert_eq!(v6.to_string(), "https://[::1]:7440");
    }

    #[test]
    fn refuses_garbage() {
        assert!("https://".parse::<NodeAddr>().is_err());
        assert!("https:///x".parse::<NodeAddr>().is_err());
        assert!("unix:".parse::<NodeAddr>().is_err());
        assert!("http://".parse::<NodeAddr>().is_err());
        assert!("127.0.0.1:50051".parse::<NodeAddr>().is_err());
    }

    #[test]
    fn joins_causes_without_repeats() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl fmt::Display for E {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let leaf = E("connection refused", None);
        let mid = E("tcp connect error", Some(Box::new(leaf)));
        let dup = E("tcp connect error", Some(Box::new(mid)));
        let top = E("transport error", Some(Box::new(dup)));
        assert_eq!(
            causes(&top),
            "transport error: tcp connect error: connection refused"
        );
    }

    #[test]
    fn displays_as_given() {
        let addr: NodeAddr = "unix:/run/mart.sock".parse().unwrap();
        assert_eq!(addr.to_string(), "unix:/run/mart.sock");
    }
}
