//! The simulated calendar of `bench history` and the movements recorded on it.
//!
//! Dates are WITA (UTC+8), the calendar the node cuts periods by. The first year
//! (`sales` sales) runs from 2026-01-01 to 2026-12-15 and ends with the cut (the last
//! month of it, 2026-11-16 to 2026-12-15, across the 1 December boundary), so the whole
//! year stays inside one calendar year: the yearly baseline is one document from the
//! first sale to the last. The second year runs from 2026-12-16 to 2027-12-15, so both
//! are measured at the same point of a month.

use mart_node::domain::movement::MovementKind;
use mart_node::engine::MovementRequest;

pub const DAY_MS: i64 = 86_400_000;
/// Units received per SKU on the first morning: more than two years of sales take.
pub const RECEIPT_UNITS: i64 = 1_000_000;
pub const PRODUCER: &str = "ikm-bench-umum";

/// One simulated day: `sales` sales numbered from `first`, spread over the day.
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub start_ms: i64,
    pub first: usize,
    pub sales: usize,
}

impl Day {
    /// When the `j`-th sale of the day is recorded.
    pub fn at(&self, j: usize) -> i64 {
        self.start_ms + (j as i64 * DAY_MS) / self.sales.max(1) as i64
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y } as i64;
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Midnight WITA of a date, ms since the epoch.
pub fn wita_midnight(y: i32, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d) * DAY_MS - 8 * 3_600_000
}

/// `total` sales spread evenly over the days from `from` to `to` (inclusive),
/// numbered from `*next`.
fn days(from: (i32, u32, u32), to: (i32, u32, u32), total: usize, next: &mut usize) -> Vec<Day> {
    let start = wita_midnight(from.0, from.1, from.2);
    let n =
        (days_from_civil(to.0, to.1, to.2) - days_from_civil(from.0, from.1, from.2) + 1) as usize;
    (0..n)
        .map(|k| {
            let sales = total * (k + 1) / n - total * k / n;
            let day = Day {
                start_ms: start + k as i64 * DAY_MS,
                first: *next,
                sales,
            };
            *next += sales;
            day
        })
        .collect()
}

/// The days of the run, in order.
pub struct Timeline {
    /// 2026-01-01 to 2026-10-31, synced daily.
    pub to_october: Vec<Day>,
    /// 2026-11-01 to 2026-11-15, synced daily.
    pub to_cut: Vec<Day>,
    /// 2026-11-16 to 2026-12-15: the hub hears nothing.
    pub cut: Vec<Day>,
    /// 2026-12-16 to 2027-12-15, synced daily (monthly layout only).
    pub second_year: Vec<Day>,
}

impl Timeline {
    pub fn new(sales: usize, cut_sales: usize) -> Self {
        let mut next = 0;
        let mut to_october = days((2026, 1, 1), (2026, 11, 15), sales - cut_sales, &mut next);
        let to_cut = to_october
            .split_off((days_from_civil(2026, 11, 1) - days_from_civil(2026, 1, 1)) as usize);
        let cut = days((2026, 11, 16), (2026, 12, 15), cut_sales, &mut next);
        let second_year = days((2026, 12, 16), (2027, 12, 15), sales, &mut next);
        Timeline {
            to_october,
            to_cut,
            cut,
            second_year,
        }
    }

    pub fn start_ms(&self) -> i64 {
        self.to_october[0].start_ms
    }

    /// Every day of the first year.
    pub fn first_year(&self) -> impl Iterator<Item = &Day> {
        self.to_october.iter().chain(&self.to_cut).chain(&self.cut)
    }

    /// The last moment of a list of days.
    pub fn end_of(days: &[Day]) -> i64 {
        days.last().map_or(0, |d| d.start_ms + DAY_MS - 1)
    }

    pub fn sales_of(days: &[Day]) -> usize {
        days.iter().map(|d| d.sales).sum()
    }
}

pub fn sku(i: usize) -> String {
    format!("BNC-{i:05}")
}

pub fn price(i: usize) -> i64 {
    5_000 + (i % 40) as i64 * 2_500
}

/// The SKU sale `i` sells: a fixed pseudo-random spread over the catalog.
pub fn sku_of_sale(i: usize, skus: usize) -> usize {
    (i.wrapping_mul(2_654_435_761) >> 7) % skus
}

pub use crate::catchup::sale_kind;

/// Sale `i` as a cashier's client sends it (its request id makes retries safe).
pub fn sale(i: usize, skus: usize) -> MovementRequest {
    MovementRequest {
        request_id: Some(format!("s{i}")),
        sku: sku(sku_of_sale(i, skus)),
        kind: sale_kind(i, None),
    }
}

pub fn receipt_kind() -> MovementKind {
    MovementKind::Receipt {
        quantity: RECEIPT_UNITS,
        unit_cost: 1_000,
        producer: None,
        over_budget: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mart_node::domain::period::{PeriodId, PeriodLength};

    #[test]
    fn dates_are_wita_midnights() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            days_from_civil(2026, 12, 1) - days_from_civil(2026, 11, 30),
            1
        );
        let midnight = wita_midnight(2026, 12, 1);
        assert_eq!(PeriodId::of(midnight).to_string(), "2026-12");
        assert_eq!(PeriodId::of(midnight - 1).to_string(), "2026-11");
    }

    #[test]
    fn a_year_in_one_calendar_year_with_a_cut_across_a_month() {
        let t = Timeline::new(365_000, 30_000);
        let first: Vec<Day> = t.first_year().copied().collect();
        assert_eq!(Timeline::sales_of(&first), 365_000);
        assert_eq!(Timeline::sales_of(&t.cut), 30_000);
        assert_eq!(t.cut.len(), 30);
        assert_eq!(t.to_october.len(), 304);
        assert_eq!(
            PeriodId::of(Timeline::end_of(&t.to_october)).to_string(),
            "2026-10"
        );
        let year = PeriodLength::months_of(12).unwrap();
        assert_eq!(
            PeriodId::of_length(Timeline::end_of(&t.cut), year),
            PeriodId::of_length(t.start_ms(), year),
            "the baseline stays one document"
        );
        assert_eq!(PeriodId::of(t.cut[0].start_ms).to_string(), "2026-11");
        assert_eq!(
            PeriodId::of(Timeline::end_of(&t.cut)).to_string(),
            "2026-12"
        );
        assert_eq!(Timeline::sales_of(&t.second_year), 365_000);
        assert_eq!(
            PeriodId::of(Timeline::end_of(&t.second_year)).to_string(),
            "2027-12"
        );
        for pair in first
            .iter()
            .chain(&t.second_year)
            .collect::<Vec<_>>()
            .windows(2)
        {
            assert_eq!(pair[0].first + pair[0].sales, pair[1].first);
            assert_eq!(pair[0].start_ms + DAY_MS, pair[1].start_ms);
        }
    }
}
