//! Procurement budgets: the hub allocates an amount per district per year in the
//! hub-owned `budget/province` document, shared with every district; each receipt a
//! district records (quantity times unit cost) is charged against it.
//!
//! An allocation for a district and year replaces the previous one (only the hub
//! writes, so list order decides). A district with no allocation for the year is not
//! budget-controlled. It must never refuse a receipt that carries an over-budget
//! reason: the reason is recorded and reported instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::journal::Journal;
use super::DomainError;

const ENTRIES: &str = "entries";

/// An entry of the budget document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum BudgetEntry {
    #[serde(rename = "alloc")]
    Allocation {
        district: String,
        year: i32,
        #[serde(rename = "amt")]
        amount: i64,
        #[serde(rename = "at")]
        at_ms: i64,
    },
}

/// The document's entries, appended by the hub only.
pub const JOURNAL: Journal<BudgetEntry> = Journal::new(ENTRIES);

/// Allocations per (district, year).
#[derive(Debug, Clone, Default)]
pub struct Budgets {
    allocated: BTreeMap<(String, i32), i64>,
    len: usize,
}

impl Budgets {
    pub fn replay<'a>(entries: impl IntoIterator<Item = &'a BudgetEntry>) -> Self {
        let mut b = Budgets::default();
        for e in entries {
            b.apply(e);
        }
        b
    }

    pub fn apply(&mut self, entry: &BudgetEntry) {
        self.len += 1;
        let BudgetEntry::Allocation {
            district,
            year,
            amount,
            ..
        } = entry;
        self.allocated.insert((district.clone(), *year), *amount);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn allocated(&self, district: &str, year: i32) -> Option<i64> {
        self.allocated.get(&(district.to_string(), year)).copied()
    }

    /// Every allocation: ((district, year), amount).
    pub fn all(&self) -> impl Iterator<Item = (&(String, i32), &i64)> {
        self.allocated.iter()
    }
}

/// Refuses a receipt costing `cost` when `spent` already charged against `allocated`
/// leaves less than that, unless the receipt carries an over-budget reason. Returns
/// whether the receipt goes over budget (so a reason is worth recording).
pub fn check_receipt(
    district: &str,
    year: i32,
    allocated: Option<i64>,
    spent: i64,
    cost: i64,
    has_reason: bool,
) -> Result<bool, DomainError> {
    let Some(allocated) = allocated else {
        return Ok(false);
    };
    let remaining = allocated - spent;
    let over = cost > remaining;
    if over && !has_reason {
        return Err(DomainError::OverBudget {
            district: district.to_string(),
            year,
            allocated,
            remaining,
            cost,
        });
    }
    Ok(over)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_allocation_counts_and_a_reason_overrides() {
        let alloc = |amount| BudgetEntry::Allocation {
            district: "ttu".into(),
            year: 2026,
            amount,
            at_ms: 1,
        };
        let b = Budgets::replay(&[alloc(1_000_000), alloc(2_000_000)]);
        assert_eq!(b.allocated("ttu", 2026), Some(2_000_000));
        assert_eq!(b.allocated("ttu", 2027), None);
        assert_eq!(
            check_receipt("ttu", 2026, Some(2_000_000), 1_500_000, 500_000, false),
            Ok(false)
        );
        let err =
            check_receipt("ttu", 2026, Some(2_000_000), 1_500_000, 500_001, false).unwrap_err();
        assert!(err.to_string().contains("Rp 500000 left"), "{err}");
        assert_eq!(
            check_receipt("ttu", 2026, Some(2_000_000), 1_500_000, 500_001, true),
            Ok(true)
        );
        assert_eq!(
            check_receipt("ttu", 2026, None, 9, 9_999_999, true),
            Ok(false)
        );
    }
}
