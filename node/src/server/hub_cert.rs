//! The district's check of the server it dials as its hub: the certificate must
//! chain to the province's CA and be valid for the host dialed (rustls' WebPKI
//! verifier does that), and its identity must be exactly `nttmart://hub/<the hub id
//! of the config>`. Anything else ends the TLS handshake, before the district has
//! sent a byte of its own or read a byte of the server's.
//!
//! It must never accept a server on the CA chain alone: every node and operator
//! certificate of the province chains to the same CA, so a district's or another
//! hub's certificate served at the hub's address would pass that check.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

use crate::domain::doc_id::NodeId;
use crate::rpc::identity::{identity_of_certificate, PeerIdentity, PeerRole};
use crate::sync::tls_dial::provider;

/// Why a server was refused as the hub: whom the district expected, and what the
/// server's certificate says (an identity, or why it has none).
#[derive(Debug, thiserror::Error)]
#[error(
    "the server is not the hub {expected}: its certificate names {presented} (a certificate \
     of the province's CA, but not the hub [node] hub names)"
)]
pub struct NotTheHub {
    pub expected: String,
    pub presented: String,
}

/// A rustls verifier of the hub's server certificate (see the module header).
#[derive(Debug)]
pub struct HubVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    hub: PeerIdentity,
}

impl HubVerifier {
    /// Trusts the CA certificates of `ca_pem` and accepts only hub `hub`.
    pub fn new(ca_pem: &[u8], hub: &NodeId) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("not a CA certificate: {e}"))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HubVerifier {
            webpki,
            hub: PeerIdentity {
                node: hub.clone(),
                role: PeerRole::Hub,
            },
        })
    }

    /// `Ok` when the DER certificate names exactly the configured hub.
    fn check_identity(&self, der: &[u8]) -> Result<(), NotTheHub> {
        let presented = match identity_of_certificate(der) {
            Ok(identity) if identity == self.hub => return Ok(()),
            Ok(identity) => identity.to_string(),
            Err(reason) => format!("no node identity ({reason})"),
        };
        Err(NotTheHub {
            expected: self.hub.to_string(),
            presented,
        })
    }
}

impl ServerCertVerifier for HubVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match self.check_identity(end_entity.as_ref()) {
            Ok(()) => Ok(verified),
            Err(refusal) => {
                tracing::warn!(
                    expected = %refusal.expected,
                    presented = %refusal.presented,
                    server = ?server_name,
                    "refusing a server that is not the configured hub"
                );
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(refusal)),
                )))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sync::dial::certificate_refusal;
    use mart_pki::leaf::{sign, Request, Signed};
    use mart_pki::{ca, identity, Role, Validity};

    /// A fresh CA in `dir`; returns its certificate PEM.
    pub(crate) fn new_ca(dir: &std::path::Path) -> Vec<u8> {
        let created = ca::init(dir, "test CA", 30, time::OffsetDateTime::now_utc()).unwrap();
        std::fs::read(created.cert_path).unwrap()
    }

    /// A certificate for `localhost` and its key, signed by the CA in `dir`.
    pub(crate) fn signed(dir: &std::path::Path, role: Role, id: &str) -> Signed {
        let request = Request {
            node_id: id.into(),
            role,
            hosts: vec![identity::host("localhost").unwrap()],
            validity: Validity::from_now(time::OffsetDateTime::now_utc(), 30).unwrap(),
        };
        sign(&ca::load(dir).unwrap(), &request).unwrap()
    }

    /// A certificate for `localhost` signed by the CA in `dir`, as DER.
    fn leaf(dir: &std::path::Path, role: Role, id: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(signed(dir, role, id).cert_pem.as_bytes()).unwrap()
    }

    fn verify(verifier: &HubVerifier, cert: &CertificateDer<'_>) -> Result<(), String> {
        let name = ServerName::try_from("localhost").unwrap();
        verifier
            .verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| certificate_refusal(&e).unwrap_or_else(|| e.to_string()))
    }

    #[test]
    fn only_the_configured_hub_passes() {
        let province = tempfile::tempdir().unwrap();
        let ca_pem = new_ca(province.path());
        let verifier = HubVerifier::new(&ca_pem, &NodeId::parse("kupang").unwrap()).unwrap();
        verify(&verifier, &leaf(province.path(), Role::Hub, "kupang")).unwrap();
        for (role, id, presented) in [
            (Role::Hub, "evil", "nttmart://hub/evil"),
            (Role::District, "sikka", "nttmart://district/sikka"),
            (Role::District, "kupang", "nttmart://district/kupang"),
        ] {
            let refused = verify(&verifier, &leaf(province.path(), role, id)).unwrap_err();
            assert!(
                refused.contains("not the hub nttmart://hub/kupang") && refused.contains(presented),
                "{presented}: {refused}"
            );
        }
        // A hub kupang of another CA fails the chain, before any identity check.
        let other = tempfile::tempdir().unwrap();
        new_ca(other.path());
        let foreign = verify(&verifier, &leaf(other.path(), Role::Hub, "kupang")).unwrap_err();
        assert!(!foreign.contains("not the hub"), "{foreign}");
    }
}
