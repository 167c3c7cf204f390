//! Validity windows of certificates: `now - 1h .. now + days` by default, or explicit
//! dates, so that tests can make a certificate that has expired or not started yet.
//!
//! It must never produce an empty or reversed window and never read the machine's time
//! zone: dates are UTC days, a not-before date starting at 00:00:00Z and a not-after
//! date ending at 23:59:59Z (both days included).

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, Time};

/// How far back a default window starts, so a peer whose clock runs a little behind
/// still accepts a certificate issued a moment ago.
const BACKDATE: Duration = Duration::hours(1);

/// When a certificate is valid, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From `now - 1h` to `now + days`.
    pub fn from_now(now: OffsetDateTime, days: u32) -> Result<Validity, String> {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Self::starting(now - BACKDATE, now, days)
    }

    /// The window asked for on the command line: explicit dates where given, otherwise
    /// `now - 1h` for the start and start + `days` for the end (`now + days` when the
    /// start is the default one).
    pub fn from_args(
        now: OffsetDateTime,
        days: u32,
        not_before: Option<Date>,
        not_after: Option<Date>,
    ) -> Result<Validity, String> {
        let validity = match (not_before, not_after) {
            (None, None) => Self::from_now(now, days)?,
            (Some(start), None) => {
                let start = start.midnight().assume_utc();
                Self::starting(start, start, days)?
            }
            (start, Some(end)) => Validity {
                not_before: match start {
                    Some(day) => day.midnight().assume_utc(),
                    None => Self::from_now(now, 0)?.not_before,
                },
                not_after: end
                    .with_time(Time::from_hms(23, 59, 59).expect("valid time"))
                    .assume_utc(),
            },
        };
        if validity.not_after <= validity.not_before {
            return Err(format!(
                "the certificate would never be valid: not after {} is not later than not before {}",
                rfc3339(validity.not_after),
                rfc3339(validity.not_before)
            ));
        }
        Ok(validity)
    }

    fn starting(
        not_before: OffsetDateTime,
        from: OffsetDateTime,
        days: u32,
    ) -> Result<Self, String> {
        let not_after = from
            .checked_add(Duration::days(i64::from(days)))
            .filter(|t| t.year() <= 9999)
            .ok_or_else(|| format!("{days} days from now is past the year 9999"))?;
        Ok(Validity {
            not_before,
            not_after,
        })
    }
}

/// Parses `YYYY-MM-DD` (four-digit year, two-digit month and day) into a date; used
/// as a clap value parser.
pub fn date(s: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year repr:full]-[month]-[day]");
    if s.len() != 10 {
        return Err(format!(
            "'{s}' is not a date: use YYYY-MM-DD, e.g. 2027-06-30"
        ));
    }
    Date::parse(s, &format)
        .map_err(|e| format!("'{s}' is not a calendar date in the form YYYY-MM-DD: {e}"))
}

/// `2026-11-30T06:05:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-30 06:05:00 UTC);

    #[test]
    fn default_window_is_backdated_an_hour() {
        let v = Validity::from_args(NOW, 825, None, None).unwrap();
        assert_eq!(v.not_before, datetime!(2026-11-30 05:05:00 UTC));
        assert_eq!(v.not_after, datetime!(2029-03-04 06:05:00 UTC));
    }

    #[test]
    fn explicit_dates_are_whole_utc_days() {
        let v = Validity::from_args(
            NOW,
            825,
            Some(date("2020-01-01").unwrap()),
            Some(date("2020-12-31").unwrap()),
        )
        .unwrap();
        assert_eq!(v.not_before, datetime!(2020-01-01 00:00:00 UTC));
        assert_eq!(v.not_after, datetime!(2020-12-31 23:59:59 UTC));

        let v = Validity::from_args(NOW, 10, Some(date("2030-01-01").unwrap()), None).unwrap();
        assert_eq!(v.not_after, datetime!(2030-01-11 00:00:00 UTC));

        let v = Validity::from_args(NOW, 10, None, Some(date("2026-12-01").unwrap())).unwrap();
        assert_eq!(v.not_before, datetime!(2026-11-30 05:05:00 UTC));
        assert_eq!(v.not_after, datetime!(2026-12-01 23:59:59 UTC));
    }

    #[test]
    fn refuses_empty_windows_and_bad_dates() {
        let err = Validity::from_args(
            NOW,
            1,
            Some(date("2021-01-01").unwrap()),
            Some(date("2020-12-31").unwrap()),
        )
        .unwrap_err();
        assert!(err.contains("never be valid"), "{err}");
        assert!(Validity::from_args(NOW, 1, None, Some(date("2020-12-31").unwrap())).is_err());
        assert!(Validity::from_now(NOW, u32::MAX).is_err());
        assert!(date("2027-02-29").is_err());
        assert!(date("2027-2-28").is_err());
        assert_eq!(rfc3339(NOW), "2026-11-30T06:05:00Z");
    }
}
