//! Email addresses: trimmed, lower-cased and syntax-checked.

use crate::{check_len, Invalid};

/// A syntactically valid, normalized email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses and normalizes an email address.
    ///
    /// The whole address is lower-cased: mailbox providers treat local parts case-insensitively
    /// in practice, and a CRM that keeps `Ann@X.com` and `ann@x.com` apart splits one person in two.
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let s = raw.trim();
        check_len(s)?;
        let s = s.to_lowercase();
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
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.len() > 63) {
            return Err(Invalid::new("domain is not a dotted host name"));
        }
        if labels
            .iter()
            .any(|l| l.starts_with('-') || l.ends_with('-') || !l.chars().all(is_domain_char))
        {
            return Err(Invalid::new("invalid character in domain"));
        }
        Ok(Email(s))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_domain_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-'
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
        check("wei.zhang+shop@qq.com", Ok("wei.zhang+shop@qq.com"));
        check("user@mail.例子.中国", Ok("user@mail.例子.中国"));
        check("no-at-sign.example.com", Err(()));
        check("a@b", Err(()));
        check("a b@example.com", Err(()));
        check("a@@example.com", Err(()));
        check(".a@example.com", Err(()));
        check("a@-example.com", Err(()));
        check("a@example..com", Err(()));
        check(&format!("{}@example.com", "a".repeat(65)), Err(()));
    }
}
