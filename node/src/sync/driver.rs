//! Runs a [`Session`] over a pair of message streams until the link drops or the
//! node shuts down: answers what arrives, pushes soon after local writes
//! (debounced), and re-announces its heads on a timer.
//!
//! It must never wait on the peer without a bound: a peer that sends nothing for
//! [`Rhythm::silence_limit`], or takes none of this side's messages for as long,
//! ends the session, and a link that failed after silence is reported as dead in
//! words ([`Silence`]), not as the transport's error.

use std::time::Duration;

use mart_proto::tonic::{Code, Status};
use mart_proto::v1::SyncMessage;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::liveness::{Peer, Silence, SILENT_AFTER};
use super::{Session, SessionError};

/// How long after a local write the session waits for more before pushing.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("the link dropped: {0}")]
    Link(String),
    #[error("the link dropped: the peer closed the stream")]
    PeerClosed,
    #[error("{}", inbound_text(.0))]
    Inbound(Status),
    /// Nothing came from the peer for too long: the link is dead or the peer frozen.
    #[error("{0}")]
    Silent(Silence),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// What [`DriveError::Link`] says when the connection under a session closed right
/// after the peer ended its stream (a peer that stopped, not a dead link).
pub const CONNECTION_CLOSED: &str = "the connection closed";

/// A failed inbound stream in an operator's words: tonic keeps no cause for a
/// connection that broke under the stream and says "h2 protocol error: error
/// reading a body from connection", which is no protocol error of anyone's.
fn inbound_text(status: &Status) -> String {
    let broke = matches!(
        status.code(),
        Code::Unknown | Code::Internal | Code::Unavailable | Code::Cancelled
    ) && (status.message().starts_with("h2 protocol error")
        || status
            .message()
            .contains("error reading a body from connection"));
    if broke {
        "the link dropped: the connection broke under the session".to_string()
    } else {
        format!(
            "the peer's stream failed: {}: {}",
            status.code(),
            status.message()
        )
    }
}

impl DriveError {
    /// The status the peer gets when this ends its session.
    pub fn status(&self) -> Status {
        match self {
            // tonic answers an oversize message with OUT_OF_RANGE; oversize
            // requests are RESOURCE_EXHAUSTED everywhere else in this API.
            DriveError::Inbound(s) if s.code() == Code::OutOfRange => {
                Status::resource_exhausted(s.message().to_string())
            }
            DriveError::Inbound(s) => Status::new(s.code(), s.message().to_string()),
            DriveError::Session(e) => Status::new(e.code(), e.to_string()),
            DriveError::Link(_) | DriveError::PeerClosed | DriveError::Silent(_) => {
                Status::unavailable(self.to_string())
            }
        }
    }

    /// This error, or [`DriveError::Silent`] if it is the transport failing after
    /// the peer had been silent for `silent`: HTTP/2 keepalive cut a connection
    /// whose peer no longer answered. tonic keeps no cause for a failed stream
    /// ("h2 protocol error: error reading a body from connection"), so the silence
    /// before it is what tells a dead link from one the peer ended.
    pub(super) fn after_silence(self, peer: Peer, silent: Duration) -> DriveError {
        let transport = match &self {
            DriveError::Link(_) => true,
            // A status the peer sent is an answer; these codes are what tonic
            // makes of a connection that failed under the stream.
            DriveError::Inbound(s) => matches!(
                s.code(),
                Code::Unknown | Code::Internal | Code::Unavailable | Code::Cancelled
            ),
            DriveError::PeerClosed | DriveError::Silent(_) | DriveError::Session(_) => false,
        };
        if transport && silent >= SILENT_AFTER {
            DriveError::Silent(Silence {
                peer,
                silent,
                during: String::new(),
            })
        } else {
            self
        }
    }
}

/// Options of a running session.
#[derive(Debug, Clone, Copy)]
pub struct Rhythm {
    /// Heads are announced again this often, so a lost message never stalls sync.
    pub resync_every: Duration,
    /// The session ends when the peer sent nothing, or took nothing of this side's,
    /// for this long (`liveness::SESSION_SILENCE_LIMIT`).
    pub silence_limit: Duration,
}

/// What a session listens to besides its peer.
#[derive(Clone)]
pub struct Wiring {
    /// Changes after every durable local write.
    pub local_writes: watch::Receiver<u64>,
    /// Changes when an operator asks for a sync round now.
    pub resync: watch::Receiver<u64>,
    pub rhythm: Rhythm,
    pub shutdown: CancellationToken,
}

