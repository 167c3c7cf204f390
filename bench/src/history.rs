//! `bench history`: what a year (and two) of sales history costs a district and the
//! hub with monthly ledger periods, beside one ledger document per year (the
//! single-document-for-life baseline for a one-year history) on the same data.
//!
//! Figures: resident memory (RSS) and start-up time right after opening the existing
//! data dir (sled, then `Engine::open_with`), each measured in a fresh child process
//! (`bench history-measure`, see [`child`]); and the wall time and bytes of a
//! district's catch-up with the hub after a 30-day cut across a month boundary.
//!
//! The data goes through the real engine on sled: the hub writes the provincial
//! catalog (`--skus` products), the district (`ttu`) receives stock for every SKU on
//! the first morning, then records its sales with `Engine::record_at` day by day
//! (concurrent writers share the flushes) and syncs with the hub after each day
//! through the real sync sessions in process (fresh sessions each time, as after a
//! reconnect), so sealed periods settle and are archived at both ends as in service.
//! The other districts at the hub get copies of `ttu`'s archived periods and a newest
//! period built in automerge with their own actor ([`synthetic`]). The calendar is
//! in [`timeline`].

mod child;
mod report;
mod synthetic;
mod timeline;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use mart_node::domain::catalog::{Producer, Product};
use mart_node::domain::doc_id::NodeId;
use mart_node::domain::period::{PeriodId, PeriodLength};
use mart_node::engine::{set_clock_offset_ms, Engine, Identity, LedgerOptions, MovementRequest};
use mart_node::store::{Backend, SledBackend};
use mart_node::sync::{PeerBook, Session};
use mart_proto::v1::{sync_message::Body, SyncMessage};
use prost::Message;
use tokio::task::JoinSet;

pub use child::{explain, measure_engine};
pub use report::print as print_report;
use timeline::{price, receipt_kind, sale, sku, Day, Timeline, PRODUCER};

const HUB: &str = "kupang";
const DISTRICT: &str = "ttu";

/// How the bench keeps ledgers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One document per month (the node's default).
    Monthly,
    /// One document per calendar year: the year of history in a single document.
    Yearly,
}

impl Layout {
    pub fn months(self) -> u32 {
        match self {
            Layout::Monthly => 1,
            Layout::Yearly => 12,
        }
    }

    pub fn from_months(months: u32) -> Result<Self> {
        match months {
            1 => Ok(Layout::Monthly),
            12 => Ok(Layout::Yearly),
            other => bail!("--period-months must be 1 or 12, got {other}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::Monthly => "monthly",
            Layout::Yearly => "baseline, one document a year",
        }
    }

    fn length(self) -> PeriodLength {
        PeriodLength::months_of(self.months()).expect("1 and 12 divide a year")
    }

    fn options(self) -> LedgerOptions {
        LedgerOptions {
            period: self.length(),
            restore: false,
            // The benchmark's clock runs through years of simulated history.
            accept_clock: true,
        }
    }
}

/// What the run covers.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sales in one year of history (the last month of them during the cut).
    pub sales: usize,
    pub skus: usize,
    /// Districts at the hub, `ttu` included.
    pub districts: usize,
    /// Years of history for the monthly layout (1 or 2).
    pub years: u32,
    /// Districts at the baseline hub (measured; the figure for `districts` is
    /// extrapolated from them).
    pub baseline_hub_districts: usize,
    /// Concurrent writers while the history is generated.
    pub writers: usize,
    /// How long a measured start-up may take before the child is stopped.
    pub open_timeout: Duration,
    /// Explain every measured start-up, not only those past the aim.
    pub explain: bool,
}

