//! The district's side of sync: dial the hub, run a session, and after it ends
//! wait as [`redial`] says before dialing again (a cheap probe while the hub's port
//! refuses, an exponential backoff with jitter after failures that cost the hub
//! work). The hub never dials out: districts sit behind NAT.
//!
//! No step of a dial waits on the hub without a bound (`liveness`): a hub that
//! accepts TCP and then says nothing fails the attempt in words, and the next one
//! follows with the backoff.

use std::sync::Arc;
use std::time::Instant;

use mart_proto::tonic::transport::Endpoint;
use mart_proto::v1::sync_service_client::SyncServiceClient;
use mart_proto::v1::SyncMessage;
use rustls::CertificateError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::liveness::{self, Peer, Silence};
use super::redial::{self, Ending, Probe, Redial};
use super::session_log::SessionLog;
use super::tls_dial::HubConnector;
use super::{drive, DriveError, PeerBook, Session, Wiring};
use crate::domain::doc_id::NodeId;
use crate::engine::Engine;

/// Where and how a district reaches its hub.
#[derive(Debug, Clone)]
pub struct HubLink {
    pub hub: NodeId,
    pub url: String,
    /// Mutual TLS to the hub, resuming the last session when it can: the
    /// district's own certificate, and the verifier that accepts only the hub's
    /// (CA chain, host name and `nttmart://hub/<hub>`), so a server that is not the
    /// hub fails the handshake before the session starts.
    pub tls: Option<HubConnector>,
}

/// Dials the hub until `shutdown` fires, waiting between dials as [`redial`] says.
pub async fn run(engine: Arc<Engine>, book: Arc<PeerBook>, link: HubLink, wiring: Wiring) {
    let shutdown = wiring.shutdown.clone();
    book.ensure(&link.hub);
    let target = redial::probe_target(&link.url);
    let mut redial = Redial::default();
    // An operator's `sync now` cuts the wait before the next dial short, including
    // one asked while the last dial was failing.
    let mut sync_now = wiring.resync.clone();
    sync_now.borrow_and_update();
    while !shutdown.is_cancelled() {
        book.record_attempt(&link.hub);
        let mut reached_hub = false;
        let result = session(&engine, &book, &link, wiring.clone(), &mut reached_hub).await;
        if let Err(e) = &result {
            // A session that was established logged its own end.
            if !reached_hub {
                tracing::warn!(peer = %link.hub, error = %e, "sync with the hub failed");
            }
            book.record_error(&link.hub, &e.to_string());
        }
        let probe = || async {
            match &target {
                Some((host, port)) => redial::probe(host, *port).await,
                None => Probe::Silent,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = redial.wait(Ending::of(&result, reached_hub), probe) => {}
            _ = sync_now.changed() => {}
        }
        sync_now.borrow_and_update();
    }
}

async fn session(
    engine: &Arc<Engine>,
    book: &Arc<PeerBook>,
    link: &HubLink,
    wiring: Wiring,
    reached_hub: &mut bool,
) -> Result<(), DriveError> {
    let link_error = |e: &dyn std::fmt::Display| DriveError::Link(e.to_string());
    let dialed = Instant::now();
    let silent = |during: String| {
        DriveError::Silent(Silence {
            peer: Peer::Hub,
            silent: dialed.elapsed(),
            during,
        })
    };
    // TCP connect alone is bounded by the endpoint's timeout, all of it by this.
    let connect = async {
        match &link.tls {
            Some(tls) => tls.connect().await,
            None => plain_endpoint(&link.url)?.connect().await,
        }
    };
    let connected = tokio::time::timeout(liveness::HANDSHAKE_TIMEOUT, connect)
        .await
        .map_err(|_| silent(format!("the TLS handshake at {}", link.url)))?;
    let channel = connected.map_err(|e| {
        if let Some(reason) = certificate_refusal(&e) {
            // The verifier's own words: which hub was expected, what answered.
            link_error(&format!("refused the server at {}: {reason}", link.url))
        } else if timed_out(&e) {
            silent(format!("the TCP connect to {}", link.url))
        } else {
            link_error(&format!("cannot reach {}: {}", link.url, error_chain(&e)))
        }
    })?;
    let mut client = SyncServiceClient::new(channel)
        .max_decoding_message_size(super::MAX_MESSAGE_BYTES + 4096)
        .max_encoding_message_size(super::MAX_MESSAGE_BYTES + 4096);
    let (out_tx, out_rx) = mpsc::channel::<SyncMessage>(16);
    let mut session = Session::new(engine.clone(), book.clone(), link.hub.clone());
    // The opening goes out before the call returns: the hub reads hello first.
    for m in session.opening().await? {
        out_tx
            .send(m)
            .await
            .map_err(|_| DriveError::Link("the outgoing stream closed".into()))?;
    }
    let inbound = tokio::time::timeout(
        liveness::HANDSHAKE_TIMEOUT,
        client.session(ReceiverStream::new(out_rx)),
    )
    .await
    .map_err(|_| silent(format!("the opening of a session at {}", link.url)))?
    .map_err(|s| DriveError::Link(format!("{}: {}", s.code(), s.message())))?
    .into_inner();
    // Until it ends, this session is the district's live one with the hub.
    let stop = wiring.shutdown.child_token();
    session.attach(book.open_session(&link.hub, stop.clone()));
    *reached_hub = true;
    let handshake = link.tls.as_ref().map_or("none", |t| t.handshakes().last());
    tracing::info!(peer = %link.hub, url = %link.url, tls = %handshake, "connected to the hub");
    let hub = link.hub.clone();
    let book_for_sync = book.clone();
    let wiring = Wiring {
        shutdown: stop,
        ..wiring
    };
    let log = SessionLog::start(book, &link.hub, Some(&link.url));
    let result = drive(&mut session, inbound, out_tx, wiring, move |in_sync| {
        if in_sync {
            book_for_sync.record_success(&hub);
        }
    })
    .await;
    log.end(&result, false);
    result
}

/// A plaintext (`tls.insecure`) endpoint with the liveness timeouts.
fn plain_endpoint(url: &str) -> Result<Endpoint, mart_proto::tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(liveness::CONNECT_TIMEOUT)
        .http2_keep_alive_interval(liveness::KEEPALIVE_INTERVAL)
        .keep_alive_timeout(liveness::KEEPALIVE_TIMEOUT)
        .tcp_keepalive(Some(liveness::TCP_KEEPALIVE_IDLE))
        .tcp_keepalive_interval(Some(liveness::TCP_KEEPALIVE_INTERVAL))
        .tcp_keepalive_retries(Some(liveness::TCP_KEEPALIVE_RETRIES)))
}

/// The reason a certificate verifier gave for refusing the server's certificate
/// (rustls carries it as `CertificateError::Other`, inside an I/O error), if that
/// is why `error` happened.
pub fn certificate_refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) = tls {
            return Some(other.0.to_string());
        }
        cause = e.source();
    }
    None
}

/// Whether `error` is (caused by) a timeout, e.g. of the TCP connect.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// An error and its causes, `outer: inner: innermost`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // An I/O error shows its inner error's text, and hyper wraps an error in
        // its own words ("tcp connect error: tcp connect error"): say each once.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) && !text.contains(&format!("{cause_text}: ")) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
