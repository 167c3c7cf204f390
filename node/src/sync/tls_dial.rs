//! How the district opens its TLS connection to the hub: TCP (with the connect
//! timeout and keepalives of [`liveness`]), then TLS 1.3 through one rustls
//! `ClientConfig` kept for the life of the process, so that its in-memory ticket
//! store lets every reconnect resume the last session (a 32-byte ticket and no
//! certificate either way) instead of a full handshake with both chains (~5 KB).
//!
//! A resumed session is the session it resumes: the hub reads the district's
//! identity from the certificate of the full handshake it descends from, and the
//! district only holds tickets from a hub its [`HubVerifier`] accepted (the store
//! belongs to a config whose verifier accepts only the configured hub). A ticket the
//! hub no longer knows (hub restarted, ticket expired or already used) costs one
//! full handshake, never a failed connect.
//!
//! It must never build a `ClientConfig` per connection (that forgets every ticket),
//! never write a ticket to disk, and never send early (0-RTT) data, which a network
//! attacker could replay.
//!
//! [`HubVerifier`]: crate::server::hub_cert::HubVerifier

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use mart_proto::tonic::codegen::http::Uri;
use mart_proto::tonic::transport::{Channel, Endpoint};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, ResolvesClientCert, Resumption, Tls12Resumption,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, HandshakeKind};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::liveness;

/// ALPN of gRPC over TLS.
pub const ALPN_H2: &[u8] = b"h2";

/// The crypto provider every TLS config of the node uses (the process default, or
/// ring, the one tonic's `tls-ring` compiles in).
pub fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// The certificate chain and private key of PEM files.
pub fn identity_of_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("no private key: {e}"))?;
    Ok((chain, key))
}

/// Server names whose tickets the store keeps (a district has one hub; the rest is
/// room for a changed hub URL).
const TICKET_STORE_SERVERS: usize = 4;

/// A new in-memory ticket store.
pub fn ticket_store() -> Arc<dyn ClientSessionStore> {
    Arc::new(ClientSessionMemoryCache::new(TICKET_STORE_SERVERS))
}

/// The district's side of mutual TLS: TLS 1.3 only, its certificate and key (PEM),
/// the hub checked by `verifier`, ALPN h2, resuming through `tickets`.
pub fn client_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    verifier: Arc<dyn ServerCertVerifier>,
    tickets: Arc<dyn ClientSessionStore>,
) -> Result<ClientConfig, String> {
    let (chain, key) = identity_of_pem(cert_pem, key_pem)?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| e.to_string())?;
    client_config_with(
        Arc::new(SingleCertAndKey::from(certified)),
        verifier,
        tickets,
    )
}

/// [`client_config`] presenting what `identity` resolves to. rustls resumes a
/// stored session only through the `identity` and `verifier` (the same `Arc`s)
/// that made it.
pub fn client_config_with(
    identity: Arc<dyn ResolvesClientCert>,
    verifier: Arc<dyn ServerCertVerifier>,
    tickets: Arc<dyn ClientSessionStore>,
) -> Result<ClientConfig, String> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(identity);
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.resumption = Resumption::store(tickets).tls12_resumption(Tls12Resumption::Disabled);
    config.enable_early_data = false;
    Ok(config)
}

/// What the TLS handshakes of a connector were: counts, and the latest one.
#[derive(Debug, Default)]
pub struct Handshakes {
    full: AtomicU64,
    resumed: AtomicU64,
    /// 0: none yet, 1: full, 2: resumed.
    last: AtomicU8,
}

impl Handshakes {
    fn record(&self, kind: Option<HandshakeKind>) {
        let resumed = kind == Some(HandshakeKind::Resumed);
        let counter = if resumed { &self.resumed } else { &self.full };
        counter.fetch_add(1, Ordering::Relaxed);
        self.last
            .store(if resumed { 2 } else { 1 }, Ordering::Relaxed);
    }

    pub fn full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }

    /// "full", "resumed", or "none" before the first handshake.
    pub fn last(&self) -> &'static str {
        match self.last.load(Ordering::Relaxed) {
            1 => "full",
            2 => "resumed",
            _ => "none",
        }
    }
}

/// Connects to one hub over TLS through one `ClientConfig` (see the module header).
/// Clones share the config, its tickets and the handshake counts.
#[derive(Clone)]
pub struct HubConnector {
    endpoint: Endpoint,
    dialer: Dialer,
}

impl std::fmt::Debug for HubConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConnector")
            .field("address", &self.dialer.address)
            .finish_non_exhaustive()
    }
}

impl HubConnector {
    /// A connector to the `https://host:port` of `url` with `config`.
    pub fn new(url: &str, config: Arc<ClientConfig>) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("{url:?}: TLS needs an https:// URL"));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("{url:?} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let server_name =
            ServerName::try_from(host.clone()).map_err(|e| format!("{url:?}: {e}"))?;
        // tonic itself only wraps https:// in its own TLS: the channel is told a
        // plain URL to hand to this connector, and keeps https as the origin.
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| format!("{url:?}: {e}"))?
            .origin(uri)
            .http2_keep_alive_interval(liveness::KEEPALIVE_INTERVAL)
            .keep_alive_timeout(liveness::KEEPALIVE_TIMEOUT);
        Ok(HubConnector {
            endpoint,
            dialer: Dialer {
                tls: TlsConnector::from(config),
                server_name,
                address,
                handshakes: Arc::default(),
            },
        })
    }

    /// A new connection to the hub, as a gRPC channel.
    pub async fn connect(&self) -> Result<Channel, mart_proto::tonic::transport::Error> {
        self.endpoint
            .connect_with_connector(self.dialer.clone())
            .await
    }

    pub fn handshakes(&self) -> &Handshakes {
        &self.dialer.handshakes
    }
}

/// The connector tonic calls for each new connection.
#[derive(Clone)]
struct Dialer {
    tls: TlsConnector,
    server_name: ServerName<'static>,
    address: String,
    handshakes: Arc<Handshakes>,
}

impl Dialer {
    async fn dial(self) -> io::Result<TokioIo<TlsStream<TcpStream>>> {
        let tcp =
            tokio::time::timeout(liveness::CONNECT_TIMEOUT, TcpStream::connect(&self.address))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "the TCP connect timed out")
                })??;
        // Failing either only loses a latency or a liveness nicety; the link works.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        liveness::keep_alive(&tcp);
        let tls = self.tls.connect(self.server_name.clone(), tcp).await?;
        let (_, connection) = tls.get_ref();
        if connection.alpn_protocol() != Some(ALPN_H2) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server did not agree to HTTP/2 (ALPN h2)",
            ));
        }
        self.handshakes.record(connection.handshake_kind());
        tracing::debug!(
            server = %self.address,
            handshake = self.handshakes.last(),
            "tls handshake with the hub"
        );
        Ok(TokioIo::new(tls))
    }
}

impl mart_proto::tonic::codegen::Service<Uri> for Dialer {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        Box::pin(self.clone().dial())
    }
}
