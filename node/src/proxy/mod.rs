//! A TCP proxy between a district and the hub that can be cut, stalled and healed,
//! that can play a slow, far, dropping link (a rate limit and a one-way delay per
//! direction, [`shaping`]; drops on a seeded schedule, [`drops`]), and that counts
//! the bytes crossing it: the stand-in for a bad provincial link in `mart-node demo`,
//! the cluster tests and `bench` (the kernel here has no netem).
//!
//! It must never sit on a production sync path: it forwards bytes blindly and its
//! only job is to misbehave on request.

mod drops;
mod pump;
mod shaping;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use drops::DropSchedule;
pub use shaping::Shape;

/// Shared switches and counters of a proxy.
#[derive(Default)]
struct State {
    /// Connections are dropped and new ones refused while set.
    cut: AtomicBool,
    /// Bytes and closes are held back (connections stay open) while set.
    stalled: AtomicBool,
    /// Cut every connection once this many bytes (both ways) have passed; 0 = never.
    cut_after: AtomicU64,
    /// Bumped by every drop: a connection opened under an older one is cut.
    epoch: AtomicU64,
    /// Drops so far (scheduled or [`Proxy::drop_now`]).
    drops: AtomicU64,
    /// Bytes from the client (district) to the server (hub).
    upstream: AtomicU64,
    /// Bytes from the server to the client.
    downstream: AtomicU64,
    connections: AtomicU64,
    /// Shapes of the upstream and the downstream direction.
    shapes: Mutex<(Shape, Shape)>,
}

impl State {
    fn shape(&self, upstream: bool) -> Shape {
        let shapes = *self.shapes.lock().expect("never poisoned: held for a copy");
        if upstream {
            shapes.0
        } else {
            shapes.1
        }
    }
}

/// A slow, far, dropping link, the same both ways: what a district on a weak
/// cellular or satellite link has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuralLink {
    /// Each way.
    pub rate_bytes_per_s: u64,
    /// Each way (the round trip is twice this).
    pub one_way_delay: Duration,
    /// Every open connection is cut after a wait drawn from `min..=max`, again and
    /// again; `None` never drops.
    pub drops_every: Option<(Duration, Duration)>,
    /// Seed of the drop schedule.
    pub seed: u64,
}

impl RuralLink {
    /// The shape of each direction.
    pub fn shape(&self) -> Shape {
        Shape {
            rate_bytes_per_s: Some(self.rate_bytes_per_s),
            one_way_delay: self.one_way_delay,
        }
    }

    /// When it drops, if it does.
    pub fn drop_schedule(&self) -> Option<DropSchedule> {
        self.drops_every.map(|(min, max)| DropSchedule {
            min,
            max,
            seed: self.seed,
        })
    }

    /// The same link without drops.
    pub fn without_drops(self) -> RuralLink {
        RuralLink {
            drops_every: None,
            ..self
        }
    }
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    changes: watch::Sender<u64>,
    task: JoinHandle<()>,
    runtime: tokio::runtime::Handle,
    /// The task firing scheduled drops, while a schedule runs.
    dropper: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `target`, a clean link
    /// until told otherwise.
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
                let control = pump::Control::new(task_state.clone(), task_changes.subscribe());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        pump::relay(client, server, control).await;
                    }
                });
            }
        });
        Ok(Proxy {
            addr,
            state,
            changes,
            task,
            runtime: tokio::runtime::Handle::current(),
            dropper: Mutex::new(None),
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

    /// Holds every byte and every close back (a black hole: the far side sees its
    /// connection open and silent) until [`Proxy::heal`] or [`Proxy::cut`].
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
        self.changed();
    }

    /// Restores the link (and clears any pending cut-after); its shape and drop
    /// schedule stay.
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

    /// Gives each direction a rate and a delay, from the next chunk on (also on the
    /// connections already open).
    pub fn shape(&self, upstream: Shape, downstream: Shape) {
        *self
            .state
            .shapes
            .lock()
            .expect("never poisoned: held for a copy") = (upstream, downstream);
        self.changed();
    }

    /// Cuts every open connection once (new ones are accepted at once), counted as
    /// a drop.
    pub fn drop_now(&self) {
        fire_drop(&self.state, &self.changes);
    }

    /// Drops the link on `schedule` from now on (replacing any schedule running), or
    /// never again with `None`.
    pub fn schedule_drops(&self, schedule: Option<DropSchedule>) {
        let mut dropper = self.dropper.lock().expect("never poisoned");
        if let Some(task) = dropper.take() {
            task.abort();
        }
        *dropper = schedule.map(|schedule| {
            let (state, changes) = (self.state.clone(), self.changes.clone());
            self.runtime.spawn(async move {
                for wait in schedule.waits() {
                    tokio::time::sleep(wait).await;
                    fire_drop(&state, &changes);
                }
            })
        });
    }

    /// Plays `link` from now on: its shape both ways and its drop schedule.
    pub fn play(&self, link: RuralLink) {
        self.shape(link.shape(), link.shape());
        self.schedule_drops(link.drop_schedule());
    }

    /// Back to a clean link: no rate limit, no delay, no drops.
    pub fn play_clean(&self) {
        self.shape(Shape::CLEAN, Shape::CLEAN);
        self.schedule_drops(None);
    }

    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Drops so far, scheduled or asked for.
    pub fn drops(&self) -> u64 {
        self.state.drops.load(Ordering::SeqCst)
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

fn fire_drop(state: &State, changes: &watch::Sender<u64>) {
    state.epoch.fetch_add(1, Ordering::SeqCst);
    state.drops.fetch_add(1, Ordering::SeqCst);
    changes.send_modify(|n| *n += 1);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.schedule_drops(None);
        self.cut();
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;
