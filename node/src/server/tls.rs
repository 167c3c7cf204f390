//! Loading the node's certificates: the server and client TLS settings for mutual
//! TLS, after checking that the certificate names this node, in its role, and is
//! within its validity period.

use std::path::Path;

use mart_proto::tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use super::ServerError;
use crate::config::{NodeConfig, Role, TlsMode};
use crate::engine::now_ms;
use crate::rpc::identity::{identity_of_certificate, PeerRole};

/// TLS settings of a node with certificates.
#[derive(Clone)]
pub struct NodeTls {
    pub server: ServerTlsConfig,
    pub client: ClientTlsConfig,
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
    let expected_role = match config.role {
        Role::Hub => PeerRole::Hub,
        Role::District => PeerRole::District,
    };
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
    let id = Identity::from_pem(&cert_pem, &key_pem);
    let ca = Certificate::from_pem(&ca_pem);
    Ok(Some(NodeTls {
        server: ServerTlsConfig::new()
            .identity(id.clone())
            .client_ca_root(ca.clone()),
        client: ClientTlsConfig::new().identity(id).ca_certificate(ca),
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
