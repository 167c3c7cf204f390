//! Ledger periods: the month (WITA) a movement belongs to, and the law that lets a
//! ledger be cut into one document per period without changing any figure: a
//! period's view is its opening balances (the previous period's closing
//! [`Balances`](super::ledger::Balances)) plus its own movements.
//!
//! It must never read a clock: callers pass timestamps.

use std::fmt;

use super::wita;
use super::DomainError;

/// A calendar month in WITA, written `2026-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeriodId {
    year: i32,
    month: u32,
}

impl PeriodId {
    /// The month of the Unix epoch (in WITA): no clock reading names an earlier one.
    pub const FIRST: PeriodId = PeriodId {
        year: 1970,
        month: 1,
    };

    /// The month a timestamp (ms since the epoch) falls in, by the local date in NTT.
    pub fn of(unix_ms: i64) -> Self {
        let (year, month, _) = wita::civil(wita::day_of(unix_ms));
        PeriodId { year, month }
    }

    /// The period of `length` a timestamp falls in, named by its first month.
    pub fn of_length(unix_ms: i64, length: PeriodLength) -> Self {
        let month = Self::of(unix_ms);
        let months = length.months();
        PeriodId {
            month: (month.month - 1) / months * months + 1,
            ..month
        }
    }

    /// The first millisecond of the period: midnight WITA on the 1st of its month.
    pub fn start_ms(self) -> i64 {
        let month = time::Month::try_from(self.month as u8).expect("a period month is 1..=12");
        time::Date::from_calendar_date(self.year, month, 1)
            .map(|d| {
                d.midnight()
                    .assume_offset(
                        time::UtcOffset::from_whole_seconds(wita::OFFSET_MS as i32 / 1000)
                            .expect("WITA is a valid offset"),
                    )
                    .unix_timestamp()
                    .saturating_mul(1000)
            })
            .unwrap_or(i64::MAX)
    }

    pub fn next(self) -> Self {
        self.after(PeriodLength::MONTH)
    }

    /// The period of `length` that starts where this one (of that length) ends.
    pub fn after(self, length: PeriodLength) -> Self {
        let months = self.month - 1 + length.months();
        PeriodId {
            year: self.year + (months / 12) as i32,
            month: months % 12 + 1,
        }
    }

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid("period", format!("{value:?} is not YYYY-MM"));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        let (year, month) = value.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 || !digits(year) || !digits(month) {
            return Err(bad());
        }
        let (year, month) = (
            year.parse().map_err(|_| bad())?,
            month.parse().map_err(|_| bad())?,
        );
        if value.len() != 7 || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(PeriodId { year, month })
    }
}

/// How many months one ledger period covers: a divisor of twelve, so periods never
/// straddle a year and every node cuts them at the same dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodLength(u32);

impl PeriodLength {
    pub const MONTH: PeriodLength = PeriodLength(1);

    pub fn months_of(months: u32) -> Result<Self, DomainError> {
        if [1, 2, 3, 4, 6, 12].contains(&months) {
            Ok(PeriodLength(months))
        } else {
            Err(DomainError::invalid(
                "months_per_period",
                format!("must divide a year (1, 2, 3, 4, 6 or 12), got {months}"),
            ))
        }
    }

    pub fn months(self) -> u32 {
        self.0
    }
}

impl Default for PeriodLength {
    fn default() -> Self {
        Self::MONTH
    }
}