impl Options {
    /// Sales during the cut: a month at the rate of `sales` a year.
    pub fn cut_sales(&self) -> usize {
        self.sales * 30 / 365
    }
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sets the node clock (of every engine in this process) to `ms`.
fn set_clock(ms: i64) {
    set_clock_offset_ms(ms - system_ms());
}

fn identity(node: &str) -> Result<Identity> {
    Ok(Identity {
        node: NodeId::parse(node)?,
        hub: NodeId::parse(HUB)?,
    })
}

/// A node of the bench: its engine, peer book, and a handle to know when sled closed.
struct Node {
    closed: ClosedNode,
    engine: Arc<Engine>,
    book: Arc<PeerBook>,
    sled: Arc<SledBackend>,
}

/// Where a node's store is, to open it again.
struct ClosedNode {
    id: NodeId,
    dir: PathBuf,
    layout: Layout,
}

impl Node {
    fn open(closed: ClosedNode) -> Result<Node> {
        let sled = Arc::new(SledBackend::open(&closed.dir)?);
        let backend: Arc<dyn Backend> = sled.clone();
        let engine = Arc::new(Engine::open_with(
            backend.clone(),
            identity(closed.id.as_str())?,
            closed.layout.options(),
        )?);
        Ok(Node {
            closed,
            engine,
            book: Arc::new(PeerBook::load(backend)),
            sled,
        })
    }

    fn id(&self) -> &NodeId {
        &self.closed.id
    }

