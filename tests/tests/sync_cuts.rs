//! Cuts in the middle of a transfer (invariants 2 and 3 of the brief): a district
//! records a batch of sales while cut off, then the link comes back and is cut again
//! after a random number of bytes, wherever that falls in the exchange (a `Have`,
//! the middle of a bundle, an acknowledgement), many times over. Once the link
//! stays up, the hub holds the same heads, every movement exactly once and the same
//! stock, and the bytes show that nothing crossed twice except what a cut destroyed.
//!
//! The byte bound: a session's setup (TLS handshake with both certificates, HTTP/2,
//! `Hello` and `Have` both ways) is paid once per connection whatever the protocol,
//! and a cut may waste whatever it let through (the proxy caps that at the cut's
//! offset). Every other byte crosses in a session no cut interrupted, and there each
//! sale must cross once: over the test, those sessions carry their setups, the fixed
//! cost of a bundle each (measured), and at most 1.25 times the sales data of one
//! uninterrupted sync of the same sales by a second, fresh district (the slack:
//! small bundles compress a little worse than one big one). And the hub, which never
//! holds anything of a district's own documents the district lacks, sends nothing
//! back but its acknowledgements.
//!
//! The seed is printed; `MART_TEST_SEED=<seed>` replays a run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use mart_tests::cluster::peer_info;
use mart_tests::ops::{movements_of, receive, sell_all, stock_of};
use mart_tests::proxy::Proxy;
use mart_tests::{test_seed, wait_until, TestCluster};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The district whose link is cut again and again.
const CUT: &str = "ttu";
/// The district that syncs the same sales in one go, for the byte budget.
const FRESH: &str = "sikka";
const SKUS: &[&str] = &["TTU-MKP-060", "TTU-MKP-120", "SKA-MET-250", "NGD-KOP-250"];
const CYCLES: usize = 15;
const BATCH: usize = 100;
/// A district whose link comes back must be back within this: its backoff grows with
/// the dials that failed while the link was cut (a cut lasts as long as selling a
/// batch, seconds on a loaded machine) and is capped at 30 s (`BACKOFF_CAP`).
const RECONNECT: Duration = Duration::from_secs(60);
const CONVERGE: Duration = Duration::from_secs(90);
/// Room past the last bundle for the hub's acknowledgement, so a cut can land there.
const ACK_BYTES: u64 = 200;
/// What the hub may send in a session beyond the setup of an empty one: its
/// acknowledgements (a `Have` per bundle received).
const ACKS_SLACK: u64 = 1024;

type Sale = (String, String, i64);

/// The sales of every batch; the same for both districts.
fn batches(rng: &mut StdRng) -> Vec<Vec<Sale>> {
    (0..=CYCLES)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    (
                        format!("s{b:02}-{i:03}"),
                        SKUS[rng.random_range(0..SKUS.len())].to_string(),
                        rng.random_range(1..=3),
                    )
                })
                .collect()
        })
        .collect()
}

/// Bytes each way (district to hub, hub to district).
#[derive(Debug, Clone, Copy, Default)]
struct Bytes {
    up: u64,
    down: u64,
}

impl Bytes {
    fn of(proxy: &Proxy) -> Bytes {
        Bytes {
            up: proxy.upstream_bytes(),
            down: proxy.downstream_bytes(),
        }
    }

    fn since(proxy: &Proxy, before: Bytes) -> Bytes {
        let now = Bytes::of(proxy);
        Bytes {
            up: now.up - before.up,
            down: now.down - before.down,
        }
    }

    fn total(self) -> u64 {
        self.up + self.down
    }
}

