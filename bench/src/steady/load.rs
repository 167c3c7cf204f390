//! The sales `bench steady` makes at one district: a fast fill (several clients at
//! once, the link cut, so the open period grows to the next size level in seconds)
//! and a steady trickle (one call at a time at a fixed rate, the link up, so the hub
//! receives small bundles the way it does in service).
//!
//! It must never reuse a request id: every sale is new, so the counts it returns are
//! the sales the node recorded (a failed call is an error, not a retry: the node is
//! on the same machine, behind its admin socket).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use mart_tests::ops::{receive, sale};
use mart_tests::MartClient;

use crate::soak::seller::SKUS;

/// One district's cashier: its node and the number of the next sale.
#[derive(Clone)]
pub struct Till {
    district: String,
    mart: MartClient,
    next: Arc<AtomicU64>,
}

impl Till {
    pub fn new(district: &str, mart: MartClient) -> Self {
        Till {
            district: district.into(),
            mart,
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn district(&self) -> &str {
        &self.district
    }

    /// Sales recorded so far.
    pub fn sold(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Receives `units` of every SKU sold, so no sale of the run is refused.
    pub async fn open_stock(&mut self, units: i64) -> Result<()> {
        for sku in SKUS {
            let id = format!("steady-{}-rcv-{sku}", self.district);
            receive(&mut self.mart, &id, sku, units).await?;
        }
        Ok(())
    }

    /// Records one sale, the next in this till's numbering.
    async fn sell_one(&self, mart: &mut MartClient) -> Result<()> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("steady-{}-{n:07}", self.district);
        let sku = SKUS[n as usize % SKUS.len()];
        let ack = mart
            .record_sale(sale(&id, sku, 1))
            .await
            .with_context(|| format!("sale {id} at {}", self.district))?
            .into_inner();
        ensure!(!ack.duplicate, "sale {id} was taken for a duplicate");
        Ok(())
    }

    /// Sells with `clients` calls in flight until `target` sales are recorded.
    pub async fn fill_to(&self, target: u64, clients: usize) -> Result<()> {
        let mut workers = Vec::new();
        for _ in 0..clients {
            let till = self.clone();
            let mut mart = self.mart.clone();
            workers.push(tokio::spawn(async move {
                while till.next.load(Ordering::Relaxed) < target {
                    till.sell_one(&mut mart).await?;
                }
                anyhow::Ok(())
            }));
        }
        for worker in workers {
            worker.await.context("a filling client panicked")??;
        }
        Ok(())
    }

    /// Sells `per_second` sales a second, one call at a time, for `length`; returns
    /// how many it recorded (fewer than asked when the node is slower than the rate).
    pub async fn trickle(&self, per_second: f64, length: Duration) -> Result<u64> {
        let before = self.sold();
        let end = Instant::now() + length;
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut mart = self.mart.clone();
        loop {
            ticks.tick().await;
            if Instant::now() >= end {
                return Ok(self.sold() - before);
            }
            self.sell_one(&mut mart).await?;
        }
    }
}
