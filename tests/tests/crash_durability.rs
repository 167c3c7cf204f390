//! Durability and exactly-once of acknowledged sales across `kill -9` (invariants 1
//! and 3 of the brief).
//!
//! Four clients stream 1,000 sales (ids `sale-0000`...) to a real node; the node is
//! killed with SIGKILL after a random number of acknowledgements, while writes and
//! flushes are in flight; it is restarted on the same data dir. Then every
//! acknowledged sale must be in the ledger exactly once with the content that was
//! sent, nothing may be recorded that was never sent, and re-sending all 1,000 with
//! the same request ids must answer exactly those recorded with `duplicate = true`,
//! ending with 1,000 sales, each once, and stock = received - sold for every SKU.
//!
//! The three tests kill in different thirds of the stream. Each prints its seed;
//! `MART_TEST_SEED=<seed>` replays the same sales and kill point.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use mart_proto::v1::{Buyer, Channel, MovementAck, SaleRequest, StockRequest};
use mart_tests::ops::{movements, receive};
use mart_tests::{test_seed, MartClient, NodeProcess, SEEDED_SKUS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

const SALES: usize = 1000;
const CLIENTS: usize = 4;
/// Received of every seeded SKU: more than 1,000 sales of at most 3 can take.
const RECEIVED: i64 = 3 * SALES as i64;
/// Longest the stream may take to reach the kill point.
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct PlannedSale {
    id: String,
    sku: &'static str,
    quantity: i64,
    channel: Channel,
    buyer: Buyer,
}

impl PlannedSale {
    fn request(&self) -> SaleRequest {
        SaleRequest {
            request_id: self.id.clone(),
            sku: self.sku.to_string(),
            quantity: self.quantity,
            unit_price_rupiah: None,
            channel: self.channel as i32,
            buyer: self.buyer as i32,
            ..Default::default()
        }
    }

    /// The `detail` the node lists for this sale.
    fn detail(&self) -> String {
        let channel = if self.channel == Channel::Online {
            "online"
        } else {
            "store"
        };
        let buyer = if self.buyer == Buyer::Asn {
            "asn"
        } else {
            "public"
        };
        format!("{channel}, {buyer}")
    }
}

fn plan(rng: &mut StdRng) -> Vec<PlannedSale> {
    (0..SALES)
        .map(|i| PlannedSale {
            id: format!("sale-{i:04}"),
            sku: SEEDED_SKUS[rng.random_range(0..SEEDED_SKUS.len())],
            quantity: rng.random_range(1..=3),
            channel: if rng.random_bool(0.3) {
                Channel::Online
            } else {
                Channel::Store
            },
            buyer: if rng.random_bool(0.4) {
                Buyer::Asn
            } else {
                Buyer::Public
            },
        })
        .collect()
}

/// What the clients saw of the stream before and after the kill.
#[derive(Default)]
struct Outcome {
    /// Index of the sale -> the node's acknowledgement.
    acked: BTreeMap<usize, MovementAck>,
    /// Every sale whose request was started (acknowledged or not).
    sent: BTreeSet<usize>,
}

/// Streams the planned sales with [`CLIENTS`] concurrent clients and SIGKILLs the
/// node once `kill_after` sales are acknowledged. A refusal before the kill fails the
/// test; after the kill, a client stops at its first failed call (outcome unknown).
async fn stream_and_kill(
    node: &mut NodeProcess,
    sales: Arc<Vec<PlannedSale>>,
    kill_after: usize,
) -> Result<Outcome> {
    let next = Arc::new(AtomicUsize::new(0));
    // Clients take no sale past this one, so the kill always lands before the end of
    // the stream, however late the test gets to it on a loaded machine; a few sales
    // past `kill_after` are usually still in flight when it does.
    let last = kill_after + 2 * CLIENTS;
    assert!(
        last < sales.len(),
        "kill_after {kill_after} leaves no sale after it"
    );
    let killed = Arc::new(AtomicBool::new(false));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let (acks_tx, mut acks_rx) = watch::channel(0usize);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut mart = node.mart().await?;
        let (sales, next, killed, outcome, acks_tx) = (
            sales.clone(),
            next.clone(),
            killed.clone(),
            outcome.clone(),
            acks_tx.clone(),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(planned) = sales.get(i).filter(|_| i <= last) else {
                    return Ok(());
                };
                outcome.lock().unwrap().sent.insert(i);
                match mart.record_sale(planned.request()).await {
                    Ok(ack) => {
                        let ack = ack.into_inner();
                        ensure!(
                            ack.movement_id == planned.id
                                && ack.sku == planned.sku
                                && !ack.duplicate,
                            "first ack of {} is wrong: {ack:?}",
                            planned.id
                        );
                        outcome.lock().unwrap().acked.insert(i, ack);
                        acks_tx.send_modify(|n| *n += 1);
                    }
                    Err(status) if killed.load(Ordering::SeqCst) => {
                        let _ = status; // the node is gone: this sale's outcome is unknown
                        return Ok(());
                    }
                    Err(status) => bail!("{} refused before the kill: {status:?}", planned.id),
                }
            }
        }));
    }
    drop(acks_tx);

    // The guard `wait_for` returns holds the channel's lock: drop it at once, or the
    // clients' next `send_modify` blocks their worker threads.
    let reached = tokio::time::timeout(STREAM_TIMEOUT, async {
        acks_rx.wait_for(|n| *n >= kill_after).await.map(drop)
    })
    .await;
    let reached = match reached {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(anyhow!(
            "every client stopped before {kill_after} acknowledgements"
        )),
        Err(_) => Err(anyhow!(
            "{kill_after} acknowledgements took over {STREAM_TIMEOUT:?}"
        )),
    };
    if reached.is_ok() {
        killed.store(true, Ordering::SeqCst);
        node.kill_9()?;
    }
    for client in clients {
        client.await.context("client task panicked")??;
    }
    reached?;
    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    Ok(outcome)
}

