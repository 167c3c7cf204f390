//! Loading the node's certificates: the server and client TLS settings for mutual
//! TLS, after checking that the certificate names this node, in its role, and is
//! within its validity period, and that the private key is readable by its owner
//! only. A district's client settings check the hub's certificate with
//! [`HubVerifier`].
//!
//! Both are rustls configs built once per process, TLS 1.3 only, with session
//! resumption on: the server keeps its tickets in a [`SessionCache`], the client
//! its own in memory (see `sync::tls_dial`). Neither is ever rebuilt per
//! connection, which would forget every ticket.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::hub_cert::HubVerifier;
use super::resumption::SessionCache;
use super::ServerError;
use crate::config::{NodeConfig, TlsMode};
use crate::engine::now_ms;
use crate::rpc::identity::{identity_of_certificate, PeerRole};
use crate::sync::tls_dial::{self, identity_of_pem, provider, ALPN_H2};

/// Tickets the server issues per connection: one, used by the next reconnect (each
/// resumed connection issues the next). A drop in the middle of a resumed
/// handshake costs one full handshake; a second ticket would cost ~100 bytes on
/// every connection and a second cache entry per district.
pub const TICKETS_PER_CONNECTION: usize = 1;

/// TLS settings of a node with certificates.
#[derive(Clone)]
pub struct NodeTls {
    /// Mutual TLS as a server: a client certificate of the CA is required.
    pub server: Arc<ServerConfig>,
    /// A TLS handshake the server accepts must end within this long.
    pub handshake_timeout: Duration,
    /// The node's own certificate as a client, checking the server with
    /// `hub_verifier`, resuming with its own ticket store.
    pub client: Arc<ClientConfig>,
    /// Accepts only the hub of the config (at the hub itself: unused).
    pub hub_verifier: Arc<HubVerifier>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path)
        .map_err(|e| ServerError::io(format!("read the {what} {}", path.display()), e))
}

fn invalid(field: &str, reason: String) -> ServerError {
    ServerError::Task(format!("{field}: {reason}"))
}

/// Checks the certificate files a config names; `Ok(None)` without mutual TLS.
pub fn load(config: &NodeConfig) -> Result<Option<NodeTls>, ServerError> {
    let Some(TlsMode::Mutual { ca, cert, key }) = &config.tls else {
        return Ok(None);
    };
    let ca_pem = read(ca, "CA certificate")?;
    let cert_pem = read(cert, "certificate")?;
    let key_pem = read(key, "private key")?;
    mart_pki::files::check_private(key).map_err(|e| invalid("tls.key", e))?;
    let der = first_certificate(&cert_pem).map_err(|e| invalid("tls.cert", e))?;
    let identity = identity_of_certificate(&der).map_err(|e| invalid("tls.cert", e))?;
    if identity.node != config.identity.node {
        return Err(invalid(
            "tls.cert",
            format!(
                "the certificate is for {}, the config for {}",
                identity.node, config.identity.node
            ),
        ));
    }
    let expected_role = PeerRole::from(config.role);
    if identity.role != expected_role {
        return Err(invalid(
            "tls.cert",
            format!(
                "the certificate's role is {}, the config's {}",
                identity.role.as_str(),
                expected_role.as_str()
            ),
        ));
    }
    check_validity(&der).map_err(|e| invalid("tls.cert", e))?;
    first_certificate(&ca_pem).map_err(|e| invalid("tls.ca", e))?;
    if !String::from_utf8_lossy(&key_pem).contains("PRIVATE KEY") {
        return Err(invalid(
            "tls.key",
            format!("{} holds no PEM private key", key.display()),
        ));
    }
    let hub_verifier = HubVerifier::new(&ca_pem, &config.identity.hub)
        .map_err(|e| invalid("tls.ca", format!("{}: {e}", ca.display())))?;
    let hub_verifier = Arc::new(hub_verifier);
    let tls_error = |field: &str, e: String| invalid(field, e);
    let server = server_config(&ca_pem, &cert_pem, &key_pem, Arc::new(SessionCache::new()))
        .map_err(|e| tls_error("tls", e))?;
    let client = tls_dial::client_config(
        &cert_pem,
        &key_pem,
        hub_verifier.clone(),
        tls_dial::ticket_store(),
    )
    .map_err(|e| tls_error("tls", e))?;
    Ok(Some(NodeTls {
        server: Arc::new(server),
        // Each handshake runs in its own task; without a timeout one that never
        // finishes holds its connection, and a slot of the cap, forever.
        handshake_timeout: config.connections.handshake_timeout,
        client: Arc::new(client),
        hub_verifier,
    }))
}

/// The server side of mutual TLS: TLS 1.3, a client certificate chaining to the CA
/// of `ca_pem` required, ALPN h2, and stateful resumption through `sessions`
/// ([`TICKETS_PER_CONNECTION`] ticket per connection; no 0-RTT data).
pub fn server_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
    sessions: Arc<SessionCache>,
) -> Result<ServerConfig, String> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(ca.map_err(|e| format!("not a PEM certificate: {e}"))?)
            .map_err(|e| format!("not a CA certificate: {e}"))?;
    }
    let provider = provider();
    let clients = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let (chain, key) = identity_of_pem(cert_pem, key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.session_storage = sessions;
    config.send_tls13_tickets = TICKETS_PER_CONNECTION;
    Ok(config)
}

fn first_certificate(pem: &[u8]) -> Result<Vec<u8>, String> {
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    if parsed.label != "CERTIFICATE" {
        return Err(format!("PEM block is {:?}, not CERTIFICATE", parsed.label));
    }
    Ok(parsed.contents)
}

/// `Ok` when the DER certificate is within its validity period now.
pub fn check_validity(der: &[u8]) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let now = now_ms() / 1000;
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(format!("not valid before {}", validity.not_before));
    }
    if now > validity.not_after.timestamp() {
        return Err(format!("expired on {}", validity.not_after));
    }
    Ok(())
}
