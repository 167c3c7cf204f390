//! The demo's nodes as real child processes (`mart-node run --config`), each logging
//! to its own file, and the demo's gRPC clients to them over mutual TLS with the
//! operator certificate, the way `martctl --node https://...` talks to a node.
//!
//! It must never leave a node running behind it: children are stopped with SIGTERM
//! (and killed if they do not stop) when the demo ends or fails, and the kernel sends
//! them SIGTERM if the demo itself is killed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mart_proto::tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use mart_proto::v1::admin_service_client::AdminServiceClient;
use mart_proto::v1::mart_service_client::MartServiceClient;
use mart_proto::v1::StatusRequest;
use tokio::process::{Child, Command};

use super::setup::{NodePlan, TlsFiles};

/// How long a node may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running node and the demo's clients to it.
pub struct Node {
    pub id: String,
    pub admin: AdminServiceClient<Channel>,
    pub mart: MartServiceClient<Channel>,
    child: Child,
}

impl Node {
    /// Starts `mart-node run --config` for `plan` and waits until it answers over
    /// mutual TLS.
    pub async fn start(plan: &NodePlan, operator: &TlsFiles) -> Result<Node> {
        let exe = std::env::current_exe().context("find the mart-node executable")?;
        let log = std::fs::File::create(&plan.log)
            .with_context(|| format!("create {}", plan.log.display()))?;
        let mut command = Command::new(exe);
        command
            .arg("run")
            .arg("--config")
            .arg(&plan.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("open the node log twice")?)
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: prctl(2) is async-signal-safe; between fork and exec this only asks
        // the kernel to SIGTERM the node if the demo dies without stopping it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("start node {}", plan.id))?;
        let channel = answering(&mut child, plan, operator).await?;
        Ok(Node {
            id: plan.id.clone(),
            admin: AdminServiceClient::new(channel.clone()),
            mart: MartServiceClient::new(channel),
            child,
        })
    }

    /// Sends SIGTERM and waits for an orderly exit; kills the node if it hangs.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a pid this process spawned and has not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("node {} stopped with {status}", self.id);
                }
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!(
                    "node {} did not stop within {STOP_TIMEOUT:?}: killed",
                    self.id
                )
            }
        }
    }
}

/// Waits until the node started as `child` answers Status over mutual TLS; fails if it
/// exits first or takes longer than [`START_TIMEOUT`].
async fn answering(child: &mut Child, plan: &NodePlan, operator: &TlsFiles) -> Result<Channel> {
    let tls = client_tls(operator)?;
    let url = format!("https://localhost:{}", plan.grpc.port());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "node {} exited at start-up ({status}); see {}",
                plan.id,
                plan.log.display()
            );
        }
        if let Ok(channel) = connect(&url, tls.clone()).await {
            let mut admin = AdminServiceClient::new(channel.clone());
            if admin.status(StatusRequest {}).await.is_ok() {
                return Ok(channel);
            }
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "node {} did not answer at {url} within {START_TIMEOUT:?}; see {}",
                plan.id,
                plan.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn client_tls(files: &TlsFiles) -> Result<ClientTlsConfig> {
    let read =
        |p: &std::path::Path| std::fs::read(p).with_context(|| format!("read {}", p.display()));
    mart_pki::files::check_private(&files.key).map_err(anyhow::Error::msg)?;
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&files.ca)?))
        .identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?)))
}

async fn connect(url: &str, tls: ClientTlsConfig) -> Result<Channel> {
    Ok(Endpoint::from_shared(url.to_string())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await?)
}
