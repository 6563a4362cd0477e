//! Dates and timestamps in the formats real exports use; timestamps always end up in UTC.

use crate::{Country, Invalid};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Parses a calendar date: `1990-01-02`, `1990/1/2`, `19900102`, `1990年1月2日`, and the
/// day-first or month-first slash forms (`02/01/1990`), read month-first only for countries
/// that write dates that way (US and a few others). Impossible dates are rejected.
pub fn parse_date(raw: &str, country: Option<Country>) -> Result<NaiveDate, Invalid> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Invalid::new("empty"));
    }
    let s = s.replace(['年', '月'], "-").replace('日', "");
    let month_first = country.is_some_and(Country::writes_month_first);
    let day_first_formats: &[&str] = if month_first {
        &["%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y"]
    } else {
        &["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"]
    };
    let formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"]
        .iter()
        .chain(day_first_formats);
    for f in formats {
        if let Ok(d) = NaiveDate::parse_from_str(&s, f) {
            return Ok(d);
        }
    }
    // A timestamp where a date was asked for: keep its date part.
    if let Ok(ts) = parse_timestamp(&s) {
        return Ok(ts.date_naive());
    }
    Err(Invalid::new(
        "not a date in a known format, or not a real day",
    ))
}

/// Parses a point in time and converts it to UTC. Accepts RFC 3339 with any offset, the
/// same with a space instead of `T`, and offset-less forms, which are taken as UTC (exports
/// that omit the offset are almost always server logs written in UTC).
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, Invalid> {
    let s = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%z",
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%dT%H:%M:%S%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(Invalid::new("not a timestamp in a known format"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, country: &str, expected: Option<&str>) {
        let got = parse_date(raw, Country::parse(country).ok()).ok();
        assert_eq!(got.map(|d| d.to_string()).as_deref(), expected, "{raw:?}");
    }

    #[test]
    fn dates() {
        check("1990-01-02", "", Some("1990-01-02"));
        check("1990/1/2", "", Some("1990-01-02"));
        check("19900102", "", Some("1990-01-02"));
        check("1990年1月2日", "CN", Some("1990-01-02"));
        check("02/01/1990", "GB", Some("1990-01-02"));
        check("01/02/1990", "US", Some("1990-01-02"));
        check("1990-02-30", "", None);
        check("31/31/1990", "", None);
        check("yesterday", "", None);
    }

    #[test]
    fn timestamps() {
        let check = |raw: &str, expected: Option<&str>| {
            let got = parse_timestamp(raw).ok().map(|t| t.to_rfc3339());
            assert_eq!(got.as_deref(), expected, "{raw:?}");
        };
        check(
            "2024-03-01T10:00:00+08:00",
            Some("2024-03-01T02:00:00+00:00"),
        );
        check("2024-03-01 10:00:00", Some("2024-03-01T10:00:00+00:00"));
        check("2024-03-01", Some("2024-03-01T00:00:00+00:00"));
        check("03/01/2024 10am", None);
    }
}
