//! One log line when a sync session starts and one when it ends, at both ends of a
//! link: the peer, how long it lasted, changes and bytes each way, and why it ended
//! in an operator's words. Clean endings (the peer closed its session, a newer one
//! replaced it, this node stopped) are INFO; a session that failed is WARN.
//!
//! It must never log document contents or anything from a certificate but the
//! peer's id, and never decide anything: it only reports.

use std::sync::Arc;

use tokio::time::Instant;

use super::driver::DriveError;
use super::peers::{PeerBook, Traffic};
use crate::domain::doc_id::NodeId;

/// A session being logged; [`SessionLog::end`] writes its closing line.
pub struct SessionLog {
    book: Arc<PeerBook>,
    peer: NodeId,
    started: Instant,
    at_start: Traffic,
}

/// Why a session ended, as its closing line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// This node is shutting down (or its dialer stopped the session).
    Stopped,
    /// A newer session with the same peer took over.
    Replaced,
    /// The peer ended its session, or closed the connection right after talking.
    PeerClosed,
    /// The link went silent: nothing from the peer within the liveness budget.
    DeadLink,
    /// The connection broke or the peer answered with an error.
    Failed,
}

impl Ending {
    /// How `result` ended a session; `replaced` when a newer session stopped it.
    pub fn of(result: &Result<(), DriveError>, replaced: bool) -> Ending {
        match result {
            Ok(()) if replaced => Ending::Replaced,
            Ok(()) => Ending::Stopped,
            Err(DriveError::PeerClosed) => Ending::PeerClosed,
            // Not after silence (that is `Silent`): the peer went away on purpose.
            Err(DriveError::Link(reason)) if reason == super::driver::CONNECTION_CLOSED => {
                Ending::PeerClosed
            }
            Err(DriveError::Silent(_)) => Ending::DeadLink,
            Err(_) => Ending::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Stopped => "stopped",
            Ending::Replaced => "replaced",
            Ending::PeerClosed => "peer_closed",
            Ending::DeadLink => "dead_link",
            Ending::Failed => "failed",
        }
    }
}

impl SessionLog {
    /// Logs the start of a session with `peer`.
    pub fn start(book: &Arc<PeerBook>, peer: &NodeId, url: Option<&str>) -> SessionLog {
        match url {
            Some(url) => tracing::info!(peer = %peer, url, "sync session started"),
            None => tracing::info!(peer = %peer, "sync session started"),
        }
        SessionLog {
            book: book.clone(),
            peer: peer.clone(),
            started: Instant::now(),
            at_start: book.traffic(peer),
        }
    }

    /// Logs the end of the session: INFO for a clean ending, WARN with the error
    /// otherwise. Returns the ending.
    pub fn end(self, result: &Result<(), DriveError>, replaced: bool) -> Ending {
        let ending = Ending::of(result, replaced);
        let now = self.book.traffic(&self.peer);
        let sent = now.changes_sent.saturating_sub(self.at_start.changes_sent);
        let sent_bytes = now.bytes_sent.saturating_sub(self.at_start.bytes_sent);
        let received = now
            .changes_received
            .saturating_sub(self.at_start.changes_received);
        let received_bytes = now
            .bytes_received
            .saturating_sub(self.at_start.bytes_received);
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let reason = ending.as_str();
        // One field list for both levels (tracing needs the level at compile time).
        macro_rules! ended {
            ($level:ident $(, $($extra:tt)+)?) => {
                tracing::$level!(
                    peer = %self.peer,
                    duration_ms,
                    changes_sent = sent,
                    bytes_sent = sent_bytes,
                    changes_received = received,
                    bytes_received = received_bytes,
                    reason,
                    $($($extra)+)?
                    "sync session ended"
                )
            };
        }
        match (ending, result) {
            (Ending::DeadLink | Ending::Failed, Err(e)) => ended!(warn, error = %e,),
            _ => ended!(info),
        }
        ending
    }
}