    /// Flushes and closes the store; returns once sled let go of it.
    fn close(self) -> Result<ClosedNode> {
        self.engine.flush()?;
        let Node {
            closed,
            engine,
            book,
            sled,
        } = self;
        drop(engine);
        drop(book);
        let started = Instant::now();
        let mut sled = sled;
        let sled = loop {
            match Arc::try_unwrap(sled) {
                Ok(sole) => break sole,
                Err(shared) => {
                    anyhow::ensure!(
                        started.elapsed() < Duration::from_secs(30),
                        "{}'s store is still open",
                        closed.id
                    );
                    sled = shared;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        };
        Box::new(sled).close()?;
        Ok(closed)
    }
}

/// Bytes and messages of one sync between the hub and a district.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    /// Protobuf bytes of every sync message, both ways.
    pub wire_bytes: u64,
    /// Bytes of the automerge bundles among them.
    pub bundle_bytes: u64,
    pub bundles: u64,
    pub messages: u64,
}

/// A reconnect: fresh sessions at both ends, run until neither has anything to say.
async fn sync(hub: &Node, district: &Node) -> Result<Traffic> {
    let mut at_hub = Session::new(hub.engine.clone(), hub.book.clone(), district.id().clone());
    let mut at_district = Session::new(
        district.engine.clone(),
        district.book.clone(),
        hub.id().clone(),
    );
    let (mut to_hub, mut to_district) = (at_district.opening().await?, at_hub.opening().await?);
    let mut traffic = Traffic::default();
    while !to_hub.is_empty() || !to_district.is_empty() {
        for m in to_hub.iter().chain(&to_district) {
            traffic.wire_bytes += m.encoded_len() as u64;
            traffic.messages += 1;
            if let Some(Body::Bundle(b)) = &m.body {
                traffic.bundle_bytes += b.data.len() as u64;
                traffic.bundles += 1;
            }
        }
        let mut next_district: Vec<SyncMessage> = Vec::new();
        for m in to_hub.drain(..) {
            next_district.extend(at_hub.handle(m).await?);
        }
        let mut next_hub = Vec::new();
        for m in to_district.drain(..) {
            next_hub.extend(at_district.handle(m).await?);
        }
        to_hub = next_hub;
        to_district = next_district;
    }
    Ok(traffic)
}

/// Runs `job(i)` for every `i < count`, `writers` at a time.
async fn concurrently<F, Fut>(count: usize, writers: usize, job: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let job = Arc::new(job);
    let mut set = JoinSet::new();
    for w in 0..writers.min(count) {
        let job = job.clone();
        set.spawn(async move {
            let mut i = w;
            while i < count {
                job(i).await?;
                i += writers;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(())
}

/// The provincial catalog: one producer and `skus` products, written by the hub.
async fn write_catalog(hub: &Node, skus: usize, writers: usize) -> Result<()> {
    hub.engine
        .add_producer(Producer {
            id: PRODUCER.into(),
            group_name: "Kelompok Usaha Bersama".into(),
            leader: "Maria Bere".into(),
            village: "Oebobo".into(),
            subdistrict: "Oebobo".into(),
            district: "kota-kupang".into(),
            certifications: Vec::new(),
        })
        .await?;
    let engine = hub.engine.clone();
    concurrently(skus, writers, move |i| {
        let engine = engine.clone();
        async move {
            engine
                .add_product(Product {
                    sku: sku(i),
                    name: format!("Produk IKM {i}"),
                    producer_id: PRODUCER.into(),
                    category: "umum".into(),
                    unit: "pcs".into(),
                    price_rupiah: price(i),
                    certifications: Vec::new(),
                    reorder_level: 0,
                })
                .await?;
            Ok(())
        }
    })
    .await
}

/// Time spent recording and syncing.
#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    sales: usize,
    record: Duration,
    sync: Duration,
}

impl Spent {
    fn say(&self, layout: Layout, what: &str) {
        println!(
            "  {}: {what}: {} sales recorded in {:.1?} ({:.0}/s), daily syncs {:.1?}",
            layout.name(),
            self.sales,
            self.record,
            self.sales as f64 / self.record.as_secs_f64().max(1e-9),
            self.sync,
        );
    }
}

/// Records `days` at the district, syncing with the hub after each one when `hub`
/// is given.
async fn record_days(
    district: &Node,
    hub: Option<&Node>,
    days: &[Day],
    options: &Options,
) -> Result<Spent> {
    let mut spent = Spent::default();
    for day in days.iter().copied() {
        set_clock(day.start_ms);
        let started = Instant::now();
        let engine = district.engine.clone();
        let skus = options.skus;
        concurrently(day.sales, options.writers, move |j| {
            let engine = engine.clone();
            async move {
                engine
                    .record_at(sale(day.first + j, skus), day.at(j))
                    .await?;
                Ok(())
            }
        })
        .await?;
        spent.record += started.elapsed();
        spent.sales += day.sales;
        if let Some(hub) = hub {
            let started = Instant::now();
            sync(hub, district).await?;
            spent.sync += started.elapsed();
        }
    }
    Ok(spent)
}

/// A catch-up after the cut.
#[derive(Debug, Clone, Copy)]
pub struct CatchUp {
    pub sales: usize,
    pub wall: Duration,
    pub traffic: Traffic,
}

/// Everything one layout measured.
#[derive(Debug, Clone)]
pub struct LayoutRun {
    /// The district on 31 October, its open period a whole month (monthly only).
    pub district_month_end: Option<child::Measured>,
    /// The district after the year (15 December).
    pub district_year: child::Measured,
    pub district_two_years: Option<child::Measured>,
    pub catch_up: CatchUp,
    pub hub_one: child::Measured,
    /// The hub with `hub_many.0` districts.
    pub hub_many: Option<(usize, child::Measured)>,
    pub generation: Duration,
    pub synthetic: Option<synthetic::Synthetic>,
}

/// Runs one layout in a fresh directory under `dir`.
pub async fn run(dir: &Path, layout: Layout, options: &Options) -> Result<LayoutRun> {
    let timeline = Timeline::new(options.sales, options.cut_sales());
    let started = Instant::now();
    let name = layout.name();
    set_clock(timeline.start_ms());
    let at = |id: &str| -> Result<ClosedNode> {
        Ok(ClosedNode {
            id: NodeId::parse(id)?,
            dir: dir.join(id),
            layout,
        })
    };
    let mut hub = Node::open(at(HUB)?)?;
    let mut district = Node::open(at(DISTRICT)?)?;
    write_catalog(&hub, options.skus, options.writers).await?;
    sync(&hub, &district).await?;
    // Stock first, on the first morning, so every sale finds enough.
    let engine = district.engine.clone();
    let first_morning = timeline.start_ms();
    concurrently(options.skus, options.writers, move |i| {
        let engine = engine.clone();
        async move {
            let receipt = MovementRequest {
                request_id: None,
                sku: sku(i),
                kind: receipt_kind(),
            };
            engine.record_at(receipt, first_morning).await?;
            Ok(())
        }
    })
    .await?;
    sync(&hub, &district).await?;
    println!(
        "  {name}: catalog of {} products and stock written in {:.1?}",
        options.skus,
        started.elapsed()
    );
    let explain = options.explain;
    let timeout = options.open_timeout;
    let mut generation = started.elapsed();

    let spent = record_days(&district, Some(&hub), &timeline.to_october, options).await?;
    spent.say(layout, "1 Jan - 31 Oct");
    generation += spent.record + spent.sync;
    let mut district_month_end = None;
    if layout == Layout::Monthly {
        let closed = district.close()?;
        district_month_end = Some(child::measure(
            &closed,
            Timeline::end_of(&timeline.to_october),
            timeout,
            explain,
        )?);
        district = Node::open(closed)?;
    }
    let spent = record_days(&district, Some(&hub), &timeline.to_cut, options).await?;
    spent.say(layout, "1 - 15 Nov");
    generation += spent.record + spent.sync;
    let spent = record_days(&district, None, &timeline.cut, options).await?;
    spent.say(layout, "the cut, 16 Nov - 15 Dec, no sync");
    generation += spent.record;

    let cut_sales = Timeline::sales_of(&timeline.cut);
    let before = Instant::now();
    let traffic = sync(&hub, &district).await?;
    let wall = before.elapsed();
    let open = district
        .engine
        .open_period()
        .context("the district has an open period")?;
    anyhow::ensure!(
        hub.engine.heads(&open) == district.engine.heads(&open)
            && hub.engine.stock(Some(DISTRICT), None)? == district.engine.stock(None, None)?,
        "the hub did not catch up"
    );
    let catch_up = CatchUp {
        sales: cut_sales,
        wall,
        traffic,
    };
    println!(
        "  {name}: catch-up of {cut_sales} sales: {wall:.2?}, {} B in {} sync messages ({} B in {} bundles)",
        traffic.wire_bytes, traffic.messages, traffic.bundle_bytes, traffic.bundles
    );

    let end_of_year = Timeline::end_of(&timeline.cut);
    let closed = district.close()?;
    let district_year = child::measure(&closed, end_of_year, timeout, explain)?;
    let closed_district = closed;
    let closed = hub.close()?;
    let hub_one = child::measure(&closed, end_of_year, timeout, explain)?;
    let wanted = match layout {
        Layout::Monthly => options.districts,
        Layout::Yearly => options.baseline_hub_districts.min(options.districts),
    };
    let mut hub_many = None;
    let mut synthetic_run = None;
    let mut closed_hub = closed;
    if wanted > 1 {
        hub = Node::open(closed_hub)?;
        let newest = PeriodId::of_length(end_of_year, layout.length());
        set_clock(end_of_year);
        let ids = mart_node::domain::districts::ALL
            .iter()
            .map(|d| d.id)
            .filter(|id| *id != DISTRICT)
            .take(wanted - 1)
            .map(NodeId::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let backend = hub.sled.clone();
        let first_year: Vec<Day> = timeline.first_year().copied().collect();
        let s = synthetic::add_to_hub(
            &hub.engine,
            backend.as_ref(),
            ids,
            layout.length(),
            timeline.start_ms(),
            &first_year,
            options.skus,
            newest,
        )
        .await?;
        drop(backend);
        println!(
            "  {name}: {} more districts at the hub in {:.1?}: {} archived periods each copied from ttu's records, \
             the newest ({} movements, one change each) built in automerge ({:.1?} on a thread of its own) \
             and applied by the hub (copies and apply {:.1?})",
            s.districts, s.wall, s.copied_periods, s.newest_movements, s.build, s.apply
        );
        synthetic_run = Some(s);
        closed_hub = hub.close()?;
        hub_many = Some((
            wanted,
            child::measure(&closed_hub, end_of_year, timeout, explain)?,
        ));
    }

    let mut district_two_years = None;
    if layout == Layout::Monthly && options.years >= 2 {
        let hub = Node::open(closed_hub)?;
        let district = Node::open(closed_district)?;
        let spent = record_days(&district, Some(&hub), &timeline.second_year, options).await?;
        spent.say(layout, "second year, 16 Dec 2026 - 15 Dec 2027");
        generation += spent.record + spent.sync;
        hub.close()?;
        let closed = district.close()?;
        district_two_years = Some(child::measure(
            &closed,
            Timeline::end_of(&timeline.second_year),
            timeout,
            explain,
        )?);
    }
    Ok(LayoutRun {
        district_month_end,
        district_year,
        district_two_years,
        catch_up,
        hub_one,
        hub_many,
        generation,
        synthetic: synthetic_run,
    })
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 20) as f64)
}
