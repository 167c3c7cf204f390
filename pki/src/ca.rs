//! The provincial certificate authority: made once by `pki init`, loaded back by
//! `pki issue` to sign node certificates.
//!
//! It must never overwrite an existing CA key, and never sign with a key that does not
//! belong to the CA certificate beside it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::files::{self, NewFile};
use crate::validity::Validity;

/// The CA certificate, in the CA directory and copied beside every issued certificate.
pub const CERT_FILE: &str = "ca.pem";
/// The CA private key; only ever in the CA directory.
pub const KEY_FILE: &str = "ca-key.pem";

/// What `pki init` wrote.
#[derive(Debug)]
pub struct Created {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub serial: String,
    pub validity: Validity,
}

/// Creates the CA in `dir`: a P-256 key and a self-signed certificate named `name`,
/// valid `now - 1h .. now + days`, that may sign node certificates and CRLs but no
/// other CA (path length 0).
pub fn init(dir: &Path, name: &str, days: u32, now: OffsetDateTime) -> Result<Created> {
    let key_path = dir.join(KEY_FILE);
    let cert_path = dir.join(CERT_FILE);
    if key_path.symlink_metadata().is_ok() {
        bail!(
            "{} already exists: refusing to overwrite a certificate authority \
             (issue with it, or choose another --dir)",
            key_path.display()
        );
    }
    let name = name.trim();
    if name.is_empty() {
        bail!("the CA needs a name: --name must not be empty");
    }
    let validity = Validity::from_now(now, days).map_err(|e| anyhow!(e))?;
    let serial = random_serial();

    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(serial.clone());
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("cannot generate the CA key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the CA certificate")?;

    files::private_dir(dir)?;
    files::create_all(&[
        NewFile {
            path: key_path.clone(),
            contents: key.serialize_pem().into_bytes(),
            mode: files::PRIVATE,
        },
        NewFile {
            path: cert_path.clone(),
            contents: cert.pem().into_bytes(),
            mode: files::PUBLIC,
        },
    ])?;
    Ok(Created {
        cert_path,
        key_path,
        serial: hex(serial.as_ref()),
        validity,
    })
}

/// A CA loaded from its directory, ready to sign.
pub struct Ca {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub issuer: Issuer<'static, KeyPair>,
}

/// Loads `ca.pem` and `ca-key.pem` from `dir` and checks that the key is the
/// certificate's.
pub fn load(dir: &Path) -> Result<Ca> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let hint = "is --ca the directory `martctl pki init` created?";
    let cert_pem = std::fs::read_to_string(&cert_path)
        .with_context(|| format!("cannot read {} ({hint})", cert_path.display()))?;
    let key_pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("cannot read {} ({hint})", key_path.display()))?;
    crate::files::check_private(&key_path).map_err(|e| anyhow!(e))?;
    let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| anyhow!("{} holds no PEM certificate: {e}", cert_path.display()))?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| anyhow!("{} holds no usable private key: {e}", key_path.display()))?;

    let anchor = webpki::anchor_from_trusted_cert(&cert_der).map_err(|e| {
        anyhow!(
            "{} is not a certificate webpki accepts: {e}",
            cert_path.display()
        )
    })?;
    if webpki::spki_for_anchor(&anchor).as_ref() != key.subject_public_key_info().as_slice() {
        bail!(
            "{} is not the key of {}: refusing to sign certificates no node would trust",
            key_path.display(),
            cert_path.display()
        );
    }
    let issuer = Issuer::from_ca_cert_der(&cert_der, key)
        .map_err(|e| anyhow!("cannot use {} as an issuer: {e}", cert_path.display()))?;
    Ok(Ca {
        cert_pem,
        cert_der,
        issuer,
    })
}

/// A random positive 128-bit serial number, so certificates can be told apart (and
/// revoked) one by one.
pub fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// Lowercase hex with `:` between bytes, as openssl prints serials.
pub fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}
