//! Certificates for tests, made by the real `martctl pki init` and `martctl pki issue`
//! in a temp dir: a provincial CA and the hub, district and operator certificates it
//! signs (SAN URI `nttmart://<role>/<id>`), plus [`TlsFiles::client`], the tonic
//! client settings a raw test client presents them with.
//!
//! It must never make a certificate any other way than the shipped CLI does: a test
//! of mutual TLS is only worth something against the certificates operators get.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{ensure, Context, Result};
use mart_proto::tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tempfile::TempDir;

use crate::binaries::martctl_bin;

/// The role a certificate grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Hub,
    District,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hub => "hub",
            Role::District => "district",
            Role::Operator => "operator",
        }
    }
}

/// The files a node's `[tls]` section (or a client) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA the peer's certificate must chain to.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Client settings presenting this certificate and trusting only `ca`.
    pub fn client(&self) -> Result<ClientTlsConfig> {
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)?))
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?)))
    }

    /// Client settings trusting only `ca`, presenting no certificate.
    pub fn client_without_certificate(&self) -> Result<ClientTlsConfig> {
        Ok(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&self.ca)?)))
    }

    /// The same certificate and key, trusting another CA file.
    pub fn trusting(&self, ca: &Path) -> TlsFiles {
        TlsFiles {
            ca: ca.to_path_buf(),
            ..self.clone()
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("read {}", path.display()))
}

/// Options of one `pki issue`.
#[derive(Debug, Clone, Default)]
pub struct Issue<'a> {
    /// `--host`: names the certificate is valid for as a server.
    pub hosts: &'a [&'a str],
    /// `--not-before YYYY-MM-DD`.
    pub not_before: Option<&'a str>,
    /// `--not-after YYYY-MM-DD`.
    pub not_after: Option<&'a str>,
}

/// A certificate authority in its own temp dir.
pub struct Pki {
    dir: TempDir,
    issued: AtomicU32,
}

impl Pki {
    /// Runs `martctl pki init` into a fresh temp dir.
    pub fn init() -> Result<Pki> {
        let dir = tempfile::Builder::new()
            .prefix("mart-pki-")
            .tempdir()
            .context("create the pki temp dir")?;
        let pki = Pki {
            dir,
            issued: AtomicU32::new(0),
        };
        martctl(&[
            "pki".as_ref(),
            "init".as_ref(),
            "--dir".as_ref(),
            pki.ca_dir().as_os_str(),
        ])?;
        Ok(pki)
    }

    /// The directory holding `ca.pem` and `ca-key.pem`.
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    /// The CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.pem")
    }

    /// Issues a certificate valid from an hour ago.
    pub fn issue(&self, id: &str, role: Role, hosts: &[&str]) -> Result<TlsFiles> {
        self.issue_with(
            id,
            role,
            Issue {
                hosts,
                ..Issue::default()
            },
        )
    }

    /// Runs `martctl pki issue` into a fresh directory and returns the files.
    pub fn issue_with(&self, id: &str, role: Role, options: Issue<'_>) -> Result<TlsFiles> {
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let out = self.dir.path().join(format!("{}-{id}-{n}", role.as_str()));
        let ca = self.ca_dir();
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "pki".as_ref(),
            "issue".as_ref(),
            "--ca".as_ref(),
            ca.as_os_str(),
            "--id".as_ref(),
            id.as_ref(),
            "--role".as_ref(),
            role.as_str().as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ];
        for host in options.hosts {
            args.push("--host".as_ref());
            args.push(host.as_ref());
        }
        if let Some(day) = options.not_before {
            args.push("--not-before".as_ref());
            args.push(day.as_ref());
        }
        if let Some(day) = options.not_after {
            args.push("--not-after".as_ref());
            args.push(day.as_ref());
        }
        martctl(&args)?;
        let files = TlsFiles {
            ca: out.join("ca.pem"),
            cert: out.join("cert.pem"),
            key: out.join("key.pem"),
        };
        for file in [&files.ca, &files.cert, &files.key] {
            ensure!(
                file.exists(),
                "martctl pki issue did not write {}",
                file.display()
            );
        }
        Ok(files)
    }
}

fn martctl(args: &[&std::ffi::OsStr]) -> Result<()> {
    let out = Command::new(martctl_bin())
        .args(args)
        .env_remove("MARTCTL_NODE")
        .output()
        .with_context(|| format!("run martctl {args:?}"))?;
    ensure!(
        out.status.success(),
        "martctl {args:?} exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
