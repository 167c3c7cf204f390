//! The node's TLS server end: every connection the accept loop lets in gets its
//! handshake in a task of its own, under the handshake timeout, through the one
//! rustls `ServerConfig` of the process (so its resumption cache serves every
//! connection); finished handshakes are what tonic serves. The node terminates
//! TLS itself rather than through tonic's `tls_config`, whose `ServerConfig` has no
//! say over resumption (a 256-entry cache, tickets never expired by the server).
//!
//! tonic still sees a `tokio_rustls` server stream over a TCP connection, so
//! `request.peer_certs()` reads the certificates of the session: for a resumed one,
//! those of the full handshake it descends from. Since resumption skips the
//! certificate checks, a resumed session whose client certificate has expired
//! since is closed here.
//!
//! It must never wait on one handshake in the loop (a client that sends nothing
//! would stall every other), and never hand tonic a connection whose handshake
//! failed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::{HandshakeKind, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::Stream;

use super::tls::check_validity;
use crate::rpc::identity::identity_of_certificate;

/// A stream of connections (the accept loop's) turned into one of TLS sessions.
pub struct TlsIncoming<S, IO> {
    inner: S,
    inner_done: bool,
    acceptor: TlsAcceptor,
    timeout: Duration,
    handshakes: JoinSet<Option<TlsStream<IO>>>,
}

impl<S, IO> TlsIncoming<S, IO>
where
    S: Stream<Item = io::Result<IO>> + Unpin,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub fn new(inner: S, config: Arc<ServerConfig>, timeout: Duration) -> Self {
        TlsIncoming {
            inner,
            inner_done: false,
            acceptor: TlsAcceptor::from(config),
            timeout,
            handshakes: JoinSet::new(),
        }
    }
}

/// The handshake of one connection; `None` when it failed (logged) or timed out.
async fn handshake<IO>(acceptor: TlsAcceptor, io: IO, timeout: Duration) -> Option<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let stream = match tokio::time::timeout(timeout, acceptor.accept(io)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "tls handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(?timeout, "tls handshake timed out");
            return None;
        }
    };
    let (_, connection) = stream.get_ref();
    let resumed = connection.handshake_kind() == Some(HandshakeKind::Resumed);
    let certificate = connection
        .peer_certificates()
        .and_then(|chain| chain.first());
    let peer = certificate.map(|c| match identity_of_certificate(c.as_ref()) {
        Ok(identity) => identity.to_string(),
        Err(reason) => format!("no node identity ({reason})"),
    });
    if resumed {
        if let Some(Err(reason)) = certificate.map(|c| check_validity(c.as_ref())) {
            tracing::warn!(peer = peer.as_deref().unwrap_or("unknown"), %reason, "refusing a resumed tls session: its client certificate is no longer valid");
            return None;
        }
    }
    tracing::debug!(
        peer = peer.as_deref().unwrap_or("unknown"),
        handshake = if resumed { "resumed" } else { "full" },
        "tls handshake"
    );
    Some(stream)
}

impl<S, IO> Stream for TlsIncoming<S, IO>
where
    S: Stream<Item = io::Result<IO>> + Unpin,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Item = io::Result<TlsStream<IO>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.handshakes.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Some(stream)))) => return Poll::Ready(Some(Ok(stream))),
                // A failed handshake (logged) or a panicked task: next.
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) | Poll::Pending => {}
            }
            if this.inner_done {
                return if this.handshakes.is_empty() {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                };
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(io))) => {
                    this.handshakes
                        .spawn(handshake(this.acceptor.clone(), io, this.timeout));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.inner_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
