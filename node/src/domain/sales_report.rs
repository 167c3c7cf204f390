//! Sales reports: the sales of outlet ledgers totalled per local date in NTT (WITA,
//! UTC+8, no daylight saving), outlet, channel and buyer category.
//!
//! Pure functions of the movements and a date range. It must never read a clock or
//! a document, nor decide which ledgers a node may report on (the engine does). Its
//! sums saturate instead of overflowing: a ledger received from a peer is recorded
//! history that is not validated again, and a report over it must never panic.

use std::collections::BTreeMap;
use std::fmt;

use time::{Date, Month};

use super::doc_id::NodeId;
use super::movement::{Buyer, Channel, Movement, MovementKind};
use super::{bounds, text, DomainError};

/// WITA, the time of NTT, is UTC+8 all year.
pub const WITA_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// A calendar date in NTT. Ordered from past to future.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDate(Date);

impl LocalDate {
    /// Parses `YYYY-MM-DD` (a real calendar date, years 2000 to 2999); the error
    /// names `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, DomainError> {
        let value = text::date(field, value.trim())?;
        let bad =
            || DomainError::invalid(field, format!("must be a date YYYY-MM-DD, got {value:?}"));
        let (year, rest) = value.split_once('-').ok_or_else(bad)?;
        let (month, day) = rest.split_once('-').ok_or_else(bad)?;
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u8 = month.parse().map_err(|_| bad())?;
        let day: u8 = day.parse().map_err(|_| bad())?;
        let month = Month::try_from(month).map_err(|_| bad())?;
        Date::from_calendar_date(year, month, day)
            .map(LocalDate)
            .map_err(|_| bad())
    }

    /// The WITA date of a moment given in milliseconds since the Unix epoch; `None`
    /// for a moment outside the years the calendar covers (±9999).
    pub fn of_unix_ms(at_ms: i64) -> Option<Self> {
        let days = at_ms.checked_add(WITA_OFFSET_MS)?.div_euclid(DAY_MS);
        let julian = i32::try_from(days.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()?;
        Date::from_julian_day(julian).ok().map(LocalDate)
    }
}

impl LocalDate {
    /// The first millisecond of this date: midnight WITA.
    pub fn start_ms(self) -> i64 {
        (i64::from(self.0.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY) * DAY_MS - WITA_OFFSET_MS
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(f, "{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
    }
}

/// The local dates a report covers, both ends included; `from` is never after `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    from: LocalDate,
    to: LocalDate,
}

impl DateRange {
    /// Parses the fields `from` and `to`; the error names the bad one.
    pub fn parse(from: &str, to: &str) -> Result<Self, DomainError> {
        let from = LocalDate::parse("from", from)?;
        let to = LocalDate::parse("to", to)?;
        if to < from {
            return Err(DomainError::invalid(
                "to",
                format!("{to} is before from ({from})"),
            ));
        }
        Ok(DateRange { from, to })
    }

    pub fn from(&self) -> LocalDate {
        self.from
    }

    pub fn to(&self) -> LocalDate {
        self.to
    }

    pub fn contains(&self, date: LocalDate) -> bool {
        (self.from..=self.to).contains(&date)
    }
}

/// Number of sales, units and revenue of a set of sales.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SalesTotals {
    /// Sale lines (movements).
    pub sales: u64,
    /// Baskets: a sale recorded without a basket mark is a one-line basket.
    pub baskets: u64,
    pub units: i64,
    /// Quantity times unit price, summed, in rupiah.
    pub revenue_rupiah: i64,
}

impl SalesTotals {
    /// Adds one sale; a sum that would leave `i64` is refused, never wrapped or
    /// saturated (history keeps every number within [`super::bounds`], so only a
    /// report over an absurd number of sales could get here).
    fn add_sale(
        &mut self,
        quantity: i64,
        unit_price: i64,
        starts_basket: bool,
    ) -> Result<(), DomainError> {
        let revenue = bounds::line_rupiah(quantity, unit_price)?;
        self.add(&SalesTotals {
            sales: 1,
            baskets: u64::from(starts_basket),
            units: quantity,
            revenue_rupiah: revenue,
        })
    }

    fn add(&mut self, other: &SalesTotals) -> Result<(), DomainError> {
        *self = SalesTotals {
            sales: self
                .sales
                .checked_add(other.sales)
                .ok_or_else(|| DomainError::Overflow {
                    what: "number of sales".into(),
                    limit: format!("{}", u64::MAX),
                })?,
            baskets: self.baskets.saturating_add(other.baskets),
            units: bounds::add(|| "units sold".into(), self.units, other.units)?,
            revenue_rupiah: bounds::add(
                || "revenue".into(),
                self.revenue_rupiah,
                other.revenue_rupiah,
            )?,
        };
        Ok(())
    }
}

