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

use super::bounds;
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
    /// Replays the document's entries; an entry beyond its bounds is refused (the
    /// error names it).
    pub fn replay<'a>(
        entries: impl IntoIterator<Item = &'a BudgetEntry>,
    ) -> Result<Self, DomainError> {
        let mut b = Budgets::default();
        for (i, e) in entries.into_iter().enumerate() {
            b.apply(e)
                .map_err(|err| DomainError::invalid("entries", format!("{i}: {err}")))?;
        }
        Ok(b)
    }

    /// Refuses an entry whose numbers are beyond their bounds (see [`bounds`]).
    pub fn check(entry: &BudgetEntry) -> Result<(), DomainError> {
        let BudgetEntry::Allocation {
            year,
            amount,
            at_ms,
            ..
        } = entry;
        bounds::year("year", *year)?;
        bounds::budget_rupiah("amount_rupiah", *amount)?;
        bounds::time_ms("at", *at_ms)?;
        Ok(())
    }

    /// Adds an entry, unless [`Budgets::check`] refuses it (then nothing changes).
    pub fn apply(&mut self, entry: &BudgetEntry) -> Result<(), DomainError> {
        Self::check(entry)?;
        self.len += 1;
        let BudgetEntry::Allocation {
            district,
            year,
            amount,
            ..
        } = entry;
        self.allocated.insert((district.clone(), *year), *amount);
        Ok(())
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
    // Widened: `spent` may exceed the allocation by far (receipts over budget).
    let remaining = bounds::narrow(
        || format!("budget left to {district} in {year}"),
        i128::from(allocated) - i128::from(spent),
    )?;
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
        let b = Budgets::replay(&[alloc(1_000_000), alloc(2_000_000)]).unwrap();
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

    #[test]
    fn allocations_beyond_their_bounds_are_refused() {
        let alloc = |year, amount, at_ms| BudgetEntry::Allocation {
            district: "ttu".into(),
            year,
            amount,
            at_ms,
        };
        for bad in [
            alloc(2026, -1, 1),
            alloc(2026, i64::MIN, 1),
            alloc(2026, bounds::MAX_BUDGET_RUPIAH + 1, 1),
            alloc(2026, i64::MAX, 1),
            alloc(i32::MIN, 1, 1),
            alloc(1999, 1, 1),
            alloc(2026, 1, -1),
            alloc(2026, 1, i64::MAX),
        ] {
            assert!(
                Budgets::replay(std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
        let b = Budgets::replay(&[alloc(2026, bounds::MAX_BUDGET_RUPIAH, 1)]).unwrap();
        assert_eq!(b.allocated("ttu", 2026), Some(bounds::MAX_BUDGET_RUPIAH));
        // Spend far beyond the allocation: what is left is negative, never wrapped.
        assert_eq!(
            check_receipt("ttu", 2026, Some(0), i64::MAX, 1, true),
            Ok(true)
        );
    }
}
