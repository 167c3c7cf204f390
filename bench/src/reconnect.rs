//! `bench reconnect`: the bytes one reconnect of a district to the hub costs on the
//! wire, with TLS 1.3 session resumption and without (issue 12; aim: at most
//! 1.5 KB with).
//!
//! A real hub process (mutual TLS, certificates from `martctl pki`) behind the test
//! proxy; a client with district ttu's certificate dials it through the node's own
//! connector (`mart_node::sync::tls_dial`), opens a sync session with `Hello` and
//! waits for the hub's answer; then it hangs up and dials again. A reconnect's
//! bytes are the proxy's TCP payload, both ways, from the dial to that answer:
//! TCP/TLS handshake, HTTP/2 preface and settings, the call's headers and both
//! hellos. "With" keeps one client config (and its ticket store) across dials, as
//! the district's dialer does; "without" builds a new one per dial, as the dialer
//! did before issue 12 (tonic's `tls_config` per connect).
//!
//! It reports; it never fails on a figure over its aim.

use std::time::Duration;

use anyhow::{anyhow, Result};
use mart_node::proxy::Proxy;
use mart_node::sync::tls_dial::{ticket_store, HubConnector};
use mart_tests::raw_sync::{hello, RawSession};
use mart_tests::tls_client::{hub_config, SwitchableIdentity};
use mart_tests::TestCluster;

/// The aim per reconnect with resumption, bytes both ways.
const AIM_BYTES: u64 = 1_536;
const DISTRICT: &str = "ttu";
/// Time for a hung-up connection's last bytes (GOAWAY, close) to cross the proxy
/// before the next dial's count starts.
const SETTLE: Duration = Duration::from_millis(300);

pub struct Options {
    pub reconnects: usize,
}

/// Bytes of one reconnect, each way.
#[derive(Debug, Clone, Copy, Default)]
struct Bytes {
    up: u64,
    down: u64,
    /// Both ways, until the connection was up (TCP, TLS and HTTP/2 handshakes).
    connect: u64,
}

pub fn run(options: Options) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(reconnects(options))
}

async fn reconnects(options: Options) -> Result<()> {
    let cluster = TestCluster::builder().district(DISTRICT).start().await?;
    // The bench speaks for ttu; its own node stays off the hub.
    cluster.cut(DISTRICT);
    let proxy = Proxy::start(cluster.hub_addr()).await?;
    let url = format!("https://localhost:{}", proxy.addr().port());
    println!(
        "bench reconnect: {} reconnects each way of a district to a real hub through the proxy; bytes from the dial to the hub's answer to hello",
        options.reconnects
    );

    // Without: a new config (so no ticket) per dial.
    let mut without = Vec::new();
    for _ in 0..options.reconnects {
        let connector = connector(&cluster, &url)?;
        without.push(reconnect(&proxy, &connector).await?);
    }
    // With: one config for every dial; the first is a full handshake.
    let connector = connector(&cluster, &url)?;
    let first = reconnect(&proxy, &connector).await?;
    let mut with = Vec::new();
    for _ in 0..options.reconnects {
        with.push(reconnect(&proxy, &connector).await?);
    }
    let handshakes = connector.handshakes();
    println!(
        "handshakes of the resuming client: {} full, {} resumed",
        handshakes.full(),
        handshakes.resumed()
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "reconnect", "up B", "down B", "total B", "connect B", "aim B"
    );
    print_row("without resumption (full handshake)", &without, None);
    print_row("with resumption: first dial (full)", &[first], None);
    print_row("with resumption: later dials", &with, Some(AIM_BYTES));
    let (resumed, full) = (total(&mean(&with)), total(&mean(&without)));
    let verdict = if resumed <= AIM_BYTES {
        "meets"
    } else {
        "BELOW"
    };
    println!(
        "verdict: {verdict} the aim of <= {AIM_BYTES} B per resumed reconnect ({} B; {:.1}x fewer bytes than a full handshake)",
        resumed,
        full as f64 / resumed.max(1) as f64
    );
    Ok(())
}

/// A connector to `url` with a config (and ticket store) of its own, as ttu.
fn connector(cluster: &TestCluster, url: &str) -> Result<HubConnector> {
    let files = cluster.tls_of(DISTRICT);
    let identity = SwitchableIdentity::new(files)?;
    let config = hub_config(files, cluster.hub_id(), identity, ticket_store())?;
    HubConnector::new(url, config).map_err(|e| anyhow!(e))
}

/// Dials through `connector`, says hello as the district, waits for the hub's
/// answer and hangs up; the proxy's bytes meanwhile.
async fn reconnect(proxy: &Proxy, connector: &HubConnector) -> Result<Bytes> {
    tokio::time::sleep(SETTLE).await;
    let (up, down) = (proxy.upstream_bytes(), proxy.downstream_bytes());
    let channel = connector.connect().await?;
    let connect = proxy.total_bytes() - up - down;
    let mut session = RawSession::open_on(channel, hello(DISTRICT)).await?;
    session.next().await?;
    let bytes = Bytes {
        up: proxy.upstream_bytes() - up,
        down: proxy.downstream_bytes() - down,
        connect,
    };
    drop(session);
    Ok(bytes)
}

fn mean(all: &[Bytes]) -> Bytes {
    let n = all.len().max(1) as u64;
    Bytes {
        up: all.iter().map(|b| b.up).sum::<u64>() / n,
        down: all.iter().map(|b| b.down).sum::<u64>() / n,
        connect: all.iter().map(|b| b.connect).sum::<u64>() / n,
    }
}

fn total(bytes: &Bytes) -> u64 {
    bytes.up + bytes.down
}

fn print_row(what: &str, all: &[Bytes], aim: Option<u64>) {
    let mean = mean(all);
    println!(
        "{what:<44} {:>10} {:>10} {:>10} {:>10} {:>10}",
        mean.up,
        mean.down,
        total(&mean),
        mean.connect,
        aim.map_or("-".to_string(), |a| format!("<= {a}"))
    );
}
