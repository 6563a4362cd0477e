//! Phone numbers in E.164, by libphonenumber's rules (the `phonenumber` crate).

use crate::{check_len, Country, Invalid};
use phonenumber::{country, Mode};

/// A valid phone number in E.164 form (`+8613800138000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses a phone number written the way people write them (`+86 138-0013-8000`,
    /// `0086 138 0013 8000`, `(+86)13800138000`, `138 0013 8000` with region CN).
    ///
    /// `region` is the country a number without a country code is assumed to belong to: the
    /// record's own country when it has one, else the configured default.
    pub fn parse(raw: &str, region: Option<Country>) -> Result<Phone, Invalid> {
        let s = raw.trim();
        check_len(s)?;
        if s.is_empty() {
            return Err(Invalid::new("empty"));
        }
        let cleaned = pre_clean(s);
        let id = region.and_then(|c| c.as_str().parse::<country::Id>().ok());
        with_database(|db| {
            let number = phonenumber::parse_with(db, id, &cleaned)
                .map_err(|e| Invalid::new(format!("not a phone number ({e})")))?;
            if !phonenumber::is_valid_with(db, &number) {
                return Err(Invalid::new("not a valid number for its country"));
            }
            Ok(Phone(number.format_with(db).mode(Mode::E164).to_string()))
        })
    }

    /// The E.164 string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// libphonenumber's metadata (the XML the `phonenumber` crate ships; see build.rs).
const METADATA_XML: &str = include_str!(concat!(env!("OUT_DIR"), "/PhoneNumberMetadata.xml"));

/// Runs `f` with this thread's phone metadata.
///
/// The crate's built-in database keeps every compiled pattern in one LRU cache of 100 regexes
/// behind one `Mutex` held for each search: numbers from a handful of countries cycle through
/// more patterns than that (every parse recompiled some, ~300 µs a number), and parallel
/// parsing takes turns on the lock. Each thread therefore loads its own copy of the metadata
/// once, with a cache large enough to keep every pattern compiled.
fn with_database<T>(f: impl FnOnce(&phonenumber::metadata::Database) -> T) -> T {
    use phonenumber::metadata::{Database, DATABASE};
    thread_local! {
        static OWN: Option<Database> = (!METADATA_XML.is_empty())
            .then(|| Database::parse(METADATA_XML).ok())
            .flatten()
            .inspect(keep_all_patterns);
    }
    static SHARED: std::sync::Once = std::sync::Once::new();
    OWN.with(|own| match own {
        Some(db) => f(db),
        None => {
            SHARED.call_once(|| keep_all_patterns(&DATABASE));
            f(&DATABASE)
        }
    })
}

fn keep_all_patterns(db: &phonenumber::metadata::Database) {
    if let Ok(mut cache) = db.cache().lock() {
        cache.set_capacity(100_000);
    }
}

/// Rewrites the international-prefix spellings libphonenumber only knows per region
/// (`0086…`, `(+86)…`) into a plain `+86…` so they parse without a region.
fn pre_clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !matches!(c, '(' | ')' | ' ' | '-' | '.' | '\u{3000}'))
        .collect();
    if let Some(rest) = out.strip_prefix("00") {
        out = format!("+{rest}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, region: &str, expected: Option<&str>) {
        let region = Country::parse(region).ok();
        let got = Phone::parse(raw, region).ok();
        assert_eq!(got.as_ref().map(Phone::as_str), expected, "{raw:?}");
    }

    #[test]
    fn per_thread_metadata_agrees_with_the_built_in_copy() {
        use phonenumber::metadata::{Database, DATABASE};
        assert!(!METADATA_XML.is_empty(), "build.rs found the metadata XML");
        let own = Database::parse(METADATA_XML).unwrap();
        for (raw, region) in [
            ("+8613800138000", None),
            ("138 0013 8000", Some("CN")),
            ("(415) 555-2671", Some("US")),
            ("07911 123456", Some("GB")),
            ("090-1234-5678", Some("JP")),
            ("12345", Some("US")),
        ] {
            let id = region.map(|r: &str| r.parse::<country::Id>().unwrap());
            let e164 = |db: &Database| {
                phonenumber::parse_with(db, id, raw)
                    .ok()
                    .filter(|n| phonenumber::is_valid_with(db, n))
                    .map(|n| n.format_with(db).mode(Mode::E164).to_string())
            };
            assert_eq!(e164(&own), e164(&DATABASE), "{raw}");
        }
    }

    #[test]
    fn phones() {
        check("+86 138-0013-8000", "", Some("+8613800138000"));
        check("0086 138 0013 8000", "", Some("+8613800138000"));
        check("(+86)13800138000", "", Some("+8613800138000"));
        check("138 0013 8000", "CN", Some("+8613800138000"));
        check("(415) 555-2671", "US", Some("+14155552671"));
        check("+1 415 555 2671", "CN", Some("+14155552671"));
        check("030 1234567", "DE", Some("+49301234567"));
        check("138 0013 8000", "", None);
        check("12345", "US", None);
        check("call me", "US", None);
    }
}
