//! A seeded random schedule over a hub and three districts that exercises online
//! quota (escrow, invariant 4), shipments between outlets (invariant 3) and the hub's
//! regional totals (invariant 2): receipts and store sales at the districts, quota
//! granted and asked back, online orders placed at the hub against that quota (some
//! beyond it), orders fulfilled or cancelled by the district once it has seen them,
//! transfers whose two sides are recorded in any order relative to syncs, links cut
//! and healed, and districts and the hub restarted (SIGTERM or SIGKILL).
//!
//! A model follows what the test did and what the nodes acknowledged. After every
//! step the acting node and the hub are read: no stock is negative, every stock is
//! the model's, no quota figure (`available`, `reserved`) is negative, the shelf
//! covers what is reserved and what is reserved covers every open order. An order
//! refused by the hub is FAILED_PRECONDITION and only when the hub's own quota line
//! says less is available; an order accepted fits in it. At the end every link is
//! healed, every open order is fulfilled or cancelled, every shipment received once,
//! and after convergence: every order is closed at the hub, every shipment is
//! `received` with sent = received and appears once, quota figures agree at both
//! ends, and the hub's regional totals per SKU are the sum of what each district
//! (and the hub's own warehouse) reports.
//!
//! The seed is printed; `MART_TEST_SEED=<seed>` replays the same schedule.

mod escrow;
mod observe;
mod transfers;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mart_proto::tonic::{Code, Status};
use mart_proto::v1::{
    Buyer, InTransitRequest, MovementAck, OrderActionRequest, PlaceOrderRequest, QuotaRequest,
    TransferInRequest, TransferOutRequest,
};
use mart_tests::hub::{available_in_refusal, orders, quota, quota_line, regional};
use mart_tests::ops::{movements_of, receive, sale, stock_of};
use mart_tests::{test_seed, TestCluster};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

const HUB: &str = "kupang";
const DISTRICTS: &[&str] = &["alor", "sikka", "ttu"];
/// The hub's own warehouse ships to districts and receives from them too.
const OUTLETS: &[&str] = &["kupang", "alor", "sikka", "ttu"];
const SKUS: &[&str] = &["TTU-MKP-060", "SKA-MET-250", "NGD-KOP-250"];
const STEPS: usize = 80;
/// A cut link is healed after at most this many steps.
const LONGEST_CUT: usize = 8;
const CONVERGE: Duration = Duration::from_secs(90);

/// What the test knows of one outlet's ledger: every acknowledged movement's effect.
#[derive(Debug, Default)]
struct Outlet {
    /// Every SKU with a movement (quota movements too), with its stock on hand.
    stock: BTreeMap<String, i64>,
    granted: BTreeMap<String, i64>,
    fulfilled: BTreeMap<String, i64>,
    cancelled: BTreeMap<String, i64>,
    /// Units asked back per SKU (the hub releases at most this much).
    asked_back: BTreeMap<String, i64>,
    movements: BTreeSet<String>,
}

fn get(map: &BTreeMap<String, i64>, sku: &str) -> i64 {
    map.get(sku).copied().unwrap_or(0)
}

impl Outlet {
    fn record(&mut self, id: &str, sku: &str, delta: i64) {
        *self.stock.entry(sku.into()).or_default() += delta;
        self.movements.insert(id.into());
    }

    /// Stock the outlet may sell in store, ship or grant, if the hub has released
    /// `released` units of `sku` as far as the outlet knows.
    fn sellable(&self, sku: &str, released: i64) -> i64 {
        get(&self.stock, sku) - (get(&self.granted, sku) - get(&self.fulfilled, sku) - released)
    }

