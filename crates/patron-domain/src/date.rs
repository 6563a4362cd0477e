//! Dates and timestamps in the formats real exports use; timestamps always end up in UTC.

use crate::{Country, Invalid};
use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::sync::LazyLock;

/// Which comes first in a date written `01/02/1990`: the day (most of the world) or the
/// month (the US and a few others, and Excel exports made there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    /// `02/01/1990` is 2 January.
    DayFirst,
    /// `01/02/1990` is 2 January.
    MonthFirst,
}

impl DateOrder {
    /// `dmy` or `mdy` (also `day-first`, `month-first`).
    pub fn parse(raw: &str) -> Result<DateOrder, Invalid> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "dmy" | "day-first" | "day_first" => Ok(DateOrder::DayFirst),
            "mdy" | "month-first" | "month_first" => Ok(DateOrder::MonthFirst),
            _ => Err(Invalid::new(
                "expected dmy (day first) or mdy (month first)",
            )),
        }
    }

    /// The way a country writes dates; day first when the country is unknown.
    pub fn of(country: Option<Country>) -> DateOrder {
        if country.is_some_and(Country::writes_month_first) {
            DateOrder::MonthFirst
        } else {
            DateOrder::DayFirst
        }
    }
}

/// How to read a slash date that could be day first or month first (`01/02/1990`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateReading {
    /// The file's order, as its importer said (`--date-order`): a date that is a real day
    /// only the other way round is an error, since the order given is then wrong.
    Given(DateOrder),
    /// The likely order (the record's country): a date that is a real day only the other
    /// way round (`07/16/1952` day first) is read that way.
    Likely(DateOrder),
    /// No order known: a date that is a real day both ways round is an error, since
    /// misread it would move an order by months, unseen.
    Unknown,
}

impl DateReading {
    /// The order given, else unknown.
    pub fn given(order: Option<DateOrder>) -> DateReading {
        order.map_or(DateReading::Unknown, DateReading::Given)
    }
}

/// Parses a calendar date: `1990-01-02`, `1990/1/2`, `19900102`, `1990年1月2日`, and the
/// day-first or month-first slash forms (`02/01/1990`), read as `reading` says. Impossible
/// dates are rejected.
pub fn parse_date(raw: &str, reading: DateReading) -> Result<NaiveDate, Invalid> {
    let s = without_hanzi(raw.trim());
    if s.is_empty() {
        return Err(Invalid::new("empty"));
    }
    if let Some(d) = read_date(&s, reading)? {
        return Ok(d);
    }
    // A timestamp where a date was asked for: keep its date part.
    if let Ok(ts) = parse_timestamp_in(&s, reading) {
        return Ok(ts.date_naive());
    }
    Err(Invalid::new(
        "not a date in a known format, or not a real day",
    ))
}

