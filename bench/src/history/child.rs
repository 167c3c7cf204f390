//! Measurements in a fresh process: `bench history-measure` opens one closed store,
//! prints one JSON line and exits, so one configuration's memory never pollutes
//! another's. The parent waits for it at most `timeout` (sampling its RSS meanwhile)
//! and stops it, by its process id, when the open takes longer.
//!
//! With `--explain` the child does not start an engine: it reads each document the
//! engine would load (every one not archived) and loads it with its chunks in ONE
//! call, timing each step, to show where a slow start-up goes.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use automerge::Automerge;
use mart_node::domain::doc_id::DocId;
use mart_node::domain::{catalog, ledger};
use mart_node::engine::{Engine, PeriodState};
use mart_node::store::{Backend, DocStore, SledBackend};

use super::{identity, mib, set_clock, ClosedNode, Layout};

/// What one child measured after opening a store with the engine.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub rss: u64,
    pub peak: u64,
    pub bare_rss: u64,
    pub sled_rss: u64,
    pub sled_open: Duration,
    pub engine_open: Duration,
    pub held: u64,
    pub held_ledgers: u64,
    pub archived: u64,
    /// Changes of the ledger periods held in memory.
    pub held_ledger_changes: u64,
    pub disk_bytes: u64,
    /// The open did not finish within the timeout: `rss` and `peak` are the last
    /// and highest samples taken before the child was stopped, `engine_open` the
    /// time it had run.
    pub timed_out: bool,
    pub explained: Option<Explained>,
}

/// Where a start-up goes, from `--explain`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Explained {
    /// Listing the documents: a scan of every record.
    pub scan: Duration,
    /// RSS after the listing, and after loading what the engine loads.
    pub rss_listed: u64,
    pub rss_loaded: u64,
    /// Listing, reading, loading each document's snapshot and chunks in one call,
    /// deriving the ledger views and reading the catalogs: a start-up that loads
    /// chunks in one batch.
    pub one_batch: Duration,
    /// The document with the most chunks since its snapshot, and what one
    /// load_incremental per chunk costs on it (the engine's way).
    pub worst_chunks: u64,
    pub per_chunk: Duration,
}

impl Explained {
    /// The engine's start-up as chunks are applied one by one today: the batch
    /// figure plus the per-chunk cost of the worst document (an estimate).
    pub fn one_by_one_estimate(&self) -> Duration {
        self.one_batch + self.per_chunk * self.worst_chunks as u32
    }
}

impl Measured {
    pub fn open_total(&self) -> Duration {
        self.sled_open + self.engine_open
    }
}

