//! Formatting shared by the pages, the JSON API and the CLI.

use countersign::clock::UnixTime;

/// A time as `YYYY-MM-DD HH:MM:SS UTC`.
///
/// # Examples
/// ```
/// use countersign::clock::UnixTime;
/// use countersign_server::display::format_utc;
/// assert_eq!(format_utc(UnixTime(0)), "1970-01-01 00:00:00 UTC");
/// assert_eq!(format_utc(UnixTime(1_700_000_000)), "2023-11-14 22:13:20 UTC");
/// ```
pub fn format_utc(t: UnixTime) -> String {
    let (date, secs) = (t.secs().div_euclid(86_400), t.secs().rem_euclid(86_400));
    let (y, m, d) = civil_from_days(date);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A time as RFC 3339 (`2023-11-14T22:13:20Z`), for JSON.
///
/// # Examples
/// ```
/// use countersign::clock::UnixTime;
/// use countersign_server::display::rfc3339;
/// assert_eq!(rfc3339(UnixTime(1_700_000_000)), "2023-11-14T22:13:20Z");
/// ```
pub fn rfc3339(t: UnixTime) -> String {
    let (date, secs) = (t.secs().div_euclid(86_400), t.secs().rem_euclid(86_400));
    let (y, m, d) = civil_from_days(date);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Write `rows` as columns padded to their widest cell (the last column unpadded).
///
/// # Errors
/// When `out` cannot be written.
pub fn write_table(out: &mut dyn std::io::Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(width) => *width = (*width).max(w),
                None => widths.push(w),
            }
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_utc(UnixTime(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            format_utc(UnixTime(253_402_300_799)),
            "9999-12-31 23:59:59 UTC"
        );
        assert_eq!(rfc3339(UnixTime(-1)), "1969-12-31T23:59:59Z");
    }
}