    fn reserved(&self, sku: &str, released: i64) -> i64 {
        get(&self.granted, sku) - get(&self.fulfilled, sku) - released
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderState {
    Accepted,
    Fulfilled,
    Cancelled,
}

impl OrderState {
    fn name(self) -> &'static str {
        match self {
            OrderState::Accepted => "accepted",
            OrderState::Fulfilled => "fulfilled",
            OrderState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
struct PlacedOrder {
    outlet: &'static str,
    sku: String,
    quantity: i64,
    state: OrderState,
}

#[derive(Debug, Clone)]
struct Shipment {
    from: &'static str,
    to: &'static str,
    sku: String,
    quantity: i64,
    received: bool,
}

/// How often each kind of check could be exact (no sync changed the figures while
/// the request ran) and how often the schedule hit each refusal.
#[derive(Debug, Default)]
struct Tally {
    orders_accepted: usize,
    orders_refused: usize,
    orders_decided_exactly: usize,
    refused_not_sellable: usize,
    fulfilled: usize,
    cancelled: usize,
    transfers: usize,
    duplicates_refused: usize,
    returns: usize,
}

struct Schedule {
    rng: StdRng,
    cluster: TestCluster,
    outlets: BTreeMap<&'static str, Outlet>,
    orders: BTreeMap<String, PlacedOrder>,
    shipments: BTreeMap<String, Shipment>,
    /// District -> the step its link was cut at.
    cut: BTreeMap<&'static str, usize>,
    next_id: usize,
    tally: Tally,
}

fn refused_with(answer: &Result<MovementAck, Status>, code: Code) -> bool {
    matches!(answer, Err(s) if s.code() == code)
}

impl Schedule {
    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:04}", self.next_id)
    }

    fn district(&mut self) -> &'static str {
        DISTRICTS.choose(&mut self.rng).copied().expect("districts")
    }

    fn outlet(&mut self, name: &str) -> &mut Outlet {
        self.outlets.get_mut(name).expect("known outlet")
    }

    /// A SKU, more often one the outlet has sellable stock of.
    fn sku_for(&mut self, outlet: &str) -> &'static str {
        let stocked: Vec<&'static str> = SKUS
            .iter()
            .copied()
            .filter(|s| self.outlets[outlet].sellable(s, 0) > 0)
            .collect();
        if !stocked.is_empty() && self.rng.random_bool(0.8) {
            stocked.choose(&mut self.rng).copied().expect("non-empty")
        } else {
            SKUS.choose(&mut self.rng).copied().expect("skus")
        }
    }

    /// Units of `sku` the hub released to `district`, as the district knows.
    async fn released_at(&self, district: &str, sku: &str) -> Result<i64> {
        if district == HUB {
            return Ok(0);
        }
        let mut mart = self.cluster.mart(district).await?;
        Ok(quota_line(&mut mart, district, sku).await?.released)
    }

    /// Checks a movement that takes sellable stock (store sale, transfer out, grant)
    /// against the model: `released` before and after the request bound what the
    /// outlet knew when it decided (releases only grow), so an acceptance must fit in
    /// the larger sellable stock and a refusal must exceed the smaller.
    fn judge_sellable(
        &mut self,
        at: &str,
        what: &str,
        sku: &str,
        quantity: i64,
        released: (i64, i64),
        answer: &Result<MovementAck, Status>,
    ) -> Result<bool> {
        let outlet = &self.outlets[at];
        let (least, most) = (
            outlet.sellable(sku, released.0),
            outlet.sellable(sku, released.1),
        );
        match answer {
            Ok(ack) => {
                ensure!(
                    quantity <= most,
                    "{at}: {what} of {quantity} {sku} accepted with {most} sellable ({ack:?})"
                );
                ensure!(
                    !ack.duplicate,
                    "{at}: {what} taken for a duplicate: {ack:?}"
                );
                Ok(true)
            }
            Err(status) => {
                ensure!(
                    status.code() == Code::FailedPrecondition && quantity > least,
                    "{at}: {what} of {quantity} {sku} with {least} sellable got {status:?}"
                );
                self.tally.refused_not_sellable += 1;
                Ok(false)
            }
        }
    }

