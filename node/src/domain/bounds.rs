//! The bounds of every number that crosses the API or arrives in a peer's history,
//! in one place: quantities, unit prices and costs, budgets, reorder levels, the
//! time of a movement, and the running balances they add up to.
//!
//! A client's number beyond its bound is refused as an invalid field (gRPC
//! `INVALID_ARGUMENT`); the same number in incoming history is a schema break. A sum
//! that would leave its bound is refused too ([`DomainError::Overflow`]), never
//! wrapped or saturated.
//!
//! Why these values: a real outlet moves at most thousands of units of a SKU at once
//! and sells nothing above a few million rupiah a unit, so each bound leaves a
//! thousandfold headroom or more. Their products stay far inside `i64`
//! (about 9.2 x 10^18): one line costs at most [`MAX_LINE_RUPIAH`] = 10^15, a stock
//! balance of [`MAX_BALANCE_UNITS`] valued at [`MAX_UNIT_RUPIAH`] is 10^21 and is
//! computed in `i128`; a handful of bounded balances added or subtracted
//! (`granted - released - accepted + cancelled`) cannot overflow.
//!
//! It must never use `abs()` on an untrusted number (`i64::MIN.abs()` wraps), nor
//! `+`, `-` or `*` on one that is not bounded here first.

use super::DomainError;

/// Largest quantity of one movement, order or quota change, in units.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// Largest unit price or unit cost, in rupiah (Rp 1 billion).
pub const MAX_UNIT_RUPIAH: i64 = 1_000_000_000;
/// Largest cost of one receipt: [`MAX_QUANTITY`] x [`MAX_UNIT_RUPIAH`] (Rp 10^15).
pub const MAX_LINE_RUPIAH: i64 = MAX_QUANTITY * MAX_UNIT_RUPIAH;
/// Largest budget allocation of a district for a year, in rupiah (Rp 10^15, about a
/// third of Indonesia's national budget).
pub const MAX_BUDGET_RUPIAH: i64 = 1_000_000_000_000_000;
/// Largest running balance of a SKU, in units: stock on hand, and the quota granted,
/// fulfilled, cancelled, accepted and released ever (a million movements of the
/// largest quantity).
pub const MAX_BALANCE_UNITS: i64 = 1_000_000_000_000;
/// Earliest time a movement, order or allocation may carry: the Unix epoch.
pub const MIN_TIME_MS: i64 = 0;
/// Latest time a movement, order or allocation may carry: 3000-01-01 00:00 UTC.
pub const MAX_TIME_MS: i64 = 32_503_680_000_000;
/// Years a budget may be allocated for.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=9999;

fn within(
    field: &'static str,
    value: i64,
    min: i64,
    max: i64,
    unit: &str,
) -> Result<i64, DomainError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be between {min} and {max}{unit}, got {value}"),
        ))
    }
}

/// A quantity of one movement, order or quota change: 1 to [`MAX_QUANTITY`].
pub fn quantity(field: &'static str, value: i64) -> Result<i64, DomainError> {
    within(field, value, 1, MAX_QUANTITY, "")
}

/// Zero (not set) or a [`quantity`].
pub fn quantity_or_zero(field: &'static str, value: i64) -> Result<i64, DomainError> {
    within(field, value, 0, MAX_QUANTITY, "")
}

/// A signed change of stock (an adjustment): non-zero, at most [`MAX_QUANTITY`]
/// either way.
pub fn change(field: &'static str, value: i64) -> Result<i64, DomainError> {
    if value == 0 || !(-MAX_QUANTITY..=MAX_QUANTITY).contains(&value) {
        return Err(DomainError::invalid(
            field,
            format!(
                "must be a non-zero change between -{MAX_QUANTITY} and {MAX_QUANTITY}, got {value}"
            ),
        ));
    }
    Ok(value)
}

/// A unit price or cost: 0 to [`MAX_UNIT_RUPIAH`].
pub fn unit_rupiah(field: &'static str, value: i64) -> Result<i64, DomainError> {
    within(field, value, 0, MAX_UNIT_RUPIAH, " rupiah")
}

/// A budget allocation: 0 to [`MAX_BUDGET_RUPIAH`].
pub fn budget_rupiah(field: &'static str, value: i64) -> Result<i64, DomainError> {
    within(field, value, 0, MAX_BUDGET_RUPIAH, " rupiah")
}

/// A year a budget may be allocated for.
pub fn year(field: &'static str, value: i32) -> Result<i32, DomainError> {
    if YEARS.contains(&value) {
        Ok(value)
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be {}-{}, got {value}", YEARS.start(), YEARS.end()),
        ))
    }
}

/// The time (ms since the Unix epoch) a recorded entry carries.
pub fn time_ms(field: &'static str, value: i64) -> Result<i64, DomainError> {
    within(field, value, MIN_TIME_MS, MAX_TIME_MS, " ms")
}

