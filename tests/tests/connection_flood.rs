//! A flood of idle TCP connections to a node's gRPC port (issue 11, "no TLS handshake
//! timeout and no connection cap"), against a real hub over real mutual TLS, run with
//! a low file descriptor limit (`ulimit -n 256`, soft and hard):
//!
//! - while 300 idle connections are open, the hub's admin socket answers (`martctl
//!   status`, a receipt and a sale) and the hub does not spin (well under a core);
//! - once the TLS handshake timeout has passed, the idle connections are closed (the
//!   hub's open file descriptors fall back) and mutual-TLS clients get through with
//!   their identity read from their certificate: a district syncs, an operator calls
//!   Status, and a district's certificate is still refused the admin service.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mart_proto::tonic::Code;
use mart_proto::v1::admin_service_client::AdminServiceClient;
use mart_proto::v1::{ListPeersRequest, StatusRequest};
use mart_tests::cluster::free_local_addr;
use mart_tests::martctl;
use mart_tests::pki::{Pki, Role};
use mart_tests::procfs::{cpu_share, open_fds};
use mart_tests::{connect_tls, wait_until, NodeProcess, NodeSpec};

/// The node's file descriptor limit: fewer than the idle connections.
const FD_LIMIT: u64 = 256;
/// Idle connections opened at once, none of which ever starts a TLS handshake.
const FLOOD: usize = 300;
/// How long the node may take to close them: its TLS handshake timeout (10 s) and a
/// wide margin for a loaded machine.
const FLOOD_CLEARED: Duration = Duration::from_secs(90);
/// How long the node's CPU use is measured while flooded, and the bound: an idle
/// node uses next to nothing; one spinning on its accept loop, a whole core.
const CPU_WINDOW: Duration = Duration::from_secs(3);
const MAX_CPU_SHARE: f64 = 0.5;
/// How long a district may take to sync once the flood is gone.
const SYNCED: Duration = Duration::from_secs(60);
/// How long one martctl command may take on a loaded machine.
const MARTCTL_TIMEOUT: Duration = Duration::from_secs(60);
const SKU: &str = "KPG-MDU-500";

/// `martctl::ok` within [`MARTCTL_TIMEOUT`].
async fn martctl_ok(socket: &std::path::Path, args: &[&str]) -> Result<String> {
    tokio::time::timeout(MARTCTL_TIMEOUT, martctl::ok(socket, args))
        .await
        .with_context(|| format!("martctl {args:?}: no answer within {MARTCTL_TIMEOUT:?}"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_starve_the_hub() -> Result<()> {
    let pki = Pki::init()?;
    let addr = free_local_addr()?;
    let url = format!("https://localhost:{}", addr.port());
    let mut hub = NodeProcess::new(
        NodeSpec::hub("kupang")
            .with_grpc_listen(addr)
            .with_tls(pki.issue("kupang", Role::Hub, &["localhost"])?),
    )?;
    hub.set_fd_limit(FD_LIMIT);
    hub.launch()?;
    hub.wait_ready().await?;
    let pid = hub.pid().context("the hub's pid")?;
    let idle_fds = open_fds(pid)?;

    let flooded_at = std::time::Instant::now();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(
            tokio::net::TcpStream::connect(addr)
                .await
                .context("open an idle connection")?,
        );
    }
    wait_until(
        "the hub accepted the idle connections",
        FLOOD_CLEARED,
        || async { Ok(open_fds(pid)? >= idle_fds + 64) },
    )
    .await?;

    let share = cpu_share(pid, CPU_WINDOW).await?;
    let flooded_fds = open_fds(pid)?;
    eprintln!(
        "flooded: {flooded_fds} fds open ({idle_fds} before), {:.1}% of a core over {CPU_WINDOW:?}",
        share * 100.0
    );
    let socket = hub.admin_socket();
    let status = tokio::time::timeout(MARTCTL_TIMEOUT, martctl::run(&socket, &["status"])).await;
    let answered = matches!(&status, Ok(Ok(out)) if out.status.success());
    ensure!(
        answered && share < MAX_CPU_SHARE,
        "while flooded: the hub used {:.0}% of a core (bound {:.0}%) with {} fds open \
         (limit {FD_LIMIT}); martctl status: {}",
        share * 100.0,
        MAX_CPU_SHARE * 100.0,
        open_fds(pid)?,
        match &status {
            Ok(Ok(out)) => martctl::describe(&["status"], out),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("no answer within {MARTCTL_TIMEOUT:?}"),
        }
    );
    martctl_ok(
        &socket,
        &[
            "receive",
            "--sku",
            SKU,
            "--qty",
            "5",
            "--unit-cost",
            "30.000",
        ],
    )
    .await
    .context("a receipt while flooded")?;
    martctl_ok(&socket, &["sell", "--sku", SKU, "--qty", "2"])
        .await
        .context("a sale while flooded")?;

    wait_until(
        "the hub closed the idle connections (TLS handshake timeout)",
        FLOOD_CLEARED,
        || async { Ok(open_fds(pid)? <= idle_fds + 16) },
    )
    .await
    .with_context(|| {
        format!(
            "{} fds open, {idle_fds} before the flood",
            open_fds(pid).unwrap_or(0)
        )
    })?;

    eprintln!(
        "the idle connections were closed {:.1} s after they opened",
        flooded_at.elapsed().as_secs_f64()
    );
    let operator = pki.issue("ops", Role::Operator, &[])?;
    let mut admin = AdminServiceClient::new(connect_tls(&url, operator.client()?).await?);
    admin
        .status(StatusRequest {})
        .await
        .context("an operator's Status over mutual TLS after the flood")?;
    let ttu_tls = pki.issue("ttu", Role::District, &[])?;
    let mut as_district = AdminServiceClient::new(connect_tls(&url, ttu_tls.client()?).await?);
    let refused = as_district.status(StatusRequest {}).await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == Code::PermissionDenied),
        "a district's certificate called the hub's admin service: {refused:?}"
    );
    let _ttu = NodeProcess::start(
        NodeSpec::district("ttu", "kupang")
            .with_tls(ttu_tls)
            .with_sync(&url, 30),
    )
    .await?;
    let hub_admin = hub.admin().await?;
    wait_until("ttu synced with the hub", SYNCED, || {
        let mut admin = hub_admin.clone();
        async move {
            let peers = admin
                .list_peers(ListPeersRequest {
                    peer_id: String::new(),
                })
                .await?
                .into_inner()
                .peers;
            Ok(peers
                .iter()
                .any(|p| p.peer_id == "ttu" && p.last_success_unix_ms > 0))
        }
    })
    .await?;

    let refusal_lines = hub
        .stderr()
        .lines()
        .filter(|l| l.contains("connection cap"))
        .count();
    ensure!(
        refusal_lines <= 3,
        "the hub logged {refusal_lines} lines about its connection cap, not a few:\n{}",
        hub.stderr()
    );
    drop(flood);
    Ok(())
}

