//! `mart-node demo`: a hub (`kupang`) and two districts (`ttu`, `sikka`) on loopback,
//! as real `mart-node` processes over mutual TLS with fresh certificates, telling the
//! product's story in the terminal: TTU loses its link and keeps selling, the hub
//! shows TTU as stale, the link comes back, and the demo prints how long convergence
//! took and how many bytes crossed the link. Then it prints the martctl commands to
//! explore each node and keeps the nodes running until Ctrl-C.
//!
//! It must never fake a figure: every number it prints is read from the nodes or
//! measured on the link, and a node that disagrees with the story stops the demo with
//! an error instead of a happy ending.

mod nodes;
mod say;
mod setup;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mart_node::proxy::{Proxy, RuralLink};
use mart_proto::tonic::transport::Channel;
use mart_proto::v1::admin_service_client::AdminServiceClient;
use mart_proto::v1::mart_service_client::MartServiceClient;
use mart_proto::v1::{
    AddProductRequest, Buyer, ListDocumentsRequest, ListPeersRequest, PeerInfo, Product,
    ReceiptRequest, SaleRequest, StatusRequest, StockRequest, SyncNowRequest,
};

use self::nodes::Node;
use self::say::{ago, step};
use self::setup::{write_config, Plan};

const HUB: &str = "kupang";
const TTU: &str = "ttu";
const SIKKA: &str = "sikka";
const CATALOG: &str = "catalog/province";
/// How long any one wait for the nodes to agree may take before the demo gives up.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long TTU stays cut off at least, so the hub's view of it visibly ages.
const MIN_OFFLINE: Duration = Duration::from_secs(5);

/// Cajuput oil from Humusu Wini (TTU) and Amfoang forest honey: what TTU sells.
const CAJUPUT: &str = "TTU-MKP-060";
const HONEY: &str = "KPG-MDU-500";
/// Roasted cashews from Nita: what Sikka sells.
const CASHEWS: &str = "SKA-MET-250";
/// The product the hub adds to the provincial catalog while TTU is offline.
const NEW_SKU: &str = "KPG-MDU-250";

/// TTU's link with `--rural`: what an outlet on a weak cellular link has.
const RURAL_LINK: RuralLink = RuralLink {
    rate_bytes_per_s: 8_000,
    one_way_delay: Duration::from_millis(300),
    drops_every: Some((Duration::from_secs(20), Duration::from_secs(60))),
    seed: 2026,
};

/// Runs the whole demo in `dir`, with `offline_sales` sales at TTU while it is cut off,
/// over a rural link if `rural`.
pub async fn run(dir: &Path, offline_sales: u32, rural: bool) -> Result<()> {
    say::title();
    let plan = setup::prepare(dir, HUB, &[TTU, SIKKA])?;
    step(
        1,
        "certificates",
        &format!(
            "a fresh provincial CA in {}: hub {HUB}, districts {TTU} and {SIKKA}, operator demo",
            plan.root.join("pki").display()
        ),
    );

    let mut cluster = Cluster::start(&plan).await?;
    if rural {
        cluster.link.play(RURAL_LINK);
        println!(
            "  TTU's link now plays a rural one: 64 kbit/s and 300 ms each way, dropped every \
             20-60 s (drops so far are counted with the bytes)"
        );
    }
    let outcome = cluster.story(offline_sales).await;
    if outcome.is_ok() {
        explore(&plan);
        wait_for_signal().await;
        println!("\nstopping the nodes ...");
    }
    cluster.stop().await?;
    outcome
}

/// The three running nodes and TTU's cuttable link to the hub.
struct Cluster {
    hub: Node,
    ttu: Node,
    sikka: Node,
    link: Proxy,
}