/// `balance + change` for a running balance of units, refused beyond
/// 0..=[`MAX_BALANCE_UNITS`] (`what` names the balance).
pub fn add_units(
    what: impl FnOnce() -> String,
    balance: i64,
    change: i64,
) -> Result<i64, DomainError> {
    balance
        .checked_add(change)
        .filter(|sum| (0..=MAX_BALANCE_UNITS).contains(sum))
        .ok_or_else(|| DomainError::Overflow {
            what: what(),
            limit: format!("0 to {MAX_BALANCE_UNITS} units"),
        })
}

/// `total + amount` for a sum (of rupiah, or a total of units across outlets),
/// refused where `i64` ends.
pub fn add(what: impl FnOnce() -> String, total: i64, amount: i64) -> Result<i64, DomainError> {
    total
        .checked_add(amount)
        .ok_or_else(|| DomainError::Overflow {
            what: what(),
            limit: format!("Rp {}", i64::MAX),
        })
}

/// What `quantity` units at `unit` rupiah cost, both already within their bounds (so
/// the product is at most [`MAX_LINE_RUPIAH`]); refused if they are not.
pub fn line_rupiah(quantity: i64, unit: i64) -> Result<i64, DomainError> {
    quantity
        .checked_mul(unit)
        .filter(|cost| (-MAX_LINE_RUPIAH..=MAX_LINE_RUPIAH).contains(cost))
        .ok_or_else(|| DomainError::Overflow {
            what: format!("{quantity} units at Rp {unit}"),
            limit: format!("Rp {MAX_LINE_RUPIAH}"),
        })
}

/// An `i128` total (of products of bounded values) as an `i64` answer, refused if
/// it does not fit.
pub fn narrow(what: impl FnOnce() -> String, total: i128) -> Result<i64, DomainError> {
    i64::try_from(total).map_err(|_| DomainError::Overflow {
        what: what(),
        limit: format!("{}", i64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn products_of_the_bounds_fit() {
        assert_eq!(MAX_LINE_RUPIAH, 1_000_000_000_000_000);
        assert!(i128::from(MAX_BALANCE_UNITS) * i128::from(MAX_UNIT_RUPIAH) < i128::MAX);
        // granted - released - accepted + cancelled, each within the balance bound.
        assert!(MAX_BALANCE_UNITS.checked_mul(4).is_some());
    }

    fn extreme() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            prop::sample::select(vec![
                i64::MIN,
                i64::MIN + 1,
                -MAX_QUANTITY - 1,
                -MAX_QUANTITY,
                -1,
                0,
                1,
                MAX_QUANTITY,
                MAX_QUANTITY + 1,
                MAX_UNIT_RUPIAH,
                MAX_UNIT_RUPIAH + 1,
                MAX_BUDGET_RUPIAH,
                MAX_BUDGET_RUPIAH + 1,
                MAX_BALANCE_UNITS,
                MAX_BALANCE_UNITS + 1,
                i64::MAX - 1,
                i64::MAX,
            ]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Each check accepts exactly its documented range, whatever the value.
        #[test]
        fn each_bound_accepts_exactly_its_range(v in extreme(), w in extreme()) {
            prop_assert_eq!(quantity("q", v).is_ok(), (1..=MAX_QUANTITY).contains(&v));
            prop_assert_eq!(quantity_or_zero("q", v).is_ok(), (0..=MAX_QUANTITY).contains(&v));
            prop_assert_eq!(change("q", v).is_ok(), v != 0 && i128::from(v).abs() <= i128::from(MAX_QUANTITY));
            prop_assert_eq!(unit_rupiah("p", v).is_ok(), (0..=MAX_UNIT_RUPIAH).contains(&v));
            prop_assert_eq!(budget_rupiah("b", v).is_ok(), (0..=MAX_BUDGET_RUPIAH).contains(&v));
            let sum = i128::from(v) + i128::from(w);
            match add_units(|| "stock".into(), v, w) {
                Ok(s) => prop_assert!(i128::from(s) == sum && (0..=MAX_BALANCE_UNITS).contains(&s)),
                Err(e) => prop_assert!(sum < 0 || sum > i128::from(MAX_BALANCE_UNITS), "{e}"),
            }
            match add(|| "spend".into(), v, w) {
                Ok(s) => prop_assert_eq!(i128::from(s), sum),
                Err(_) => prop_assert!(sum > i128::from(i64::MAX) || sum < i128::from(i64::MIN)),
            }
            let product = i128::from(v) * i128::from(w);
            match line_rupiah(v, w) {
                Ok(c) => prop_assert_eq!(i128::from(c), product),
                Err(_) => prop_assert!(product.abs() > i128::from(MAX_LINE_RUPIAH)),
            }
        }
    }
}
