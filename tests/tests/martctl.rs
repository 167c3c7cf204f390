//! The real `martctl` binary against a real node over its admin socket: receipts,
//! sales and stock as an operator runs them, a refusal that exits non-zero with the
//! node's own message, a retry with the same request id that is not counted twice,
//! and a node that is gone, which must never look like success.

use std::process::Output;

use anyhow::{ensure, Context, Result};
use mart_tests::ops::{movements, on_hand, sale};
use mart_tests::NodeProcess;
use serde_json::Value;

const SKU: &str = "TTU-MKP-060";

/// Runs `martctl --node unix:<socket> <args>`.
async fn martctl(node: &NodeProcess, args: &[&str]) -> Result<Output> {
    mart_tests::martctl::run(&node.admin_socket(), args).await
}

/// Runs martctl and requires exit 0; returns stdout.
async fn martctl_ok(node: &NodeProcess, args: &[&str]) -> Result<String> {
    mart_tests::martctl::ok(&node.admin_socket(), args).await
}

/// `stock --sku S --json`: the quantity of that SKU.
async fn stock_of(node: &NodeProcess, sku: &str) -> Result<i64> {
    let stdout = martctl_ok(node, &["stock", "--sku", sku, "--json"]).await?;
    let levels: Value = serde_json::from_str(&stdout)
        .with_context(|| format!("stock --json printed {stdout:?}"))?;
    let levels = levels
        .as_array()
        .with_context(|| format!("stock --json is not an array: {stdout}"))?;
    ensure!(levels.len() == 1, "stock --sku {sku} listed {levels:?}");
    ensure!(levels[0]["sku"] == sku, "{levels:?}");
    levels[0]["quantity"]
        .as_i64()
        .with_context(|| format!("no integer quantity in {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_sell_and_stock() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    martctl_ok(
        &node,
        &[
            "receive",
            "--sku",
            SKU,
            "--qty",
            "10",
            "--unit-cost",
            "30.000",
        ],
    )
    .await?;
    ensure!(stock_of(&node, SKU).await? == 10);
    martctl_ok(&node, &["sell", "--sku", SKU, "--qty", "3"]).await?;
    ensure!(stock_of(&node, SKU).await? == 7);

    // What martctl reported is what the node stored.
    let mut mart = node.mart().await?;
    let listed = movements(&mut mart).await?;
    let summary: Vec<(&str, &str, i64, i64)> = listed
        .iter()
        .map(|m| (m.kind.as_str(), m.sku.as_str(), m.delta, m.unit_rupiah))
        .collect();
    ensure!(
        summary == [("receipt", SKU, 10, 30_000), ("sale", SKU, -3, 35_000)],
        "ledger after receive and sell: {listed:?}"
    );
    ensure!(on_hand(&mut mart, SKU).await? == 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_beyond_stock_exits_non_zero_with_the_node_message() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    martctl_ok(
        &node,
        &[
            "receive",
            "--sku",
            SKU,
            "--qty",
            "5",
            "--unit-cost",
            "30000",
        ],
    )
    .await?;

    // The node's own words for this refusal (a refused sale stores nothing).
    let mut mart = node.mart().await?;
    let refusal = mart
        .record_sale(sale("probe", SKU, 6))
        .await
        .expect_err("a sale of 6 out of 5 was accepted");
    let message = refusal.message().to_string();
    ensure!(message.contains(SKU), "{refusal:?}");

    let out = martctl(&node, &["sell", "--sku", SKU, "--qty", "6"]).await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1),
        "sell beyond stock exited {} (stderr {stderr})",
        out.status
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .with_context(|| format!("no error line on stderr: {stderr}"))?;
    let code = line
        .strip_prefix("error: ")
        .and_then(|rest| rest.strip_suffix(&message))
        .and_then(|code| code.strip_suffix(": "))
        .with_context(|| format!("{line:?} is not `error: <code>: {message}`"))?;
    ensure!(
        code.to_lowercase().replace('_', " ") == "failed precondition",
        "{line:?} names code {code:?}"
    );
    ensure!(
        stock_of(&node, SKU).await? == 5,
        "a refused sale changed the stock"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_sale_with_the_same_request_id_counts_once() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    martctl_ok(
        &node,
        &[
            "receive",
            "--sku",
            SKU,
            "--qty",
            "5",
            "--unit-cost",
            "30000",
        ],
    )
    .await?;
    let sell = [
        "sell",
        "--sku",
        SKU,
        "--qty",
        "2",
        "--request-id",
        "kasir-1-0001",
        "--json",
    ];
    let first: Value = serde_json::from_str(&martctl_ok(&node, &sell).await?)?;
    let again: Value = serde_json::from_str(&martctl_ok(&node, &sell).await?)?;
    ensure!(
        first["duplicate"] == false && first["movement_id"] == "kasir-1-0001",
        "{first}"
    );
    ensure!(
        again["duplicate"] == true && again["movement_id"] == "kasir-1-0001",
        "{again}"
    );
    ensure!(stock_of(&node, SKU).await? == 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_is_gone_never_looks_like_success() -> Result<()> {
    let mut node = NodeProcess::start_default().await?;
    martctl_ok(
        &node,
        &[
            "receive",
            "--sku",
            SKU,
            "--qty",
            "5",
            "--unit-cost",
            "30000",
        ],
    )
    .await?;
    node.kill_9()?;
    let out = martctl(
        &node,
        &["--timeout", "3", "sell", "--sku", SKU, "--qty", "1"],
    )
    .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 4: unavailable (martctl --help lists the exit codes).
    ensure!(
        out.status.code() == Some(4),
        "sell to a dead node exited {} (stderr {stderr})",
        out.status
    );
    ensure!(stderr.starts_with("error: "), "{stderr}");
    Ok(())
}
