//! Moving the bytes of one proxied connection, each direction through its own delay
//! line: a reader takes chunks from one socket at the direction's rate and queues
//! each with the instant it is due; a writer delivers them in order at that instant.
//! Either side stops as soon as the connection is cut (the proxy cut, or a drop since
//! the connection opened); a stall holds bytes and closes back.
//!
//! It must never reorder bytes, deliver a chunk early, or keep a connection open
//! once it was cut.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::shaping::Shaper;
use super::State;

/// Chunks queued in one direction's delay line (at most 16 KiB each): the bytes in
/// flight of a direction without a rate limit are bounded by it.
const IN_FLIGHT_CHUNKS: usize = 256;

/// A chunk due at an instant; `None` is the close that followed the bytes.
type Due = (Instant, Option<Vec<u8>>);

/// What a pump of one connection watches: the proxy's switches and the drop epoch
/// the connection was opened in.
#[derive(Clone)]
pub(super) struct Control {
    state: Arc<State>,
    epoch: u64,
    changes: watch::Receiver<u64>,
}

impl Control {
    pub(super) fn new(state: Arc<State>, changes: watch::Receiver<u64>) -> Control {
        let epoch = state.epoch.load(Ordering::SeqCst);
        Control {
            state,
            epoch,
            changes,
        }
    }

    fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
            || self.state.epoch.load(Ordering::SeqCst) != self.epoch
    }

    /// Resolves once this connection is cut (or the proxy is gone).
    async fn cut(&mut self) {
        while !self.is_cut() {
            if self.changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits while the link is stalled; false if the connection was cut meanwhile.
    async fn hold_while_stalled(&mut self) -> bool {
        while self.state.stalled.load(Ordering::SeqCst) && !self.is_cut() {
            if self.changes.changed().await.is_err() {
                return false;
            }
        }
        !self.is_cut()
    }
}

/// Relays between `client` and `server` until either side closes or the connection
/// is cut; both sockets are closed then.
pub(super) async fn relay(client: TcpStream, server: TcpStream, control: Control) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, control.clone(), true);
    let down = pump(server_read, client_write, control, false);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// One direction: a reader and a writer joined by the delay line.
async fn pump(from: OwnedReadHalf, to: OwnedWriteHalf, control: Control, upstream: bool) {
    let (line, queued) = mpsc::channel(IN_FLIGHT_CHUNKS);
    let reader = read(from, line, control.clone(), upstream);
    let writer = write(queued, to, control, upstream);
    tokio::pin!(writer);
    tokio::select! {
        _ = &mut writer => return,
        _ = reader => {}
    }
    // The reader saw the close: deliver what is still in the line, then the close.
    writer.await;
}

async fn read(
    mut from: OwnedReadHalf,
    line: mpsc::Sender<Due>,
    mut control: Control,
    upstream: bool,
) {
    let mut shaper = Shaper::default();
    let mut buf = vec![0u8; super::shaping::MAX_CHUNK];
    loop {
        let shape = control.state.shape(upstream);
        let chunk = shape.chunk().min(buf.len());
        let read = tokio::select! {
            read = from.read(&mut buf[..chunk]) => read,
            _ = control.cut() => return,
        };
        // A stalled link passes no close either: the far side stays half-open until
        // the link is healed or cut.
        if !control.hold_while_stalled().await {
            return;
        }
        let n = match read {
            Ok(0) | Err(_) => {
                let closed = shaper.admit(0, Instant::now(), shape);
                let _ = line.send((closed.due, None)).await;
                return;
            }
            Ok(n) => n,
        };
        let admitted = shaper.admit(n, Instant::now(), shape);
        tokio::select! {
            _ = tokio::time::sleep_until(admitted.crossed.into()) => {}
            _ = control.cut() => return,
        }
        if line
            .send((admitted.due, Some(buf[..n].to_vec())))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn write(
    mut line: mpsc::Receiver<Due>,
    mut to: OwnedWriteHalf,
    mut control: Control,
    upstream: bool,
) {
    loop {
        let next = tokio::select! {
            next = line.recv() => next,
            _ = control.cut() => return,
        };
        let Some((due, chunk)) = next else { return };
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = control.cut() => return,
        }
        if !control.hold_while_stalled().await {
            return;
        }
        let Some(chunk) = chunk else { return };
        let (chunk, last) = within_cut_after(&control.state, &chunk);
        let written = tokio::select! {
            written = to.write_all(chunk) => written.is_ok(),
            _ = control.cut() => return,
        };
        if written || last {
            count(&control.state, upstream, chunk.len());
        }
        if last {
            control.state.cut.store(true, Ordering::SeqCst);
        }
        if last || !written {
            return;
        }
    }
}

/// The part of `chunk` that may still cross before a pending cut-after, and whether
/// the cut falls inside it.
fn within_cut_after<'a>(state: &State, chunk: &'a [u8]) -> (&'a [u8], bool) {
    let limit = state.cut_after.load(Ordering::SeqCst);
    if limit == 0 {
        return (chunk, false);
    }
    let passed = state.upstream.load(Ordering::SeqCst) + state.downstream.load(Ordering::SeqCst);
    let room = limit.saturating_sub(passed) as usize;
    if room < chunk.len() {
        (&chunk[..room], true)
    } else {
        (chunk, false)
    }
}

fn count(state: &State, upstream: bool, n: usize) {
    let counter = if upstream {
        &state.upstream
    } else {
        &state.downstream
    };
    counter.fetch_add(n as u64, Ordering::SeqCst);
}