    async fn receipt(&mut self, at: &'static str) -> Result<String> {
        let sku = SKUS.choose(&mut self.rng).copied().expect("skus");
        let quantity = self.rng.random_range(5..=20);
        let id = self.fresh_id("rcv");
        let ack = receive(&mut self.cluster.mart(at).await?, &id, sku, quantity).await?;
        self.outlet(at).record(&id, sku, quantity);
        let on_hand = get(&self.outlets[at].stock, sku);
        ensure!(
            ack.quantity_on_hand == on_hand,
            "{at} {id}: {} on hand, the model {on_hand}",
            ack.quantity_on_hand
        );
        Ok(format!("{at}: receive {quantity} {sku}"))
    }

    async fn store_sales(&mut self, at: &'static str) -> Result<String> {
        let count = self.rng.random_range(1..=3);
        let mut done = Vec::new();
        for _ in 0..count {
            let sku = self.sku_for(at);
            let quantity = self.rng.random_range(1..=4);
            let id = self.fresh_id("sale");
            let before = self.released_at(at, sku).await?;
            let answer = self
                .cluster
                .mart(at)
                .await?
                .record_sale(sale(&id, sku, quantity))
                .await
                .map(|r| r.into_inner());
            let after = self.released_at(at, sku).await?;
            if self.judge_sellable(at, "store sale", sku, quantity, (before, after), &answer)? {
                self.outlet(at).record(&id, sku, -quantity);
                done.push(format!("{quantity} {sku}"));
            } else {
                done.push(format!("{quantity} {sku} refused"));
            }
        }
        Ok(format!("{at}: store sales {}", done.join(", ")))
    }

    /// Records a transfer id again at the same side, or decides a closed order again:
    /// refused, and nothing stored (the observation after the step checks stock).
    async fn replay(&mut self) -> Result<String> {
        let choice = self.rng.random_range(0..3);
        let request_id = self.fresh_id("again");
        if choice == 2 {
            let closed: Vec<String> = self
                .orders
                .iter()
                .filter(|(_, o)| o.state != OrderState::Accepted)
                .map(|(id, _)| id.clone())
                .collect();
            let Some(order) = closed.choose(&mut self.rng).cloned() else {
                return Ok("no closed order to decide again".into());
            };
            let at = self.orders[&order].outlet;
            let request = OrderActionRequest {
                request_id,
                order_id: order.clone(),
            };
            let mut mart = self.cluster.mart(at).await?;
            let answer = if self.rng.random_bool(0.5) {
                mart.fulfil_order(request).await
            } else {
                mart.cancel_order(request).await
            }
            .map(|r| r.into_inner());
            ensure!(
                refused_with(&answer, Code::FailedPrecondition),
                "{at}: deciding closed order {order} again got {answer:?}"
            );
            self.tally.duplicates_refused += 1;
            return Ok(format!("{at}: deciding {order} again refused"));
        }
        let ids: Vec<String> = self
            .shipments
            .iter()
            .filter(|(_, s)| choice == 0 || s.received)
            .map(|(id, _)| id.clone())
            .collect();
        let Some(transfer_id) = ids.choose(&mut self.rng).cloned() else {
            return Ok("no shipment to record again".into());
        };
        let s = self.shipments[&transfer_id].clone();
        let (at, answer) = if choice == 0 {
            // At least one unit sellable, so the sellable check cannot answer first.
            let released = self.released_at(s.from, &s.sku).await?;
            if self.outlets[s.from].sellable(&s.sku, released) < 1 {
                return Ok(format!("{}: nothing sellable to ship again", s.from));
            }
            let answer = self
                .cluster
                .mart(s.from)
                .await?
                .record_transfer_out(TransferOutRequest {
                    request_id,
                    transfer_id: transfer_id.clone(),
                    sku: s.sku.clone(),
                    quantity: 1,
                    to_outlet: s.to.into(),
                })
                .await
                .map(|r| r.into_inner());
            (s.from, answer)
        } else {
            let answer = self
                .cluster
                .mart(s.to)
                .await?
                .record_transfer_in(TransferInRequest {
                    request_id,
                    transfer_id: transfer_id.clone(),
                    sku: s.sku.clone(),
                    quantity: s.quantity,
                    from_outlet: s.from.into(),
                })
                .await
                .map(|r| r.into_inner());
            (s.to, answer)
        };
        ensure!(
            refused_with(&answer, Code::AlreadyExists),
            "{at}: recording transfer {transfer_id} again got {answer:?}"
        );
        self.tally.duplicates_refused += 1;
        Ok(format!("{at}: recording {transfer_id} again refused"))
    }

