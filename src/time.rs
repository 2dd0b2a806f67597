//! Time formatting and parsing for the API's shapes, on plain integers.
//!
//! Pure: callers pass `now_ms` in; nothing here reads a clock. All instants are
//! milliseconds since the Unix epoch, UTC.

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date of a day count since 1970-01-01: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Broken-down UTC time of an instant.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
}

fn civil(ms: i64) -> Civil {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (in_day / 3_600_000) as u32,
        minute: (in_day / 60_000 % 60) as u32,
        second: (in_day / 1000 % 60) as u32,
        millis: (in_day % 1000) as u32,
    }
}

/// ISO-8601 UTC with milliseconds, as the Kling page shows: `2025-04-18T12:34:56.789Z`.
pub fn format_iso_millis(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// `MMDDHHmmss` in UTC, the time part of a generated Dreamina jobid.
pub fn format_compact_month_to_second(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Whole minutes (at least two digits), a colon, two-digit seconds: 3725 s is `62:05`.
pub fn format_elapsed(seconds: i64) -> String {
    let seconds = seconds.max(0);
    format!("{:02}:{:02}", seconds / 60, seconds % 60)
}

/// Whole seconds from `started_ms` to `now_ms`, never negative (a clock step back
/// or a start a little in the future shows as 0, not as a negative age).
pub fn elapsed_seconds(started_ms: i64, now_ms: i64) -> i64 {
    (now_ms - started_ms).max(0) / 1000
}

/// Parses an ISO-8601 / RFC 3339 instant: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
/// `t`/`z` and a space separator are accepted too; fractions beyond milliseconds are
/// truncated. Returns milliseconds since the epoch.
pub fn parse_iso8601(text: &str) -> Result<i64, &'static str> {
    const BAD: &str = "started must be an ISO-8601 time such as 2025-04-18T12:34:56.789Z";
    let b = text.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return Err(BAD);
    }
    let num = |from: usize, len: usize| -> Result<u32, &'static str> {
        let part = b.get(from..from + len).ok_or(BAD)?;
        part.iter().try_fold(0u32, |acc, &d| {
            if d.is_ascii_digit() {
                Ok(acc * 10 + u32::from(d - b'0'))
            } else {
                Err(BAD)
            }
        })
    };
    let sep_ok = b[4] == b'-' && b[7] == b'-' && matches!(b[10], b'T' | b't' | b' ');
    if !sep_ok || b[13] != b':' || b[16] != b':' {
        return Err(BAD);
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(BAD);
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(BAD);
    }
    let mut i = 19;
    let mut millis = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return Err(BAD);
        }
        for _ in digits..3 {
            millis *= 10;
        }
    }
    let offset_minutes: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(BAD);
            }
            let total = i64::from(oh * 60 + om);
            if sign == b'+' {
                total
            } else {
                -total
            }
        }
        _ => return Err(BAD),
    };
    let days = days_from_civil(i64::from(year), month, day);
    // A leap second (:60) is read as the first instant of the next minute.
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok((seconds - offset_minutes * 60) * 1000 + i64::from(millis))
}

