//! martctl in a shell script: with `--json` every error is one JSON object on stderr
//! (`code`, `message`, `retryable`), the exit code tells refused (1), bad usage (2),
//! permission (3), unavailable (4) and outcome unknown (5) apart, JSON output has no
//! sentinels (null, not -1 or ""), and `sync now` against a hub that refuses the
//! connection answers at once. Real binaries, a real node.

use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use mart_tests::martctl::{describe, run};
use mart_tests::{martctl_bin, NodeProcess, NodeSpec, TestCluster};
use nix::sys::signal::Signal;
use serde_json::Value;

const SKU: &str = "TTU-MKP-060";

/// Requires exit `code`, nothing on stdout, and one JSON error on stderr with
/// `error_code` and `retryable`; returns it.
fn json_error(
    args: &[&str],
    out: &Output,
    code: i32,
    error_code: &str,
    retryable: bool,
) -> Result<Value> {
    ensure!(out.status.code() == Some(code), "{}", describe(args, out));
    ensure!(out.stdout.is_empty(), "{}", describe(args, out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error: Value = serde_json::from_str(stderr.trim())
        .with_context(|| format!("stderr is not one JSON object: {}", describe(args, out)))?;
    ensure!(
        error["code"] == error_code
            && error["retryable"] == retryable
            && error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        describe(args, out)
    );
    Ok(error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_json_errors_tell_the_cases_apart() -> Result<()> {
    let mut node = NodeProcess::start_default().await?;
    let socket = node.admin_socket();

    let refused = ["sell", "--sku", SKU, "--qty", "5", "--json"];
    json_error(
        &refused,
        &run(&socket, &refused).await?,
        1,
        "failed_precondition",
        false,
    )?;

    let usage = ["stok", "--json"];
    json_error(&usage, &run(&socket, &usage).await?, 2, "usage", false)?;
    let bad_value = [
        "receive",
        "--sku",
        SKU,
        "--qty",
        "-1",
        "--unit-cost",
        "1",
        "--json",
    ];
    json_error(
        &bad_value,
        &run(&socket, &bad_value).await?,
        2,
        "usage",
        false,
    )?;

    // A frozen node: the write went out, no answer came.
    node.signal(Signal::SIGSTOP)?;
    let unknown = [
        "--timeout",
        "3",
        "receive",
        "--sku",
        SKU,
        "--qty",
        "1",
        "--unit-cost",
        "1000",
        "--request-id",
        "script-r1",
        "--json",
    ];
    let out = run(&socket, &unknown).await;
    node.signal(Signal::SIGCONT)?;
    let error = json_error(&unknown, &out?, 5, "deadline_exceeded", true)?;
    ensure!(
        error["hint"]
            .as_str()
            .is_some_and(|h| h.contains("--request-id script-r1")),
        "{error}"
    );

    // Gone: nothing was sent.
    node.kill_9()?;
    let gone = ["stock", "--json"];
    json_error(&gone, &run(&socket, &gone).await?, 4, "unavailable", true)?;
    // Without --json the same failure is text, with the same exit code.
    let out = run(&socket, &["stock"]).await?;
    ensure!(
        out.status.code() == Some(4),
        "{}",
        describe(&["stock"], &out)
    );
    ensure!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot connect"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_codes_are_in_the_help() -> Result<()> {
    let out = std::process::Command::new(martctl_bin())
        .arg("--help")
        .output()?;
    let help = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "{help}");
    for line in [
        "Exit codes:",
        "2  bad usage",
        "3  permission",
        "4  unavailable",
        "5  outcome unknown",
    ] {
        ensure!(
            help.contains(line),
            "no {line:?} in martctl --help:\n{help}"
        );
    }
    Ok(())
}

/// A district certificate may not run store operations at the hub: permission, 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_without_the_right_certificate_exits_3() -> Result<()> {
    let cluster = TestCluster::builder().district("ttu").start().await?;
    let tls = cluster.tls_of("ttu");
    let args = [
        "--node".to_string(),
        cluster.hub_url(),
        "--ca".into(),
        tls.ca.display().to_string(),
        "--cert".into(),
        tls.cert.display().to_string(),
        "--key".into(),
        tls.key.display().to_string(),
        "stock".into(),
        "--json".into(),
    ];
    let out = tokio::process::Command::new(martctl_bin())
        .args(&args)
        .env_remove("MARTCTL_NODE")
        .kill_on_drop(true)
        .output()
        .await?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json_error(&args, &out, 3, "permission_denied", false)?;
    Ok(())
}

/// `sync status --json` and `sync now` of a district whose hub refuses connections:
/// null where there is nothing, the whole error, and an answer within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_against_a_refused_connection_fails_fast_and_says_it_in_json() -> Result<()> {
    // Nothing listens on the hub's port: every dial is refused.
    let port = mart_tests::cluster::free_local_addr()?.port();
    let mut spec = NodeSpec::district("ttu", "kupang").insecure();
    spec = spec.with_sync(&format!("http://127.0.0.1:{port}"), 30);
    let node = NodeProcess::start(spec).await?;
    let socket = node.admin_socket();
    let asked = Instant::now();
    let args = ["sync", "now", "--timeout", "60", "--json"];
    let out = run(&socket, &args).await?;
    let took = asked.elapsed();
    ensure!(out.status.code() == Some(1), "{}", describe(&args, &out));
    ensure!(
        took < Duration::from_secs(30),
        "sync now waited {took:?} for a hub that refuses connections"
    );
    let view: Value = serde_json::from_slice(&out.stdout)?;
    ensure!(view["in_sync"] == false, "{view}");

    let status = mart_tests::martctl::list(&socket, &["sync", "status"]).await?;
    let hub = status.first().context("no peer in sync status")?;
    ensure!(
        hub["connected"] == false && hub["last_success_unix_ms"].is_null(),
        "{hub}"
    );
    ensure!(
        hub["last_dial_unix_ms"].as_i64().is_some_and(|t| t > 0),
        "{hub}"
    );
    ensure!(
        hub["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused") || e.contains("Connection refused")),
        "{hub}"
    );
    ensure!(
        hub["protocol"].is_null() && hub["clock_offset_ms"].is_null(),
        "{hub}"
    );
    let text = hub.to_string();
    ensure!(
        !text.contains(":-1") && !text.contains(":\"\""),
        "a sentinel in {text}"
    );
    let error = hub["last_error"].as_str().unwrap_or_default();
    ensure!(
        !error.contains("tcp connect error: tcp connect error"),
        "a doubled cause: {error}"
    );
    Ok(())
}
