//! Dates and timestamps in the formats real exports use; timestamps always end up in UTC.

use crate::{Country, Invalid};
use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::sync::LazyLock;

/// Parses a calendar date: `1990-01-02`, `1990/1/2`, `19900102`, `1990年1月2日`, and the
/// day-first or month-first slash forms (`02/01/1990`), read month-first only for countries
/// that write dates that way (US and a few others). A slash form that is no real day in that
/// order but is in the other (`07/16/1952` without a country) has only one reading and is
/// read so. Impossible dates are rejected.
pub fn parse_date(raw: &str, country: Option<Country>) -> Result<NaiveDate, Invalid> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Invalid::new("empty"));
    }
    let s = if s.contains(['年', '月', '日']) {
        std::borrow::Cow::Owned(s.replace(['年', '月'], "-").replace('日', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    let month_first = country.is_some_and(Country::writes_month_first);
    let [year_first, day_first, month_first_forms] = &*DATE_FORMATS;
    let (expected, other) = if month_first {
        (month_first_forms, day_first)
    } else {
        (day_first, month_first_forms)
    };
    let mut formats = year_first.iter().chain(expected).chain(other);
    if let Some(d) = formats.find_map(|f| parse_with(&s, f, |p| p.to_naive_date())) {
        // `%Y` takes any number of digits: 4/3/85 is the year 85, which no export means.
        if d.year() < 1000 {
            return Err(Invalid::new("a two-digit year: write the year in full"));
        }
        return Ok(d);
    }
    // A timestamp where a date was asked for: keep its date part.
    if let Ok(ts) = parse_timestamp(&s) {
        return Ok(ts.date_naive());
    }
    Err(Invalid::new(
        "not a date in a known format, or not a real day",
    ))
}

/// A strftime format compiled once (chrono otherwise re-reads the format string on every
/// call, a measurable share of an import).
type Compiled = Vec<Item<'static>>;

fn compile(formats: &[&'static str]) -> Vec<Compiled> {
    formats
        .iter()
        .map(|f| {
            StrftimeItems::new(f)
                .parse()
                .expect("the built-in formats are valid")
        })
        .collect()
}

/// Date formats: year first, then the day-first and the month-first slash forms.
static DATE_FORMATS: LazyLock<[Vec<Compiled>; 3]> = LazyLock::new(|| {
    [
        compile(&["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"]),
        compile(&["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"]),
        compile(&["%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y"]),
    ]
});

/// Timestamp formats: with an offset, then without (taken as UTC).
static TIMESTAMP_FORMATS: LazyLock<[Vec<Compiled>; 2]> = LazyLock::new(|| {
    [
        compile(&[
            "%Y-%m-%d %H:%M:%S%z",
            "%Y-%m-%d %H:%M:%S %z",
            "%Y-%m-%dT%H:%M:%S%z",
        ]),
        compile(&["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]),
    ]
});

/// Parses `s` entirely with one compiled format.
fn parse_with<T>(
    s: &str,
    format: &Compiled,
    finish: impl FnOnce(&Parsed) -> chrono::ParseResult<T>,
) -> Option<T> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s, format.iter()).ok()?;
    finish(&parsed).ok()
}

/// Parses a point in time and converts it to UTC. Accepts RFC 3339 with any offset, the
/// same with a space instead of `T`, and offset-less forms, which are taken as UTC (exports
/// that omit the offset are almost always server logs written in UTC).
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, Invalid> {
    let s = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let [with_offset, without] = &*TIMESTAMP_FORMATS;
    if let Some(t) = with_offset
        .iter()
        .find_map(|f| parse_with(s, f, Parsed::to_datetime))
    {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = without
        .iter()
        .find_map(|f| parse_with(s, f, |p| p.to_naive_datetime_with_offset(0)))
    {
        return Ok(t.and_utc());
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
        // One reading only: the day cannot be a month.
        check("07/16/1952", "", Some("1952-07-16"));
        check("16/07/1952", "US", Some("1952-07-16"));
        // Both readings are real days: the country's order decides.
        check("07/06/1952", "", Some("1952-06-07"));
        check("07/06/1952", "US", Some("1952-07-06"));
        check("yesterday", "", None);
        check("4/3/85", "US", None);
        assert!(parse_date("4/3/85", None)
            .unwrap_err()
            .to_string()
            .contains("two-digit year"));
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