impl fmt::Display for PeriodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::{Balances, Ledger};
    use crate::domain::movement::{AdjustReason, Buyer, Channel, Movement, MovementKind};
    use proptest::prelude::*;

    #[test]
    fn a_period_starts_at_midnight_wita_on_the_first() {
        // 2026-12-31 16:00:00 UTC is 2027-01-01 00:00 WITA.
        let start = PeriodId::parse("2027-01").unwrap().start_ms();
        assert_eq!(start, 1_798_732_800_000);
        assert_eq!(PeriodId::of(start), PeriodId::parse("2027-01").unwrap());
        assert_eq!(PeriodId::of(start - 1), PeriodId::parse("2026-12").unwrap());
    }

    #[test]
    fn months_turn_at_midnight_wita() {
        // 2026-11-30 15:59:59 UTC is 23:59:59 WITA on the 30th; a second later it is
        // December in NTT.
        let last = 1_796_054_399_000;
        assert_eq!(PeriodId::of(last).to_string(), "2026-11");
        assert_eq!(PeriodId::of(last + 1000).to_string(), "2026-12");
        assert_eq!(
            PeriodId::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        let quarter = PeriodLength::months_of(3).unwrap();
        assert_eq!(PeriodId::of_length(last, quarter).to_string(), "2026-10");
        assert_eq!(
            PeriodId::of_length(last + 1000, quarter).to_string(),
            "2026-10"
        );
        assert!(PeriodLength::months_of(5).is_err());
        assert_eq!(
            PeriodId::parse("2026-10")
                .unwrap()
                .after(quarter)
                .to_string(),
            "2027-01"
        );
        for bad in [
            "2026-13", "2026-1", "26-11", "2026/11", "", "+026-11", "2026-+1", "2026-00",
        ] {
            assert!(PeriodId::parse(bad).is_err(), "{bad}");
        }
    }

    fn kind() -> impl Strategy<Value = MovementKind> {
        prop_oneof![
            (1i64..30).prop_map(|q| MovementKind::Receipt {
                quantity: q,
                unit_cost: 1_000,
                producer: None,
                over_budget: (q % 7 == 0).then(|| "lebaran".to_string()),
            }),
            (1i64..10).prop_map(|q| MovementKind::Sale {
                quantity: q,
                unit_price: Some(2_000),
                channel: Channel::Store,
                buyer: Buyer::Asn,
                order: None,
                basket: None,
            }),
            (-5i64..5)
                .prop_filter("non-zero", |d| *d != 0)
                .prop_map(|d| MovementKind::Adjustment {
                    delta: d,
                    reason: AdjustReason::Count,
                    note: String::new(),
                }),
            (1i64..10, 0u32..50).prop_map(|(q, t)| MovementKind::TransferOut {
                quantity: q,
                transfer_id: format!("t{t}"),
                to: "sikka".into(),
            }),
            (1i64..10, 0u32..50).prop_map(|(q, t)| MovementKind::TransferIn {
                quantity: q,
                transfer_id: format!("t{t}"),
                from: "alor".into(),
            }),
            (1i64..10).prop_map(|q| MovementKind::QuotaGrant { quantity: q }),
            (1i64..5).prop_map(|q| MovementKind::QuotaReturn { quantity: q }),
            (1i64..5, 0u32..20).prop_map(|(q, o)| MovementKind::OrderCancel {
                quantity: q,
                order: format!("o{o}"),
            }),
        ]
    }

    proptest! {
        /// Cutting a ledger's history into periods at any points, each period opened
        /// with the previous one's closing balances (through their stored JSON form),
        /// gives exactly the figures of the whole history read at once, and the same
        /// refusals for the next movement.
        #[test]
        fn period_by_period_equals_one_history(
            kinds in prop::collection::vec((0usize..3, kind()), 1..150),
            cuts in prop::collection::vec(0usize..150, 0..6),
        ) {
            let mut whole = Ledger::default();
            let mut accepted = Vec::new();
            for (i, (sku, kind)) in kinds.into_iter().enumerate() {
                let m = Movement { id: format!("m{i}"), sku: format!("SKU-{sku}"), at_ms: 1_000 + i as i64, kind };
                if whole.check(&m, whole.granted(&m.sku)).is_ok() {
                    whole.apply(&m).unwrap();
                    accepted.push(m);
                }
            }
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c < accepted.len()).collect();
            cuts.sort();
            cuts.dedup();
            let mut opening = Balances::default();
            let mut start = 0;
            let mut last = Ledger::default();
            for end in cuts.into_iter().chain(std::iter::once(accepted.len())) {
                let stored = serde_json::to_string(&opening).unwrap();
                let reopened: Balances = serde_json::from_str(&stored).unwrap();
                prop_assert_eq!(&reopened, &opening);
                last = Ledger::replay_from(reopened, &accepted[start..end]).unwrap();
                opening = last.closing().clone();
                start = end;
            }
            prop_assert_eq!(last.closing(), whole.closing());
            for sku in ["SKU-0", "SKU-1", "SKU-2"] {
                prop_assert_eq!(last.on_hand(sku), whole.on_hand(sku));
                let probe = Movement { id: "probe".into(), sku: sku.into(), at_ms: 9_999, kind: MovementKind::TransferIn { quantity: 1, transfer_id: "t1".into(), from: "alor".into() } };
                prop_assert_eq!(last.check(&probe, 0).is_ok(), whole.check(&probe, 0).is_ok());
            }
        }
    }
}
