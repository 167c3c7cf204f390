//! The province as certificate authority: [`ca::init`] makes the CA once, [`issue`]
//! signs the certificate that gives a hub, a district or an operator its identity
//! (`nttmart://<role>/<id>` in the SAN) for mutual TLS and writes it with its key.
//! `martctl pki` and `mart-node demo` both use it, so there is one way certificates
//! are made.
//!
//! It must never talk to a node, never overwrite a key or certificate, and never leave
//! a private key readable by anyone but its owner. The CA key never leaves its directory.

pub mod ca;
pub mod files;
pub mod identity;
pub mod leaf;
pub mod validity;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::files::NewFile;
use crate::leaf::Request;

pub use crate::identity::{Host, Role};
pub use crate::validity::Validity;

/// File names written by [`issue`] into its output directory.
pub const NODE_CERT_FILE: &str = "cert.pem";
pub const NODE_KEY_FILE: &str = "key.pem";

/// What [`issue`] wrote.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// A copy of the CA certificate, the trust anchor the holder checks peers against.
    pub ca_path: PathBuf,
    pub serial: String,
}

/// Signs a certificate for `req` with the CA in `ca_dir` and writes `cert.pem`,
/// `key.pem` (0600) and `ca.pem` into `out` (created 0700): all three or none.
pub fn issue(ca_dir: &Path, req: &Request, out: &Path) -> Result<Issued> {
    let ca = ca::load(ca_dir)?;
    let signed = leaf::sign(&ca, req)?;
    let issued = Issued {
        cert_path: out.join(NODE_CERT_FILE),
        key_path: out.join(NODE_KEY_FILE),
        ca_path: out.join(ca::CERT_FILE),
        serial: signed.serial,
    };
    files::private_dir(out)?;
    files::create_all(&[
        NewFile {
            path: issued.key_path.clone(),
            contents: signed.key_pem.into_bytes(),
            mode: files::PRIVATE,
        },
        NewFile {
            path: issued.cert_path.clone(),
            contents: signed.cert_pem.into_bytes(),
            mode: files::PUBLIC,
        },
        NewFile {
            path: issued.ca_path.clone(),
            contents: ca.cert_pem.into_bytes(),
            mode: files::PUBLIC,
        },
    ])?;
    Ok(issued)
}