/// Sends every planned sale again with [`CLIENTS`] concurrent clients; returns the
/// acknowledgements by index. Every one must be answered.
async fn resend_all(
    node: &NodeProcess,
    sales: Arc<Vec<PlannedSale>>,
) -> Result<BTreeMap<usize, MovementAck>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut mart = node.mart().await?;
        let (sales, next) = (sales.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(planned) = sales.get(i) else {
                    return Ok::<_, anyhow::Error>(acks);
                };
                let ack = mart
                    .record_sale(planned.request())
                    .await
                    .with_context(|| format!("re-send of {} after the restart", planned.id))?;
                acks.push((i, ack.into_inner()));
            }
        }));
    }
    let mut acks = BTreeMap::new();
    for client in clients {
        acks.extend(client.await.context("client task panicked")??);
    }
    Ok(acks)
}

/// Checks the sales in the ledger against the plan: each at most once, as sent, and
/// each acknowledgement's stock matches the ledger replayed up to it. Returns the ids
/// of the recorded sales.
async fn recorded_sales(
    mart: &mut MartClient,
    sales: &[PlannedSale],
    acked: &BTreeMap<usize, MovementAck>,
) -> Result<BTreeSet<usize>> {
    let by_id: HashMap<&str, usize> = sales
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut stock: HashMap<String, i64> = HashMap::new();
    let mut recorded = BTreeSet::new();
    for m in movements(mart).await? {
        *stock.entry(m.sku.clone()).or_default() += m.delta;
        ensure!(
            stock[&m.sku] >= 0,
            "stock of {} went below zero at {}",
            m.sku,
            m.id
        );
        if m.kind == "receipt" {
            ensure!(m.id.starts_with("rcv-"), "unexpected receipt {m:?}");
            continue;
        }
        let i = *by_id
            .get(m.id.as_str())
            .with_context(|| format!("a movement nobody sent: {m:?}"))?;
        let planned = &sales[i];
        ensure!(recorded.insert(i), "{} is in the ledger twice", m.id);
        ensure!(
            m.kind == "sale"
                && m.sku == planned.sku
                && m.delta == -planned.quantity
                && m.detail == planned.detail(),
            "{} recorded as {m:?}, sent as {planned:?}",
            m.id
        );
        ensure!(
            m.unit_rupiah > 0,
            "{} recorded without the catalog price: {m:?}",
            m.id
        );
        if let Some(ack) = acked.get(&i) {
            ensure!(
                ack.quantity_on_hand == stock[&m.sku],
                "{} was acknowledged with {} on hand, the ledger gives {}",
                m.id,
                ack.quantity_on_hand,
                stock[&m.sku]
            );
        }
    }
    Ok(recorded)
}

