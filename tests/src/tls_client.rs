//! A district's TLS client as a test drives it: the node's own connector
//! (`mart_node::sync::tls_dial`, one rustls config and its ticket store), with an
//! identity the test can switch between certificates while keeping the config, and
//! so its tickets. That is the hostile client of a resumption test: one that offers
//! a ticket of district A while it holds district B's certificate (a stock rustls
//! client never does: it resumes only under the identity that made the ticket).
//!
//! It must never be used to test anything but the hub's side of resumption: the
//! district's own dialer has one fixed identity.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use mart_node::domain::doc_id::NodeId;
use mart_node::server::hub_cert::HubVerifier;
use mart_node::sync::tls_dial::{client_config_with, identity_of_pem, provider};
use rustls::client::{ClientSessionStore, ResolvesClientCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme};

use crate::pki::TlsFiles;

/// The certificate a client presents in a full handshake, switchable.
#[derive(Debug)]
pub struct SwitchableIdentity {
    current: Mutex<Arc<CertifiedKey>>,
}

impl SwitchableIdentity {
    pub fn new(files: &TlsFiles) -> Result<Arc<Self>> {
        Ok(Arc::new(SwitchableIdentity {
            current: Mutex::new(certified(files)?),
        }))
    }

    /// Presents `files`' certificate from the next full handshake on.
    pub fn switch_to(&self, files: &TlsFiles) -> Result<()> {
        *self.current.lock().expect("not poisoned") = certified(files)?;
        Ok(())
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("read {}", path.display()))
}

fn certified(files: &TlsFiles) -> Result<Arc<CertifiedKey>> {
    let (chain, key) =
        identity_of_pem(&read(&files.cert)?, &read(&files.key)?).map_err(|e| anyhow!(e))?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}

impl ResolvesClientCert for SwitchableIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current.lock().expect("not poisoned").clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client config that accepts only hub `hub` (of `files.ca`), presents
/// `identity` and keeps its tickets in `tickets`; connect with
/// `HubConnector::new(url, config)`.
pub fn hub_config(
    files: &TlsFiles,
    hub: &str,
    identity: Arc<SwitchableIdentity>,
    tickets: Arc<dyn ClientSessionStore>,
) -> Result<Arc<ClientConfig>> {
    let verifier =
        HubVerifier::new(&read(&files.ca)?, &NodeId::parse(hub)?).map_err(|e| anyhow!("{e}"))?;
    let config =
        client_config_with(identity, Arc::new(verifier), tickets).map_err(|e| anyhow!("{e}"))?;
    Ok(Arc::new(config))
}