impl Cluster {
    async fn start(plan: &Plan) -> Result<Cluster> {
        write_config(&plan.hub, HUB, None)?;
        let hub = Node::start(&plan.hub, &plan.operator).await?;
        let link = Proxy::start(plan.hub.grpc)
            .await
            .context("start ttu's link")?;
        let [ttu_plan, sikka_plan] = [TTU, SIKKA].map(|id| plan.district(id));
        write_config(
            ttu_plan,
            HUB,
            Some(&format!("https://localhost:{}", link.addr().port())),
        )?;
        write_config(
            sikka_plan,
            HUB,
            Some(&format!("https://localhost:{}", plan.hub.grpc.port())),
        )?;
        let started = Instant::now();
        let ttu = Node::start(ttu_plan, &plan.operator).await?;
        let sikka = Node::start(sikka_plan, &plan.operator).await?;
        let mut cluster = Cluster {
            hub,
            ttu,
            sikka,
            link,
        };
        for id in [TTU, SIKKA] {
            cluster.wait_same(id, CATALOG).await?;
        }
        step(
            2,
            "nodes",
            &format!(
                "hub {HUB} on 127.0.0.1:{}, {TTU} dialing it through a link this demo can cut \
                 (127.0.0.1:{}), {SIKKA} dialing it directly; both districts hold the provincial \
                 catalog {:.1} s after they started (logs: {}/<node>/node.log; the hub's status \
                 page: http://{}/)",
                plan.hub.grpc.port(),
                cluster.link.addr().port(),
                started.elapsed().as_secs_f64(),
                plan.root.display(),
                plan.hub.metrics
            ),
        );
        Ok(cluster)
    }

