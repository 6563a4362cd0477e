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
        enlarge_regex_cache();
        let cleaned = pre_clean(s);
        let id = region.and_then(|c| c.as_str().parse::<country::Id>().ok());
        let number = phonenumber::parse(id, &cleaned)
            .map_err(|e| Invalid::new(format!("not a phone number ({e})")))?;
        if !phonenumber::is_valid(&number) {
            return Err(Invalid::new("not a valid number for its country"));
        }
        Ok(Phone(number.format().mode(Mode::E164).to_string()))
    }

    /// The E.164 string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// libphonenumber's metadata holds thousands of patterns, compiled lazily into a shared LRU
/// cache of only 100 regexes. Numbers from a handful of countries already cycle through more
/// than that, so every parse recompiled patterns (about 300 µs a number instead of 15 µs).
/// Keeping every pattern compiled costs a few megabytes.
fn enlarge_regex_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            cache.set_capacity(100_000);
        }
    });
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
