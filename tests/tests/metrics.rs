//! `/metrics` of a real hub and a real district over mutual TLS: the output passes
//! `promtool check metrics`, its figures move with a sale and a refusal, and every
//! metric the shipped alert rules and Grafana dashboard read exists in it. The alert
//! rules pass `promtool check rules`; a metrics listener off loopback is refused.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_tests::ops::{receive, sell};
use mart_tests::scrape::{metrics, names_in_promql, sample, sample_names};
use mart_tests::{tools, wait_until, TestCluster};

/// How long a change may take to reach the hub on a loaded machine.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// Every `expr` string anywhere in a JSON value (the dashboard's panel targets).
fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_and_district_metrics_pass_promtool_and_move_with_a_sale() -> Result<()> {
    tools::require("promtool")?;
    let cluster = TestCluster::builder()
        .district("ttu")
        .resync_secs(2)
        .metrics()
        .start()
        .await?;
    let hub_addr = cluster.hub().metrics_addr().context("hub metrics")?;
    let ttu_addr = cluster.node("ttu").metrics_addr().context("ttu metrics")?;
    cluster.wait_converged(SYNC_TIMEOUT).await?;
    let received = |text: &str| {
        sample(
            text,
            "nttmart_peer_changes_received_total",
            &[("peer", "ttu")],
        )
        .unwrap_or(0.0)
    };
    let before = received(&metrics(hub_addr).await?);

    let mut mart = cluster.mart("ttu").await?;
    receive(&mut mart, "rcv-metrics", "TTU-MKP-060", 10).await?;
    sell(&mut mart, "sale-metrics", "TTU-MKP-060", 1).await?;
    wait_until(
        "the hub's changes received from ttu rise",
        SYNC_TIMEOUT,
        || async { Ok(received(&metrics(hub_addr).await?) >= before + 2.0) },
    )
    .await?;
    // A refusal at the hub: a sale of a SKU nobody has.
    let refused = cluster
        .mart(cluster.hub_id())
        .await?
        .record_sale(mart_tests::ops::sale("sale-nothing", "NO-SUCH-SKU", 1))
        .await;
    ensure!(refused.is_err(), "a sale of an unknown SKU was accepted");

    let hub = metrics(hub_addr).await?;
    let ttu = metrics(ttu_addr).await?;
    for (node, text) in [("hub", &hub), ("ttu", &ttu)] {
        tools::run("promtool", &["check", "metrics"], Some(text))
            .await
            .with_context(|| format!("promtool on the {node}'s /metrics:\n{text}"))?;
    }
    let refusals = sample(
        &hub,
        "nttmart_grpc_refusals_total",
        &[("rpc", "MartService/RecordSale")],
    );
    ensure!(
        refusals >= Some(1.0),
        "no refusal counted at the hub:\n{hub}"
    );
    ensure!(
        sample(&ttu, "nttmart_durable_writes_total", &[]) >= Some(2.0),
        "the district counted fewer than 2 durable writes:\n{ttu}"
    );
    ensure!(
        sample(&ttu, "nttmart_peer_connected", &[("peer", "kupang")]) == Some(1.0),
        "the district does not show its hub connected:\n{ttu}"
    );
    ensure!(
        sample(&hub, "nttmart_sync_sessions_opened_total", &[]) >= Some(1.0),
        "no session counted at the hub:\n{hub}"
    );
    ensure!(
        sample(
            &hub,
            "nttmart_build_info",
            &[("role", "hub"), ("node", "kupang")]
        ) == Some(1.0),
        "no build info:\n{hub}"
    );

    // Every metric the shipped dashboard and alert rules read exists at the hub.
    let live = sample_names(&hub);
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo_file(
        "deploy/grafana/hub.json",
    ))?)
    .context("deploy/grafana/hub.json is not valid JSON")?;
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    ensure!(
        queries.len() >= 10,
        "the dashboard has {} queries",
        queries.len()
    );
    let rules = std::fs::read_to_string(repo_file("deploy/prometheus/alerts.yml"))?;
    let read: BTreeSet<String> = queries
        .iter()
        .map(String::as_str)
        .chain([rules.as_str()])
        .flat_map(names_in_promql)
        .collect();
    let missing: Vec<_> = read.iter().filter(|n| !live.contains(*n)).collect();
    ensure!(
        missing.is_empty(),
        "the dashboard or the alert rules read metrics the hub does not export: {missing:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_rules_pass_promtool_check_rules() -> Result<()> {
    let rules = repo_file("deploy/prometheus/alerts.yml");
    let out = tools::run(
        "promtool",
        &["check", "rules", &rules.display().to_string()],
        None,
    )
    .await?;
    ensure!(out.contains("SUCCESS"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_refuses_a_metrics_listener_off_loopback() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("node.toml");
    let text =
        mart_node::config::DEFAULT_CONFIG.to_string() + "\n[metrics]\nlisten = \"0.0.0.0:9464\"\n";
    std::fs::write(&config, text)?;
    let out = tokio::process::Command::new(mart_tests::mart_node_bin())
        .arg("check-config")
        .arg(&config)
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(2)
            && stderr.contains("metrics.listen")
            && stderr.contains("loopback"),
        "check-config: {} {stderr}",
        out.status
    );
    Ok(())
}
