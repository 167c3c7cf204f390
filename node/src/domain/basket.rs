//! The cashier's basket: the lines of one sale rung up together, paid together, under
//! one receipt number.
//!
//! Schema (an additive change within ledger schema version 1, see
//! [`super::schema_version`] and "Baskets" in docs/ARCHITECTURE.md): a basket of `n`
//! lines is `n` sale movements appended to the ledger's movement list in one automerge
//! change, in line order. Each line carries a [`BasketMark`] under the key `bk`: the
//! first line `{"n": lines, "rc": receipt, "pm": payment}`, line `i > 1` `{"l": i}`.
//! The first line's id is the basket's id (the request id); line `i > 1` has the id
//! `<basket id>/<i>`, which no request id can take ('/' is not allowed in one). A sale
//! without a mark (every sale written before baskets, an online order's fulfilment, a
//! single-line `RecordSale` of an old client) reads as a one-line basket without a
//! receipt number.
//!
//! Receipt numbers count the baskets recorded with a mark, per outlet, from 1, without
//! gaps: the count is carried from period to period in the ledger's balances, and
//! history whose receipt numbers skip or repeat one is a schema break.
//!
//! This module must never read a clock or a store: plain types and checks.

use serde::{Deserialize, Serialize};

use super::{bounds, DomainError};

/// Most lines one basket may hold.
pub const MAX_LINES: usize = 200;

/// How the buyer paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payment {
    Cash,
    /// Indonesia's standard QR code payment.
    Qris,
    /// Bank transfer.
    Transfer,
    /// A government invoice (an office buying for itself, paid later).
    Invoice,
}

impl Payment {
    pub fn name(self) -> &'static str {
        match self {
            Payment::Cash => "cash",
            Payment::Qris => "qris",
            Payment::Transfer => "transfer",
            Payment::Invoice => "invoice",
        }
    }
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// Where a sale line stands in its basket. On the first line (`line` 0 in the JSON,
/// read as 1) `lines`, `receipt` and `payment` are set; on the others only `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasketMark {
    /// 1-based line number; absent (0) on the first line.
    #[serde(rename = "l", default, skip_serializing_if = "is_zero_u32")]
    line: u32,
    /// Number of lines of the basket: on the first line only.
    #[serde(rename = "n", default, skip_serializing_if = "is_zero_u32")]
    pub lines: u32,
    /// The outlet's receipt number: on the first line only.
    #[serde(rename = "rc", default, skip_serializing_if = "is_zero_u64")]
    pub receipt: u64,
    #[serde(rename = "pm", default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
}

impl BasketMark {
    /// The mark of the first line of a basket of `lines` lines.
    pub fn first(lines: u32, receipt: u64, payment: Payment) -> Self {
        BasketMark {
            line: 0,
            lines,
            receipt,
            payment: Some(payment),
        }
    }

    /// The mark of line `line` (2 or more) of a basket.
    pub fn later(line: u32) -> Self {
        BasketMark {
            line,
            lines: 0,
            receipt: 0,
            payment: None,
        }
    }

    /// 1-based line number.
    pub fn line(&self) -> u32 {
        self.line.max(1)
    }

    pub fn is_first(&self) -> bool {
        self.line() == 1
    }
}

/// The id of line `line` (1-based) of the basket `basket`.
pub fn line_id(basket: &str, line: usize) -> String {
    if line <= 1 {
        basket.to_string()
    } else {
        format!("{basket}/{line}")
    }
}

/// A basket being read from history: its next line and running total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenBasket {
    next_line: u32,
    lines: u32,
    total_rupiah: i64,
}

