//! What `bench steady` prints: one row per size level, then the figures beside
//! issue 16's aims. It only formats what was measured; it never measures.

use crate::soak::probe::Reading;

/// CPU per sale at the largest level, as a multiple of the first level's, at most.
const AIM_CPU_GROWTH: f64 = 1.2;
/// Resident memory a sale held in an open period adds, bytes, at most.
const AIM_BYTES_PER_SALE: f64 = 300.0;
/// A district's data dir against its documents' saved size, at most.
const AIM_DIR_RATIO: f64 = 2.0;

/// One node read from outside, with what its documents take by its own account.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub reading: Reading,
    /// Bytes passed to `write()` so far.
    pub written: u64,
    /// Bytes its documents' records take (ListDocuments, snapshot plus chunks).
    pub saved: u64,
}

impl Figures {
    /// The data dir against the documents' saved size.
    pub fn dir_ratio(&self) -> f64 {
        self.reading.disk as f64 / self.saved.max(1) as f64
    }
}

/// One size level: the nodes before and after its steady window (hub first).
#[derive(Debug, Clone)]
pub struct Level {
    /// Sales in each district's open period after the window.
    pub sales: Vec<u64>,
    /// Sales each district made in the window.
    pub in_window: Vec<u64>,
    pub before: Vec<Figures>,
    pub after: Vec<Figures>,
    /// The largest data dir / saved size of any district in any sample.
    pub worst_dir_ratio: f64,
    /// Sales a second while the fill before the window ran (all districts).
    pub fill_rate: f64,
}

impl Level {
    fn per_district(&self) -> u64 {
        self.sales.iter().sum::<u64>() / self.sales.len().max(1) as u64
    }

    fn window_sales(&self) -> u64 {
        self.in_window.iter().sum()
    }

    /// CPU of node `i` in the window, ms per sale it recorded (a district) or
    /// received (the hub).
    fn cpu_ms_per_sale(&self, i: usize) -> f64 {
        let sales = if i == 0 {
            self.window_sales()
        } else {
            self.in_window[i - 1]
        };
        let cpu = self.after[i].reading.cpu_secs - self.before[i].reading.cpu_secs;
        cpu * 1e3 / sales.max(1) as f64
    }

    fn written_per_sale(&self, i: usize) -> f64 {
        let sales = if i == 0 {
            self.window_sales()
        } else {
            self.in_window[i - 1]
        };
        (self.after[i].written - self.before[i].written) as f64 / sales.max(1) as f64
    }

    fn mean_over_districts(&self, f: impl Fn(usize) -> f64) -> f64 {
        let n = self.in_window.len();
        (1..=n).map(f).sum::<f64>() / n.max(1) as f64
    }