/// A plaintext node (`tls.insecure`) gets the cap and an opening deadline too: with
/// `max_connections = 16` it holds at most 16 of 100 idle connections, closes the
/// others at once, and closes the 16 once no HTTP/2 preface came within
/// `handshake_timeout_secs`; then a plaintext client gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_node_caps_and_times_out_idle_connections_too() -> Result<()> {
    const CAP: usize = 16;
    let addr = free_local_addr()?;
    let node = NodeProcess::start(
        NodeSpec::default()
            .with_grpc_listen(addr)
            .insecure()
            .with_connection_limits(CAP, 2),
    )
    .await?;
    let pid = node.pid().context("the node's pid")?;
    let idle_fds = open_fds(pid)?;

    let mut flood = Vec::with_capacity(100);
    for _ in 0..100 {
        flood.push(
            tokio::net::TcpStream::connect(addr)
                .await
                .context("open an idle connection")?,
        );
    }
    let most = std::cell::Cell::new(0);
    wait_until(
        "the node closed the idle connections (no HTTP/2 preface)",
        FLOOD_CLEARED,
        || {
            let fds = open_fds(pid);
            let most = &most;
            async move {
                let fds = fds?;
                most.set(most.get().max(fds));
                // Half the cap: the baseline may have counted a connection of the
                // harness's that closed since.
                Ok(most.get() >= idle_fds + CAP / 2 && fds <= idle_fds + 4)
            }
        },
    )
    .await
    .with_context(|| {
        format!(
            "{} fds open, {idle_fds} before the flood, at most {}",
            open_fds(pid).unwrap_or(0),
            most.get()
        )
    })?;
    // A slack of 4 for the harness's admin connection and a connection between its
    // accept and its close.
    let most = most.get();
    ensure!(
        most <= idle_fds + CAP + 4,
        "the node held {most} fds with a cap of {CAP} connections ({idle_fds} before)"
    );

    let channel = mart_proto::tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(15))
        .connect()
        .await
        .context("connect over plaintext after the flood")?;
    AdminServiceClient::new(channel)
        .status(StatusRequest {})
        .await
        .context("Status over plaintext after the flood")?;
    drop(flood);
    Ok(())
}
