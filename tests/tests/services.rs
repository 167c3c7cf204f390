//! The systemd unit in deploy/systemd: `systemd-analyze verify` accepts it (with the
//! binary path pointed at the one this test built), its hardening is there, and the
//! node it runs stops on SIGTERM cleanly within the unit's `TimeoutStopSec`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_tests::readme::require_tool;
use mart_tests::{mart_node_bin, NodeProcess};

fn unit_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/mart-node.service")
}

/// The value of `key=` in the unit, if set once.
fn setting(unit: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
}

#[test]
fn systemd_analyze_verifies_the_unit_and_its_hardening() -> Result<()> {
    require_tool("systemd-analyze")?;
    let unit = std::fs::read_to_string(unit_path()).context("read the unit")?;
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "mart-node"),
        ("User", "mart"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
    ] {
        ensure!(
            setting(&unit, key).as_deref() == Some(value),
            "{key}={value} missing from the unit"
        );
    }
    let dir = tempfile::tempdir()?;
    let local = dir.path().join("mart-node.service");
    let binary = mart_node_bin().display().to_string();
    std::fs::write(&local, unit.replace("/usr/local/bin/mart-node", &binary))?;
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .context("run systemd-analyze verify")?;
    let stderr = String::from_utf8_lossy(&verify.stderr);
    ensure!(
        verify.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        verify.status
    );
    // Offline, the exposure score of the sandbox: "OK" is below 4.
    let security = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=30"])
        .arg(&local)
        .output()
        .context("run systemd-analyze security")?;
    ensure!(
        security.status.success(),
        "systemd-analyze security: {}\n{}",
        String::from_utf8_lossy(&security.stdout),
        String::from_utf8_lossy(&security.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_node_cleanly_within_the_units_timeout() -> Result<()> {
    let unit = std::fs::read_to_string(unit_path())?;
    let timeout: u64 = setting(&unit, "TimeoutStopSec")
        .context("no TimeoutStopSec in the unit")?
        .parse()
        .context("TimeoutStopSec in seconds")?;
    let mut node = NodeProcess::start_default().await?;
    mart_tests::martctl::ok(
        &node.admin_socket(),
        &[
            "receive",
            "--sku",
            "TTU-MKP-060",
            "--qty",
            "2",
            "--unit-cost",
            "21000",
        ],
    )
    .await?;
    node.signal(nix::sys::signal::Signal::SIGTERM)?;
    let status = node.wait_exit(Duration::from_secs(timeout)).await?;
    ensure!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        node.stderr()
    );
    ensure!(
        !node.admin_socket().exists(),
        "the admin socket is removed at a clean stop"
    );
    Ok(())
}