/// A number from a flat JSON line.
fn field(line: &str, key: &str) -> Result<u64> {
    let pattern = format!("\"{key}\":");
    let at = line
        .find(&pattern)
        .with_context(|| format!("{key} missing in {line}"))?;
    let rest = &line[at + pattern.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Ok(rest[..end].parse()?)
}

/// A string from a flat JSON line (no escapes inside).
fn text_field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(&format!("\"{key}\":\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

fn open_sled(dir: &Path) -> Result<(SledBackend, Duration)> {
    // The parent closed the store (`Backend::close`) before starting this process.
    let started = Instant::now();
    let sled = SledBackend::open(dir)?;
    Ok((sled, started.elapsed()))
}

/// `bench history-measure`: opens the store with the engine and reports.
pub fn measure_engine(dir: &Path, node: &str, layout: Layout, now_ms: i64) -> Result<()> {
    let bare_rss = crate::memory::rss().unwrap_or(0);
    set_clock(now_ms);
    let (sled, sled_open) = open_sled(dir)?;
    let sled_rss = crate::memory::rss().unwrap_or(0);
    let disk_bytes = sled.size_on_disk().unwrap_or(0);
    let backend: Arc<dyn Backend> = Arc::new(sled);
    let started = Instant::now();
    let engine = Engine::open_with(backend, identity(node)?, layout.options())?;
    let engine_open = started.elapsed();
    let rss = crate::memory::rss().unwrap_or(0);
    let peak = crate::memory::peak().unwrap_or(0);

    // What is in memory, read after the figures above were taken.
    let docs = engine.documents()?;
    let held: Vec<_> = docs
        .iter()
        .filter(|d| d.period != Some(PeriodState::Archived))
        .collect();
    let held_ledgers: Vec<_> = held.iter().filter(|d| d.period.is_some()).collect();
    let mut by_changes = held.clone();
    by_changes.sort_by_key(|d| std::cmp::Reverse(d.changes));
    let largest = by_changes
        .iter()
        .take(3)
        .map(|d| format!("{} {} changes", d.id, d.changes))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{{\"rss\":{rss},\"peak\":{peak},\"bare_rss\":{bare_rss},\"sled_rss\":{sled_rss},\
         \"sled_open_us\":{},\"engine_open_us\":{},\"held\":{},\"held_ledgers\":{},\
         \"archived\":{},\"held_ledger_changes\":{},\"disk_bytes\":{disk_bytes},\
         \"largest\":\"{largest}\"}}",
        sled_open.as_micros(),
        engine_open.as_micros(),
        held.len(),
        held_ledgers.len(),
        docs.len() - held.len(),
        held_ledgers.iter().map(|d| d.changes).sum::<u64>(),
    );
    Ok(())
}

/// `bench history-measure --explain`: where an open's time goes, without the engine.
pub fn explain(dir: &Path) -> Result<()> {
    let (sled, _) = open_sled(dir)?;
    let store = DocStore::new(&sled);
    let started = Instant::now();
    let ids = store.document_ids()?;
    let scan = started.elapsed();
    let rss_listed = crate::memory::rss().unwrap_or(0);
    let archived = store.archived()?;
    let (mut read, mut snapshot_load, mut batch_load) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut derive, mut catalogs) = (Duration::ZERO, Duration::ZERO);
    let (mut chunks, mut loaded) = (0usize, Vec::new());
    let mut worst = (0usize, String::new());
    for name in ids.iter().filter(|id| !archived.contains_key(*id)) {
        let started = Instant::now();
        let Some(stored) = store.load(name)? else {
            continue;
        };
        read += started.elapsed();
        let started = Instant::now();
        let mut doc = match &stored.snapshot {
            Some(s) => Automerge::load(s)?,
            None => Automerge::new(),
        };
        snapshot_load += started.elapsed();
        let started = Instant::now();
        doc.load_incremental(&stored.chunks.concat())?;
        batch_load += started.elapsed();
        chunks += stored.chunks.len();
        if stored.chunks.len() > worst.0 {
            worst = (
                stored.chunks.len(),
                format!(
                    "{name}: snapshot {} KiB + {} chunks ({} KiB)",
                    stored.snapshot.as_ref().map_or(0, |s| s.len()) / 1024,
                    stored.chunks.len(),
                    stored.chunks.iter().map(|c| c.len()).sum::<usize>() / 1024
                ),
            );
        }
        let started = Instant::now();
        match DocId::parse(name) {
            Ok(DocId::Ledger(..)) => {
                std::hint::black_box(ledger::derive(&doc, name)?);
                derive += started.elapsed();
            }
            Ok(DocId::ProvincialCatalog | DocId::LocalCatalog(_)) => {
                std::hint::black_box(catalog::read(&doc, name)?);
                catalogs += started.elapsed();
            }
            _ => {}
        }
        loaded.push(doc);
    }
    let rss = crate::memory::rss().unwrap_or(0);
    // The engine's way for the document with the most chunks: one load_incremental
    // per chunk, timed over its first chunks (at most 200, or 5 s).
    let (mut one_by_one, mut one_by_one_chunks) = (Duration::ZERO, 0usize);
    if let Some(name) = worst.1.split(':').next().filter(|n| !n.is_empty()) {
        if let Some(stored) = store.load(name)? {
            let mut doc = match &stored.snapshot {
                Some(s) => Automerge::load(s)?,
                None => Automerge::new(),
            };
            let started = Instant::now();
            for chunk in stored.chunks.iter().take(200) {
                doc.load_incremental(chunk)?;
                one_by_one_chunks += 1;
                if started.elapsed() > Duration::from_secs(5) {
                    break;
                }
            }
            one_by_one = started.elapsed();
        }
    }
    println!(
        "{{\"one_by_one_us\":{},\"one_by_one_chunks\":{one_by_one_chunks},\"scan_us\":{},\"listed\":{},\"loaded\":{},\"chunks\":{chunks},\"read_us\":{},\
         \"snapshot_us\":{},\"batch_us\":{},\"derive_us\":{},\"catalogs_us\":{},\"rss\":{rss},\"rss_listed\":{rss_listed},\"worst_chunks\":{},\"worst\":\"{}\"}}",
        one_by_one.as_micros(),
        scan.as_micros(),
        ids.len(),
        loaded.len(),
        read.as_micros(),
        snapshot_load.as_micros(),
        batch_load.as_micros(),
        derive.as_micros(),
        catalogs.as_micros(),
        worst.0,
        worst.1,
    );
    Ok(())
}

/// Runs `bench history-measure` on a closed store; `None` line when stopped at the
/// timeout. Returns the JSON line, the last and highest RSS sampled and the time.
fn run_child(
    closed: &ClosedNode,
    now_ms: i64,
    explain: bool,
    timeout: Duration,
) -> Result<(Option<String>, u64, u64, Duration)> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("history-measure")
        .arg("--dir")
        .arg(&closed.dir)
        .args(["--node", closed.id.as_str()])
        .args(["--period-months", &closed.layout.months().to_string()])
        .args(["--now-ms", &now_ms.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if explain {
        command.arg("--explain");
    }
    let mut child = command.spawn().context("run bench history-measure")?;
    let status_path = format!("/proc/{}/status", child.id());
    let started = Instant::now();
    let (mut last, mut highest) = (0u64, 0u64);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if let Some(rss) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
            line[6..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        }) {
            last = rss * 1024;
            highest = highest.max(last);
        }
        if started.elapsed() > timeout {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    let Some(status) = status else {
        return Ok((None, last, highest, elapsed));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .context("child stdout")?
        .read_to_string(&mut stdout)?;
    child
        .stderr
        .take()
        .context("child stderr")?
        .read_to_string(&mut stderr)?;
    anyhow::ensure!(status.success(), "history-measure failed: {stdout}{stderr}");
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("history-measure printed no JSON line")?
        .to_string();
    Ok((Some(line), last, highest, elapsed))
}

/// Measures a closed store's engine open in a fresh process, then (when `explain`,
/// or the open took longer than the district's aim of 0.5 s) where its time goes;
/// prints both.
pub fn measure(
    closed: &ClosedNode,
    now_ms: i64,
    timeout: Duration,
    explain: bool,
) -> Result<Measured> {
    let what = format!("{} ({})", closed.id, closed.layout.name());
    let (line, last, highest, elapsed) = run_child(closed, now_ms, false, timeout)?;
    let mut measured = match &line {
        Some(line) => Measured {
            rss: field(line, "rss")?,
            peak: field(line, "peak")?,
            bare_rss: field(line, "bare_rss")?,
            sled_rss: field(line, "sled_rss")?,
            sled_open: Duration::from_micros(field(line, "sled_open_us")?),
            engine_open: Duration::from_micros(field(line, "engine_open_us")?),
            held: field(line, "held")?,
            held_ledgers: field(line, "held_ledgers")?,
            archived: field(line, "archived")?,
            held_ledger_changes: field(line, "held_ledger_changes")?,
            disk_bytes: field(line, "disk_bytes")?,
            timed_out: false,
            explained: None,
        },
        None => Measured {
            rss: last,
            peak: highest,
            engine_open: elapsed,
            timed_out: true,
            ..Measured::default()
        },
    };
    match &line {
        Some(line) => println!(
            "    {what}: RSS {} MiB (peak {} MiB; bare process {} MiB, after sled open {} MiB), \
             start-up {:.2?} (sled {:.2?} + engine {:.2?}); in memory {} documents ({} ledger \
             periods, {} changes), {} archived; {} MiB on disk; largest: {}",
            mib(measured.rss),
            mib(measured.peak),
            mib(measured.bare_rss),
            mib(measured.sled_rss),
            measured.open_total(),
            measured.sled_open,
            measured.engine_open,
            measured.held,
            measured.held_ledgers,
            measured.held_ledger_changes,
            measured.archived,
            mib(measured.disk_bytes),
            text_field(line, "largest"),
        ),
        None => println!(
            "    {what}: start-up NOT finished after {:.0?}: stopped; RSS then {} MiB (highest sampled {} MiB)",
            elapsed,
            mib(last),
            mib(highest)
        ),
    }
    if explain || measured.timed_out || measured.open_total() > Duration::from_millis(500) {
        let (line, _, _, _) = run_child(closed, now_ms, true, Duration::from_secs(600))?;
        if let Some(line) = line {
            let us = |k: &str| field(&line, k).map(Duration::from_micros);
            let one_by_one_chunks = field(&line, "one_by_one_chunks")?.max(1);
            let explained = Explained {
                scan: us("scan_us")?,
                rss_listed: field(&line, "rss_listed")?,
                rss_loaded: field(&line, "rss")?,
                one_batch: us("scan_us")?
                    + us("read_us")?
                    + us("snapshot_us")?
                    + us("batch_us")?
                    + us("derive_us")?
                    + us("catalogs_us")?,
                worst_chunks: field(&line, "worst_chunks")?,
                per_chunk: us("one_by_one_us")? / one_by_one_chunks as u32,
            };
            measured.explained = Some(explained);
            println!(
                "      why: listing the documents (DocStore::document_ids) {:.2?}, \
                 after which the process holds {} MiB; \
                 the {} documents not archived (of {}): records read {:.2?}, snapshots loaded {:.2?}, \
                 their {} chunks applied in ONE load_incremental per document {:.2?}, ledger views derived {:.2?}, \
                 catalogs read {:.2?}; \
                 RSS so loaded {} MiB; most chunks: {}; the engine's way for it, one load_incremental per chunk: \
                 {:.1?} per chunk over its first {} chunks; so a start-up that applied chunks in one batch: about {:.2?} \
                 (engine's way, estimated: {:.2?})",
                explained.scan,
                mib(explained.rss_listed),
                field(&line, "loaded")?,
                field(&line, "listed")?,
                us("read_us")?,
                us("snapshot_us")?,
                field(&line, "chunks")?,
                us("batch_us")?,
                us("derive_us")?,
                us("catalogs_us")?,
                mib(field(&line, "rss")?),
                text_field(&line, "worst"),
                explained.per_chunk,
                one_by_one_chunks,
                explained.one_batch,
                explained.one_by_one_estimate(),
            );
        }
    }
    Ok(measured)
}