async fn kill_during_the_stream(test: u64, kill_range: std::ops::Range<usize>) -> Result<()> {
    let seed = test_seed();
    let mut rng = StdRng::seed_from_u64(seed ^ test);
    let sales = Arc::new(plan(&mut rng));
    let kill_after = rng.random_range(kill_range);
    println!("seed {seed} (replay with MART_TEST_SEED={seed}): kill -9 after {kill_after} acknowledged sales");

    let mut node = NodeProcess::start_default().await?;
    let mut mart = node.mart().await?;
    for sku in SEEDED_SKUS {
        receive(&mut mart, &format!("rcv-{sku}"), sku, RECEIVED).await?;
    }
    drop(mart);

    let outcome = stream_and_kill(&mut node, sales.clone(), kill_after).await?;
    let acked = outcome.acked;
    println!(
        "{} acknowledged, {} sent when the node was killed",
        acked.len(),
        outcome.sent.len()
    );
    ensure!(
        acked.len() >= kill_after && acked.len() < SALES,
        "{} acknowledged",
        acked.len()
    );

    node.restart().await?;
    let mut mart = node.mart().await?;
    let recorded = recorded_sales(&mut mart, &sales, &acked).await?;
    let lost: Vec<_> = acked
        .keys()
        .filter(|i| !recorded.contains(i))
        .map(|i| &sales[*i].id)
        .collect();
    ensure!(
        lost.is_empty(),
        "{} acknowledged sales lost by kill -9, among them {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let unsent: Vec<_> = recorded
        .difference(&outcome.sent)
        .map(|i| &sales[*i].id)
        .collect();
    ensure!(unsent.is_empty(), "recorded but never sent: {unsent:?}");
    let unacked = recorded.len() - acked.len();
    ensure!(
        unacked <= CLIENTS,
        "{unacked} recorded sales were never acknowledged, at most {CLIENTS} were in flight"
    );
    println!(
        "after the restart: {} recorded ({unacked} of them unacknowledged)",
        recorded.len()
    );

    let resent = resend_all(&node, sales.clone()).await?;
    ensure!(resent.len() == SALES);
    for (i, ack) in &resent {
        let planned = &sales[*i];
        ensure!(
            ack.movement_id == planned.id && ack.sku == planned.sku,
            "re-send of {} answered {ack:?}",
            planned.id
        );
        ensure!(
            ack.duplicate == recorded.contains(i),
            "re-send of {} answered duplicate = {} but it was {} in the ledger",
            planned.id,
            ack.duplicate,
            if recorded.contains(i) {
                "already"
            } else {
                "not"
            }
        );
    }

    let all_acked: BTreeMap<usize, MovementAck> = resent
        .into_iter()
        .filter(|(i, _)| !recorded.contains(i))
        .chain(acked)
        .collect();
    let finally = recorded_sales(&mut mart, &sales, &all_acked).await?;
    ensure!(
        finally.len() == SALES,
        "{} sales in the ledger, expected {SALES}",
        finally.len()
    );
    let listed = movements(&mut mart).await?;
    ensure!(
        listed.len() == SALES + SEEDED_SKUS.len(),
        "{} movements",
        listed.len()
    );

    let mut expected: BTreeMap<String, i64> = SEEDED_SKUS
        .iter()
        .map(|s| (s.to_string(), RECEIVED))
        .collect();
    for s in sales.iter() {
        *expected.get_mut(s.sku).unwrap() -= s.quantity;
    }
    let levels = mart
        .get_stock(StockRequest {
            sku: String::new(),
            outlet: String::new(),
        })
        .await?
        .into_inner()
        .levels;
    let actual: BTreeMap<String, i64> = levels.into_iter().map(|l| (l.sku, l.quantity)).collect();
    ensure!(
        actual == expected,
        "stock per sku\n got {actual:?}\nwant {expected:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_early_in_the_stream() -> Result<()> {
    kill_during_the_stream(1, 10..330).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream() -> Result<()> {
    kill_during_the_stream(2, 330..660).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_late_in_the_stream() -> Result<()> {
    kill_during_the_stream(3, 660..990).await
}