/// Parses an HTTP date (RFC 9110): IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, or
/// the obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` and asctime
/// `Sun Nov  6 08:49:37 1994` forms. Milliseconds since the epoch.
pub fn parse_http_date(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month_of = |m: &str| MONTHS.iter().position(|n| *n == m).map(|i| i as u32 + 1);
    let parts: Vec<&str> = text
        .split([' ', ',', '-'])
        .filter(|p| !p.is_empty())
        .collect();
    let (day, month, year, clock) = match parts.as_slice() {
        // IMF-fixdate and RFC 850: weekday, day, month, year, time, "GMT".
        [_, day, month, year, clock, "GMT"] => {
            let year: u32 = year.parse().ok()?;
            let year = match year {
                0..=69 => 2000 + year,
                70..=99 => 1900 + year,
                _ => year,
            };
            (day.parse::<u32>().ok()?, month_of(month)?, year, *clock)
        }
        // asctime: weekday, month, day, time, year.
        [_, month, day, clock, year] => (
            day.parse::<u32>().ok()?,
            month_of(month)?,
            year.parse::<u32>().ok()?,
            *clock,
        ),
        _ => return None,
    };
    let hms: Vec<u32> = clock
        .split(':')
        .map(|n| if n.len() == 2 { n.parse().ok() } else { None })
        .collect::<Option<Vec<u32>>>()?;
    let [hour, minute, second] = hms[..] else {
        return None;
    };
    let valid = (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61
        && (1900..=9999).contains(&year);
    if !valid {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some((days * 86_400 + i64::from(hour * 3600 + minute * 60 + second)) * 1000)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_kling_seed_instant_with_milliseconds() {
        let ms = parse_iso8601("2025-04-18T12:34:56.789Z").unwrap();
        assert_eq!(format_iso_millis(ms), "2025-04-18T12:34:56.789Z");
    }

    #[test]
    fn epoch_and_whole_seconds_keep_three_millisecond_digits() {
        assert_eq!(format_iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso_millis(1_000), "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn elapsed_under_an_hour_is_zero_padded() {
        assert_eq!(format_elapsed(225), "03:45");
        assert_eq!(format_elapsed(0), "00:00");
        assert_eq!(format_elapsed(59), "00:59");
    }

    #[test]
    fn elapsed_over_an_hour_keeps_counting_minutes() {
        assert_eq!(format_elapsed(3725), "62:05");
        assert_eq!(format_elapsed(6000 * 60 + 1), "6000:01");
    }

    #[test]
    fn elapsed_is_never_negative() {
        assert_eq!(format_elapsed(-5), "00:00");
        assert_eq!(elapsed_seconds(10_000, 9_000), 0);
        assert_eq!(elapsed_seconds(0, 45_999), 45);
    }

    #[test]
    fn offsets_are_applied_and_fraction_lengths_vary() {
        let z = parse_iso8601("2025-04-18T12:34:56Z").unwrap();
        assert_eq!(parse_iso8601("2025-04-18T14:34:56+02:00").unwrap(), z);
        assert_eq!(parse_iso8601("2025-04-18T07:34:56-05:00").unwrap(), z);
        assert_eq!(parse_iso8601("2025-04-18T12:34:56.5Z").unwrap(), z + 500);
        assert_eq!(
            parse_iso8601("2025-04-18T12:34:56.123456Z").unwrap(),
            z + 123
        );
    }

    #[test]
    fn malformed_times_are_refused_without_panicking() {
        for bad in [
            "",
            "2025-04-18",
            "2025-04-18T12:34:56",
            "2025-13-18T12:34:56Z",
            "2025-02-29T12:34:56Z",
            "2025-04-18T24:00:00Z",
            "2025-04-18T12:34:56.Z",
            "2025-04-18T12:34:56+0200",
            "2025-04-18T12:34:56Zjunk",
            "２０２５-04-18T12:34:56Z",
            "2025-04-18T12:34:56.789Z ",
        ] {
            assert!(parse_iso8601(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn http_dates_parse_in_all_three_forms() {
        let expected = parse_iso8601("1994-11-06T08:49:37Z").unwrap();
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(text), Some(expected), "{text}");
        }
        for bad in [
            "",
            "soon",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn leap_days_parse() {
        let ms = parse_iso8601("2024-02-29T00:00:00.000Z").unwrap();
        assert_eq!(format_iso_millis(ms), "2024-02-29T00:00:00.000Z");
    }

    #[test]
    fn compact_time_matches_the_dreamina_seed_prefix() {
        let ms = parse_iso8601("2026-02-23T14:05:30.123Z").unwrap();
        assert_eq!(format_compact_month_to_second(ms), "0223140530");
    }

    #[test]
    fn round_trips_across_centuries() {
        for ms in [
            -86_400_000i64,
            951_782_400_000,
            4_102_444_800_123,
            1_745_000_000_001,
        ] {
            assert_eq!(parse_iso8601(&format_iso_millis(ms)).unwrap(), ms);
        }
    }
}
