//! [`NodeProcess`]: one real `mart-node` process with its config and data in its own
//! temp dir, started, stopped (gracefully or with SIGKILL) and restarted on the same
//! data dir.
//!
//! Each run's stdout and stderr go to files in the temp dir; dropping the handle kills
//! the process and prints what the node wrote on stderr, which the test runner shows
//! only for a failing test. It must never leave a node running after its handle is
//! gone, and never report a node ready before it answered a Status call.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use mart_proto::v1::admin_service_client::AdminServiceClient;
use mart_proto::v1::hub_service_client::HubServiceClient;
use mart_proto::v1::mart_service_client::MartServiceClient;
use mart_proto::v1::{StatusRequest, StatusResponse};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::binaries::{mart_node_bin, mart_node_faults_bin};
use crate::client::{connect_unix, AdminClient, HubClient, MartClient};
use crate::pki::TlsFiles;
use crate::wait::wait_until;

/// How long a node may take to answer its first Status call.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after SIGTERM (a drain of up to 10 s, then the store closes).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// The variable a node reads once at start: milliseconds added to its system clock.
pub const CLOCK_OFFSET_VAR: &str = "MART_TEST_CLOCK_OFFSET_MS";
/// The variable that makes `mart-node-faults` panic at a named point
/// (`mart_node::fault_injection`).
pub const FAULT_PANIC_VAR: &str = mart_node::fault_injection::PANIC_VAR;

/// Who a node is and how it is reached: its config. Without `grpc_listen`, `tls`
/// and `sync` the node serves only its admin socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub id: String,
    /// `"district"` or `"hub"`.
    pub role: String,
    pub hub: String,
    /// `[grpc] listen`: the TCP address of the node's gRPC API.
    pub grpc_listen: Option<SocketAddr>,
    /// `[tls]`: the node's CA, certificate and key (mutual TLS).
    pub tls: Option<TlsFiles>,
    /// `[sync]` of a district: the hub's URL and the re-announce period.
    pub sync: Option<SyncSpec>,
    /// `[hub] stale_after_secs` of a hub; `None` leaves it out (24 hours).
    pub stale_after_secs: Option<u64>,
    /// `[hub] districts` of a hub; `None` leaves it out (the province's 22).
    pub districts: Option<Vec<String>>,
    /// `[tls] insecure = true` (plaintext gRPC over TCP) when `tls` is `None`.
    pub insecure: bool,
    /// `[grpc] max_connections` and `handshake_timeout_secs`; `None` leaves them out.
    pub max_connections: Option<usize>,
    pub handshake_timeout_secs: Option<u64>,
    /// `[metrics] listen`: `/metrics` and the status page; `None` turns them off
    /// (`enabled = false`), so that nodes never contend for the default port.
    pub metrics_listen: Option<SocketAddr>,
}

/// The `[sync]` section of a district.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSpec {
    /// `https://localhost:PORT`: the host must be in the hub certificate's SAN.
    pub hub_url: String,
    pub resync_secs: u64,
}

impl NodeSpec {
    pub fn district(id: &str, hub: &str) -> Self {
        NodeSpec {
            id: id.into(),
            role: "district".into(),
            hub: hub.into(),
            grpc_listen: None,
            tls: None,
            sync: None,
            stale_after_secs: None,
            districts: None,
            insecure: false,
            max_connections: None,
            handshake_timeout_secs: None,
            metrics_listen: None,
        }
    }

    pub fn hub(id: &str) -> Self {
        NodeSpec {
            id: id.into(),
            role: "hub".into(),
            hub: id.into(),
            grpc_listen: None,
            tls: None,
            sync: None,
            stale_after_secs: None,
            districts: None,
            insecure: false,
            max_connections: None,
            handshake_timeout_secs: None,
            metrics_listen: None,
        }
    }

    /// Serves gRPC on `addr` too.
    pub fn with_grpc_listen(mut self, addr: SocketAddr) -> Self {
        self.grpc_listen = Some(addr);
        self
    }

