//! Node certificates: the leaf the CA signs for a hub, a district or an operator,
//! carrying the identity URI, the host names, the key usages of the role and a window
//! of validity.
//!
//! It must never hand out a certificate it has not checked the way a node will: the
//! new certificate is verified with rustls-webpki against the CA certificate, for the
//! usages of its role, each host name and its identity URI, before anything is written.

use anyhow::{anyhow, bail, Context, Result};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::ca::{self, Ca};
use crate::identity::{identity_uri, parse_identity_uri, Host, Role};
use crate::validity::Validity;

/// What a certificate is issued for.
#[derive(Debug, Clone)]
pub struct Request {
    pub node_id: String,
    pub role: Role,
    pub hosts: Vec<Host>,
    pub validity: Validity,
}

impl Request {
    pub fn uri(&self) -> String {
        identity_uri(self.role, &self.node_id)
    }

    /// The extended key usages of the role, as names for display.
    pub fn usages(&self) -> Vec<&'static str> {
        if self.role.serves() {
            vec!["server_auth", "client_auth"]
        } else {
            vec!["client_auth"]
        }
    }
}

/// A signed certificate and its new key, in PEM, not yet written anywhere.
pub struct Signed {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: String,
}

/// Signs a certificate for `req` with a fresh P-256 key, then checks it as a node would.
pub fn sign(ca: &Ca, req: &Request) -> Result<Signed> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, req.node_id.as_str());
    params.subject_alt_names = subject_alt_names(req)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = if req.role.serves() {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    params.use_authority_key_identifier_extension = true;
    params.not_before = req.validity.not_before;
    params.not_after = req.validity.not_after;
    let serial = ca::random_serial();
    params.serial_number = Some(serial.clone());

    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("cannot generate the node key")?;
    let cert = params
        .signed_by(&key, &ca.issuer)
        .context("cannot sign the node certificate")?;
    check(&ca.cert_der, cert.der(), req)
        .context("the new certificate does not verify against the CA, nothing written")?;
    Ok(Signed {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial: ca::hex(serial.as_ref()),
    })
}

fn subject_alt_names(req: &Request) -> Result<Vec<SanType>> {
    let mut sans = vec![SanType::URI(req.uri().try_into()?)];
    for host in &req.hosts {
        sans.push(match host {
            Host::Dns(name) => SanType::DnsName(name.as_str().try_into()?),
            Host::Ip(ip) => SanType::IpAddress(*ip),
        });
    }
    Ok(sans)
}

/// Verifies `leaf` the way a peer's rustls does: a path to the CA, signed with ECDSA
/// P-256 SHA-256, at a time inside the leaf's window, the usages of its role, every host, and one identity URI naming
/// exactly this node and role.
pub fn check(ca_der: &CertificateDer<'_>, leaf: &CertificateDer<'_>, req: &Request) -> Result<()> {
    let anchor = webpki::anchor_from_trusted_cert(ca_der).map_err(|e| anyhow!("ca: {e}"))?;
    let anchors = [anchor];
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| anyhow!("leaf: {e}"))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(req.validity.not_before.unix_timestamp()).unwrap_or(0) + 1,
    ));
    let mut usages = vec![webpki::KeyUsage::client_auth()];
    if req.role.serves() {
        usages.push(webpki::KeyUsage::server_auth());
    }
    for usage in usages {
        cert.verify_for_usage(
            &[webpki::ring::ECDSA_P256_SHA256],
            &anchors,
            &[],
            time,
            usage,
            None,
            None,
        )
        .map_err(|e| anyhow!("chain: {e}"))?;
    }
    for host in &req.hosts {
        let name =
            ServerName::try_from(host.to_string()).map_err(|e| anyhow!("host {host}: {e}"))?;
        cert.verify_is_valid_for_subject_name(&name)
            .map_err(|e| anyhow!("host {host}: {e}"))?;
    }
    let identities: Vec<_> = cert
        .valid_uri_names()
        .filter_map(parse_identity_uri)
        .collect();
    if identities != [(req.role, req.node_id.as_str())] {
        bail!("identity URIs {identities:?}, expected only {}", req.uri());
    }
    Ok(())
}
