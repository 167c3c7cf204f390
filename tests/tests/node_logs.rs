//! The lines a real node writes, as an operator greps them: one line when a sync
//! session starts and one when it ends at both ends (peer, duration, changes and
//! bytes each way, the reason), a district that shuts down cleanly is no WARN at the
//! hub, one audit line per write RPC (caller, RPC, request id, outcome) and none for
//! a read, and `[log] format = "json"` writes one JSON object per line.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_tests::ops::receive;
use mart_tests::{wait_until, NodeProcess, NodeSpec, TestCluster};
use serde_json::Value;

const SKU: &str = "TTU-MKP-060";
const WAIT: Duration = Duration::from_secs(90);

/// The lines of `log` that contain every one of `parts`.
fn lines_with<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}

/// The integer value of `field=N` in a text log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_session_is_logged_once_at_its_start_and_once_at_its_end() -> Result<()> {
    let mut cluster = TestCluster::builder().district("ttu").start().await?;
    let mut ttu = cluster.mart("ttu").await?;
    receive(&mut ttu, "log-r1", SKU, 12).await?;
    let hub = cluster.hub_id().to_string();
    let started_at_hub = || {
        lines_with_owned(
            &cluster.hub().stderr(),
            &["sync session started", "peer=ttu"],
        )
    };
    wait_until("the hub logs ttu's session start", WAIT, || async {
        Ok(!started_at_hub().is_empty())
    })
    .await?;
    let synced = cluster.sync_now("ttu", 60).await?;
    ensure!(synced.in_sync, "{synced:?}");

    cluster.stop("ttu").await?;
    let district_log = cluster.node("ttu").stderr();
    let peer_hub = format!("peer={hub}");
    let started = lines_with(&district_log, &["sync session started", &peer_hub]);
    let ended = lines_with(&district_log, &["sync session ended", &peer_hub]);
    ensure!(
        started.len() == 1 && ended.len() == 1,
        "one start and one end line at the district:\n{district_log}"
    );
    let end = ended[0];
    ensure!(
        end.contains(" INFO ") && end.contains("reason=\"stopped\""),
        "{end}"
    );
    for name in ["duration_ms", "changes_received", "bytes_received"] {
        ensure!(field(end, name).is_some(), "no {name} in {end}");
    }
    ensure!(
        field(end, "changes_sent").is_some_and(|n| n >= 1)
            && field(end, "bytes_sent").is_some_and(|n| n > 0),
        "the receipt went to the hub in this session: {end}"
    );

    // The hub: the district went away on purpose, which is no warning.
    wait_until("the hub logs ttu's session end", WAIT, || async {
        Ok(
            !lines_with_owned(&cluster.hub().stderr(), &["sync session ended", "peer=ttu"])
                .is_empty(),
        )
    })
    .await?;
    let hub_log = cluster.hub().stderr();
    let hub_end = lines_with(&hub_log, &["sync session ended", "peer=ttu"]);
    ensure!(hub_end.len() == 1, "{hub_log}");
    ensure!(
        hub_end[0].contains(" INFO ") && hub_end[0].contains("reason=\"peer_closed\""),
        "a clean district shutdown at the hub: {}",
        hub_end[0]
    );
    ensure!(
        field(hub_end[0], "changes_received").is_some_and(|n| n >= 1),
        "{}",
        hub_end[0]
    );
    for line in hub_log.lines().filter(|l| l.contains(" WARN ")) {
        ensure!(!line.contains("ttu"), "a WARN about ttu at the hub: {line}");
    }
    ensure!(
        !hub_log.contains("h2 protocol error") && !district_log.contains("h2 protocol error"),
        "transport jargon in a log"
    );
    Ok(())
}

fn lines_with_owned(log: &str, parts: &[&str]) -> Vec<String> {
    lines_with(log, parts)
        .into_iter()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_rpc_gets_one_audit_line_in_json() -> Result<()> {
    let mut node = NodeProcess::new(NodeSpec::default())?;
    let mut config = std::fs::read_to_string(node.config_path())?;
    config.push_str("\n[log]\nformat = \"json\"\n");
    std::fs::write(node.config_path(), config)?;
    node.launch()?;
    node.wait_ready().await?;
    let mut mart = node.mart().await?;
    receive(&mut mart, "audit-r1", SKU, 3).await?;
    let refused = mart_tests::martctl::run(
        &node.admin_socket(),
        &[
            "sell",
            "--sku",
            SKU,
            "--qty",
            "50",
            "--request-id",
            "audit-s1",
        ],
    )
    .await?;
    ensure!(
        !refused.status.success(),
        "a sale beyond stock must be refused"
    );
    mart_tests::martctl::ok(&node.admin_socket(), &["stock"]).await?;

    let audit = || -> Result<Vec<Value>> {
        let mut lines = Vec::new();
        for line in node.stderr().lines() {
            let event: Value = serde_json::from_str(line)
                .with_context(|| format!("a log line that is not JSON: {line}"))?;
            if event["target"] == "mart_node::audit" {
                lines.push(event["fields"].clone());
            }
        }
        Ok(lines)
    };
    wait_until("two audit lines", WAIT, || async {
        Ok(audit()?.len() >= 2)
    })
    .await?;
    let lines = audit()?;
    ensure!(
        lines.len() == 2,
        "one line per write, none for reads: {lines:#?}"
    );
    let expect = [
        ("nttmart.v1.MartService/RecordReceipt", "audit-r1", "ok"),
        (
            "nttmart.v1.MartService/RecordSale",
            "audit-s1",
            "failed_precondition",
        ),
    ];
    for (line, (rpc, request_id, outcome)) in lines.iter().zip(expect) {
        ensure!(
            line["rpc"] == rpc && line["request_id"] == request_id && line["outcome"] == outcome,
            "{line}"
        );
        ensure!(
            line["caller"]
                .as_str()
                .is_some_and(|c| c.contains("admin socket")),
            "{line}"
        );
        ensure!(line["message"] == "write", "{line}");
        let text = line.to_string();
        ensure!(
            !text.contains("20000") && !text.contains("\"qty\""),
            "content logged: {text}"
        );
    }
    Ok(())
}