    /// Serves `/metrics` and the status page on `addr`.
    pub fn with_metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// Serves gRPC over TCP in plaintext (`[tls] insecure = true`).
    pub fn insecure(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// `[grpc] max_connections` and `handshake_timeout_secs`.
    pub fn with_connection_limits(mut self, max_connections: usize, handshake_secs: u64) -> Self {
        self.max_connections = Some(max_connections);
        self.handshake_timeout_secs = Some(handshake_secs);
        self
    }

    /// Uses mutual TLS with these files.
    pub fn with_tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// A hub that shows a district's figures as stale once its newest change and its
    /// last sync are both older than `secs`.
    pub fn with_stale_after_secs(mut self, secs: u64) -> Self {
        self.stale_after_secs = Some(secs);
        self
    }

    /// A hub that knows only these districts.
    pub fn with_districts(mut self, districts: &[&str]) -> Self {
        self.districts = Some(districts.iter().map(|d| d.to_string()).collect());
        self
    }

    /// Dials the hub at `hub_url`, re-announcing heads every `resync_secs`.
    pub fn with_sync(mut self, hub_url: &str, resync_secs: u64) -> Self {
        self.sync = Some(SyncSpec {
            hub_url: hub_url.into(),
            resync_secs,
        });
        self
    }
}

impl Default for NodeSpec {
    /// District `ttu` under hub `kupang`, as in `config/district-ttu.toml`.
    fn default() -> Self {
        NodeSpec::district("ttu", "kupang")
    }
}

/// A `mart-node` process: its admin socket, and gRPC over TCP when its spec says so.
pub struct NodeProcess {
    dir: TempDir,
    spec: NodeSpec,
    child: Option<Child>,
    /// How many times the node was launched; run `n` logs to `node-<n>.stderr`.
    runs: u32,
    /// Passed as `MART_TEST_CLOCK_OFFSET_MS` at every launch; `None`: the node runs on
    /// the system clock (the variable is removed even if the test process has it).
    clock_offset_ms: Option<i64>,
    /// The next launch is `mart-node run --restore` (once).
    restore_next: bool,
    /// The next launch is `mart-node run --restore-from DIR` (once).
    restore_from_next: Option<PathBuf>,
    /// Every launch is `mart-node run --accept-clock`.
    accept_clock: bool,
    /// The soft and hard RLIMIT_NOFILE every launch gets; `None`: the test's own.
    fd_limit: Option<u64>,
    /// Launches run `mart-node-faults` with `MART_FAULT_PANIC` set to this; `None`:
    /// the product's `mart-node`.
    fault_panic: Option<String>,
    /// `Some(soft)`: launches ignore `SIGXFSZ` and start with this soft file-size
    /// limit (`None` inside: unlimited); see [`crate::file_limit`].
    file_size_limit: Option<Option<u64>>,
}

impl NodeProcess {
    /// Writes the config of `spec` into a fresh temp dir without starting anything.
    pub fn new(spec: NodeSpec) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mart-node-")
            .tempdir()
            .context("create the node's temp dir")?;
        let node = NodeProcess {
            dir,
            spec,
            child: None,
            runs: 0,
            clock_offset_ms: None,
            restore_next: false,
            restore_from_next: None,
            accept_clock: false,
            fd_limit: None,
            fault_panic: None,
            file_size_limit: None,
        };
        std::fs::write(node.config_path(), node.config_text()).context("write the node config")?;
        Ok(node)
    }

    /// Starts a node for `spec` and waits until it answers.
    pub async fn start(spec: NodeSpec) -> Result<Self> {
        let mut node = Self::new(spec)?;
        node.launch()?;
        node.wait_ready().await?;
        Ok(node)
    }

    /// Starts district `ttu` and waits until it answers.
    pub async fn start_default() -> Result<Self> {
        Self::start(NodeSpec::default()).await
    }

