//! The README, as written: every martctl line of its tour, and of its hub and
//! district sections, run in order by `sh` against fresh nodes, so the README cannot
//! drift from what the binaries do. A line must exit 0, or the code its comment
//! names (`# refused: ..., exit 1`).
//!
//! What the test does for the reader: it builds the binaries (so `cargo build` lines
//! are skipped and `martctl` is the built one), starts each `target/release/mart-node
//! run ... &` itself (so it can stop it), and gives the shipped configs free ports
//! instead of 7440 and 7444 (the same ports in the README's lines), so that it can run
//! beside other tests. Nothing else of a line is changed.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use mart_tests::cluster::free_local_addr;
use mart_tests::readme::{blocks, Block};
use mart_tests::{mart_node_bin, martctl_bin, wait_until, NodeProcess};
use tokio::process::{Child, Command};

/// Longest a README line may take (`sync now` waits up to 30 s by default).
const LINE_TIMEOUT: Duration = Duration::from_secs(180);
const READY: Duration = Duration::from_secs(120);

/// A shell in the README's working directory, remembering its `NAME=...` lines.
struct Readme {
    dir: PathBuf,
    vars: Vec<String>,
    /// `(from, to)` applied to every line: the shipped ports and the test's.
    ports: Vec<(String, String)>,
    nodes: Vec<(String, Child)>,
}

impl Readme {
    fn new(dir: &Path) -> Self {
        Readme {
            dir: dir.to_path_buf(),
            vars: Vec::new(),
            ports: Vec::new(),
            nodes: Vec::new(),
        }
    }

    fn localize(&self, line: &str) -> String {
        self.ports
            .iter()
            .fold(line.to_string(), |l, (from, to)| l.replace(from, to))
    }

    async fn sh(&self, line: &str) -> Result<Output> {
        let script = format!(
            "martctl() {{ \"$MARTCTL_BIN\" \"$@\"; }}\n{}\n{line}\n",
            self.vars.join("\n")
        );
        let run = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&self.dir)
            .env("MARTCTL_BIN", martctl_bin())
            .env_remove("MARTCTL_NODE")
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(LINE_TIMEOUT, run)
            .await
            .with_context(|| format!("{line:?} took over {LINE_TIMEOUT:?}"))?
            .with_context(|| format!("run {line:?}"))
    }

    /// Runs one README line: a node start, a variable, or a command.
    async fn line(&mut self, raw: &str) -> Result<()> {
        let line = self.localize(raw);
        if line.starts_with("cargo ") {
            return Ok(()); // the test built the binaries
        }
        if let Some(rest) = line.strip_prefix("target/release/mart-node ") {
            return self.start_node(rest).await;
        }
        if line.split('=').next().is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        }) {
            self.vars.push(line);
            return Ok(());
        }
        let out = self.sh(&line).await?;
        let expected = expected_exit(&line);
        ensure!(
            out.status.code() == Some(expected),
            "README line {raw:?} exited {} (expected {expected}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// `run --config config/X.toml [--restore] &`: starts the node and waits until its
    /// admin socket answers.
    async fn start_node(&mut self, rest: &str) -> Result<()> {
        let command = rest.split('#').next().unwrap_or_default().trim();
        let args: Vec<&str> = command
            .strip_suffix('&')
            .context("a node is started in the background")?
            .split_whitespace()
            .collect();
        let config = args
            .iter()
            .skip_while(|a| **a != "--config")
            .nth(1)
            .context("no --config")?;
        let text = std::fs::read_to_string(self.dir.join(config))?;
        let data_dir = text
            .lines()
            .find_map(|l| l.strip_prefix("data_dir = "))
            .context("no data_dir in the config")?
            .trim_matches('"')
            .to_string();
        let log =
            std::fs::File::create(self.dir.join(format!("{}.log", config.replace('/', "_"))))?;
        let child = Command::new(mart_node_bin())
            .args(&args)
            .current_dir(&self.dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start mart-node {args:?}"))?;
        self.nodes.push((config.to_string(), child));
        let status = format!("martctl --node unix:{data_dir}/admin.sock status");
        let this = &*self;
        wait_until(&format!("{config} answers"), READY, || {
            let status = status.clone();
            async move { Ok(this.sh(&status).await?.status.success()) }
        })
        .await
    }

    /// Stops the node started with `config` (a district whose disk is about to die).
    async fn stop_node(&mut self, config: &str) -> Result<()> {
        let at = self
            .nodes
            .iter()
            .position(|(c, _)| c == config)
            .with_context(|| format!("{config} was not started"))?;
        let (_, mut child) = self.nodes.remove(at);
        child.kill().await?;
        Ok(())
    }
}

/// The exit code a line's comment promises (`exit 1`), else 0.
fn expected_exit(line: &str) -> i32 {
    let Some((_, comment)) = line.split_once(" # ") else {
        return 0;
    };
    comment
        .split("exit ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn block(blocks: &[Block], heading: &str) -> Result<Block> {
    match blocks.iter().find(|b| b.heading.starts_with(heading)) {
        Some(b) => Ok(b.clone()),
        None => bail!("no code block under a heading {heading:?} in README.md"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_martctl_tour_runs_as_written() -> Result<()> {
    let node = NodeProcess::start_default().await?;
    let dir = tempfile::tempdir()?;
    // `./mart-data` is where the tour's node keeps its data and admin socket.
    std::os::unix::fs::symlink(node.data_dir(), dir.path().join("mart-data"))?;
    let tour = block(&blocks()?, "A short tour of martctl")?;
    ensure!(tour.lines.len() >= 15, "the tour shrank: {tour:?}");
    let mut readme = Readme::new(dir.path());
    for line in &tour.lines {
        readme.line(line).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_and_district_sections_run_as_written() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut readme = Readme::new(dir.path());
    for shipped in [7440, 7444] {
        let port = free_local_addr()?.port();
        readme
            .ports
            .push((format!(":{shipped}"), format!(":{port}")));
    }
    let config = dir.path().join("config");
    std::fs::create_dir(&config)?;
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    for name in ["hub.toml", "district-sikka.toml"] {
        let text = std::fs::read_to_string(shipped.join(name))?;
        std::fs::write(config.join(name), readme.localize(&text))?;
    }
    let blocks = blocks()?;
    for heading in [
        "A hub and a district with certificates",
        "At the hub: regional stock",
    ] {
        for line in &block(&blocks, heading)?.lines {
            readme.line(line).await?;
        }
    }
    // "A district whose disk died starts again from the hub".
    readme.stop_node("config/district-sikka.toml").await?;
    std::fs::remove_dir_all(dir.path().join("mart-data-sikka"))?;
    for line in &block(&blocks, "Months of history")?.lines {
        readme.line(line).await?;
    }
    Ok(())
}
