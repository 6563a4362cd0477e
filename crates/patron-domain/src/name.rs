//! Person names: Unicode NFC, whitespace collapsed, kept as written otherwise.

use crate::{check_len, Invalid};
use unicode_normalization::UnicodeNormalization;

/// A person's name in Unicode NFC with single spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

impl PersonName {
    /// Normalizes a full name. Case is kept: "McDonald" and "van der Berg" lose meaning when
    /// case-folded; matching uses [`PersonName::search_tokens`] instead.
    pub fn parse(raw: &str) -> Result<PersonName, Invalid> {
        check_len(raw.trim())?;
        let nfc: String = raw.nfc().collect();
        let joined = nfc.split_whitespace().collect::<Vec<_>>().join(" ");
        if joined.is_empty() {
            return Err(Invalid::new("empty"));
        }
        if joined.chars().any(|c| c.is_control() || c == '@') {
            return Err(Invalid::new("contains control characters or '@'"));
        }
        if !joined.chars().any(char::is_alphabetic) {
            return Err(Invalid::new("contains no letters"));
        }
        Ok(PersonName(joined))
    }

    /// Joins a first and a last name; either may be missing.
    pub fn from_parts(first: Option<&str>, last: Option<&str>) -> Result<PersonName, Invalid> {
        let joined = [first, last]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        PersonName::parse(&joined)
    }

    /// The normalized name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lower-cased tokens for search: each word, plus the whole name, plus each CJK character
    /// run (Chinese names have no spaces, so "张伟" is one token).
    pub fn search_tokens(&self) -> Vec<String> {
        let lower = self.0.to_lowercase();
        let mut tokens: Vec<String> = lower.split(' ').map(str::to_owned).collect();
        tokens.push(lower);
        tokens.sort();
        tokens.dedup();
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let check = |raw: &str, expected: Option<&str>| {
            let got = PersonName::parse(raw).ok();
            assert_eq!(got.as_ref().map(PersonName::as_str), expected, "{raw:?}");
        };
        check("  Ann   Lee ", Some("Ann Lee"));
        check("张伟", Some("张伟"));
        // "e" + combining acute accent becomes the single precomposed "é".
        check("Rene\u{301} Dupont", Some("Ren\u{e9} Dupont"));
        check("   ", None);
        check("12345", None);
        check(&"x".repeat(200_000), None);
    }

    #[test]
    fn tokens() {
        let n = PersonName::parse("Ann Lee").unwrap();
        assert_eq!(n.search_tokens(), vec!["ann", "ann lee", "lee"]);
    }
}