/// `1990年1月2日` as `1990-1-2`.
fn without_hanzi(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['年', '月', '日']) {
        std::borrow::Cow::Owned(s.replace(['年', '月'], "-").replace('日', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A date in one of the known forms, `None` when `s` is in none of them.
fn read_date(s: &str, reading: DateReading) -> Result<Option<NaiveDate>, Invalid> {
    let s = without_hanzi(s);
    let [year_first, day_first, month_first] = &*DATE_FORMATS;
    let read = |forms: &[Compiled]| {
        forms
            .iter()
            .find_map(|f| parse_with(&s, f, |p| p.to_naive_date()))
    };
    let date = match read(year_first) {
        Some(d) => Some(d),
        None => match (read(day_first), read(month_first), reading) {
            (Some(d), Some(m), _) if d == m => Some(d),
            (Some(d), Some(m), DateReading::Given(o) | DateReading::Likely(o)) => {
                Some(if o == DateOrder::DayFirst { d } else { m })
            }
            (Some(_), Some(_), DateReading::Unknown) => {
                return Err(Invalid::new(
                    "day and month could be either way round: import the file again with \
                     --date-order dmy (day first) or mdy (month first)",
                ))
            }
            (Some(_), None, DateReading::Given(DateOrder::MonthFirst)) => {
                return Err(Invalid::new(
                    "not a real day month first (--date-order mdy): the file may write the \
                     day first",
                ))
            }
            (None, Some(_), DateReading::Given(DateOrder::DayFirst)) => {
                return Err(Invalid::new(
                    "not a real day day first (--date-order dmy): the file may write the \
                     month first",
                ))
            }
            (d, m, _) => d.or(m),
        },
    };
    // `%Y` takes any number of digits: 4/3/85 is the year 85, which no export means.
    if date.is_some_and(|d| d.year() < 1000) {
        return Err(Invalid::new("a two-digit year: write the year in full"));
    }
    Ok(date)
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

/// Date formats: year first, then the day-first and the month-first slash forms (a date
/// written with dots is day first everywhere).
static DATE_FORMATS: LazyLock<[Vec<Compiled>; 3]> = LazyLock::new(|| {
    [
        compile(&["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"]),
        compile(&["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"]),
        compile(&["%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y"]),
    ]
});

/// Timestamp formats: with an offset, then without (taken as UTC). `%.f` reads optional
/// fractions of a second.
static TIMESTAMP_FORMATS: LazyLock<[Vec<Compiled>; 2]> = LazyLock::new(|| {
    [
        compile(&[
            "%Y-%m-%d %H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f %z",
            "%Y-%m-%dT%H:%M:%S%.f%z",
        ]),
        compile(&[
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
        ]),
    ]
});

/// Times of day after a date in another form (`12/1/2010 8:26`, `01.12.2010 08:26:00`,
/// `12/1/2010 8:26 AM`).
static TIME_FORMATS: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    compile(&[
        "%H:%M:%S%.f",
        "%H:%M",
        "%I:%M:%S %p",
        "%I:%M %p",
        "%I:%M:%S%p",
        "%I:%M%p",
    ])
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
/// that omit the offset are almost always server logs written in UTC), also a date alone
/// and the dates [`parse_date`] reads followed by a time (`12/13/2010 8:26`, `8:26 PM`).
/// A slash date that is a real day both ways round is an error.
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, Invalid> {
    parse_timestamp_in(raw, DateReading::Unknown)
}

/// [`parse_timestamp`], reading a slash date as `reading` says.
pub fn parse_timestamp_in(raw: &str, reading: DateReading) -> Result<DateTime<Utc>, Invalid> {
    let trimmed = raw.trim();
    // `2024-03-01 10:00:00 UTC`, as some exports (Shopify's older ones) write it.
    let s = trimmed
        .strip_suffix(" UTC")
        .or_else(|| trimmed.strip_suffix(" GMT"))
        .unwrap_or(trimmed);
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
    let (date, time) = s.split_once(' ').unwrap_or((s, ""));
    if let Some(d) = read_date(date, reading)? {
        let time = time.trim();
        if time.is_empty() {
            return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
        }
        let time = TIME_FORMATS
            .iter()
            .find_map(|f| parse_with(time, f, Parsed::to_naive_time));
        if let Some(t) = time {
            return Ok(d.and_time(t).and_utc());
        }
    }
    Err(Invalid::new("not a timestamp in a known format"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, country: &str, expected: Option<&str>) {
        let reading = DateReading::Likely(DateOrder::of(Country::parse(country).ok()));
        let got = parse_date(raw, reading).ok();
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
        check("1990年1月2日 10:00:00+08:00", "CN", Some("1990-01-02"));
        check("4/3/85", "US", None);
        assert!(
            parse_date("4/3/85", DateReading::Likely(DateOrder::DayFirst))
                .unwrap_err()
                .to_string()
                .contains("two-digit year")
        );
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
        check(
            "2024-03-01 10:00:00.250",
            Some("2024-03-01T10:00:00.250+00:00"),
        );
        check("2024-03-01 10:00:00 UTC", Some("2024-03-01T10:00:00+00:00"));
        check("2024/03/01 10:00", Some("2024-03-01T10:00:00+00:00"));
        // Excel's forms: one reading only, or day first with dots.
        check("12/13/2010 8:26", Some("2010-12-13T08:26:00+00:00"));
        check("13/12/2010 08:26:30", Some("2010-12-13T08:26:30+00:00"));
        check("12/13/2010 8:26 PM", Some("2010-12-13T20:26:00+00:00"));
        check("01.12.2010 08:26", Some("2010-12-01T08:26:00+00:00"));
        check("12/13/2010", Some("2010-12-13T00:00:00+00:00"));
        check("12/13/2010 25:00", None);
    }

    #[test]
    fn a_slash_date_both_ways_round_needs_the_files_order() {
        let err = parse_timestamp("12/1/2010 8:26").unwrap_err().to_string();
        assert!(err.contains("--date-order"), "{err}");
        let read =
            |raw, order| parse_timestamp_in(raw, DateReading::Given(order)).map(|t| t.to_rfc3339());
        let (day, month) = (DateOrder::DayFirst, DateOrder::MonthFirst);
        assert_eq!(
            read("12/1/2010 8:26", month).unwrap(),
            "2010-12-01T08:26:00+00:00"
        );
        assert_eq!(
            read("12/1/2010 8:26", day).unwrap(),
            "2010-01-12T08:26:00+00:00"
        );
        // A day that exists only the other way round says the order given is wrong.
        let err = read("12/13/2010 8:26", day).unwrap_err().to_string();
        assert!(err.contains("may write the month first"), "{err}");
        assert!(read("13/12/2010 8:26", month).is_err());
        assert!(read("2010-12-13 8:26", day).is_ok());
        // The same day both ways round is no ambiguity.
        assert!(parse_timestamp("5/5/2010 8:26").is_ok());
        assert_eq!(DateOrder::parse("MDY"), Ok(DateOrder::MonthFirst));
        assert!(DateOrder::parse("ymd").is_err());
    }
}