/// Bytes of a session with nothing to send: cut the link, heal it, and count until
/// the district has heard the hub's heads of everything again.
async fn empty_session(cluster: &TestCluster, district: &str) -> Result<Bytes> {
    let proxy = cluster.proxy(district);
    let hub = cluster.hub_id().to_string();
    let mut admin = cluster.admin(district).await?;
    cluster.cut(district);
    wait_until("the district sees the link down", CONVERGE, || {
        let mut admin = admin.clone();
        let hub = hub.clone();
        async move { Ok(!peer_info(&mut admin, &hub).await?.connected) }
    })
    .await?;
    let since = peer_info(&mut admin, &hub).await?.last_success_unix_ms;
    let before = Bytes::of(proxy);
    cluster.heal(district);
    wait_until("the district is in sync again", CONVERGE, || {
        let mut admin = admin.clone();
        let hub = hub.clone();
        async move {
            let info = peer_info(&mut admin, &hub).await?;
            Ok(info.connected && info.last_success_unix_ms > since)
        }
    })
    .await?;
    Ok(Bytes::since(proxy, before))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_at_random_bytes_resend_nothing_but_what_they_cut() -> Result<()> {
    let seed = test_seed();
    println!("seed {seed} (replay with MART_TEST_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let batches = batches(&mut rng);

    let cluster = TestCluster::builder()
        .hub("kupang")
        .district(CUT)
        .district(FRESH)
        .start()
        .await?;
    for district in [CUT, FRESH] {
        let mut mart = cluster.mart(district).await?;
        for (i, sku) in SKUS.iter().enumerate() {
            receive(&mut mart, &format!("rcv-{i}"), sku, 10_000).await?;
        }
    }
    cluster.wait_converged(CONVERGE).await?;

    // One uninterrupted sync of every batch, by the fresh district.
    let fresh = cluster.proxy(FRESH);
    let fresh_setup = empty_session(&cluster, FRESH).await?.total();
    cluster.cut(FRESH);
    let fresh_mart = cluster.mart(FRESH).await?;
    for batch in &batches {
        sell_all(&fresh_mart, batch.clone(), 8).await?;
    }
    let before = Bytes::of(fresh);
    cluster.heal(FRESH);
    cluster.wait_in_step(&[FRESH], CONVERGE).await?;
    let uninterrupted = Bytes::since(fresh, before).total();
    let data = uninterrupted.saturating_sub(fresh_setup);
    println!(
        "one uninterrupted sync of {} sales: {uninterrupted} bytes, {data} beyond its setup",
        BATCH * batches.len()
    );

    // An empty session and one batch, to aim the cuts at the exchange itself.
    let proxy = cluster.proxy(CUT);
    let mart = cluster.mart(CUT).await?;
    let empty = empty_session(&cluster, CUT).await?;
    let setup = empty.total();
    cluster.cut(CUT);
    sell_all(&mart, batches[0].clone(), 8).await?;
    let before = Bytes::of(proxy);
    cluster.heal(CUT);
    cluster.wait_in_step(&[CUT], CONVERGE).await?;
    let one_batch = Bytes::since(proxy, before);
    ensure!(
        one_batch.total() > setup,
        "a batch took {one_batch:?}, an empty session {setup} bytes"
    );
    let per_batch = one_batch.total() - setup;
    // What carrying any bundle at all costs beyond its sales (bundle header, actor
    // table, the acknowledgement), from one batch against a sixteenth of the data.
    let bundle_cost = per_batch.saturating_sub(data / batches.len() as u64);
    println!(
        "empty session: {setup} bytes ({empty:?}); one batch of {BATCH} sales: {per_batch} \
         more, of which {bundle_cost} the cost of a bundle"
    );

    // Sessions no cut interrupted, and what crossed in them.
    let mut whole_sessions = 1u64;
    let mut whole_bytes = one_batch.total();
    // What the hub sent in each of them.
    let mut hub_sent = vec![("batch 0".to_string(), one_batch.down)];
    let mut fired = 0;
    // Batches the hub lacks before this cycle's.
    let mut behind = 0u64;
    for (cycle, batch) in batches.iter().enumerate().skip(1) {
        cluster.cut(CUT);
        sell_all(&mart, batch.clone(), 8).await?;
        // Somewhere in the bundles of every batch the hub lacks, or in the
        // acknowledgement after them.
        let offset = setup + rng.random_range(0..(behind + 1) * per_batch + ACK_BYTES);
        let before = Bytes::of(proxy);
        let connections = proxy.connections();
        let healed = Instant::now();
        cluster.heal(CUT);
        proxy.cut_after(offset);
        wait_until(
            &format!("cycle {cycle}: {CUT} reconnects after the heal"),
            RECONNECT,
            || {
                let reconnected = proxy.connections() > connections;
                async move { Ok(reconnected) }
            },
        )
        .await?;
        let reconnected = healed.elapsed();
        wait_until(
            &format!("cycle {cycle}: the cut after {offset} bytes fires or the hub caught up"),
            CONVERGE,
            || async { Ok(proxy.is_cut() || cluster.in_step(CUT).await?) },
        )
        .await?;
        let outcome = if proxy.is_cut() {
            fired += 1;
            "cut"
        } else {
            cluster.cut(CUT);
            let session = Bytes::since(proxy, before);
            whole_sessions += 1;
            whole_bytes += session.total();
            hub_sent.push((format!("cycle {cycle}"), session.down));
            "caught up first"
        };
        behind = if cluster.in_step(CUT).await? {
            0
        } else {
            behind + 1
        };
        println!(
            "cycle {cycle}: reconnected after {reconnected:?}, {outcome} at offset {offset}; \
             the hub lacks {behind} batches"
        );
    }
    ensure!(
        fired >= CYCLES / 3,
        "only {fired} of {CYCLES} cuts fired: they were not aimed within the transfer"
    );

    let before = Bytes::of(proxy);
    cluster.heal(CUT);
    cluster.wait_converged(CONVERGE).await?;
    let last = Bytes::since(proxy, before);
    if last.total() > 0 {
        whole_sessions += 1;
        whole_bytes += last.total();
        hub_sent.push(("the last session".to_string(), last.down));
    }

    // Every movement once at the hub, the same as at the district.
    let mut hub_mart = cluster.mart(cluster.hub_id()).await?;
    for district in [CUT, FRESH] {
        let ours = movements_of(&mut cluster.mart(district).await?, "").await?;
        let at_hub = movements_of(&mut hub_mart, district).await?;
        ensure!(ours.len() == SKUS.len() + BATCH * batches.len());
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &at_hub {
            *seen.entry(m.id.as_str()).or_default() += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        ensure!(
            twice.is_empty(),
            "{district}: held twice at the hub: {twice:?}"
        );
        ensure!(
            at_hub == ours,
            "{district}: the hub holds {} movements, the district {}",
            at_hub.len(),
            ours.len()
        );
        let stock = stock_of(&mut cluster.mart(district).await?, "").await?;
        let at_hub = stock_of(&mut hub_mart, district).await?;
        ensure!(
            stock == at_hub,
            "{district}: stock {stock:?}, at the hub {at_hub:?}"
        );
    }
    ensure!(
        stock_of(&mut cluster.mart(CUT).await?, "").await?
            == stock_of(&mut cluster.mart(FRESH).await?, "").await?,
        "the same sales left different stock"
    );

    let budget = whole_sessions * (setup + bundle_cost) + data + data / 4;
    println!(
        "{fired} of {CYCLES} cuts fired; {whole_sessions} uninterrupted sessions carried \
         {whole_bytes} bytes (budget {budget}); from the hub in each: {hub_sent:?}"
    );
    let too_much: Vec<_> = hub_sent
        .iter()
        .filter(|(_, down)| *down > empty.down + ACKS_SLACK)
        .collect();
    ensure!(
        too_much.is_empty(),
        "the hub sent the district back what the district itself wrote: bytes from the hub \
         in sessions no cut interrupted {too_much:?}, where an empty session takes {}",
        empty.down
    );
    ensure!(
        whole_bytes <= budget,
        "{whole_sessions} sessions no cut interrupted carried {whole_bytes} bytes: more than \
         their setups and bundle costs ({setup} + {bundle_cost} each) and 1.25x the {data} \
         bytes of sales data of one uninterrupted sync"
    );
    Ok(())
}
