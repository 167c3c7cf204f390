//! Runs a [`Session`] over a pair of message streams until the link drops or the
//! node shuts down: answers what arrives, pushes soon after local writes
//! (debounced), and re-announces its heads on a timer.

use std::time::Duration;

use mart_proto::tonic::Status;
use mart_proto::v1::SyncMessage;
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{Session, SessionError};

/// How long after a local write the session waits for more before pushing.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("the link dropped: {0}")]
    Link(String),
    #[error("the peer's stream failed: {}: {}", .0.code(), .0.message())]
    Inbound(Status),
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl DriveError {
    /// The status the peer gets when this ends its session.
    pub fn status(&self) -> Status {
        match self {
            // tonic answers an oversize message with OUT_OF_RANGE; oversize
            // requests are RESOURCE_EXHAUSTED everywhere else in this API.
            DriveError::Inbound(s) if s.code() == mart_proto::tonic::Code::OutOfRange => {
                Status::resource_exhausted(s.message().to_string())
            }
            DriveError::Inbound(s) => Status::new(s.code(), s.message().to_string()),
            DriveError::Session(e) => Status::new(e.code(), e.to_string()),
            DriveError::Link(m) => Status::unavailable(m.clone()),
        }
    }
}

/// Options of a running session.
#[derive(Debug, Clone, Copy)]
pub struct Rhythm {
    /// Heads are announced again this often, so a lost message never stalls sync.
    pub resync_every: Duration,
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

async fn send_all(
    out: &mpsc::Sender<SyncMessage>,
    messages: Vec<SyncMessage>,
) -> Result<(), DriveError> {
    for m in messages {
        out.send(m)
            .await
            .map_err(|_| DriveError::Link("the outgoing stream closed".into()))?;
    }
    Ok(())
}

/// Drives `session` until the inbound stream ends, fails, or `shutdown` fires.
/// `round` is signalled whenever the session is in sync with its peer.
pub async fn drive(
    session: &mut Session,
    mut inbound: impl Stream<Item = Result<SyncMessage, Status>> + Unpin,
    out: mpsc::Sender<SyncMessage>,
    wiring: Wiring,
    on_sync: impl Fn(bool),
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
        send_all(&out, session.opening().await?).await?;
    }
    let mut timer = tokio::time::interval(rhythm.resync_every);
    timer.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = inbound.next() => match message {
                None => return Err(DriveError::Link("the peer closed the stream".into())),
                Some(Err(status)) => return Err(DriveError::Inbound(status)),
                Some(Ok(message)) => {
                    let answers = session.handle(message).await?;
                    send_all(&out, answers).await?;
                    on_sync(session.in_sync());
                }
            },
            changed = local_writes.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                tokio::time::sleep(DEBOUNCE).await;
                local_writes.borrow_and_update();
                send_all(&out, session.push_all().await?).await?;
            }
            changed = resync.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                resync.borrow_and_update();
                send_all(&out, session.announce().await?).await?;
            }
            _ = timer.tick() => send_all(&out, session.announce().await?).await?,
        }
    }
}
