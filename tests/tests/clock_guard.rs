//! Issue 10, item 5 (clocks), against real processes over real mutual TLS:
//!
//! - a district whose clock jumps to 2099 (its certificate still valid) books its
//!   sales into the open period: nothing is sealed, no `ledger/ttu/2099-12` is opened,
//!   `martctl status` says why and how to fix it, and the hub shows the district's
//!   clock offset as wrong in `martctl peers` and `martctl districts`;
//! - back on the right clock, the district sells on in the same period, nothing was
//!   archived, and the hub stops warning;
//! - an operator who vouches for the clock (`mart-node run --accept-clock`) lets it
//!   open the period.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_proto::v1::{DistrictSummariesRequest, StatusRequest};
use mart_tests::clock::{now_ms, wita_ms};
use mart_tests::cluster::{ledger_periods, peer_info};
use mart_tests::ops::{open_ledger, receive, sell};
use mart_tests::pki::{Issue, Role};
use mart_tests::{martctl, wait_until, TestCluster};

const HUB: &str = "kupang";
const TTU: &str = "ttu";
const SKU: &str = "TTU-MKP-060";
const CONVERGE: Duration = Duration::from_secs(60);

/// Gives TTU a certificate valid until 2100, so its node starts with its clock in 2099.
fn certificate_valid_through_2099(cluster: &TestCluster) -> Result<()> {
    let long = cluster.pki().issue_with(
        TTU,
        Role::District,
        Issue {
            not_after: Some("2100-01-01"),
            ..Issue::default()
        },
    )?;
    let files = cluster.tls_of(TTU);
    std::fs::copy(&long.cert, &files.cert).context("replace ttu's certificate")?;
    std::fs::copy(&long.key, &files.key).context("replace ttu's key")?;
    Ok(())
}

/// Whether the hub shows TTU's clock as wrong (`want`) in ListPeers and in its
/// district summaries.
async fn hub_shows_clock_wrong(cluster: &TestCluster, want: bool) -> Result<bool> {
    let peer = peer_info(&mut cluster.admin(HUB).await?, TTU).await?;
    let summaries = cluster
        .hub_service(HUB)
        .await?
        .district_summaries(DistrictSummariesRequest {})
        .await?
        .into_inner()
        .districts;
    let summary = summaries
        .iter()
        .find(|d| d.district == TTU)
        .and_then(|d| d.freshness.clone())
        .unwrap_or_default();
    Ok(peer.clock_seen_unix_ms > 0
        && peer.clock_wrong == want
        && summary.clock_seen_unix_ms > 0
        && summary.clock_wrong == want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_clock_in_2099_opens_no_period_and_the_hub_shows_it() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub(HUB)
        .district(TTU)
        .start()
        .await?;
    certificate_valid_through_2099(&cluster)?;
    receive(&mut cluster.mart(TTU).await?, "rcv-1", SKU, 20).await?;
    cluster.wait_converged(CONVERGE).await?;
    let open = open_ledger(&mut cluster.admin(TTU).await?).await?;
    let periods_before = ledger_periods(&mut cluster.admin(TTU).await?, TTU).await?;

    // The clock jumps to 10 December 2099.
    cluster.set_clock_offset_ms(TTU, wita_ms(2099, 12, 10, 10) - now_ms());
    cluster.restart(TTU).await?;
    let ack = sell(&mut cluster.mart(TTU).await?, "sale-2099", SKU, 1).await?;
    ensure!(
        ack.document_id == open,
        "a sale at 2099 went to {} instead of the open period {open}",
        ack.document_id
    );
    let status = cluster
        .admin(TTU)
        .await?
        .status(StatusRequest {})
        .await?
        .into_inner();
    ensure!(
        open == format!("ledger/{TTU}/{}", status.open_period),
        "the open period moved to {}",
        status.open_period
    );
    ensure!(
        status.clock_warning.contains("--accept-clock"),
        "status says nothing useful about the clock: {:?}",
        status.clock_warning
    );
    let shown = martctl::ok(&cluster.node(TTU).admin_socket(), &["status"]).await?;
    ensure!(
        shown.contains("WARNING: the clock"),
        "martctl status: {shown}"
    );

    // The hub sees the district's clock 73 years ahead.
    wait_until("the hub shows ttu's clock wrong", CONVERGE, || {
        hub_shows_clock_wrong(&cluster, true)
    })
    .await?;
    let hub_socket = cluster.node(HUB).admin_socket();
    for command in ["peers", "districts"] {
        let shown = martctl::ok(&hub_socket, &[command]).await?;
        let line = shown.lines().find(|l| l.starts_with(TTU)).unwrap_or("");
        ensure!(
            line.contains("CLOCK WRONG"),
            "martctl {command} at the hub: {shown}"
        );
    }

    // Back on the right clock: the same period, nothing sealed or archived.
    cluster.set_clock_offset_ms(TTU, 0);
    cluster.restart(TTU).await?;
    let ack = sell(&mut cluster.mart(TTU).await?, "sale-back", SKU, 1).await?;
    ensure!(
        ack.document_id == open,
        "back on time, sold into {}",
        ack.document_id
    );
    ensure!(
        ack.quantity_on_hand == 18,
        "on hand {}",
        ack.quantity_on_hand
    );
    let periods_after = ledger_periods(&mut cluster.admin(TTU).await?, TTU).await?;
    ensure!(
        periods_after == periods_before,
        "periods changed: {periods_before:?} -> {periods_after:?}"
    );
    cluster.wait_converged(CONVERGE).await?;
    wait_until("the hub stops warning about ttu's clock", CONVERGE, || {
        hub_shows_clock_wrong(&cluster, false)
    })
    .await?;
    let at_hub = ledger_periods(&mut cluster.admin(HUB).await?, TTU).await?;
    ensure!(
        at_hub == periods_before,
        "the hub holds ttu periods {at_hub:?}, expected {periods_before:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_who_vouches_for_the_clock_lets_it_open_the_period() -> Result<()> {
    let mut cluster = TestCluster::builder()
        .hub(HUB)
        .district(TTU)
        .start()
        .await?;
    receive(&mut cluster.mart(TTU).await?, "rcv-1", SKU, 20).await?;
    cluster.wait_converged(CONVERGE).await?;
    let open = open_ledger(&mut cluster.admin(TTU).await?).await?;

    // Sixty days ahead of the hub: held back until the operator says it is right.
    let (year, month) = mart_tests::clock::wita_month_after(now_ms(), 2);
    cluster.set_clock_offset_ms(TTU, wita_ms(year, month, 10, 10) - now_ms());
    cluster.restart(TTU).await?;
    let ack = sell(&mut cluster.mart(TTU).await?, "sale-1", SKU, 1).await?;
    ensure!(ack.document_id == open, "sold into {}", ack.document_id);

    cluster.set_accept_clock(TTU, true);
    cluster.restart(TTU).await?;
    let ack = sell(&mut cluster.mart(TTU).await?, "sale-2", SKU, 1).await?;
    let expected = format!("ledger/{TTU}/{year:04}-{month:02}");
    ensure!(
        ack.document_id == expected,
        "with --accept-clock sold into {}, expected {expected}",
        ack.document_id
    );
    ensure!(
        ack.quantity_on_hand == 18,
        "on hand {}",
        ack.quantity_on_hand
    );
    Ok(())
}
