//! TLS 1.3 resumption between the node's own server and client configs, in
//! process over an in-memory pipe, with certificates of a real CA: which handshakes
//! resume, and what identity the server reads from a resumed session. The cluster
//! tests (`tests/tests/tls_resumption.rs`) check the same through real processes;
//! here the server's clock can be moved past a ticket's lifetime.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mart_pki::Role;
use rustls::client::ClientSessionStore;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::tls_dial::{client_config, ticket_store};
use crate::domain::doc_id::NodeId;
use crate::rpc::identity::identity_of_certificate;
use crate::server::hub_cert::tests::{new_ca, signed};
use crate::server::hub_cert::HubVerifier;
use crate::server::resumption::tests::manual_clock;
use crate::server::resumption::{Clock, SessionCache, CAPACITY};
use crate::server::tls::server_config;

/// A CA in a temp dir, and the certificates it signs.
struct Province {
    dir: tempfile::TempDir,
    ca_pem: Vec<u8>,
}

impl Province {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = new_ca(dir.path());
        Province { dir, ca_pem }
    }

    /// A hub `id`'s server config, its tickets aged by `clock`.
    fn hub(&self, id: &str, lifetime: Duration, clock: Clock) -> Arc<ServerConfig> {
        let cert = signed(self.dir.path(), Role::Hub, id);
        let cache = SessionCache::with(CAPACITY, lifetime, clock);
        let config = server_config(
            &self.ca_pem,
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
            Arc::new(cache),
        );
        Arc::new(config.unwrap())
    }

    /// District `id`'s client config for hub `hub`, keeping tickets in `tickets`.
    fn district(
        &self,
        id: &str,
        hub: &str,
        tickets: Arc<dyn ClientSessionStore>,
    ) -> Arc<ClientConfig> {
        let cert = signed(self.dir.path(), Role::District, id);
        let verifier = HubVerifier::new(&self.ca_pem, &NodeId::parse(hub).unwrap()).unwrap();
        let config = client_config(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
            Arc::new(verifier),
            tickets,
        );
        Arc::new(config.unwrap())
    }
}

/// What one connection was: the client's handshake kind and the identity the
/// server read from the session's peer certificate.
#[derive(Debug, PartialEq)]
struct Seen {
    kind: HandshakeKind,
    identity: String,
}

/// One connection from `client` to `server`; the client reads one byte of
/// application data, so the server's ticket (sent before it) is stored.
async fn connect(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Result<Seen, String> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let serving = tokio::spawn(async move {
        let mut tls = TlsAcceptor::from(server).accept(server_io).await.ok()?;
        let chain = tls.get_ref().1.peer_certificates()?.to_vec();
        let identity = identity_of_certificate(chain[0].as_ref()).ok()?;
        tls.write_all(b"!").await.ok()?;
        tls.flush().await.ok()?;
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest).await;
        Some(identity.to_string())
    });
    let name = ServerName::try_from("localhost").unwrap();
    let connected = TlsConnector::from(client).connect(name, client_io).await;
    let mut tls = connected
        .map_err(|e| crate::sync::dial::certificate_refusal(&e).unwrap_or_else(|| e.to_string()))?;
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
    let kind = tls.get_ref().1.handshake_kind().unwrap();
    tls.shutdown().await.map_err(|e| e.to_string())?;
    drop(tls);
    let identity = serving.await.unwrap().ok_or("the server saw no identity")?;
    Ok(Seen { kind, identity })
}

fn seen(kind: HandshakeKind, identity: &str) -> Seen {
    Seen {
        kind,
        identity: identity.into(),
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::test]
async fn a_reconnect_resumes_and_keeps_the_identity_of_the_first_session() {
    let province = Province::new();
    let hub = province.hub("kupang", DAY, Arc::new(std::time::Instant::now));
    let ttu_tickets = ticket_store();
    let ttu = province.district("ttu", "kupang", ttu_tickets.clone());
    let first = connect(hub.clone(), ttu.clone()).await.unwrap();
    assert_eq!(first, seen(HandshakeKind::Full, "nttmart://district/ttu"));
    let again = connect(hub.clone(), ttu.clone()).await.unwrap();
    assert_eq!(
        again,
        seen(HandshakeKind::Resumed, "nttmart://district/ttu")
    );

    // Sikka's certificate with ttu's tickets: rustls offers a ticket only under the
    // certificate and verifier that made it, so this is a full handshake as sikka.
    // (A client that offers ttu's ticket anyway resumes ttu's session, never
    // sikka's: tests/tests/tls_resumption.rs checks that against the real hub.)
    let sikka_with_ttu_tickets = province.district("sikka", "kupang", ttu_tickets.clone());
    let own = connect(hub.clone(), sikka_with_ttu_tickets).await.unwrap();
    assert_eq!(own, seen(HandshakeKind::Full, "nttmart://district/sikka"));
    // The store now holds sikka's ticket, which ttu does not offer either.
    let ttu_again = connect(hub, ttu).await.unwrap();
    assert_eq!(
        ttu_again,
        seen(HandshakeKind::Full, "nttmart://district/ttu")
    );
}

#[tokio::test]
async fn a_ticket_older_than_its_lifetime_costs_a_full_handshake() {
    let province = Province::new();
    let (clock, seconds) = manual_clock();
    let hub = province.hub("kupang", Duration::from_secs(600), clock);
    let ttu = province.district("ttu", "kupang", ticket_store());
    connect(hub.clone(), ttu.clone()).await.unwrap();
    seconds.store(599, Ordering::SeqCst);
    let fresh = connect(hub.clone(), ttu.clone()).await.unwrap();
    assert_eq!(fresh.kind, HandshakeKind::Resumed);
    // The ticket that resumed session issued is 601 s old at the next connect.
    seconds.store(599 + 601, Ordering::SeqCst);
    let expired = connect(hub.clone(), ttu.clone()).await.unwrap();
    assert_eq!(expired, seen(HandshakeKind::Full, "nttmart://district/ttu"));
    let after = connect(hub, ttu).await.unwrap();
    assert_eq!(after.kind, HandshakeKind::Resumed);
}

#[tokio::test]
async fn a_ticket_of_another_hub_or_an_earlier_run_is_not_resumed() {
    let province = Province::new();
    let now: Clock = Arc::new(std::time::Instant::now);
    let hub = province.hub("kupang", DAY, now.clone());
    let ttu = province.district("ttu", "kupang", ticket_store());
    connect(hub, ttu.clone()).await.unwrap();

    // The hub restarted: same certificate, a new (empty) cache.
    let restarted = province.hub("kupang", DAY, now.clone());
    let foreign = connect(restarted.clone(), ttu.clone()).await.unwrap();
    assert_eq!(foreign, seen(HandshakeKind::Full, "nttmart://district/ttu"));
    connect(restarted, ttu.clone()).await.unwrap();

    // Another hub of the same CA at the same name: the ticket (kupang's) is
    // offered, not resumed, and the full handshake refuses the server.
    let flores = province.hub("flores", DAY, now);
    let refused = connect(flores, ttu).await.unwrap_err();
    assert!(
        refused.contains("not the hub nttmart://hub/kupang"),
        "{refused}"
    );
}