/// What a ledger tracks of baskets while it replays history: the receipt numbers
/// given so far (carried in its balances) and the basket whose lines are being read.
/// Rules: a basket's lines follow each other, in order, with nothing between; its
/// first line carries the next receipt number and at most [`MAX_LINES`] lines; its
/// total stays within [`bounds::MAX_LINE_RUPIAH`].
pub fn next_state(
    receipts: u64,
    open: Option<OpenBasket>,
    mark: Option<&BasketMark>,
    line_rupiah: i64,
) -> Result<(u64, Option<OpenBasket>), DomainError> {
    let invalid = |reason: String| DomainError::invalid("basket", reason);
    let (receipts, basket) = match (open, mark) {
        (None, None) => return Ok((receipts, None)),
        (Some(open), None) => {
            return Err(invalid(format!(
                "line {} of {} missing: another movement came first",
                open.next_line, open.lines
            )))
        }
        (None, Some(mark)) if mark.is_first() => {
            if mark.lines == 0 || mark.lines as usize > MAX_LINES {
                return Err(invalid(format!(
                    "{} lines, beyond 1..={MAX_LINES}",
                    mark.lines
                )));
            }
            let expected = receipts
                .checked_add(1)
                .ok_or_else(|| invalid("receipt numbers exhausted".into()))?;
            if mark.receipt != expected {
                return Err(invalid(format!(
                    "receipt number {} where {expected} is next",
                    mark.receipt
                )));
            }
            let open = OpenBasket {
                next_line: 1,
                lines: mark.lines,
                total_rupiah: 0,
            };
            (expected, open)
        }
        (None, Some(mark)) => {
            return Err(invalid(format!(
                "line {} without the lines before it",
                mark.line()
            )))
        }
        (Some(open), Some(mark)) if mark.is_first() || mark.line() != open.next_line => {
            return Err(invalid(format!(
                "line {} where line {} of {} is next",
                mark.line(),
                open.next_line,
                open.lines
            )))
        }
        (Some(open), Some(_)) => (receipts, open),
    };
    let total_rupiah = bounds::add(|| "basket total".into(), basket.total_rupiah, line_rupiah)?;
    if total_rupiah > bounds::MAX_LINE_RUPIAH {
        return Err(invalid(format!(
            "total of Rp {total_rupiah} beyond Rp {}",
            bounds::MAX_LINE_RUPIAH
        )));
    }
    let after = OpenBasket {
        next_line: basket.next_line + 1,
        total_rupiah,
        ..basket
    };
    Ok((receipts, (after.next_line <= after.lines).then_some(after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(marks: &[Option<BasketMark>]) -> Result<(u64, Option<OpenBasket>), DomainError> {
        marks.iter().try_fold((0, None), |(r, open), m| {
            next_state(r, open, m.as_ref(), 1_000)
        })
    }

    #[test]
    fn baskets_read_in_order_and_count_receipts() {
        let first = |n, rc| Some(BasketMark::first(n, rc, Payment::Qris));
        let later = |l| Some(BasketMark::later(l));
        assert_eq!(read(&[None, None]).unwrap(), (0, None));
        let fine = [None, first(3, 1), later(2), later(3), first(1, 2), None];
        assert_eq!(read(&fine).unwrap(), (2, None));
        let (_, open) = read(&[first(3, 1), later(2)]).unwrap();
        assert!(open.is_some(), "a basket read halfway is still open");
        for broken in [
            vec![first(2, 2)],
            vec![first(2, 1), None],
            vec![first(2, 1), later(3)],
            vec![first(1, 1), later(2)],
            vec![later(2)],
            vec![first(0, 1)],
            vec![first(201, 1)],
            vec![first(1, 1), first(1, 1)],
        ] {
            assert!(read(&broken).is_err(), "{broken:?}");
        }
    }

    #[test]
    fn the_mark_is_compact_json() {
        let first = serde_json::to_string(&BasketMark::first(3, 17, Payment::Qris)).unwrap();
        assert_eq!(first, r#"{"n":3,"rc":17,"pm":"qris"}"#);
        let later = serde_json::to_string(&BasketMark::later(2)).unwrap();
        assert_eq!(later, r#"{"l":2}"#);
        assert_eq!(line_id("r-1", 1), "r-1");
        assert_eq!(line_id("r-1", 3), "r-1/3");
    }

    #[test]
    fn a_basket_total_is_bounded() {
        let mark = BasketMark::first(2, 1, Payment::Cash);
        let (r, open) = next_state(0, None, Some(&mark), bounds::MAX_LINE_RUPIAH).unwrap();
        let err = next_state(r, open, Some(&BasketMark::later(2)), 1).unwrap_err();
        assert!(err.to_string().contains("total"), "{err}");
    }
}