    async fn story(&mut self, offline_sales: u32) -> Result<()> {
        // Stock arrives at both outlets and reaches the hub.
        receive(
            &mut self.ttu.mart,
            CAJUPUT,
            offline_sales as i64 + 40,
            21_000,
        )
        .await?;
        receive(
            &mut self.ttu.mart,
            HONEY,
            offline_sales as i64 / 2 + 20,
            110_000,
        )
        .await?;
        receive(&mut self.sikka.mart, CASHEWS, 100, 55_000).await?;
        for i in 0..5 {
            sell(&mut self.sikka.mart, &format!("sikka-sale-{i}"), CASHEWS, 1)
                .await
                .map_err(anyhow::Error::msg)?;
        }
        let waited = Instant::now();
        self.wait_same_ledger(TTU).await?;
        self.wait_same_ledger(SIKKA).await?;
        step(
            3,
            "stock",
            &format!(
                "{TTU} receives {} x {CAJUPUT} (cajuput oil) and {} x {HONEY} (forest honey); \
                 {SIKKA} receives 100 x {CASHEWS} (cashews) and sells 5; the hub holds both \
                 ledgers {:.2} s later",
                offline_sales + 40,
                offline_sales / 2 + 20,
                waited.elapsed().as_secs_f64()
            ),
        );

        // TTU loses its link and keeps selling.
        self.link.cut();
        let cut_at = Instant::now();
        let selling = Instant::now();
        for i in 0..offline_sales {
            let sku = if i % 3 == 2 { HONEY } else { CAJUPUT };
            sell(&mut self.ttu.mart, &format!("ttu-offline-{i}"), sku, 1)
                .await
                .map_err(anyhow::Error::msg)?;
        }
        let selling = selling.elapsed();
        let refusal = match sell(&mut self.ttu.mart, "ttu-too-many", CAJUPUT, 10_000).await {
            Ok(_) => bail!("ttu sold 10,000 bottles it does not have"),
            Err(e) => e,
        };
        step(
            4,
            "ttu offline",
            &format!(
                "the link to the hub is cut; {TTU} keeps selling: {offline_sales} sales \
                 recorded in {:.2} s ({:.0}/s), each on disk before it was acknowledged; \
                 selling 10,000 bottles it does not have is refused: {refusal}",
                selling.as_secs_f64(),
                f64::from(offline_sales) / selling.as_secs_f64().max(1e-9)
            ),
        );

        // The hub edits the provincial catalog: Sikka gets it, TTU cannot.
        let added_at = Instant::now();
        add_product(&mut self.hub.mart).await?;
        self.wait_same(SIKKA, CATALOG).await?;
        say::detail(&format!(
            "the hub adds {NEW_SKU} (Amfoang honey, 250 ml) to the provincial catalog: \
             {SIKKA} has it {:.2} s later, {TTU} cannot get it",
            added_at.elapsed().as_secs_f64()
        ));
        if let Some(rest) = MIN_OFFLINE.checked_sub(cut_at.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        let seen = hub_view_of(&mut self.hub.admin, TTU).await?;
        ensure!(!seen.connected, "the hub still shows {TTU} connected");
        let hub_stock = stock(&mut self.hub.mart, CAJUPUT, TTU).await?;
        let own_stock = stock(&mut self.ttu.mart, CAJUPUT, "").await?;
        say::detail(&format!(
            "the hub shows {TTU} as STALE: not connected, last sync {}; its figures for \
             {TTU} say {hub_stock} x {CAJUPUT}, while {TTU} itself has {own_stock}",
            ago(seen.last_success_unix_ms)
        ));

        // The link comes back.
        let before = self.link.total_bytes();
        self.link.heal();
        let healed = Instant::now();
        let round = self
            .ttu
            .admin
            .sync_now(SyncNowRequest {
                timeout_seconds: 60,
            })
            .await
            .context("sync now at ttu")?
            .into_inner();
        self.wait_same_ledger(TTU).await?;
        self.wait_same(TTU, CATALOG).await?;
        let converged = healed.elapsed();
        let moved = self.link.total_bytes() - before;
        let hub_stock = stock(&mut self.hub.mart, CAJUPUT, TTU).await?;
        ensure!(
            hub_stock == own_stock,
            "after convergence the hub says {hub_stock} x {CAJUPUT} at {TTU}, {TTU} says {own_stock}"
        );
        let seen = hub_view_of(&mut self.hub.admin, TTU).await?;
        step(
            5,
            "link back",
            &format!(
                "converged {:.0} ms after the link came back (martctl sync now at {TTU}): the hub \
                 holds all {offline_sales} offline sales (same heads as {TTU}) and {TTU} has \
                 {NEW_SKU}; {moved} bytes crossed the link, both ways, TLS included ({:.1} per \
                 sale); {TTU} sent {} changes in {} bytes of bundles; hub's stock for {TTU} \
                 now {hub_stock} x {CAJUPUT}, last sync {}{}",
                converged.as_secs_f64() * 1000.0,
                moved as f64 / f64::from(offline_sales.max(1)),
                round.changes_sent,
                round.bytes_sent,
                ago(seen.last_success_unix_ms),
                match self.link.drops() {
                    0 => String::new(),
                    n => format!("; the link dropped {n} times so far"),
                }
            ),
        );
        Ok(())
    }

    fn admin(&mut self, id: &str) -> &mut AdminServiceClient<Channel> {
        match id {
            TTU => &mut self.ttu.admin,
            SIKKA => &mut self.sikka.admin,
            _ => &mut self.hub.admin,
        }
    }

    /// Waits until district `id` and the hub hold the same heads of `doc`.
    async fn wait_same(&mut self, id: &str, doc: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            let here = heads(self.admin(id), doc).await?;
            let there = heads(&mut self.hub.admin, doc).await?;
            if !here.is_empty() && here == there {
                return Ok(());
            }
            if started.elapsed() > CONVERGE_TIMEOUT {
                bail!("{id} and the hub did not agree on {doc} within {CONVERGE_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until district `id` and the hub hold the same heads of the open period
    /// of `id`'s ledger, as `id` names it now (`ledger/<id>/<YYYY-MM>`).
    async fn wait_same_ledger(&mut self, id: &str) -> Result<()> {
        let ledger = open_ledger(self.admin(id)).await?;
        self.wait_same(id, &ledger).await
    }

    /// Stops the districts, then the hub.
    async fn stop(self) -> Result<()> {
        let results = [
            self.ttu.stop().await,
            self.sikka.stop().await,
            self.hub.stop().await,
        ];
        drop(self.link);
        results.into_iter().collect()
    }
}

impl Plan {
    fn district(&self, id: &str) -> &setup::NodePlan {
        self.districts
            .iter()
            .find(|d| d.id == id)
            .expect("the demo plans every district it starts")
    }
}

/// The document id of the open period of a node's own ledger, from its Status.
async fn open_ledger(admin: &mut AdminServiceClient<Channel>) -> Result<String> {
    let status = admin
        .status(StatusRequest {})
        .await
        .context("status")?
        .into_inner();
    ensure!(
        !status.open_period.is_empty(),
        "{} has no open ledger period (restoring: {})",
        status.node_id,
        status.restoring
    );
    Ok(format!("ledger/{}/{}", status.node_id, status.open_period))
}

async fn heads(admin: &mut AdminServiceClient<Channel>, doc: &str) -> Result<Vec<String>> {
    let docs = admin
        .list_documents(ListDocumentsRequest {})
        .await
        .context("list documents")?
        .into_inner()
        .documents;
    let mut heads = docs
        .into_iter()
        .find(|d| d.id == doc)
        .map(|d| d.heads)
        .unwrap_or_default();
    heads.sort();
    Ok(heads)
}

async fn receive(
    mart: &mut MartServiceClient<Channel>,
    sku: &str,
    quantity: i64,
    unit_cost_rupiah: i64,
) -> Result<()> {
    mart.record_receipt(ReceiptRequest {
        request_id: format!("receipt-{sku}"),
        sku: sku.into(),
        quantity,
        unit_cost_rupiah,
        ..Default::default()
    })
    .await
    .with_context(|| format!("receive {quantity} x {sku}"))?;
    Ok(())
}

/// Sells at the catalog price; a refusal comes back as the node's message.
async fn sell(
    mart: &mut MartServiceClient<Channel>,
    request_id: &str,
    sku: &str,
    quantity: i64,
) -> Result<(), String> {
    mart.record_sale(SaleRequest {
        request_id: request_id.into(),
        sku: sku.into(),
        quantity,
        buyer: if quantity % 2 == 0 {
            Buyer::Asn
        } else {
            Buyer::Public
        } as i32,
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}

async fn add_product(mart: &mut MartServiceClient<Channel>) -> Result<()> {
    mart.add_product(AddProductRequest {
        product: Some(Product {
            sku: NEW_SKU.into(),
            name: "Madu Hutan Timor Amfoang".into(),
            producer_id: "ikm-madu-amfoang".into(),
            category: "madu".into(),
            unit: "250 ml bottle".into(),
            price_rupiah: 80_000,
            ..Default::default()
        }),
    })
    .await
    .context("add a product at the hub")?;
    Ok(())
}

async fn stock(mart: &mut MartServiceClient<Channel>, sku: &str, outlet: &str) -> Result<i64> {
    let levels = mart
        .get_stock(StockRequest {
            sku: sku.into(),
            outlet: outlet.into(),
        })
        .await
        .with_context(|| format!("stock of {sku}"))?
        .into_inner()
        .levels;
    Ok(levels.iter().map(|l| l.quantity).sum())
}

async fn hub_view_of(admin: &mut AdminServiceClient<Channel>, peer: &str) -> Result<PeerInfo> {
    admin
        .list_peers(ListPeersRequest {
            peer_id: peer.into(),
        })
        .await
        .context("list peers at the hub")?
        .into_inner()
        .peers
        .into_iter()
        .next()
        .with_context(|| format!("the hub does not know {peer}"))
}

/// Prints the martctl commands that explore each node of the running demo.
fn explore(plan: &Plan) {
    let martctl = martctl_command();
    let socket = |id: &str| -> PathBuf {
        if id == HUB {
            plan.hub.admin_socket.clone()
        } else {
            plan.district(id).admin_socket.clone()
        }
    };
    let on = |id: &str| format!("{martctl} --node unix:{}", socket(id).display());
    let op = &plan.operator;
    say::explore(&[
        (
            format!("{} peers", on(HUB)),
            "every district and its last sync",
        ),
        (
            format!("{} stock --outlet {TTU}", on(HUB)),
            "the hub's copy of TTU's stock",
        ),
        (
            format!("{} sync status", on(TTU)),
            "what TTU has pending, lag, last error",
        ),
        (
            format!("{} movements --limit 10", on(TTU)),
            "TTU's latest movements",
        ),
        (
            format!("{} product show {NEW_SKU}", on(TTU)),
            "the product the hub added",
        ),
        (
            format!("{} sell --sku {CASHEWS} --qty 1", on(SIKKA)),
            "a sale at Sikka",
        ),
        (
            format!("{} sync now", on(SIKKA)),
            "a sync round now, and what moved",
        ),
        (
            format!(
                "{martctl} --node https://localhost:{} --ca {} --cert {} --key {} status",
                plan.hub.grpc.port(),
                op.ca.display(),
                op.cert.display(),
                op.key.display()
            ),
            "the hub over mutual TLS, as operator demo",
        ),
    ]);
}

/// `martctl` beside this executable when it was built, otherwise through cargo.
fn martctl_command() -> String {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("martctl")))
        .filter(|path| path.exists());
    match beside {
        Some(path) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            path.strip_prefix(&cwd)
                .unwrap_or(&path)
                .display()
                .to_string()
        }
        None => "cargo run -q --release --bin martctl --".to_string(),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
