//! Local time in NTT: WITA, UTC+8 all year. Budgets run per calendar year and reports
//! per day of the local date, whatever time zone the machine is set to.
//!
//! It must never read the machine's time zone or clock: callers pass the timestamp.

/// WITA is UTC+8, without daylight saving.
pub const OFFSET_MS: i64 = 8 * 3600 * 1000;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of the WITA date of `unix_ms`.
pub fn day_of(unix_ms: i64) -> i64 {
    unix_ms.saturating_add(OFFSET_MS).div_euclid(86_400_000)
}

/// (year, month, day) of a day number (days since 1970-01-01), proleptic Gregorian.
pub fn civil(days: i64) -> (i32, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// The WITA calendar year of `unix_ms`.
pub fn year_of(unix_ms: i64) -> i32 {
    civil(day_of(unix_ms)).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_year_turns_at_midnight_wita() {
        // 2026-12-31 15:59:59 UTC is 23:59:59 WITA; a second later it is 2027.
        let last = 1_798_732_799_000;
        assert_eq!(civil(day_of(last)), (2026, 12, 31));
        assert_eq!(year_of(last), 2026);
        assert_eq!(year_of(last + 1000), 2027);
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(day_of(951_782_400_000)), (2000, 2, 29));
    }
}
