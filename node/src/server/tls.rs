//! Loading the node's certificates: the server and client TLS settings for mutual
//! TLS, after checking that the certificate names this node, in its role, and is
//! within its validity period, and that the private key is readable by its owner
//! only. A district's client settings check the hub's certificate with
//! [`HubVerifier`].

use std::path::Path;
use std::sync::Arc;

use mart_proto::tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use super::hub_cert::HubVerifier;
use super::ServerError;
use crate::config::{NodeConfig, TlsMode};
use crate::engine::now_ms;
use crate::rpc::identity::{identity_of_certificate, PeerRole};

/// TLS settings of a node with certificates.
#[derive(Clone)]
pub struct NodeTls {
    pub server: ServerTlsConfig,
    /// The node's own certificate as a client; the server's is checked by
    /// `hub_verifier`, which holds the CA.
    pub client: ClientTlsConfig,
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
                "the certificate's role is {:?}, the config's {expected_role:?}",
                identity.role
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
    let id = Identity::from_pem(&cert_pem, &key_pem);
    Ok(Some(NodeTls {
        // tonic runs each TLS handshake in its own task; without a timeout one that
        // never finishes holds its connection, and a slot of the cap, forever.
        server: ServerTlsConfig::new()
            .identity(id.clone())
            .client_ca_root(Certificate::from_pem(&ca_pem))
            .timeout(config.connections.handshake_timeout),
        client: ClientTlsConfig::new().identity(id),
        hub_verifier: Arc::new(hub_verifier),
    }))
}

fn first_certificate(pem: &[u8]) -> Result<Vec<u8>, String> {
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    if parsed.label != "CERTIFICATE" {
        return Err(format!("PEM block is {:?}, not CERTIFICATE", parsed.label));
    }
    Ok(parsed.contents)
}

fn check_validity(der: &[u8]) -> Result<(), String> {
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
