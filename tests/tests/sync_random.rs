//! A seeded random schedule over a hub and three districts (invariants 1 to 4 and 8
//! of the brief as sync sees them): sales and receipts at the districts, products
//! added to the provincial catalog at the hub, links cut and healed, districts and
//! the hub restarted (SIGTERM or SIGKILL), and now and then a wait until every live
//! link has carried what is pending. A model follows every acknowledged
//! movement, so each answer is checked as it comes (a sale beyond the stock on hand
//! is refused with FAILED_PRECONDITION, never accepted). Once every link is healed:
//! every replica of every document has the same heads at its district and the hub,
//! each district's movements and stock are the model's (none lost across SIGKILL,
//! none twice, never negative), the hub's copy of each district's ledger gives the
//! same movements and stock, and every product added at the hub reached every
//! district.
//!
//! The seed is printed; `MART_TEST_SEED=<seed>` replays the same schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mart_proto::tonic::Code;
use mart_proto::v1::{AddProductRequest, ListProductsRequest, Product};
use mart_tests::ops::{movements_of, receive, sale, stock_of};
use mart_tests::{test_seed, TestCluster};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HUB: &str = "kupang";
const DISTRICTS: &[&str] = &["alor", "sikka", "ttu"];
const SKUS: &[&str] = &["TTU-MKP-060", "SKA-MET-250", "NGD-KOP-250"];
/// Producers of the seeded provincial catalog, for products added at the hub.
const PRODUCERS: &[&str] = &["ikm-humusu-wini", "ikm-mete-nita", "ikm-kopi-bajawa"];
const STEPS: usize = 60;
/// A cut link is healed after at most this many steps, so no district sits in a
/// long backoff when the schedule ends.
const LONGEST_CUT: usize = 8;
const CONVERGE: Duration = Duration::from_secs(90);

/// What the test knows each district holds: every acknowledged movement.
#[derive(Debug, Default)]
struct Outlet {
    stock: BTreeMap<String, i64>,
    movements: BTreeSet<String>,
}

struct Schedule {
    rng: StdRng,
    cluster: TestCluster,
    outlets: BTreeMap<&'static str, Outlet>,
    /// District -> the step its link was cut at.
    cut: BTreeMap<&'static str, usize>,
    added: Vec<String>,
    next_id: usize,
}