    /// Resident memory each sale added since `first`, bytes: the hub counts every
    /// district's sales; a district its own (mean of the districts).
    fn bytes_per_sale(&self, first: &Level, i: usize) -> Option<f64> {
        let sales = |l: &Level| {
            if i == 0 {
                l.sales.iter().sum::<u64>()
            } else {
                l.sales[i - 1]
            }
        };
        let added = sales(self).checked_sub(sales(first)).filter(|s| *s > 0)?;
        let rss = self.after[i].reading.rss as f64 - first.after[i].reading.rss as f64;
        Some(rss / added as f64)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

pub fn header() -> String {
    format!(
        "{:>8} | {:>9} | {:>9} | {:>9} | {:>9} | {:>8} | {:>9} | {:>9} | {:>9} | {:>9} | {:>11} | {:>8}",
        "sales/d",
        "hub ms/s",
        "hub MiB",
        "hub B/s",
        "hub disk",
        "dist ms/s",
        "dist MiB",
        "dist B/s",
        "dist disk",
        "dir/saved",
        "written B/s",
        "fill/s"
    )
}

/// The row of `level`; memory per sale is measured against `first`.
pub fn row(level: &Level, first: Option<&Level>) -> String {
    let bytes = |i: usize| {
        first
            .and_then(|f| level.bytes_per_sale(f, i))
            .map_or("-".to_string(), |b| format!("{b:.0}"))
    };
    let district_bytes = first
        .and_then(|f| {
            let all: Option<Vec<f64>> = (1..=level.in_window.len())
                .map(|i| level.bytes_per_sale(f, i))
                .collect();
            all.map(|v| v.iter().sum::<f64>() / v.len().max(1) as f64)
        })
        .map_or("-".to_string(), |b| format!("{b:.0}"));
    let districts = level.in_window.len().max(1) as u64;
    let dist_rss = (1..=level.in_window.len())
        .map(|i| level.after[i].reading.rss)
        .sum::<u64>()
        / districts;
    let dist_disk = (1..=level.in_window.len())
        .map(|i| level.after[i].reading.disk)
        .sum::<u64>()
        / districts;
    format!(
        "{:>8} | {:>9.3} | {:>9.1} | {:>9} | {:>9.1} | {:>8.3} | {:>9.1} | {:>9} | {:>9.1} | {:>9.2} | {:>11.0} | {:>8.0}",
        level.per_district(),
        level.cpu_ms_per_sale(0),
        mib(level.after[0].reading.rss),
        bytes(0),
        mib(level.after[0].reading.disk),
        level.mean_over_districts(|i| level.cpu_ms_per_sale(i)),
        mib(dist_rss),
        district_bytes,
        mib(dist_disk),
        level.worst_dir_ratio,
        level.mean_over_districts(|i| level.written_per_sale(i)),
        level.fill_rate,
    )
}

/// The figures against issue 16's aims, with what each column means.
pub fn verdicts(levels: &[Level]) {
    println!(
        "\ncolumns: sales/d = sales in each district's open period; ms/s = CPU ms per sale in the"
    );
    println!(
        "  steady window (the hub: per sale received, until every district is in step again);"
    );
    println!(
        "  MiB = RSS; B/s = RSS added per sale since the first level (the hub: per sale of all"
    );
    println!(
        "  districts); disk = data dir (du); dir/saved = a district's data dir / its documents'"
    );
    println!(
        "  saved size, the largest of every sample in the window; written B/s = bytes a district"
    );
    println!(
        "  passed to write() per sale in the window; fill/s = sales a second of the fill (cut off)"
    );
    let (Some(first), Some(last)) = (levels.first(), levels.last()) else {
        return;
    };
    let growth = last.cpu_ms_per_sale(0) / first.cpu_ms_per_sale(0).max(1e-9);
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!(
        "\nhub CPU per sale at {} vs {}: {:.3} vs {:.3} ms = {growth:.2}x (aim <= {AIM_CPU_GROWTH}x): {}",
        last.per_district(),
        first.per_district(),
        last.cpu_ms_per_sale(0),
        first.cpu_ms_per_sale(0),
        verdict(growth <= AIM_CPU_GROWTH)
    );
    if let Some(hub) = last.bytes_per_sale(first, 0) {
        println!(
            "hub memory per sale in the open periods: {hub:.0} B (aim <= {AIM_BYTES_PER_SALE:.0} B): {}",
            verdict(hub <= AIM_BYTES_PER_SALE)
        );
    }
    let districts: Vec<f64> = (1..=last.in_window.len())
        .filter_map(|i| last.bytes_per_sale(first, i))
        .collect();
    if let Some(worst) = districts.iter().copied().reduce(f64::max) {
        println!(
            "district memory per sale in the open period: {} B (aim <= {AIM_BYTES_PER_SALE:.0} B): {}",
            districts
                .iter()
                .map(|b| format!("{b:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            verdict(worst <= AIM_BYTES_PER_SALE)
        );
    }
    let worst_ratio = levels.iter().map(|l| l.worst_dir_ratio).fold(0.0, f64::max);
    println!(
        "district data dir / documents' saved size, worst sample: {worst_ratio:.2} (aim <= {AIM_DIR_RATIO}): {}",
        verdict(worst_ratio <= AIM_DIR_RATIO)
    );
    println!(
        "district bytes written per sale at {} vs {}: {:.0} vs {:.0} B",
        last.per_district(),
        first.per_district(),
        last.mean_over_districts(|i| last.written_per_sale(i)),
        first.mean_over_districts(|i| first.written_per_sale(i)),
    );
}