    fn config_text(&self) -> String {
        let hub = if self.spec.role == "hub" {
            String::new()
        } else {
            format!("hub = {:?}\n", self.spec.hub)
        };
        let mut text = format!(
            "version = 1\n\n[node]\nid = {:?}\nrole = {:?}\n{hub}data_dir = {:?}\n\n[admin]\nsocket = {:?}\n",
            self.spec.id,
            self.spec.role,
            self.data_dir().display().to_string(),
            self.admin_socket().display().to_string(),
        );
        if let Some(addr) = self.spec.grpc_listen {
            text.push_str(&format!("\n[grpc]\nlisten = \"{addr}\"\n"));
            if let Some(max) = self.spec.max_connections {
                text.push_str(&format!("max_connections = {max}\n"));
            }
            if let Some(secs) = self.spec.handshake_timeout_secs {
                text.push_str(&format!("handshake_timeout_secs = {secs}\n"));
            }
        }
        match self.spec.metrics_listen {
            Some(addr) => text.push_str(&format!("\n[metrics]\nlisten = \"{addr}\"\n")),
            None => text.push_str("\n[metrics]\nenabled = false\n"),
        }
        if self.spec.insecure && self.spec.tls.is_none() {
            text.push_str("\n[tls]\ninsecure = true\n");
        }
        if let Some(tls) = &self.spec.tls {
            text.push_str(&format!(
                "\n[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
                tls.ca.display().to_string(),
                tls.cert.display().to_string(),
                tls.key.display().to_string(),
            ));
        }
        if let Some(sync) = &self.spec.sync {
            text.push_str(&format!(
                "\n[sync]\nhub_url = {:?}\nresync_secs = {}\n",
                sync.hub_url, sync.resync_secs
            ));
        }
        if self.spec.stale_after_secs.is_some() || self.spec.districts.is_some() {
            text.push_str("\n[hub]\n");
        }
        if let Some(secs) = self.spec.stale_after_secs {
            text.push_str(&format!("stale_after_secs = {secs}\n"));
        }
        if let Some(districts) = &self.spec.districts {
            text.push_str(&format!("districts = {districts:?}\n"));
        }
        text
    }

    pub fn spec(&self) -> &NodeSpec {
        &self.spec
    }

    /// Points a district at another hub URL from its next (re)start on: the spec and
    /// the config file are rewritten, a running node keeps the URL it started with.
    pub fn set_hub_url(&mut self, hub_url: &str) -> Result<()> {
        let sync = self
            .spec
            .sync
            .as_mut()
            .context("set_hub_url: the node has no [sync] section")?;
        sync.hub_url = hub_url.into();
        std::fs::write(self.config_path(), self.config_text()).context("rewrite the node config")
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The address of the node's `/metrics` and status page, when it serves them.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.spec.metrics_listen
    }

