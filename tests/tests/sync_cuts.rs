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
//! A second test walks the cut through one catch-up (issue 12): each session is cut
//! a step further into it than the one before, so a cut lands inside every bundle
//! in turn, until a session catches up before its cut; every movement is then at the
//! hub once.
//!
//! The seed is printed; `MART_TEST_SEED=<seed>` replays a run.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use mart_tests::link::{exactly_once_at_hub, session_setup, Bytes};
use mart_tests::ops::{receive, sell_all, stock_of};
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

/// Heals [`CUT`]'s link to be cut again after `offset` more bytes, waits until the
/// district reconnected and then until the cut fired or the hub caught up first;
/// true if the cut fired. `what` names the step in a timeout.
async fn heal_and_cut_after(cluster: &TestCluster, offset: u64, what: &str) -> Result<bool> {
    let proxy = cluster.proxy(CUT);
    let connections = proxy.connections();
    cluster.heal(CUT);
    proxy.cut_after(offset);
    wait_until(
        &format!("{what}: {CUT} reconnects after the heal"),
        RECONNECT,
        || {
            let reconnected = proxy.connections() > connections;
            async move { Ok(reconnected) }
        },
    )
    .await?;
    wait_until(
        &format!("{what}: the cut after {offset} bytes fires or the hub caught up"),
        CONVERGE,
        || async { Ok(proxy.is_cut() || cluster.in_step(CUT).await?) },
    )
    .await?;
    Ok(proxy.is_cut())
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
    let fresh_setup = session_setup(&cluster, FRESH, CONVERGE).await?.total();
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
    let empty = session_setup(&cluster, CUT, CONVERGE).await?;
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
        let healed = Instant::now();
        let cut = heal_and_cut_after(&cluster, offset, &format!("cycle {cycle}")).await?;
        let reconnected = healed.elapsed();
        let outcome = if cut {
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
    for district in [CUT, FRESH] {
        exactly_once_at_hub(&cluster, district, SKUS.len() + BATCH * batches.len()).await?;
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

/// Sales of the catch-up a walking cut goes through, and the walk's step: the cut
/// lands a step further into each session than into the one before, so it falls
/// inside every bundle (small adaptive bundles and one big bundle alike) in turn.
const WALK_SALES: usize = 3_000;
const WALK_STEP: u64 = 4 * 1024;
/// Sessions the walk may take before it must have caught up: more than the bytes of
/// the catch-up in steps, even if every session resent all of it.
const WALK_SESSIONS: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_walking_through_a_catch_up_hits_every_bundle_and_applies_nothing_twice() -> Result<()>
{
    let seed = test_seed();
    println!("seed {seed} (replay with MART_TEST_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let cluster = TestCluster::builder()
        .hub("kupang")
        .district(CUT)
        .start()
        .await?;
    let mut mart = cluster.mart(CUT).await?;
    for (i, sku) in SKUS.iter().enumerate() {
        receive(&mut mart, &format!("rcv-{i}"), sku, 100_000).await?;
    }
    cluster.wait_converged(CONVERGE).await?;
    let setup = session_setup(&cluster, CUT, CONVERGE).await?.total();

    cluster.cut(CUT);
    let sales = (0..WALK_SALES)
        .map(|i| {
            let sku = SKUS[rng.random_range(0..SKUS.len())];
            (format!("w{i:05}"), sku.to_string(), rng.random_range(1..=3))
        })
        .collect();
    sell_all(&mart, sales, 8).await?;

    let mut cuts = 0;
    for session in 1..=WALK_SESSIONS {
        let offset = setup + session * WALK_STEP;
        if !heal_and_cut_after(&cluster, offset, &format!("session {session}")).await? {
            println!("session {session}: caught up before the cut at {offset} bytes");
            break;
        }
        cuts += 1;
        println!("session {session}: cut at {offset} bytes");
    }
    ensure!(
        cuts >= 3,
        "only {cuts} cuts fired: the walk was not inside the catch-up"
    );
    cluster.heal(CUT);
    cluster.wait_converged(CONVERGE).await?;
    exactly_once_at_hub(&cluster, CUT, SKUS.len() + WALK_SALES).await
}