/// The sending half of a session, bounded by the silence limit: a peer that takes
/// no message for that long is as dead as one that sends none.
struct Outbox<'a> {
    out: &'a mpsc::Sender<SyncMessage>,
    peer: &'a Peer,
    limit: Duration,
}

impl Outbox<'_> {
    async fn send_all(&self, messages: Vec<SyncMessage>) -> Result<(), DriveError> {
        for m in messages {
            match tokio::time::timeout(self.limit, self.out.send(m)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(DriveError::Link("the outgoing stream closed".into())),
                Err(_) => {
                    return Err(DriveError::Silent(Silence {
                        peer: self.peer.clone(),
                        silent: self.limit,
                        during: "this node's messages".into(),
                    }))
                }
            }
        }
        Ok(())
    }
}

/// Drives `session` until the inbound stream ends, fails, or `shutdown` fires.
/// `on_sync` is told after every message whether the session is in sync.
pub async fn drive(
    session: &mut Session,
    inbound: impl Stream<Item = Result<SyncMessage, Status>> + Unpin,
    out: mpsc::Sender<SyncMessage>,
    wiring: Wiring,
    on_sync: impl Fn(bool),
) -> Result<(), DriveError> {
    let peer = session.peer_seen();
    let mut heard = Instant::now();
    let outbox = Outbox {
        out: &out,
        peer: &peer,
        limit: wiring.rhythm.silence_limit,
    };
    let result = match run(session, inbound, &outbox, wiring, on_sync, &mut heard).await {
        Err(DriveError::PeerClosed) if connection_gone(&out).await => {
            Err(DriveError::Link(CONNECTION_CLOSED.into()))
        }
        other => other,
    };
    result.map_err(|e| e.after_silence(peer.clone(), heard.elapsed()))
}

/// Whether the stream of messages this side sends closed too: the connection
/// under the session is gone (e.g. HTTP/2 keepalive gave up on it), where a peer
/// that ends its stream leaves this side's open. The two close as the connection
/// is torn down, so give the second a moment.
async fn connection_gone(out: &mpsc::Sender<SyncMessage>) -> bool {
    tokio::time::timeout(Duration::from_secs(1), out.closed())
        .await
        .is_ok()
}

async fn run(
    session: &mut Session,
    mut inbound: impl Stream<Item = Result<SyncMessage, Status>> + Unpin,
    outbox: &Outbox<'_>,
    wiring: Wiring,
    on_sync: impl Fn(bool),
    heard: &mut Instant,
) -> Result<(), DriveError> {
    let Wiring {
        mut local_writes,
        mut resync,
        rhythm,
        shutdown,
    } = wiring;
    // A `sync now` asked before this session began is answered by its opening
    // announce: only later ones call for another.
    resync.borrow_and_update();
    if !session.opened() {
        outbox.send_all(session.opening().await?).await?;
    }
    let mut timer = tokio::time::interval(rhythm.resync_every);
    timer.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = inbound.next() => {
                receive(session, message, outbox, &on_sync, heard).await?;
            }
            _ = tokio::time::sleep_until(*heard + rhythm.silence_limit) => {
                // A message that arrived while this side was busy is no silence.
                match tokio::time::timeout(Duration::ZERO, inbound.next()).await {
                    Ok(message) => receive(session, message, outbox, &on_sync, heard).await?,
                    Err(_) => {
                        return Err(DriveError::Silent(Silence {
                            peer: outbox.peer.clone(),
                            silent: heard.elapsed(),
                            during: String::new(),
                        }))
                    }
                }
            }
            changed = local_writes.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                tokio::time::sleep(DEBOUNCE).await;
                local_writes.borrow_and_update();
                outbox.send_all(session.push_all().await?).await?;
            }
            changed = resync.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                resync.borrow_and_update();
                outbox.send_all(session.announce().await?).await?;
            }
            _ = timer.tick() => outbox.send_all(session.announce().await?).await?,
        }
    }
}

/// Handles one item of the inbound stream.
async fn receive(
    session: &mut Session,
    message: Option<Result<SyncMessage, Status>>,
    outbox: &Outbox<'_>,
    on_sync: &impl Fn(bool),
    heard: &mut Instant,
) -> Result<(), DriveError> {
    match message {
        None => Err(DriveError::PeerClosed),
        Some(Err(status)) => Err(DriveError::Inbound(status)),
        Some(Ok(message)) => {
            *heard = Instant::now();
            let answers = session.handle(message).await?;
            outbox.send_all(answers).await?;
            on_sync(session.in_sync());
            Ok(())
        }
    }
}