/// The sales of one local date, outlet, channel and buyer category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesRow {
    pub date: LocalDate,
    pub district: NodeId,
    pub channel: Channel,
    pub buyer: Buyer,
    pub totals: SalesTotals,
}

/// Whether a ledger is listed among the report's districts when none of its sales
/// falls in the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Always,
    /// Only with a sale in the period (the hub's own ledger: the provincial office
    /// may or may not sell).
    WhenSold,
}

/// Rows are ordered by date, district, channel (store first), buyer (public first).
type RowKey = (LocalDate, NodeId, u8, u8);

fn channel_rank(channel: Channel) -> u8 {
    match channel {
        Channel::Store => 0,
        Channel::Online => 1,
    }
}

fn buyer_rank(buyer: Buyer) -> u8 {
    match buyer {
        Buyer::Public => 0,
        Buyer::Asn => 1,
    }
}

/// A sales report being built from ledgers.
///
/// Laws: [`SalesReport::totals`] is the sum of the rows; every row has at least one
/// sale and a date in the range; a sale counts in exactly one row, the one of its
/// WITA date, outlet, channel and buyer, and only when its date is in the range.
#[derive(Debug, Clone)]
pub struct SalesReport {
    range: DateRange,
    districts: Vec<NodeId>,
    rows: BTreeMap<RowKey, SalesRow>,
    /// The sum of the rows, kept as they grow (each sum checked).
    totals: SalesTotals,
}

impl SalesReport {
    pub fn new(range: DateRange) -> Self {
        SalesReport {
            range,
            districts: Vec::new(),
            rows: BTreeMap::new(),
            totals: SalesTotals::default(),
        }
    }

    pub fn range(&self) -> DateRange {
        self.range
    }