impl Schedule {
    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:04}", self.next_id)
    }

    fn district(&mut self) -> &'static str {
        DISTRICTS[self.rng.random_range(0..DISTRICTS.len())]
    }

    async fn receipt(&mut self, district: &'static str) -> Result<String> {
        let sku = SKUS[self.rng.random_range(0..SKUS.len())];
        let quantity = self.rng.random_range(5..=20);
        let id = self.fresh_id("rcv");
        let ack = receive(&mut self.cluster.mart(district).await?, &id, sku, quantity).await?;
        let outlet = self.outlets.get_mut(district).expect("known district");
        let on_hand = outlet.stock.entry(sku.into()).or_default();
        *on_hand += quantity;
        ensure!(
            ack.quantity_on_hand == *on_hand,
            "{district} {id}: {} on hand, the model {on_hand}",
            ack.quantity_on_hand
        );
        outlet.movements.insert(id.clone());
        Ok(format!("{district}: receive {quantity} {sku}"))
    }

    async fn sales(&mut self, district: &'static str) -> Result<String> {
        let count = self.rng.random_range(1..=5);
        let mut mart = self.cluster.mart(district).await?;
        let mut refused = 0;
        for _ in 0..count {
            let sku = SKUS[self.rng.random_range(0..SKUS.len())];
            let quantity = self.rng.random_range(1..=3);
            let id = self.fresh_id("sale");
            let outlet = self.outlets.get_mut(district).expect("known district");
            let on_hand = outlet.stock.get(sku).copied().unwrap_or(0);
            let answer = mart.record_sale(sale(&id, sku, quantity)).await;
            if on_hand >= quantity {
                let ack = answer
                    .with_context(|| format!("{district} {id}: {quantity} {sku} of {on_hand}"))?
                    .into_inner();
                let left = on_hand - quantity;
                ensure!(
                    !ack.duplicate && ack.quantity_on_hand == left,
                    "{district} {id}: {ack:?}, the model has {left} left"
                );
                outlet.stock.insert(sku.into(), left);
                outlet.movements.insert(id);
            } else {
                match answer {
                    Err(status) if status.code() == Code::FailedPrecondition => refused += 1,
                    other => bail!(
                        "{district} {id}: a sale of {quantity} {sku} with {on_hand} on hand \
                         got {other:?}"
                    ),
                }
            }
        }
        Ok(format!(
            "{district}: {count} sales, {refused} refused for want of stock"
        ))
    }

    async fn add_product(&mut self) -> Result<String> {
        let sku = format!("RND-{:03}", self.added.len());
        let producer = PRODUCERS[self.rng.random_range(0..PRODUCERS.len())];
        let product = Product {
            sku: sku.clone(),
            name: format!("Produk uji {sku}"),
            producer_id: producer.into(),
            category: "uji".into(),
            unit: "piece".into(),
            price_rupiah: self.rng.random_range(1..=500) * 1000,
            ..Default::default()
        };
        let added = self
            .cluster
            .mart(HUB)
            .await?
            .add_product(AddProductRequest {
                product: Some(product),
            })
            .await
            .with_context(|| format!("AddProduct {sku} at the hub"))?
            .into_inner();
        ensure!(added.document_id == "catalog/province", "{added:?}");
        self.added.push(sku.clone());
        Ok(format!("hub: add product {sku}"))
    }

    async fn step(&mut self, step: usize) -> Result<String> {
        // Links cut too long are healed first.
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
        let what = match roll {
            0..=34 => {
                let d = self.district();
                self.sales(d).await?
            }
            35..=42 => {
                let d = self.district();
                self.receipt(d).await?
            }
            43..=51 => self.add_product().await?,
            52..=63 => {
                let d = self.district();
                if self.cut.contains_key(d) {
                    format!("{d}: already cut")
                } else {
                    self.cluster.cut(d);
                    self.cut.insert(d, step);
                    format!("cut {d}")
                }
            }
            64..=75 => match self.cut.keys().next().copied() {
                Some(d) => {
                    self.cluster.heal(d);
                    self.cut.remove(d);
                    format!("heal {d}")
                }
                None => "nothing to heal".into(),
            },
            76..=83 => {
                // Let the live links carry what is pending, both ways.
                let live: Vec<&str> = DISTRICTS
                    .iter()
                    .copied()
                    .filter(|d| !self.cut.contains_key(d))
                    .collect();
                let started = Instant::now();
                self.cluster.wait_in_step(&live, CONVERGE).await?;
                format!("{live:?} in step with the hub ({:?})", started.elapsed())
            }
            84..=91 => {
                let d = self.district();
                self.restart(d).await?
            }
            _ => self.restart(HUB).await?,
        };
        Ok(format!("{healed}{what}"))
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_schedule_of_sales_edits_cuts_and_restarts_converges() -> Result<()> {
    let seed = test_seed();
    println!("seed {seed} (replay with MART_TEST_SEED={seed})");
    let mut builder = TestCluster::builder().hub(HUB);
    for d in DISTRICTS {
        builder = builder.district(d);
    }
    let mut schedule = Schedule {
        rng: StdRng::seed_from_u64(seed),
        cluster: builder.start().await?,
        outlets: DISTRICTS.iter().map(|d| (*d, Outlet::default())).collect(),
        cut: BTreeMap::new(),
        added: Vec::new(),
        next_id: 0,
    };
    for d in DISTRICTS {
        for _ in 0..3 {
            schedule.receipt(d).await?;
        }
    }
    let started = Instant::now();
    for step in 0..STEPS {
        let what = schedule.step(step).await?;
        println!("step {step:2} at {:>6.2?}: {what}", started.elapsed());
    }

    for d in DISTRICTS {
        schedule.cluster.heal(d);
    }
    let healed = Instant::now();
    let cluster = &schedule.cluster;
    cluster.wait_converged(CONVERGE).await?;
    println!(
        "converged {:?} after the last heal; schedule took {:?}",
        healed.elapsed(),
        started.elapsed()
    );

    let mut hub = cluster.mart(HUB).await?;
    for (district, outlet) in &schedule.outlets {
        let mut mart = cluster.mart(district).await?;
        // Every acknowledged movement, once, and nothing else.
        let held = movements_of(&mut mart, "").await?;
        let ids: BTreeSet<String> = held.iter().map(|m| m.id.clone()).collect();
        ensure!(
            ids.len() == held.len(),
            "{district} holds a movement id twice"
        );
        ensure!(
            ids == outlet.movements,
            "{district}: lost {:?}, unexpected {:?}",
            outlet.movements.difference(&ids).collect::<Vec<_>>(),
            ids.difference(&outlet.movements).collect::<Vec<_>>()
        );
        let stock = stock_of(&mut mart, "").await?;
        ensure!(
            stock.values().all(|q| *q >= 0),
            "{district} has negative stock: {stock:?}"
        );
        let expected: BTreeMap<String, i64> = outlet
            .stock
            .iter()
            .map(|(sku, q)| (sku.clone(), *q))
            .collect();
        ensure!(
            stock == expected,
            "{district}: stock {stock:?}, the model {expected:?}"
        );
        // The hub's copy gives the same movements and the same stock.
        ensure!(
            movements_of(&mut hub, district).await? == held,
            "the hub's movements of {district} differ from the district's"
        );
        let at_hub = stock_of(&mut hub, district).await?;
        ensure!(
            at_hub == stock,
            "{district}: stock {stock:?}, at the hub {at_hub:?}"
        );
        // Every product added at the hub reached the district.
        let products: BTreeSet<String> = mart
            .list_products(ListProductsRequest {
                category: "uji".into(),
            })
            .await?
            .into_inner()
            .products
            .into_iter()
            .map(|p| p.sku)
            .collect();
        let added: BTreeSet<String> = schedule.added.iter().cloned().collect();
        ensure!(
            products == added,
            "{district} lists {products:?} of the hub's new products {added:?}"
        );
    }
    println!(
        "{} products added; movements per district: {:?}",
        schedule.added.len(),
        schedule
            .outlets
            .iter()
            .map(|(d, o)| (*d, o.movements.len()))
            .collect::<Vec<_>>()
    );
    Ok(())
}
