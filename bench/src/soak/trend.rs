//! Whether a node's resources stay flat once warm: from its samples after the warm-up,
//! the growth per minute of each metric (least-squares slope over every warm sample,
//! so one noisy sample at either end does not decide), what that growth comes to
//! over the warm window, and a verdict against an allowance.
//!
//! Allowances (what a healthy node may add over the warm window):
//! - threads: 2 (tokio's blocking pool starts and retires threads as work comes);
//! - file descriptors: 4 (a sync connection, an admin client or two, a sled file);
//! - memory (RSS): 16 MiB for the allocator's and sled's caches settling, plus
//!   2 KiB per sale the node took in the window: the open ledger period is held in
//!   memory until its month ends (the brief's automerge figure is about 280 B per
//!   operation; `bench catchup` shows about 1 KiB per sale per engine);
//! - disk: 16 MiB (sled grows its files in segments and compacts in lumps), plus
//!   1 KiB per sale (the aim is 300 B per sale; sled's log holds some twice until
//!   it compacts);
//! - CPU: the CPU time per sale in the second half of the warm window at most 1.5
//!   times that of the first half, plus 0.5 ms (a cost per write that grows with
//!   history shows here).
//!
//! A verdict is a figure to read, not a test: the soak never fails on it.

use super::probe::Reading;

/// One sample of one node.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Seconds since the run started.
    pub at: f64,
    pub reading: Reading,
    /// Acknowledged sales the node holds or will hold (a district: its own; the hub:
    /// every district's).
    pub sales: u64,
}

/// A resource metric the soak judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Rss,
    Fds,
    Threads,
    Disk,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Rss, Metric::Fds, Metric::Threads, Metric::Disk];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Rss => "rss MiB",
            Metric::Fds => "fds",
            Metric::Threads => "threads",
            Metric::Disk => "disk MiB",
        }
    }

    /// The metric in its display unit.
    pub fn value(self, r: &Reading) -> f64 {
        match self {
            Metric::Rss => mib(r.rss),
            Metric::Fds => r.fds as f64,
            Metric::Threads => r.threads as f64,
            Metric::Disk => mib(r.disk),
        }
    }

    /// What a healthy node may add over a warm window in which it took `sales`.
    pub fn allowance(self, sales: u64) -> f64 {
        match self {
            Metric::Rss => 16.0 + sales as f64 * 2.0 / 1024.0,
            Metric::Fds => 4.0,
            Metric::Threads => 2.0,
            Metric::Disk => 16.0 + sales as f64 / 1024.0,
        }
    }

    /// Bytes per sale are worth reading for memory and disk only.
    fn per_sale(self) -> bool {
        matches!(self, Metric::Rss | Metric::Disk)
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// The judgement of one metric of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub first: f64,
    pub last: f64,
    /// Least-squares slope, display units per minute.
    pub per_minute: f64,
    /// The slope over the warm window, display units.
    pub growth: f64,
    /// `(last - first)` in bytes per sale taken in the window (memory and disk).
    pub bytes_per_sale: Option<f64>,
    pub allowance: f64,
    pub flat: bool,
}

/// Judges `metric` over `warm` (samples after the warm-up, oldest first); `None`
/// with fewer than two samples.
pub fn judge(metric: Metric, warm: &[Point]) -> Option<Judgement> {
    let (first, last) = (warm.first()?, warm.last()?);
    if warm.len() < 2 || last.at <= first.at {
        return None;
    }
    let points: Vec<(f64, f64)> = warm
        .iter()
        .map(|p| (p.at / 60.0, metric.value(&p.reading)))
        .collect();
    let per_minute = slope(&points);
    let growth = per_minute * (last.at - first.at) / 60.0;
    let sales = last.sales.saturating_sub(first.sales);
    let allowance = metric.allowance(sales);
    let (v0, v1) = (metric.value(&first.reading), metric.value(&last.reading));
    Some(Judgement {
        first: v0,
        last: v1,
        per_minute,
        growth,
        bytes_per_sale: (metric.per_sale() && sales > 0)
            .then(|| (v1 - v0) * (1u64 << 20) as f64 / sales as f64),
        allowance,
        flat: growth <= allowance,
    })
}

/// CPU per sale in each half of the warm window.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuJudgement {
    /// Share of one core over the warm window, percent.
    pub percent: f64,
    pub first_ms_per_sale: Option<f64>,
    pub second_ms_per_sale: Option<f64>,
    pub flat: bool,
}

/// Judges CPU use over `warm`.
pub fn judge_cpu(warm: &[Point]) -> Option<CpuJudgement> {
    let (first, last) = (warm.first()?, warm.last()?);
    if last.at <= first.at {
        return None;
    }
    let middle = &warm[warm.len() / 2];
    let ms_per_sale = |a: &Point, b: &Point| {
        let sales = b.sales.saturating_sub(a.sales);
        (sales > 0).then(|| (b.reading.cpu_secs - a.reading.cpu_secs) * 1000.0 / sales as f64)
    };
    let (one, two) = (ms_per_sale(first, middle), ms_per_sale(middle, last));
    Some(CpuJudgement {
        percent: (last.reading.cpu_secs - first.reading.cpu_secs) * 100.0 / (last.at - first.at),
        first_ms_per_sale: one,
        second_ms_per_sale: two,
        flat: match (one, two) {
            (Some(one), Some(two)) => two <= 1.5 * one + 0.5,
            _ => true,
        },
    })
}

/// Least-squares slope of `(x, y)` points (0 when every x is the same).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let var: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(minute: f64, fds: u64, rss_mib: u64, sales: u64) -> Point {
        Point {
            at: minute * 60.0,
            reading: Reading {
                rss: rss_mib << 20,
                fds,
                threads: 10,
                disk: 0,
                cpu_secs: minute,
            },
            sales,
        }
    }

    #[test]
    fn a_noisy_flat_series_is_flat_and_a_leak_grows() {
        let noisy: Vec<Point> = (0..20)
            .map(|m| point(m as f64, 30 + (m % 3) * 2, 40, m * 100))
            .collect();
        let j = judge(Metric::Fds, &noisy).unwrap();
        assert!(j.flat && j.per_minute.abs() < 0.5, "{j:?}");
        let leak: Vec<Point> = (0..20).map(|m| point(m as f64, 30 + m, 40, 0)).collect();
        let j = judge(Metric::Fds, &leak).unwrap();
        assert!(!j.flat && (j.per_minute - 1.0).abs() < 1e-9, "{j:?}");
    }

    #[test]
    fn memory_may_grow_with_sales() {
        // 100 MiB over 100k sales: about 1 KiB a sale, within 16 MiB + 2 KiB a sale.
        let series: Vec<Point> = (0..=10)
            .map(|m| point(m as f64, 30, 40 + m * 10, m * 10_000))
            .collect();
        let j = judge(Metric::Rss, &series).unwrap();
        assert!(j.flat, "{j:?}");
        assert!((j.bytes_per_sale.unwrap() - 1048.576).abs() < 1e-6, "{j:?}");
    }

    #[test]
    fn cpu_per_sale_is_compared_between_halves() {
        let steady: Vec<Point> = (0..=10).map(|m| point(m as f64, 30, 40, m * 60)).collect();
        let j = judge_cpu(&steady).unwrap();
        assert!(j.flat && (j.percent - 100.0 / 60.0).abs() < 1e-9, "{j:?}");
    }
}
