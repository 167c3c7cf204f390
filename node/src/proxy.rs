//! A TCP proxy between a district and the hub that can be cut, stalled and healed,
//! and that counts the bytes crossing it: the stand-in for a bad provincial link in
//! `mart-node demo` and in the cluster tests (the kernel here has no netem).
//!
//! It must never sit on a production sync path: it forwards bytes blindly and its
//! only job is to misbehave on request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Shared switches and counters of a proxy.
#[derive(Default)]
struct State {
    /// Connections are dropped and new ones refused while set.
    cut: AtomicBool,
    /// Bytes are held back (connections stay open) while set.
    stalled: AtomicBool,
    /// Cut every connection once this many bytes (both ways) have passed; 0 = never.
    cut_after: AtomicU64,
    /// Bytes from the client (district) to the server (hub).
    upstream: AtomicU64,
    /// Bytes from the server to the client.
    downstream: AtomicU64,
    connections: AtomicU64,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    changes: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let (changes, _) = watch::channel(0u64);
        let task_state = state.clone();
        let task_changes = changes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if task_state.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                task_state.connections.fetch_add(1, Ordering::SeqCst);
                let state = task_state.clone();
                let changes = task_changes.subscribe();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, state, changes).await;
                    }
                });
            }
        });
        Ok(Proxy {
            addr,
            state,
            changes,
            task,
        })
    }

    /// The address clients should dial instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Drops every connection and refuses new ones until [`Proxy::heal`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.changed();
    }

    /// Holds every byte back, keeping connections open, until [`Proxy::heal`].
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
        self.changed();
    }

    /// Restores the link (and clears any pending cut-after).
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
        self.state.stalled.store(false, Ordering::SeqCst);
        self.state.cut_after.store(0, Ordering::SeqCst);
        self.changed();
    }

    /// Cuts the link once `bytes` more bytes have crossed it, wherever that falls in
    /// a message.
    pub fn cut_after(&self, bytes: u64) {
        self.state
            .cut_after
            .store(self.total_bytes() + bytes.max(1), Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    pub fn upstream_bytes(&self) -> u64 {
        self.state.upstream.load(Ordering::SeqCst)
    }

    pub fn downstream_bytes(&self) -> u64 {
        self.state.downstream.load(Ordering::SeqCst)
    }

    pub fn total_bytes(&self) -> u64 {
        self.upstream_bytes() + self.downstream_bytes()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    state: Arc<State>,
    changes: watch::Receiver<u64>,
) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(
        client_read,
        server_write,
        state.clone(),
        changes.clone(),
        true,
    );
    let down = pump(server_read, client_write, state, changes, false);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<State>,
    mut changes: watch::Receiver<u64>,
    upstream: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if state.cut.load(Ordering::SeqCst) {
            return;
        }
        let n = tokio::select! {
            // An error ends the connection as a close (0 bytes) does.
            read = from.read(&mut buf) => read.unwrap_or(0),
            _ = changes.changed() => continue,
        };
        // A stalled link swallows a close like any byte: the other end learns of
        // it once the link is healed (or cut).
        while state.stalled.load(Ordering::SeqCst) && !state.cut.load(Ordering::SeqCst) {
            if changes.changed().await.is_err() {
                return;
            }
        }
        if n == 0 {
            return;
        }
        let mut chunk = &buf[..n];
        let limit = state.cut_after.load(Ordering::SeqCst);
        if limit > 0 {
            let passed =
                state.upstream.load(Ordering::SeqCst) + state.downstream.load(Ordering::SeqCst);
            let room = limit.saturating_sub(passed) as usize;
            if room < chunk.len() {
                chunk = &chunk[..room];
                let _ = to.write_all(chunk).await;
                count(&state, upstream, chunk.len());
                state.cut.store(true, Ordering::SeqCst);
                return;
            }
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
        count(&state, upstream, chunk.len());
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
