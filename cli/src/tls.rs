//! The operator's side of mutual TLS: which files `--ca`, `--cert` and `--key` name,
//! whether the `--node` address needs them, and the client TLS settings built from them.
//!
//! It must never connect to an `https://` node without presenting a certificate, never
//! use a private key others may read (it refuses, saying `chmod 600`), never
//! trust any root but the given CA, and never accept TLS files for a node it would
//! reach without TLS (the operator would believe the link is encrypted).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use mart_proto::tonic::transport::{Certificate, ClientTlsConfig, Identity};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::connect::NodeAddr;

/// The TLS files as given on the command line or in the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// All three files an `https://` node needs: the CA that signed the node's certificate,
/// and the operator's own certificate and key (from `martctl pki issue --role operator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files to connect to `addr` with: all three for `https://`, none otherwise.
    /// `on_command_line` says whether any of them was typed rather than taken from
    /// `MARTCTL_CA`/`_CERT`/`_KEY`: files from the environment are meant for the
    /// operator's usual remote node and are ignored for a local socket, but typed
    /// ones next to a plain-text address are a mistake worth stopping.
    pub fn for_node(
        self,
        addr: &NodeAddr,
        on_command_line: bool,
    ) -> Result<Option<ClientFiles>, String> {
        if !matches!(addr, NodeAddr::Https { .. }) {
            if on_command_line && self != TlsFiles::default() {
                return Err(format!(
                    "--ca, --cert and --key are for https:// nodes; {addr} is not TLS \
                     (use --node https://HOST:PORT for mutual TLS)"
                ));
            }
            return Ok(None);
        }
        let need = |file: Option<PathBuf>, flag: &str, env: &str, what: &str| {
            file.ok_or_else(|| {
                format!(
                    "{addr} needs {flag} FILE (or {env}): {what}; mutual TLS takes --ca, \
                     --cert and --key, e.g. from martctl pki issue --role operator"
                )
            })
        };
        Ok(Some(ClientFiles {
            ca: need(
                self.ca,
                "--ca",
                "MARTCTL_CA",
                "the CA certificate that signed the node's",
            )?,
            cert: need(
                self.cert,
                "--cert",
                "MARTCTL_CERT",
                "your operator certificate",
            )?,
            key: need(
                self.key,
                "--key",
                "MARTCTL_KEY",
                "the private key of your certificate",
            )?,
        }))
    }
}

impl ClientFiles {
    /// Reads and checks the three files, and builds the client TLS settings that
    /// verify the node's certificate against `server_name` (a name or address in its
    /// SAN: rustls ignores the CN).
    pub fn load(&self, server_name: &str) -> Result<ClientTlsConfig> {
        let ca = read(&self.ca, "--ca", "CA certificate")?;
        check_certificates(&ca).with_context(|| format!("--ca {}", self.ca.display()))?;
        let cert = read(&self.cert, "--cert", "certificate")?;
        check_certificates(&cert).with_context(|| format!("--cert {}", self.cert.display()))?;
        let key = read(&self.key, "--key", "private key")?;
        mart_pki::files::check_private(&self.key).map_err(|e| anyhow!("--key: {e}"))?;
        check_key(&key).with_context(|| format!("--key {}", self.key.display()))?;
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key))
            .domain_name(server_name))
    }
}

fn read(path: &Path, flag: &str, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .with_context(|| format!("{flag}: cannot read the {what} {}", path.display()))
}

/// At least one PEM certificate, and nothing unreadable.
fn check_certificates(pem: &[u8]) -> Result<()> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| anyhow!("not a PEM certificate: {e}"))?;
        count += 1;
    }
    if count == 0 {
        return Err(anyhow!("holds no PEM certificate (BEGIN CERTIFICATE)"));
    }
    Ok(())
}

fn check_key(pem: &[u8]) -> Result<()> {
    PrivateKeyDer::from_pem_slice(pem)
        .map(drop)
        .map_err(|e| anyhow!("holds no PEM private key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(ca: bool, cert: bool, key: bool) -> TlsFiles {
        TlsFiles {
            ca: ca.then(|| PathBuf::from("ca.pem")),
            cert: cert.then(|| PathBuf::from("cert.pem")),
            key: key.then(|| PathBuf::from("key.pem")),
        }
    }

    fn https() -> NodeAddr {
        "https://localhost:7440".parse().unwrap()
    }

    #[test]
    fn https_takes_all_three_files() {
        let got = files(true, true, true).for_node(&https(), true).unwrap();
        assert_eq!(
            got,
            Some(ClientFiles {
                ca: "ca.pem".into(),
                cert: "cert.pem".into(),
                key: "key.pem".into(),
            })
        );
    }

    #[test]
    fn names_the_missing_file() {
        for (f, flag) in [
            (files(false, true, true), "--ca FILE (or MARTCTL_CA)"),
            (files(true, false, true), "--cert FILE (or MARTCTL_CERT)"),
            (files(true, true, false), "--key FILE (or MARTCTL_KEY)"),
            (files(false, false, false), "--ca FILE"),
        ] {
            let err = f.for_node(&https(), false).unwrap_err();
            assert!(err.contains(flag), "{err}");
            assert!(err.starts_with("https://localhost:7440 needs"), "{err}");
        }
    }

    #[test]
    fn plain_addresses_ignore_files_from_the_environment_only() {
        let unix: NodeAddr = "unix:./mart-data/admin.sock".parse().unwrap();
        let http: NodeAddr = "http://127.0.0.1:7440".parse().unwrap();
        assert_eq!(files(true, true, true).for_node(&unix, false), Ok(None));
        assert_eq!(files(false, false, false).for_node(&http, true), Ok(None));
        let err = files(false, true, false).for_node(&http, true).unwrap_err();
        assert!(err.contains("http://127.0.0.1:7440 is not TLS"), "{err}");
    }

    #[test]
    fn checks_pem_contents() {
        assert!(check_certificates(b"").is_err());
        assert!(check_certificates(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
        assert!(
            check_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(check_certificates(cert.pem().as_bytes()).is_ok());
        assert!(check_key(key.serialize_pem().as_bytes()).is_ok());
    }

    #[test]
    fn refuses_missing_files_by_flag() {
        let dir = tempfile::tempdir().unwrap();
        let files = ClientFiles {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let err = format!("{:#}", files.load("localhost").unwrap_err());
        assert!(
            err.starts_with("--ca: cannot read the CA certificate"),
            "{err}"
        );
    }
}