    /// The TCP address of the node's gRPC API, when it has one.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.spec.grpc_listen
    }

    /// The temp dir holding config, data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("node.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    /// The node's sled database.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("db")
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.data_dir().join("admin.sock")
    }

    fn log_path(&self, run: u32, stream: &str) -> PathBuf {
        self.dir().join(format!("node-{run}.{stream}"))
    }

    /// Shifts the node's clock by `ms` (may be negative) from its next (re)start on:
    /// the node reads `MART_TEST_CLOCK_OFFSET_MS` once when it starts, so a running
    /// node keeps its clock until it is restarted.
    pub fn set_clock_offset_ms(&mut self, ms: i64) {
        self.clock_offset_ms = Some(ms);
    }

    /// Back to the system clock from the next (re)start on.
    pub fn clear_clock_offset(&mut self) {
        self.clock_offset_ms = None;
    }

    /// The clock offset the next (re)start gets, if any.
    pub fn clock_offset_ms(&self) -> Option<i64> {
        self.clock_offset_ms
    }

    /// From the next (re)start on, launches `mart-node run --accept-clock` (or not):
    /// the node's clock opens ledger periods however far ahead of the hub's it is,
    /// as in tests that move it months ahead.
    pub fn set_accept_clock(&mut self, accept: bool) {
        self.accept_clock = accept;
    }

    /// Makes every later launch ignore `SIGXFSZ` and start with a soft file-size limit
    /// of `soft` bytes (`None`: unlimited), so a write past it fails like a full disk.
    pub fn limit_file_size_at_launch(&mut self, soft: Option<u64>) {
        self.file_size_limit = Some(soft);
    }

    /// Moves the running node's soft file-size limit to `soft` bytes (`None`:
    /// unlimited): the disk fills up, or space is freed. Only for a node launched
    /// after [`Self::limit_file_size_at_launch`] (else the first write past it kills
    /// the node with `SIGXFSZ`).
    pub fn set_file_size_limit(&self, soft: Option<u64>) -> Result<()> {
        if self.file_size_limit.is_none() {
            bail!(
                "node {} was not launched with SIGXFSZ ignored",
                self.spec.id
            );
        }
        let pid = self.pid().context("the node is not running")?;
        crate::file_limit::set_limit(pid, soft)
    }

    /// Makes the next launch `mart-node run --config ... --restore` (a district that
    /// lost its disk takes its ledger back from the hub); the launches after it are
    /// plain again. The data dir must be empty by then: the node refuses to restore
    /// over a ledger it holds.
    pub fn restore_on_next_start(&mut self) {
        self.restore_next = true;
    }

    /// Makes the next launch `mart-node run --config ... --restore-from DIR` (a node
    /// started from a `martctl backup`); the launches after it are plain again.
    pub fn restore_from_on_next_start(&mut self, backup: &Path) {
        self.restore_from_next = Some(backup.to_path_buf());
    }

    /// From the next (re)start on, the node runs with at most `limit` open file
    /// descriptors (soft and hard RLIMIT_NOFILE, as `ulimit -n` in its shell would).
    pub fn set_fd_limit(&mut self, limit: u64) {
        self.fd_limit = Some(limit);
    }

    /// From the next (re)start on, runs `mart-node-faults` armed to panic at
    /// `point` (`NAME` or `NAME:N`, see `mart_node::fault_injection`); `None`: back
    /// to the product's `mart-node`.
    pub fn set_fault_panic(&mut self, point: Option<&str>) {
        self.fault_panic = point.map(str::to_string);
    }

    /// Spawns the node without waiting for it; see [`Self::wait_ready`] and
    /// [`Self::wait_exit`].
    pub fn launch(&mut self) -> Result<()> {
        if self.is_running()? {
            bail!("node {} is already running", self.spec.id);
        }
        self.runs += 1;
        let stdout = File::create(self.log_path(self.runs, "stdout"))?;
        let stderr = File::create(self.log_path(self.runs, "stderr"))?;
        let binary = match &self.fault_panic {
            Some(_) => mart_node_faults_bin(),
            None => mart_node_bin(),
        };
        let mut command = Command::new(binary);
        match &self.fault_panic {
            Some(point) => command.env(FAULT_PANIC_VAR, point),
            None => command.env_remove(FAULT_PANIC_VAR),
        };
        command.arg("run").arg("--config").arg(self.config_path());
        if std::mem::take(&mut self.restore_next) {
            command.arg("--restore");
        }
        if let Some(backup) = self.restore_from_next.take() {
            command.arg("--restore-from").arg(backup);
        }
        if self.accept_clock {
            command.arg("--accept-clock");
        }
        if let Some(soft) = self.file_size_limit {
            crate::file_limit::limit_at_launch(&mut command, soft);
        }
        match self.clock_offset_ms {
            Some(ms) => command.env(CLOCK_OFFSET_VAR, ms.to_string()),
            None => command.env_remove(CLOCK_OFFSET_VAR),
        };
        if let Some(limit) = self.fd_limit {
            use std::os::unix::process::CommandExt;
            let set_limit = move || {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    limit,
                    limit,
                )
                .map_err(std::io::Error::from)
            };
            // SAFETY: between fork and exec the closure makes one system call
            // (setrlimit), which is async-signal-safe, and allocates nothing.
            unsafe { command.pre_exec(set_limit) };
        }
        let child = command
            .current_dir(self.dir())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawn {}", binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the node answers a Status call; fails at once, with its stderr, if
    /// the process exits first.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let socket = self.admin_socket();
        let child = self.child.as_mut().context("the node was not launched")?;
        let waited = wait_until(
            "the node answers Status on its admin socket",
            READY_TIMEOUT,
            || {
                let exited = child.try_wait();
                let socket = socket.clone();
                async move {
                    if let Some(status) = exited? {
                        bail!("the node exited with {status} before it was ready");
                    }
                    let Ok(channel) = connect_unix(&socket).await else {
                        return Ok(false);
                    };
                    Ok(AdminServiceClient::new(channel)
                        .status(StatusRequest {})
                        .await
                        .is_ok())
                }
            },
        )
        .await;
        waited.with_context(|| format!("node {} stderr:\n{}", self.spec.id, self.stderr()))
    }

    /// True while the process runs (reaps it if it has exited).
    pub fn is_running(&mut self) -> Result<bool> {
        match &mut self.child {
            Some(child) => Ok(child.try_wait()?.is_none()),
            None => Ok(false),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the node with SIGKILL (no chance to flush or clean up) and reaps it.
    pub fn kill_9(&mut self) -> Result<()> {
        let mut child = self.child.take().context("the node is not running")?;
        if child.try_wait()?.is_some() {
            bail!(
                "the node had already exited before kill -9:\n{}",
                self.stderr()
            );
        }
        child.kill().context("send SIGKILL")?;
        child.wait().context("reap the killed node")?;
        Ok(())
    }

    /// Sends `signal` to the running node.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = self.pid().context("the node is not running")?;
        kill(Pid::from_raw(pid as i32), signal).with_context(|| format!("send {signal}"))
    }

    /// Stops the node with SIGTERM and returns its exit status.
    pub async fn terminate(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        self.wait_exit(EXIT_TIMEOUT).await
    }

    /// Waits for the process to exit by itself and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = self.child.as_mut().context("the node was not launched")?;
        let mut status = None;
        wait_until("the node exits", timeout, || {
            let exited = child.try_wait();
            let found = exited.map(|s| {
                status = s;
                s.is_some()
            });
            async move { Ok(found?) }
        })
        .await
        .with_context(|| format!("node {} stderr:\n{}", self.spec.id, self.stderr()))?;
        self.child = None;
        status.context("exit status")
    }

    /// Starts the stopped node again on the same data dir and waits until it answers.
    pub async fn restart(&mut self) -> Result<()> {
        self.launch()?;
        self.wait_ready().await
    }

    /// Deletes the stopped node's data dir (a lost disk; config, certificates and
    /// logs stay).
    pub fn wipe_data(&mut self) -> Result<()> {
        if self.is_running()? {
            bail!(
                "node {} is running: stop it before wiping its data",
                self.spec.id
            );
        }
        let data = self.data_dir();
        std::fs::remove_dir_all(&data).with_context(|| format!("wipe {}", data.display()))
    }

    /// The node's Status.
    pub async fn status(&self) -> Result<StatusResponse> {
        Ok(self
            .admin()
            .await?
            .status(StatusRequest {})
            .await
            .with_context(|| format!("Status of {}", self.spec.id))?
            .into_inner())
    }

    /// Waits until the node's Status says it is no longer restoring its ledger (and
    /// names an open period); fails at once, with its stderr, if the process exits.
    /// Returns how long it waited.
    pub async fn wait_restored(&mut self, timeout: Duration) -> Result<Duration> {
        let started = std::time::Instant::now();
        let socket = self.admin_socket();
        let last = std::cell::RefCell::new(None::<StatusResponse>);
        let child = self.child.as_mut().context("the node was not launched")?;
        let waited = wait_until("the node restored its ledger", timeout, || {
            let exited = child.try_wait();
            let socket = socket.clone();
            let last = &last;
            async move {
                if let Some(status) = exited? {
                    bail!("the node exited with {status} while restoring");
                }
                let status = AdminServiceClient::new(connect_unix(&socket).await?)
                    .status(StatusRequest {})
                    .await
                    .context("Status")?
                    .into_inner();
                let done = !status.restoring && !status.open_period.is_empty();
                *last.borrow_mut() = Some(status);
                Ok(done)
            }
        })
        .await;
        waited.with_context(|| {
            format!(
                "node {}: last Status {:?}\nstderr:\n{}",
                self.spec.id,
                last.borrow(),
                self.stderr()
            )
        })?;
        Ok(started.elapsed())
    }

    /// What the latest run wrote on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log_path(self.runs, "stderr")).unwrap_or_default()
    }

    /// What the latest run wrote on stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.log_path(self.runs, "stdout")).unwrap_or_default()
    }

    /// A fresh connection to the store operations.
    pub async fn mart(&self) -> Result<MartClient> {
        Ok(MartServiceClient::new(
            connect_unix(&self.admin_socket()).await?,
        ))
    }

    /// A fresh connection to the hub service (every call is PERMISSION_DENIED at a
    /// district).
    pub async fn hub_service(&self) -> Result<HubClient> {
        Ok(HubServiceClient::new(
            connect_unix(&self.admin_socket()).await?,
        ))
    }

    /// A fresh connection to the admin service.
    pub async fn admin(&self) -> Result<AdminClient> {
        Ok(AdminServiceClient::new(
            connect_unix(&self.admin_socket()).await?,
        ))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Shown by the test runner only when the test fails.
        for run in 1..=self.runs {
            let stderr = std::fs::read_to_string(self.log_path(run, "stderr")).unwrap_or_default();
            eprintln!("--- node {} run {run} stderr ---\n{stderr}", self.spec.id);
        }
    }
}
