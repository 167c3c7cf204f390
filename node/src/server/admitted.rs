//! [`Admitted`]: one connection the accept loop let in, as tonic serves it. It holds
//! the connection's slot of the cap until it is dropped, and, without TLS, an
//! opening deadline: the HTTP/2 client preface must have arrived by then, or the
//! next read fails and the connection is closed.
//!
//! It must never change a byte in either direction, and it passes the connection's
//! own [`Connected`] info through, so that TLS over it (`tls_accept`) still hands the
//! client's certificate to `request.peer_certs()`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

/// Length of the HTTP/2 client preface, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`: the
/// first bytes a plaintext gRPC client sends.
pub const HTTP2_PREFACE_LEN: usize = 24;

/// A connection let in by the accept loop.
pub struct Admitted<S> {
    io: S,
    /// Released when the connection is dropped, whoever drops it (tonic after a
    /// failed or timed-out handshake, hyper when the connection ends).
    _slot: Option<OwnedSemaphorePermit>,
    opening: Option<Opening>,
}

/// The bytes a connection still owes by its deadline.
struct Opening {
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    awaited: usize,
}

impl<S> Admitted<S> {
    /// `opening`: the time the client has to send its HTTP/2 preface (plaintext
    /// only; with TLS, tonic times the handshake).
    pub fn new(io: S, slot: Option<OwnedSemaphorePermit>, opening: Option<Duration>) -> Self {
        Admitted {
            io,
            _slot: slot,
            opening: opening.map(|timeout| Opening {
                deadline: Box::pin(tokio::time::sleep(timeout)),
                timeout,
                awaited: HTTP2_PREFACE_LEN,
            }),
        }
    }
}

super::io_wrap::wrap_io!(Admitted, io);

impl<S: AsyncRead + Unpin> AsyncRead for Admitted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let Some(opening) = this.opening.as_mut() else {
            return polled;
        };
        match polled {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                opening.awaited = opening.awaited.saturating_sub(read);
                // Once the preface is in (or the client closed), no deadline is left.
                if opening.awaited == 0 || read == 0 {
                    this.opening = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if opening.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the client sent no HTTP/2 preface within {:?}",
                        opening.timeout
                    ),
                )))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PREFACE: &[u8; HTTP2_PREFACE_LEN] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    #[tokio::test(start_paused = true)]
    async fn a_client_silent_past_the_deadline_is_cut() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut admitted = Admitted::new(server, None, Some(Duration::from_secs(10)));
        let started = tokio::time::Instant::now();
        let err = admitted.read(&mut [0; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("HTTP/2 preface"), "{err}");
        assert!(started.elapsed() >= Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_preface_cut_in_pieces_must_all_arrive_in_time() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut admitted = Admitted::new(server, None, Some(Duration::from_secs(10)));
        client.write_all(&PREFACE[..10]).await.unwrap();
        let mut first = [0; 64];
        assert_eq!(admitted.read(&mut first).await.unwrap(), 10);
        let err = admitted.read(&mut first).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn once_the_preface_is_in_the_connection_may_idle() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut admitted = Admitted::new(server, None, Some(Duration::from_secs(10)));
        client.write_all(PREFACE).await.unwrap();
        let mut got = [0; HTTP2_PREFACE_LEN];
        admitted.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, PREFACE, "the bytes pass unchanged");
        let idle =
            tokio::time::timeout(Duration::from_secs(3600), admitted.read(&mut [0; 8])).await;
        assert!(
            idle.is_err(),
            "an hour of quiet after the preface: {idle:?}"
        );
        admitted.write_all(b"settings").await.unwrap();
        let mut echoed = [0; 8];
        client.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"settings");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_deadline_nothing_is_timed() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut admitted = Admitted::new(server, None, None);
        let idle =
            tokio::time::timeout(Duration::from_secs(3600), admitted.read(&mut [0; 8])).await;
        assert!(idle.is_err(), "{idle:?}");
    }
}