    async fn restart(&mut self, node: &str) -> Result<String> {
        let started = Instant::now();
        if self.rng.random_bool(0.5) {
            self.cluster.kill_and_restart(node).await?;
            Ok(format!(
                "kill -9 and restart {node} ({:?})",
                started.elapsed()
            ))
        } else {
            self.cluster.restart(node).await?;
            Ok(format!("restart {node} ({:?})", started.elapsed()))
        }
    }

    /// Returns what the step did and the outlets it acted at.
    async fn step(&mut self, step: usize) -> Result<(String, Vec<&'static str>)> {
        let overdue: Vec<&'static str> = self
            .cut
            .iter()
            .filter(|(_, since)| step - **since >= LONGEST_CUT)
            .map(|(d, _)| *d)
            .collect();
        let mut healed = String::new();
        for district in overdue {
            self.cluster.heal(district);
            self.cut.remove(district);
            healed.push_str(&format!("heal {district} (overdue); "));
        }
        let roll = self.rng.random_range(0..100);
        let (what, at): (String, Vec<&'static str>) = match roll {
            0..=6 => {
                let at = OUTLETS.choose(&mut self.rng).copied().expect("outlets");
                (self.receipt(at).await?, vec![at])
            }
            7..=18 => {
                let at = self.district();
                (self.store_sales(at).await?, vec![at])
            }
            19..=32 => {
                let at = self.district();
                (self.grant(at).await?, vec![at])
            }
            33..=38 => {
                let at = self.district();
                (self.ask_back(at).await?, vec![at])
            }
            39..=56 => (self.place_order().await?, vec![]),
            57..=66 => {
                let at = self.district();
                (self.decide_order(at).await?, vec![at])
            }
            67..=71 => (self.transfer_out().await?, OUTLETS.to_vec()),
            72..=76 => (self.transfer_in().await?, OUTLETS.to_vec()),
            77..=79 => (self.replay().await?, OUTLETS.to_vec()),
            80..=85 => {
                let d = self.district();
                if self.cut.contains_key(d) {
                    (format!("{d}: already cut"), vec![])
                } else {
                    self.cluster.cut(d);
                    self.cut.insert(d, step);
                    (format!("cut {d}"), vec![])
                }
            }
            86..=90 => match self.cut.keys().next().copied() {
                Some(d) => {
                    self.cluster.heal(d);
                    self.cut.remove(d);
                    (format!("heal {d}"), vec![])
                }
                None => ("nothing to heal".into(), vec![]),
            },
            91..=93 => {
                let live: Vec<&'static str> = DISTRICTS
                    .iter()
                    .copied()
                    .filter(|d| !self.cut.contains_key(d))
                    .collect();
                let started = Instant::now();
                self.cluster.wait_in_step(&live, CONVERGE).await?;
                let what = format!("{live:?} in step with the hub ({:?})", started.elapsed());
                (what, live)
            }
            94..=97 => {
                let d = self.district();
                (self.restart(d).await?, vec![d])
            }
            _ => (self.restart(HUB).await?, vec![HUB]),
        };
        Ok((format!("{healed}{what}"), at))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_orders_grants_transfers_cuts_and_restarts_never_oversell() -> Result<()> {
    let seed = test_seed();
    println!("seed {seed} (replay with MART_TEST_SEED={seed})");
    let mut builder = TestCluster::builder().hub(HUB);
    for d in DISTRICTS {
        builder = builder.district(d);
    }
    let mut s = Schedule {
        rng: StdRng::seed_from_u64(seed),
        cluster: builder.start().await?,
        outlets: OUTLETS.iter().map(|o| (*o, Outlet::default())).collect(),
        orders: BTreeMap::new(),
        shipments: BTreeMap::new(),
        cut: BTreeMap::new(),
        next_id: 0,
        tally: Tally::default(),
    };
    let started = Instant::now();
    for at in OUTLETS {
        for _ in 0..2 {
            s.receipt(at).await?;
        }
    }
    for d in DISTRICTS {
        s.grant(d).await?;
    }
    // The hub holds every district's ledger before it takes orders for them.
    s.cluster.wait_converged(CONVERGE).await?;
    println!("set up in {:?}", started.elapsed());

    for step in 0..STEPS {
        let (what, at) = s
            .step(step)
            .await
            .with_context(|| format!("step {step} (seed {seed})"))?;
        println!("step {step:2} at {:>6.2?}: {what}", started.elapsed());
        let mut observed = at;
        if observed.is_empty() {
            observed.push(HUB);
        }
        for node in observed {
            s.observe(node)
                .await
                .with_context(|| format!("after step {step} at {node} (seed {seed})"))?;
        }
    }

    // Every link back; the districts dial at once instead of waiting out a backoff.
    for d in DISTRICTS {
        s.cluster.heal(d);
    }
    s.cut.clear();
    for d in DISTRICTS {
        s.cluster.sync_now(d, 5).await?;
    }
    let healed = Instant::now();
    s.cluster.wait_converged(CONVERGE).await?;
    println!("in step {:?} after the last heal", healed.elapsed());

    // Every district has seen every order now: close them all, receive every shipment.
    let open: Vec<(String, &'static str)> = s
        .orders
        .iter()
        .filter(|(_, o)| o.state == OrderState::Accepted)
        .map(|(id, o)| (id.clone(), o.outlet))
        .collect();
    for (id, at) in &open {
        let fulfil = s.rng.random_bool(0.6);
        let what = s.decide(at, id, fulfil).await?;
        println!("close: {what}");
    }
    let pending: Vec<String> = s
        .shipments
        .iter()
        .filter(|(_, sh)| !sh.received)
        .map(|(id, _)| id.clone())
        .collect();
    for id in &pending {
        let what = s.receive_shipment(id).await?;
        println!("close: {what}");
    }
    s.cluster.wait_converged(CONVERGE).await?;
    for node in OUTLETS {
        s.observe(node).await.context("after closing every order")?;
    }
    let cluster = &s.cluster;
    let mut hub = cluster.mart(HUB).await?;

    // Every order the hub accepted, closed as its outlet decided; no refused one.
    let at_hub = orders(&mut hub, "", "").await?;
    let ids: BTreeSet<&String> = at_hub.keys().collect();
    let placed: BTreeSet<&String> = s.orders.keys().collect();
    ensure!(
        ids == placed,
        "the hub lists orders {ids:?}, it accepted {placed:?}"
    );
    for (id, o) in &at_hub {
        let model = &s.orders[id];
        ensure!(
            o.status == model.state.name() && o.status != "accepted" && o.outlet == model.outlet,
            "order {id} at the hub: {o:?}, the model {model:?}"
        );
    }
    for d in DISTRICTS {
        let own = orders(&mut cluster.mart(d).await?, "", "").await?;
        let expected: BTreeMap<&String, &str> = s
            .orders
            .iter()
            .filter(|(_, o)| o.outlet == *d)
            .map(|(id, o)| (id, o.state.name()))
            .collect();
        let listed: BTreeMap<&String, &str> =
            own.iter().map(|(id, o)| (id, o.status.as_str())).collect();
        ensure!(
            listed == expected,
            "{d} lists orders {listed:?}, the model {expected:?}"
        );
    }

    // Every shipment received once, both sides matched at the hub.
    let shipments = cluster
        .hub_service(HUB)
        .await?
        .in_transit(InTransitRequest {})
        .await
        .context("InTransit")?
        .into_inner()
        .shipments;
    let listed: BTreeSet<&String> = shipments.iter().map(|sh| &sh.transfer_id).collect();
    ensure!(
        listed.len() == shipments.len(),
        "the hub lists a transfer id twice: {shipments:?}"
    );
    let shipped: BTreeSet<&String> = s.shipments.keys().collect();
    ensure!(
        listed == shipped,
        "the hub lists shipments {listed:?}, the outlets shipped {shipped:?}"
    );
    for sh in &shipments {
        let model = &s.shipments[&sh.transfer_id];
        ensure!(
            sh.state == "received"
                && sh.sent == model.quantity
                && sh.received == model.quantity
                && sh.from == model.from
                && sh.to == model.to
                && sh.sku == model.sku,
            "shipment at the hub {sh:?}, the model {model:?}"
        );
    }

    // Quota agrees at both ends; every return request was answered.
    let hub_quota = quota(&mut hub, "").await?;
    for d in DISTRICTS {
        let own = quota(&mut cluster.mart(d).await?, "").await?;
        for (key, l) in &own {
            let h = hub_quota.get(key);
            ensure!(
                h == Some(l) && l.pending_returns == 0,
                "quota of {key:?}: {d} says {l:?}, the hub {h:?}"
            );
        }
        let theirs = hub_quota.keys().filter(|(o, _)| o == d).count();
        ensure!(
            theirs == own.len(),
            "the hub has {theirs} quota lines of {d}, {d} has {}",
            own.len()
        );
    }

    // Regional totals are the sum of what every outlet reports of itself.
    let mut reported: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for at in OUTLETS {
        let mut mart = cluster.mart(at).await?;
        let stock = stock_of(&mut mart, "").await?;
        ensure!(
            stock == s.outlets[at].stock,
            "{at}: stock {stock:?}, the model {:?}",
            s.outlets[at].stock
        );
        let held = movements_of(&mut mart, "").await?;
        let ids: BTreeSet<String> = held.iter().map(|m| m.id.clone()).collect();
        ensure!(
            ids.len() == held.len() && ids == s.outlets[at].movements,
            "{at}: movements {ids:?} ({} listed), the model {:?}",
            held.len(),
            s.outlets[at].movements
        );
        if *at != HUB {
            ensure!(
                movements_of(&mut hub, at).await? == held,
                "the hub's movements of {at} differ from {at}'s own"
            );
        }
        reported.insert(at.to_string(), stock);
    }
    let regional = regional(&mut cluster.hub_service(HUB).await?).await?;
    let all_skus: BTreeSet<&String> = reported.values().flat_map(|m| m.keys()).collect();
    let listed: BTreeSet<&String> = regional.skus.iter().map(|l| &l.sku).collect();
    ensure!(
        listed == all_skus,
        "regional stock lists {listed:?}, the outlets have movements of {all_skus:?}"
    );
    for line in &regional.skus {
        let sum: i64 = reported.values().map(|m| get(m, &line.sku)).sum();
        ensure!(
            line.total == sum,
            "regional total of {} is {}, the outlets report {sum} ({reported:?})",
            line.sku,
            line.total
        );
        for dq in &line.districts {
            let own = reported
                .get(&dq.district)
                .map(|m| get(m, &line.sku))
                .with_context(|| format!("regional stock lists {dq:?}"))?;
            let fresh = dq.freshness.as_ref().is_some_and(|f| !f.stale);
            ensure!(
                dq.quantity == own && fresh,
                "regional stock of {} at {}: {dq:?}, it reports {own}",
                line.sku,
                dq.district
            );
        }
    }
    println!(
        "done in {:?}: {} orders, {:?}",
        started.elapsed(),
        s.orders.len(),
        s.tally
    );
    Ok(())
}
