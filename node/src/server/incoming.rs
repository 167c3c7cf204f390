//! The accept loops of the node's listeners, as the connection streams tonic serves:
//!
//! - a cap on the connections held at once (the gRPC port): one over it is closed
//!   at once, and that is logged at most once per [`LOG_EVERY`], with the count;
//! - after an accept error that is not about one connection (no file descriptor
//!   left, EMFILE or ENFILE; no memory) a pause of [`ACCEPT_PAUSE`] before the next
//!   try: tonic's own loop retries at once, and spun a core while the process had
//!   no descriptor left;
//! - each connection wrapped in an [`Admitted`], which holds its slot of the cap and,
//!   without TLS, its opening deadline. With TLS, `tls_accept` runs each handshake
//!   in a task of its own under the handshake timeout.
//!
//! It must never wait on one connection inside the loop, and never hand an error to
//! tonic, whose loop would come back at once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use mart_proto::tonic::transport::server::Connected;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;

use super::admitted::Admitted;
use super::unix_authority::AuthorityFix;

/// How long the loop rests after an accept error that would come back at once.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// At most one log line per this long about refused connections, and one about
/// accept errors.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Connections taken from the listener in one poll before the loop lets other
/// tasks run: a flood over the cap is closed in batches, not in one endless poll.
const ACCEPTS_PER_POLL: usize = 64;

/// A listener the loop takes connections from.
pub trait Accept {
    type Io: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static;

    fn poll_next_connection(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>>;
}

impl Accept for TcpListener {
    type Io = tokio::net::TcpStream;

    fn poll_next_connection(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        TcpListener::poll_accept(self, cx).map_ok(|(stream, _)| {
            crate::sync::liveness::keep_alive(&stream);
            stream
        })
    }
}

/// The admin socket: each connection behind [`AuthorityFix`], so that grpcurl and
/// grpcio, which send the socket path as `:authority`, are served too.
impl Accept for UnixListener {
    type Io = AuthorityFix<tokio::net::UnixStream>;

    fn poll_next_connection(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        UnixListener::poll_accept(self, cx).map_ok(|(stream, _)| AuthorityFix::new(stream))
    }
}

/// A listener's connections, as tonic's `serve_with_incoming` takes them.
pub struct Incoming<L> {
    listener: L,
    /// `None`: no cap (the admin socket, whose file permissions decide who
    /// connects).
    slots: Option<(Arc<Semaphore>, usize)>,
    opening: Option<Duration>,
    pause: Option<Pin<Box<Sleep>>>,
    refused: Throttled,
    failed: Throttled,
}

impl<L: Accept> Incoming<L> {
    /// At most `cap` connections at once; `opening`: the time a plaintext client
    /// has to send its HTTP/2 preface (`None` with TLS).
    pub fn capped(listener: L, cap: usize, opening: Option<Duration>) -> Self {
        Incoming {
            slots: Some((Arc::new(Semaphore::new(cap)), cap)),
            opening,
            ..Self::uncapped(listener)
        }
    }

    /// No cap and no opening deadline; still no spinning on accept errors.
    pub fn uncapped(listener: L) -> Self {
        Incoming {
            listener,
            slots: None,
            opening: None,
            pause: None,
            refused: Throttled::new(LOG_EVERY),
            failed: Throttled::new(LOG_EVERY),
        }
    }

    /// Lets `io` in with a slot of the cap, or closes it at once when none is free.
    fn admit(&mut self, io: L::Io) -> Option<Admitted<L::Io>> {
        let Some((slots, cap)) = &self.slots else {
            return Some(Admitted::new(io, None, self.opening));
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(Admitted::new(io, Some(slot), self.opening)),
            Err(_) => {
                drop(io);
                if let Some(refused) = self.refused.hit(Instant::now()) {
                    tracing::warn!(
                        cap,
                        refused,
                        "the gRPC connection cap is reached: new connections are closed at once (grpc.max_connections; idle ones close after grpc.handshake_timeout_secs)"
                    );
                }
                None
            }
        }
    }
}

/// Errors that end one connection before it was handed over (the client gave up);
/// the next one may be waiting already.
fn concerns_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

impl<L: Accept + Unpin> Stream for Incoming<L> {
    type Item = Result<Admitted<L::Io>, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        for _ in 0..ACCEPTS_PER_POLL {
            if let Some(pause) = this.pause.as_mut() {
                ready!(pause.as_mut().poll(cx));
                this.pause = None;
            }
            match ready!(this.listener.poll_next_connection(cx)) {
                Ok(io) => {
                    if let Some(admitted) = this.admit(io) {
                        return Poll::Ready(Some(Ok(admitted)));
                    }
                }
                Err(e) if concerns_one_connection(&e) => {}
                Err(e) => {
                    if let Some(failures) = this.failed.hit(Instant::now()) {
                        tracing::warn!(error = %e, failures, pause = ?ACCEPT_PAUSE, "cannot accept connections; pausing before each new try");
                    }
                    this.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_PAUSE)));
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Counts events and tells when to log them: the first at once, then at most once
/// per `every`, with how many happened since the last line.
#[derive(Debug)]
struct Throttled {
    every: Duration,
    last: Option<Instant>,
    unlogged: u64,
}

impl Throttled {
    fn new(every: Duration) -> Self {
        Throttled {
            every,
            last: None,
            unlogged: 0,
        }
    }

    /// One more event; `Some(count)` when a line is due.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        match self.last {
            Some(last) if now.duration_since(last) < self.every => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

#[cfg(test)]
#[path = "incoming_tests.rs"]
mod tests;
