//! The soak's cashier at one district: sales at a steady rate through the node's
//! admin socket, each with its own request id, and receipts that keep stock ahead of
//! them, for the whole run whatever its link to the hub is doing.
//!
//! It keeps the id of every movement the node acknowledged. A call that failed
//! without a definite answer (deadline, transport error, UNAVAILABLE) may or may not
//! have been recorded: it is retried with the same request id until the node answers
//! (a `duplicate` answer means the first try was recorded), so the exactly-once check
//! at the hub has no unknowns. It must never send a new request id for a movement
//! already tried.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mart_proto::tonic::{Code, Status};
use mart_proto::v1::MovementAck;
use mart_tests::ops::{receipt, sale};
use mart_tests::MartClient;
use rand::rngs::StdRng;
use rand::Rng;

/// SKUs sold at every district, from the seeded provincial catalog.
pub const SKUS: &[&str] = &["TTU-MKP-060", "SKA-MET-250", "NGD-KOP-250"];
/// A receipt tops a SKU up once its stock falls below this.
const TOP_UP_BELOW: i64 = 200;
/// Unit cost of every receipt, rupiah (no budget is allocated: never refused).
const UNIT_COST: i64 = 20_000;
/// How long, after the run's end, unanswered movements are retried.
pub const DRAIN: Duration = Duration::from_secs(90);

/// One movement the cashier asks for.
#[derive(Debug, Clone)]
enum Request {
    Sale {
        id: String,
        sku: &'static str,
        quantity: i64,
    },
    Receipt {
        id: String,
        sku: &'static str,
        quantity: i64,
    },
}

impl Request {
    fn id(&self) -> &str {
        match self {
            Request::Sale { id, .. } | Request::Receipt { id, .. } => id,
        }
    }

    async fn send(&self, mart: &mut MartClient) -> Result<MovementAck, Status> {
        let answer = match self {
            Request::Sale { id, sku, quantity } => mart.record_sale(sale(id, sku, *quantity)).await,
            Request::Receipt { id, sku, quantity } => {
                mart.record_receipt(receipt(id, sku, *quantity, UNIT_COST))
                    .await
            }
        };
        answer.map(|a| a.into_inner())
    }
}

/// What one district's cashier did.
#[derive(Debug, Default)]
pub struct Till {
    /// Ids of every sale the node acknowledged (new or duplicate).
    pub sales: BTreeSet<String>,
    /// Ids of every receipt the node acknowledged.
    pub receipts: BTreeSet<String>,
    /// Ids the node refused outright (never recorded), with its answer.
    pub refused: BTreeMap<String, String>,
    /// Ids still without an answer when the drain ended.
    pub unanswered: BTreeSet<String>,
    /// Calls that failed without a definite answer, by gRPC code.
    pub ambiguous: BTreeMap<String, u64>,
    /// Retries that the node answered `duplicate` (the first try had been recorded).
    pub duplicate_answers: u64,
    /// Slowest acknowledged call.
    pub slowest: Duration,
}

impl Till {
    /// Every acknowledged movement id.
    pub fn acknowledged(&self) -> impl Iterator<Item = &String> {
        self.sales.iter().chain(&self.receipts)
    }
}

/// A cashier: its node, its random draws, and the requests still owed an answer.
pub struct Cashier {
    district: String,
    mart: MartClient,
    rng: StdRng,
    next: u64,
    pending: VecDeque<Request>,
    till: Till,
    /// Acknowledged sales so far, read by the sampler.
    sold: Arc<AtomicU64>,
}

impl Cashier {
    pub fn new(district: &str, mart: MartClient, rng: StdRng, sold: Arc<AtomicU64>) -> Self {
        Cashier {
            district: district.into(),
            mart,
            rng,
            next: 0,
            pending: VecDeque::new(),
            till: Till::default(),
            sold,
        }
    }

    fn fresh_id(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("soak-{}-{kind}-{:06}", self.district, self.next)
    }

    /// Receives `quantity` of every SKU (the opening stock), each retried until
    /// answered.
    pub async fn open_stock(&mut self, quantity: i64) -> anyhow::Result<()> {
        for sku in SKUS {
            let id = self.fresh_id("rcv");
            self.pending
                .push_back(Request::Receipt { id, sku, quantity });
        }
        self.drain(Instant::now() + DRAIN).await;
        anyhow::ensure!(
            self.till.receipts.len() == SKUS.len(),
            "{}: opening stock not received: {:?}",
            self.district,
            self.till
        );
        Ok(())
    }

    /// Records about `per_second` sales a second until `end` (one call at a time: a
    /// slow node lowers the rate instead of piling calls up), then retries what is
    /// still unanswered for up to [`DRAIN`]. Returns what it did.
    pub async fn sell_until(mut self, per_second: f64, end: Instant) -> Till {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if Instant::now() >= end {
                break;
            }
            let request = match self.pending.pop_front() {
                Some(retry) => retry,
                None => {
                    let sku = SKUS[self.rng.random_range(0..SKUS.len())];
                    let quantity = self.rng.random_range(1..=3);
                    Request::Sale {
                        id: self.fresh_id("sale"),
                        sku,
                        quantity,
                    }
                }
            };
            self.attempt(request).await;
        }
        self.drain(Instant::now() + DRAIN).await;
        self.till
    }

    /// Retries every pending request until each is answered or `deadline` passes.
    async fn drain(&mut self, deadline: Instant) {
        while let Some(request) = self.pending.pop_front() {
            if Instant::now() >= deadline {
                self.pending.push_front(request);
                break;
            }
            self.attempt(request).await;
            if !self.pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let left: Vec<String> = self.pending.drain(..).map(|r| r.id().to_string()).collect();
        self.till.unanswered.extend(left);
    }

    async fn attempt(&mut self, request: Request) {
        let started = Instant::now();
        match request.send(&mut self.mart).await {
            Ok(ack) => {
                self.till.slowest = self.till.slowest.max(started.elapsed());
                if ack.duplicate {
                    self.till.duplicate_answers += 1;
                }
                let id = request.id().to_string();
                self.till.refused.remove(&id);
                match &request {
                    Request::Sale { sku, .. } => {
                        self.till.sales.insert(id);
                        self.sold.fetch_add(1, Ordering::Relaxed);
                        if ack.quantity_on_hand < TOP_UP_BELOW {
                            self.top_up(sku);
                        }
                    }
                    Request::Receipt { .. } => {
                        self.till.receipts.insert(id);
                    }
                }
            }
            Err(status) if definite_refusal(status.code()) => {
                self.till
                    .refused
                    .insert(request.id().to_string(), format!("{status}"));
            }
            Err(status) => {
                *self
                    .till
                    .ambiguous
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1;
                self.pending.push_back(request);
            }
        }
    }

    /// Queues a receipt of the SKU unless one is already queued.
    fn top_up(&mut self, sku: &'static str) {
        let queued = self
            .pending
            .iter()
            .any(|r| matches!(r, Request::Receipt { sku: s, .. } if *s == sku));
        if !queued {
            let id = self.fresh_id("rcv");
            self.pending.push_back(Request::Receipt {
                id,
                sku,
                quantity: 10 * TOP_UP_BELOW,
            });
        }
    }
}

/// Answers that say the node checked the request and stored nothing: retrying the
/// same request would get the same answer.
fn definite_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::OutOfRange
    )
}
