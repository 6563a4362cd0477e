//! Email addresses: trimmed, lower-cased, internationalized domains normalized by IDNA
//! (UTS #46), syntax-checked; plus a match key that folds provider-specific aliases.

use crate::{check_len, Invalid};

/// A syntactically valid, normalized email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Providers that deliver `local+anything@domain` to `local@domain`.
const PLUS_PROVIDERS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "protonmail.com",
    "proton.me",
    "fastmail.com",
];

impl Email {
    /// Parses and normalizes an email address.
    ///
    /// The whole address is lower-cased: mailbox providers treat local parts case-insensitively
    /// in practice, and a CRM that keeps `Ann@X.com` and `ann@x.com` apart splits one person in
    /// two. The domain is kept in its Unicode form, so `例子.中国` and its punycode spelling
    /// `xn--fsqu00a.xn--fiqs8s` are one value.
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let s = raw.trim();
        check_len(s)?;
        let mut s = s.to_lowercase();
        // A link copied from a web page or a mail client.
        if let Some(address) = s.strip_prefix("mailto:") {
            s = address.trim().to_owned();
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| Invalid::new("no '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(Invalid::new(
                "local part empty or longer than 64 characters",
            ));
        }
        if local.contains('@') {
            return Err(Invalid::new("more than one '@'"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new("contains whitespace"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(Invalid::new("misplaced '.' in local part"));
        }
        let ascii = idna::domain_to_ascii(domain)
            .map_err(|_| Invalid::new("domain is not a valid (internationalized) host name"))?;
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.len() > 63) {
            return Err(Invalid::new("domain is not a dotted host name"));
        }
        let valid_label = |l: &&str| {
            !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !labels.iter().all(valid_label) {
            return Err(Invalid::new("invalid character in domain"));
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(Invalid::new(
                "domain is an IP address or has a numeric top-level domain",
            ));
        }
        let (unicode, _) = idna::domain_to_unicode(&ascii);
        Ok(Email(format!("{local}@{unicode}")))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The mailbox the address delivers to, for matching: Gmail ignores dots and `+tags` in
    /// the local part (and `googlemail.com` is `gmail.com`); other large providers ignore
    /// `+tags`. The stored address is never changed; only matching uses this.
    pub fn match_key(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').expect("parsed emails have an '@'");
        let domain = if domain == "googlemail.com" {
            "gmail.com"
        } else {
            domain
        };
        let mut local = local.to_owned();
        if PLUS_PROVIDERS.contains(&domain) {
            if let Some(i) = local.find('+') {
                local.truncate(i);
            }
        }
        if domain == "gmail.com" {
            local.retain(|c| c != '.');
        }
        format!("{local}@{domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, ()>) {
        let got = Email::parse(raw);
        match expected {
            Ok(e) => assert_eq!(got.as_ref().map(Email::as_str), Ok(e), "{raw:?}"),
            Err(()) => assert!(got.is_err(), "{raw:?} should be rejected, got {got:?}"),
        }
    }

    #[test]
    fn emails() {
        check("  Ann.Lee@Example.COM ", Ok("ann.lee@example.com"));
        check("mailto:Ann.Lee@example.com", Ok("ann.lee@example.com"));
        check("wei.zhang+shop@qq.com", Ok("wei.zhang+shop@qq.com"));
        check("user@mail.例子.中国", Ok("user@mail.例子.中国"));
        check(
            "user@mail.xn--fsqu00a.xn--fiqs8s",
            Ok("user@mail.例子.中国"),
        );
        check("jürgen@MÜLLER.de", Ok("jürgen@müller.de"));
        check("no-at-sign.example.com", Err(()));
        check("a@b", Err(()));
        check("a b@example.com", Err(()));
        check("a@@example.com", Err(()));
        check(".a@example.com", Err(()));
        check("a@-example.com", Err(()));
        check("a@example..com", Err(()));
        check("a@exa_mple.com", Err(()));
        check("a@127.0.0.1", Err(()));
        check(&format!("{}@example.com", "a".repeat(65)), Err(()));
    }

    #[test]
    fn match_keys_fold_provider_aliases() {
        let key = |raw: &str| Email::parse(raw).unwrap().match_key();
        assert_eq!(key("Ann.Lee+shop@GoogleMail.com"), "annlee@gmail.com");
        assert_eq!(key("a.n.n.lee@gmail.com"), "annlee@gmail.com");
        assert_eq!(key("ann+news@outlook.com"), "ann@outlook.com");
        // Elsewhere dots and plus signs may be part of the mailbox: kept.
        assert_eq!(key("ann.lee+x@example.com"), "ann.lee+x@example.com");
        assert_eq!(
            Email::parse("Ann.Lee+shop@gmail.com").unwrap().as_str(),
            "ann.lee+shop@gmail.com"
        );
    }
}
