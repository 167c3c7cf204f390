//! `mart-node demo`, the README's run command, end to end: it tells the whole story
//! (certificates, three nodes, TTU cut off and selling, the hub showing TTU stale, the
//! link back, convergence measured), leaves nodes that martctl can explore and that
//! agree, stops them all on Ctrl-C with exit 0, and never replaces a directory it did
//! not make.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mart_tests::{mart_node_bin, martctl_bin};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The line after which the demo's nodes wait for the operator.
const READY: &str = "Ctrl-C stops the demo";

fn martctl(socket: &Path, args: &[&str]) -> Result<Value> {
    let out = std::process::Command::new(martctl_bin())
        .arg("--node")
        .arg(format!("unix:{}", socket.display()))
        .arg("--json")
        .args(args)
        .output()
        .context("run martctl")?;
    ensure!(
        out.status.success(),
        "martctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tells_the_story_leaves_nodes_in_sync_and_stops_on_ctrl_c() -> Result<()> {
    let work = tempfile::tempdir()?;
    let mut demo = Command::new(mart_node_bin())
        .args(["demo", "--offline-sales", "60"])
        .current_dir(work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(demo.stdout.take().context("stdout")?).lines();
    let mut story = String::new();
    let told = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            story.push_str(&line);
            story.push('\n');
            if line.contains(READY) {
                return Ok(true);
            }
        }
        Ok::<_, anyhow::Error>(false)
    })
    .await;
    if !matches!(told, Ok(Ok(true))) {
        let mut err = String::new();
        if let Some(mut stderr) = demo.stderr.take() {
            tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err).await?;
        }
        bail!("the demo did not reach its end ({told:?}):\n{story}\nstderr:\n{err}");
    }
    for part in [
        "[1] certificates",
        "[4] ttu offline",
        "60 sales",
        "is refused: FailedPrecondition",
        "the hub shows ttu as STALE: not connected",
        "[5] link back",
        "the hub holds all 60 offline sales",
        " --node unix:mart-demo/kupang/data/admin.sock peers",
    ] {
        ensure!(story.contains(part), "the story lacks {part:?}:\n{story}");
    }

    let root = work.path().join("mart-demo");
    let hub = root.join("kupang/data/admin.sock");
    let ttu = root.join("ttu/data/admin.sock");
    for config in ["kupang", "ttu", "sikka"] {
        let checked = std::process::Command::new(mart_node_bin())
            .arg("check-config")
            .arg(format!("mart-demo/{config}/node.toml"))
            .current_dir(work.path())
            .output()?;
        ensure!(checked.status.success(), "{config}: {checked:?}");
    }
    let at_hub = martctl(&hub, &["stock", "--outlet", "ttu"])?;
    let at_ttu = martctl(&ttu, &["stock"])?;
    ensure!(at_hub == at_ttu, "hub {at_hub} ttu {at_ttu}");
    let sold: i64 = martctl(&ttu, &["movements", "--limit", "1000"])?
        .as_array()
        .context("movements")?
        .iter()
        .filter(|m| m["kind"] == "sale")
        .count() as i64;
    ensure!(sold == 60, "ttu holds {sold} sales, the demo made 60");
    let peers = martctl(&hub, &["peers"])?;
    let names: Vec<&str> = peers
        .as_array()
        .context("peers")?
        .iter()
        .filter_map(|p| p["peer_id"].as_str())
        .collect();
    ensure!(names == ["sikka", "ttu"], "{peers}");

    let pid = Pid::from_raw(demo.id().context("demo pid")? as i32);
    kill(pid, Signal::SIGINT)?;
    let status = tokio::time::timeout(Duration::from_secs(30), demo.wait())
        .await
        .context("the demo did not stop within 30 s of Ctrl-C")??;
    ensure!(status.success(), "the demo exited with {status}");
    for socket in [&hub, &ttu] {
        ensure!(!socket.exists(), "{} is left behind", socket.display());
    }
    Ok(())
}

#[test]
fn demo_never_replaces_a_directory_it_did_not_make() -> Result<()> {
    let work = tempfile::tempdir()?;
    let precious = work.path().join("mart-demo");
    std::fs::create_dir(&precious)?;
    std::fs::write(precious.join("ledger.csv"), "keep me")?;
    let out = std::process::Command::new(mart_node_bin())
        .arg("demo")
        .current_dir(work.path())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "the demo ran over {precious:?}");
    ensure!(
        stderr.contains("was not made by mart-node demo"),
        "{stderr}"
    );
    ensure!(std::fs::read_to_string(precious.join("ledger.csv"))? == "keep me");
    Ok(())
}
