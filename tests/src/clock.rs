//! Time as tests reckon it: this machine's clock, and the local date and time in NTT
//! (WITA, UTC+8, no daylight saving), worked out here rather than with the node's or
//! the CLI's own functions, so a test can catch them wrong.
//!
//! It must never read the machine's time zone.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch on this machine's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// (year, month, day, hour, minute) in WITA of a Unix time in ms.
pub fn wita_civil(unix_ms: i64) -> (i64, i64, i64, i64, i64) {
    let local = unix_ms + 8 * 3_600_000;
    let mut days = local.div_euclid(86_400_000);
    let minutes = local.rem_euclid(86_400_000) / 60_000;
    let mut year = 1970;
    loop {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let length = if leap { 366 } else { 365 };
        if days < length {
            let february = if leap { 29 } else { 28 };
            let months = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let mut month = 1;
            for length in months {
                if days < length {
                    break;
                }
                days -= length;
                month += 1;
            }
            return (year, month, days + 1, minutes / 60, minutes % 60);
        }
        days -= length;
        year += 1;
    }
}

/// The Unix time in ms of a WITA date and hour (the inverse of [`wita_civil`]).
pub fn wita_ms(year: i64, month: i64, day: i64, hour: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days: i64 = (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum();
    let months = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += months[..(month - 1) as usize].iter().sum::<i64>() + day - 1;
    (days * 24 + hour - 8) * 3_600_000
}

/// The WITA month `months` after the one of `unix_ms`, as (year, month).
pub fn wita_month_after(unix_ms: i64, months: i64) -> (i64, i64) {
    let (year, month, ..) = wita_civil(unix_ms);
    let index = year * 12 + (month - 1) + months;
    (index / 12, index % 12 + 1)
}

/// The WITA calendar year of a Unix time in ms.
pub fn wita_year(unix_ms: i64) -> i32 {
    wita_civil(unix_ms).0 as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_date_turns_at_midnight_wita() {
        // 2026-12-31 15:59:59 UTC is 23:59:59 WITA.
        assert_eq!(wita_civil(1_798_732_799_000), (2026, 12, 31, 23, 59));
        assert_eq!(wita_civil(1_798_732_800_000), (2027, 1, 1, 0, 0));
        assert_eq!(wita_year(951_782_400_000), 2000);
        assert_eq!(wita_ms(2027, 1, 1, 0), 1_798_732_800_000);
        assert_eq!(wita_civil(wita_ms(2028, 2, 29, 13)), (2028, 2, 29, 13, 0));
        assert_eq!(wita_month_after(1_798_732_799_000, 14), (2028, 2));
    }
}