    /// Adds the sales of `district`'s ledger whose WITA date is in the range, and
    /// returns their totals. Other movements are ignored; a sale recorded without a
    /// price (none is, see [`MovementKind::filled`]) counts with no revenue. A sum
    /// beyond `i64` is an error ([`DomainError::Overflow`]).
    pub fn add_ledger<'a>(
        &mut self,
        district: &NodeId,
        movements: impl IntoIterator<Item = &'a Movement>,
        listed: Listed,
    ) -> Result<SalesTotals, DomainError> {
        let mut added = SalesTotals::default();
        for movement in movements {
            let MovementKind::Sale {
                quantity,
                unit_price,
                channel,
                buyer,
                order: None,
                basket,
            } = movement.kind
            else {
                continue;
            };
            let starts = basket.is_none_or(|mark| mark.is_first());
            let Some(date) = LocalDate::of_unix_ms(movement.at_ms) else {
                continue;
            };
            if !self.range.contains(date) {
                continue;
            }
            let key = (
                date,
                district.clone(),
                channel_rank(channel),
                buyer_rank(buyer),
            );
            let row = self.rows.entry(key).or_insert_with(|| SalesRow {
                date,
                district: district.clone(),
                channel,
                buyer,
                totals: SalesTotals::default(),
            });
            let price = unit_price.unwrap_or(0);
            row.totals.add_sale(quantity, price, starts)?;
            added.add_sale(quantity, price, starts)?;
            self.totals.add_sale(quantity, price, starts)?;
        }
        if (listed == Listed::Always || added.sales > 0) && !self.districts.contains(district) {
            self.districts.push(district.clone());
            self.districts.sort();
        }
        Ok(added)
    }

    /// The outlets whose ledgers the report covers, sorted.
    pub fn districts(&self) -> &[NodeId] {
        &self.districts
    }

    /// The rows, ordered by date, district, channel (store first), buyer (public
    /// first).
    pub fn rows(&self) -> impl Iterator<Item = &SalesRow> {
        self.rows.values()
    }

    /// The sums over every row.
    pub fn totals(&self) -> SalesTotals {
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-11-30T15:59:59.999Z, the last millisecond of 30 November in WITA.
    const LAST_MS_OF_NOV_30: i64 = 1_796_054_399_999;

    fn node(id: &str) -> NodeId {
        NodeId::parse(id).unwrap()
    }

    fn date(s: &str) -> LocalDate {
        LocalDate::parse("date", s).unwrap()
    }

    fn sale(
        id: &str,
        at_ms: i64,
        quantity: i64,
        price: i64,
        channel: Channel,
        buyer: Buyer,
    ) -> Movement {
        Movement {
            id: id.into(),
            sku: "TTU-MKP-060".into(),
            at_ms,
            kind: MovementKind::Sale {
                quantity,
                unit_price: Some(price),
                channel,
                buyer,
                order: None,
                basket: None,
            },
        }
    }

    #[test]
    fn a_date_starts_at_midnight_wita() {
        let d = date("2026-12-01");
        assert_eq!(LocalDate::of_unix_ms(d.start_ms()), Some(d));
        assert_eq!(
            LocalDate::of_unix_ms(d.start_ms() - 1),
            Some(date("2026-11-30"))
        );
        // 2026-12-01 00:00 WITA is 2026-11-30 16:00 UTC.
        assert_eq!(d.start_ms(), 1_796_054_400_000);
    }

    #[test]
    fn the_local_date_turns_at_midnight_wita_which_is_16_00_utc() {
        assert_eq!(
            LocalDate::of_unix_ms(LAST_MS_OF_NOV_30)
                .unwrap()
                .to_string(),
            "2026-11-30"
        );
        assert_eq!(
            LocalDate::of_unix_ms(LAST_MS_OF_NOV_30 + 1)
                .unwrap()
                .to_string(),
            "2026-12-01"
        );
        // 23:59 and 00:00 WITA.
        let at_23_59 = LAST_MS_OF_NOV_30 + 1 - 60_000;
        assert_eq!(LocalDate::of_unix_ms(at_23_59), Some(date("2026-11-30")));
        // 00:00 UTC is already 08:00 WITA of the same date.
        assert_eq!(
            LocalDate::of_unix_ms(1_796_000_400_000),
            Some(date("2026-11-30"))
        );
        assert_eq!(LocalDate::of_unix_ms(0), Some(date_unchecked(1970, 1, 1)));
        assert_eq!(
            LocalDate::of_unix_ms(-8 * 3_600_000 - 1)
                .unwrap()
                .to_string(),
            "1969-12-31"
        );
        assert_eq!(LocalDate::of_unix_ms(i64::MAX), None);
        assert_eq!(LocalDate::of_unix_ms(i64::MIN), None);
    }

    fn date_unchecked(y: i32, m: u8, d: u8) -> LocalDate {
        LocalDate(Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap())
    }

    #[test]
    fn a_sale_at_23_59_wita_and_one_at_00_00_fall_on_their_own_dates() {
        let range = DateRange::parse("2026-11-30", "2026-11-30").unwrap();
        let midnight = LAST_MS_OF_NOV_30 + 1;
        let ledger = [
            sale(
                "late",
                midnight - 60_000,
                2,
                35_000,
                Channel::Store,
                Buyer::Asn,
            ),
            sale("next-day", midnight, 5, 35_000, Channel::Store, Buyer::Asn),
        ];
        let mut report = SalesReport::new(range);
        report
            .add_ledger(&node("ttu"), &ledger, Listed::Always)
            .unwrap();
        let rows: Vec<_> = report.rows().collect();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].date.to_string(), "2026-11-30");
        assert_eq!(rows[0].totals.units, 2);

        let next = DateRange::parse("2026-12-01", "2026-12-01").unwrap();
        let mut report = SalesReport::new(next);
        report
            .add_ledger(&node("ttu"), &ledger, Listed::Always)
            .unwrap();
        assert_eq!(
            report.totals(),
            SalesTotals {
                sales: 1,
                baskets: 1,
                units: 5,
                revenue_rupiah: 175_000
            }
        );
    }

    #[test]
    fn rows_split_by_date_district_channel_and_buyer_in_order() {
        let day = 86_400_000;
        let noon = LAST_MS_OF_NOV_30 - 12 * 3_600_000;
        let ttu = [
            sale("a", noon, 1, 35_000, Channel::Online, Buyer::Public),
            sale("b", noon, 2, 35_000, Channel::Store, Buyer::Asn),
            sale("c", noon + 1, 3, 40_000, Channel::Store, Buyer::Asn),
            sale("d", noon + day, 1, 10_000, Channel::Store, Buyer::Public),
        ];
        let sikka = [sale("e", noon, 4, 25_000, Channel::Store, Buyer::Public)];
        let mut report = SalesReport::new(DateRange::parse("2026-11-30", "2026-12-01").unwrap());
        report
            .add_ledger(&node("ttu"), &ttu, Listed::Always)
            .unwrap();
        report
            .add_ledger(&node("sikka"), &sikka, Listed::Always)
            .unwrap();
        let rows: Vec<(String, &str, Channel, Buyer, u64, i64, i64)> = report
            .rows()
            .map(|r| {
                (
                    r.date.to_string(),
                    r.district.as_str(),
                    r.channel,
                    r.buyer,
                    r.totals.sales,
                    r.totals.units,
                    r.totals.revenue_rupiah,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "2026-11-30".into(),
                    "sikka",
                    Channel::Store,
                    Buyer::Public,
                    1,
                    4,
                    100_000
                ),
                (
                    "2026-11-30".into(),
                    "ttu",
                    Channel::Store,
                    Buyer::Asn,
                    2,
                    5,
                    190_000
                ),
                (
                    "2026-11-30".into(),
                    "ttu",
                    Channel::Online,
                    Buyer::Public,
                    1,
                    1,
                    35_000
                ),
                (
                    "2026-12-01".into(),
                    "ttu",
                    Channel::Store,
                    Buyer::Public,
                    1,
                    1,
                    10_000
                ),
            ]
        );
        assert_eq!(report.districts(), [node("sikka"), node("ttu")]);
    }

    #[test]
    fn other_movements_do_not_count_and_a_hub_ledger_without_sales_is_not_listed() {
        let noon = LAST_MS_OF_NOV_30 - 12 * 3_600_000;
        let receipt = Movement {
            id: "r".into(),
            sku: "TTU-MKP-060".into(),
            at_ms: noon,
            kind: MovementKind::Receipt {
                quantity: 10,
                unit_cost: 20_000,
                producer: None,
                over_budget: None,
            },
        };
        let mut report = SalesReport::new(DateRange::parse("2026-11-30", "2026-11-30").unwrap());
        let added = report
            .add_ledger(&node("kupang"), [&receipt], Listed::WhenSold)
            .unwrap();
        assert_eq!(added, SalesTotals::default());
        report
            .add_ledger(&node("ttu"), [&receipt], Listed::Always)
            .unwrap();
        assert_eq!(report.districts(), [node("ttu")]);
        assert_eq!(report.rows().count(), 0);
        let sold = sale("s", noon, 1, 5_000, Channel::Store, Buyer::Public);
        report
            .add_ledger(&node("kupang"), [&sold], Listed::WhenSold)
            .unwrap();
        assert_eq!(report.districts(), [node("kupang"), node("ttu")]);
    }

    #[test]
    fn forged_amounts_are_refused_instead_of_wrapping() {
        let noon = LAST_MS_OF_NOV_30 - 12 * 3_600_000;
        let mut report = SalesReport::new(DateRange::parse("2026-11-30", "2026-11-30").unwrap());
        let huge = [sale(
            "a",
            noon,
            i64::MAX,
            i64::MAX,
            Channel::Store,
            Buyer::Public,
        )];
        assert!(matches!(
            report.add_ledger(&node("ttu"), &huge, Listed::Always),
            Err(DomainError::Overflow { .. })
        ));
        // Revenue at the bounds adds up exactly, until i64 ends.
        let max = sale(
            "b",
            noon,
            bounds::MAX_QUANTITY,
            bounds::MAX_UNIT_RUPIAH,
            Channel::Store,
            Buyer::Public,
        );
        let mut report = SalesReport::new(DateRange::parse("2026-11-30", "2026-11-30").unwrap());
        let many = vec![&max; 9_000];
        let totals = report
            .add_ledger(&node("ttu"), many, Listed::Always)
            .unwrap();
        assert_eq!(totals.revenue_rupiah, 9_000 * bounds::MAX_LINE_RUPIAH);
        assert_eq!(report.totals(), totals);
        let more = vec![&max; 300];
        assert!(matches!(
            report.add_ledger(&node("sikka"), more, Listed::Always),
            Err(DomainError::Overflow { .. })
        ));
    }

    #[test]
    fn bad_dates_and_reversed_ranges_name_the_field() {
        let field = |e: DomainError| match e {
            DomainError::InvalidField { field, .. } => field,
            other => panic!("expected an invalid field, got {other}"),
        };
        assert_eq!(
            field(DateRange::parse("2026-02-30", "2026-03-01").unwrap_err()),
            "from"
        );
        assert_eq!(
            field(DateRange::parse("2026-03-01", "1-3-2026").unwrap_err()),
            "to"
        );
        assert_eq!(
            field(DateRange::parse("", "2026-03-01").unwrap_err()),
            "from"
        );
        assert_eq!(
            field(DateRange::parse("2026-03-01", "2026-+3-01").unwrap_err()),
            "to"
        );
        let reversed = DateRange::parse("2026-03-02", "2026-03-01").unwrap_err();
        assert_eq!(
            reversed.to_string(),
            "to: 2026-03-01 is before from (2026-03-02)"
        );
        let one_day = DateRange::parse(" 2028-02-29", "2028-02-29 ").unwrap();
        assert!(one_day.contains(date("2028-02-29")));
        assert!(!one_day.contains(date("2028-03-01")));
    }

    fn channel_and_buyer() -> impl Strategy<Value = (Channel, Buyer)> {
        (
            prop_oneof![Just(Channel::Store), Just(Channel::Online)],
            prop_oneof![Just(Buyer::Public), Just(Buyer::Asn)],
        )
    }

    /// A movement within six days from 2026-11-28 00:00 WITA, half of them sales.
    fn movement() -> impl Strategy<Value = Movement> {
        let start = LAST_MS_OF_NOV_30 + 1 - 3 * DAY_MS;
        let at = start..start + 6 * DAY_MS;
        let kind = prop_oneof![
            (1i64..50, 0i64..200_000, channel_and_buyer()).prop_map(|(q, p, (channel, buyer))| {
                MovementKind::Sale {
                    quantity: q,
                    unit_price: Some(p),
                    channel,
                    buyer,
                    order: None,
                    basket: None,
                }
            }),
            (1i64..50).prop_map(|q| MovementKind::Receipt {
                quantity: q,
                unit_cost: 1_000,
                producer: None,
                over_budget: None,
            }),
            (1i64..50).prop_map(|q| MovementKind::TransferOut {
                quantity: q,
                transfer_id: "t".into(),
                to: "sikka".into()
            }),
        ];
        (at, kind).prop_map(|(at_ms, kind)| Movement {
            id: String::new(),
            sku: "S".into(),
            at_ms,
            kind,
        })
    }

    proptest! {
        #[test]
        fn totals_are_the_sum_of_the_sales_in_the_period(
            ledgers in prop::collection::vec(prop::collection::vec(movement(), 0..60), 1..4),
            first in 0i64..6,
            days in 0i64..6,
        ) {
            let day = |n: i64| LocalDate::of_unix_ms(LAST_MS_OF_NOV_30 + 1 + (n - 3) * DAY_MS).unwrap();
            let range = DateRange::parse(&day(first).to_string(), &day(first + days).to_string()).unwrap();
            let districts = ["ttu", "sikka", "alor"];
            let mut report = SalesReport::new(range);
            for (ledger, id) in ledgers.iter().zip(districts) {
                report.add_ledger(&node(id), ledger, Listed::Always).unwrap();
            }

            // Expected, sale by sale.
            let mut expected = SalesTotals::default();
            let mut per_row: BTreeMap<(String, &str, u8, u8), SalesTotals> = BTreeMap::new();
            for (ledger, id) in ledgers.iter().zip(districts) {
                for m in ledger {
                    if let MovementKind::Sale { quantity, unit_price, channel, buyer, .. } = m.kind {
                        let date = LocalDate::of_unix_ms(m.at_ms).unwrap();
                        if date >= range.from() && date <= range.to() {
                            let price = unit_price.unwrap();
                            expected.sales += 1;
                            expected.baskets += 1;
                            expected.units += quantity;
                            expected.revenue_rupiah += quantity * price;
                            let key = (date.to_string(), id, channel_rank(channel), buyer_rank(buyer));
                            per_row.entry(key).or_default().add_sale(quantity, price, true).unwrap();
                        }
                    }
                }
            }
            prop_assert_eq!(report.totals(), expected);
            let mut summed = SalesTotals::default();
            let mut keys = Vec::new();
            for row in report.rows() {
                prop_assert!(row.totals.sales > 0);
                prop_assert!(range.contains(row.date));
                summed.add(&row.totals).unwrap();
                let key = (row.date.to_string(), row.district.as_str(), channel_rank(row.channel), buyer_rank(row.buyer));
                prop_assert_eq!(Some(&row.totals), per_row.get(&key), "row {:?}", key);
                keys.push(key);
            }
            prop_assert_eq!(summed, expected);
            prop_assert_eq!(keys.len(), per_row.len());
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "rows out of order: {:?}", keys);
            prop_assert_eq!(report.districts().len(), ledgers.len());
        }

        #[test]
        fn the_local_date_is_the_date_at_utc_plus_8(at_ms in -4_000_000_000_000i64..40_000_000_000_000) {
            let expected = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
                .unwrap()
                .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
                .date();
            prop_assert_eq!(LocalDate::of_unix_ms(at_ms), Some(LocalDate(expected)));
        }
    }
}
