//! Calendar arithmetic the CLI needs: node timestamps shown in WITA (UTC+8, the time
//! of NTT) and validation of `YYYY-MM-DD` dates.
//!
//! Ages (`3m ago`) compare a node's timestamp with this machine's clock.
//!
//! It must never read the machine's local time zone: an operator's laptop set to WIB
//! or UTC still shows the outlet's time, so reports follow the local date in NTT.

/// WITA is UTC+8 all year (no daylight saving).
const WITA_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// Formats milliseconds since the Unix epoch as `2026-11-30 14:05 WITA`.
/// Zero or negative (unset) timestamps show as `-`.
pub fn wita(unix_ms: i64) -> String {
    if unix_ms <= 0 {
        return "-".to_string();
    }
    let local = unix_ms.saturating_add(WITA_OFFSET_MS);
    let days = local.div_euclid(86_400_000);
    let ms_of_day = local.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let minutes = ms_of_day / 60_000;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} WITA",
        minutes / 60,
        minutes % 60
    )
}

/// Milliseconds since the Unix epoch on this machine's clock.
/// This year in WITA (the province's calendar).
pub fn this_year_wita() -> i32 {
    let (year, _, _) = civil_from_days(wita_day(now_unix_ms()));
    i32::try_from(year).unwrap_or(i32::MAX)
}

pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long before `now_ms` the node's timestamp `then_ms` is, coarsely: `12s ago`,
/// `3m ago`, `2h 15m ago`, `4d 3h ago`. A timestamp ahead of this machine's clock (the
/// node's clock runs fast) shows as `in 2m`, never as a negative age.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let diff = now_ms.saturating_sub(then_ms);
    // A second of difference is rounding between two clocks, not news.
    if diff > -1000 {
        return format!("{} ago", coarse(diff.max(0).unsigned_abs() / 1000));
    }
    format!("in {}", coarse(diff.unsigned_abs() / 1000))
}

/// A peer's clock offset as operators read it: `+3s`, `-2h 5m`, `+26d 3h CLOCK
/// WRONG` (beyond the node's threshold), or `-` when never seen.
/// A time the node sends as 0 when it never happened, as JSON shows it: null.
pub fn when_set(unix_ms: i64) -> Option<i64> {
    (unix_ms > 0).then_some(unix_ms)
}

pub fn clock_offset(offset_ms: i64, seen_unix_ms: i64, wrong: bool) -> String {
    if seen_unix_ms <= 0 {
        return "-".to_string();
    }
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let text = format!("{sign}{}", coarse(offset_ms.unsigned_abs() / 1000));
    if wrong {
        format!("{text} CLOCK WRONG")
    } else {
        text
    }
}

fn coarse(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{secs}s")
    }
}

/// Checks that `s` is a real calendar date written `YYYY-MM-DD`.
pub fn check_date(s: &str) -> Result<(), String> {
    let bad = || format!("'{s}' is not a date in the form YYYY-MM-DD");
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(bad());
    }
    let year: i64 = s[0..4].parse().map_err(|_| bad())?;
    let month: u32 = s[5..7].parse().map_err(|_| bad())?;
    let day: u32 = s[8..10].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("'{s}' is not a calendar date"));
    }
    Ok(())
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of the WITA date at `unix_ms` (today: `wita_day(now_unix_ms())`).
pub fn wita_day(unix_ms: i64) -> i64 {
    unix_ms
        .saturating_add(WITA_OFFSET_MS)
        .div_euclid(86_400_000)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, so two dates subtract to the days
/// between them.
pub fn day_number(date: &str) -> Result<i64, String> {
    check_date(date)?;
    let (year, month, day): (i64, i64, i64) = (
        date[0..4].parse().map_err(|_| date.to_string())?,
        date[5..7].parse().map_err(|_| date.to_string())?,
        date[8..10].parse().map_err(|_| date.to_string())?,
    );
    Ok(days_from_civil(year, month, day))
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn date_of_day(day: i64) -> String {
    let (year, month, day) = civil_from_days(day);
    format!("{year:04}-{month:02}-{day:02}")
}

/// (year, month, day) in the proleptic Gregorian calendar to days since 1970-01-01,
/// the inverse of [`civil_from_days`] (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_a_clock_offset_with_its_sign_and_the_warning() {
        assert_eq!(clock_offset(0, 0, false), "-");
        assert_eq!(clock_offset(2_400, 1, false), "+2s");
        assert_eq!(clock_offset(-7_500_000, 1, true), "-2h 5m CLOCK WRONG");
        assert_eq!(
            clock_offset(i64::MIN, 1, true),
            "-106751991167d 7h CLOCK WRONG"
        );
    }

    #[test]
    fn shows_wita_time() {
        // 2026-11-30T06:05:00Z is 14:05 in Kefamenanu.
        assert_eq!(wita(1_796_018_700_000), "2026-11-30 14:05 WITA");
        // 16:30 UTC is already the next day in WITA.
        assert_eq!(wita(1_798_734_600_000), "2027-01-01 00:30 WITA");
        assert_eq!(wita(0), "-");
    }

    #[test]
    fn tells_ages_coarsely() {
        let now = 1_796_018_700_000;
        assert_eq!(ago(now, now), "0s ago");
        assert_eq!(ago(now - 12_400, now), "12s ago");
        assert_eq!(ago(now - 200_000, now), "3m ago");
        assert_eq!(
            ago(now - (2 * 3600 + 15 * 60 + 9) * 1000, now),
            "2h 15m ago"
        );
        assert_eq!(ago(now - (4 * 86_400 + 3 * 3600) * 1000, now), "4d 3h ago");
        assert_eq!(ago(now + 400, now), "0s ago");
        assert_eq!(ago(now + 125_000, now), "in 2m");
    }

    #[test]
    fn converts_days_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn counts_days_between_dates() {
        assert_eq!(day_number("1970-01-01"), Ok(0));
        assert_eq!(day_number("2000-02-29"), Ok(11_016));
        assert_eq!(
            day_number("2027-03-01").unwrap() - day_number("2027-02-28").unwrap(),
            1
        );
        assert_eq!(
            day_number("2028-03-01").unwrap() - day_number("2028-02-28").unwrap(),
            2
        );
        assert!(day_number("2027-02-29").is_err());
        for date in ["1970-01-01", "2026-11-30", "2028-02-29", "2999-12-31"] {
            assert_eq!(date_of_day(day_number(date).unwrap()), date);
        }
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
    }

    #[test]
    fn the_wita_day_turns_at_16_00_utc() {
        // 2026-11-30T15:59:59.999Z is the last millisecond of 30 November in WITA.
        let last = 1_796_054_399_999;
        assert_eq!(wita_day(last), day_number("2026-11-30").unwrap());
        assert_eq!(wita_day(last + 1), day_number("2026-12-01").unwrap());
    }

    #[test]
    fn checks_dates() {
        assert!(check_date("2027-06-30").is_ok());
        assert!(check_date("2028-02-29").is_ok());
        assert!(check_date("2027-02-29").is_err());
        assert!(check_date("2027-13-01").is_err());
        assert!(check_date("2027-6-30").is_err());
        assert!(check_date("30-06-2027").is_err());
        assert!(check_date("").is_err());
    }
}
