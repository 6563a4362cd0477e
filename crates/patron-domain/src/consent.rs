//! Marketing consent and customer tags, as sources state them on customer records.
//!
//! Consent is per channel and three-valued: a record may grant it, withdraw it, or say
//! nothing. Saying nothing is not consent, so a campaign export needs a stated grant.

use crate::Invalid;
use chrono::{DateTime, Utc};

/// A marketing channel consent is given for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Email newsletters and campaigns.
    Email,
    /// Text messages.
    Sms,
    /// WeChat template and service-account messages.
    Wechat,
}

impl Channel {
    /// Every channel, in the order columns and reports list them.
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Wechat];

    /// Parses a channel name (`email`, `sms`, `wechat`).
    pub fn parse(raw: &str) -> Result<Channel, Invalid> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| Invalid::new("unknown channel; expected email, sms or wechat"))
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Wechat => "wechat",
        }
    }
}

/// What one record says about marketing consent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Consent {
    /// Email: granted, withdrawn, or not stated.
    pub email: Option<bool>,
    /// SMS.
    pub sms: Option<bool>,
    /// WeChat.
    pub wechat: Option<bool>,
    /// When the person stated it, when the source says; otherwise the time it was received.
    pub at: Option<DateTime<Utc>>,
}

impl Consent {
    /// The statement for `channel`.
    pub fn get(&self, channel: Channel) -> Option<bool> {
        match channel {
            Channel::Email => self.email,
            Channel::Sms => self.sms,
            Channel::Wechat => self.wechat,
        }
    }
}

/// A profile's standing consent on one channel: the latest statement any of its records made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Standing {
    /// Granted (true) or withdrawn (false).
    pub granted: bool,
    /// The source whose statement stands.
    pub source: String,
    /// When it was stated (ms since epoch).
    pub at: i64,
}

impl Standing {
    /// Folds one more statement into `current`: the later one stands, and of two made at
    /// the same time a withdrawal stands, so doubt never sends a message.
    pub fn fold(current: &mut Option<Standing>, granted: bool, source: &str, at: i64) {
        let replaces = match current {
            None => true,
            Some(c) => at > c.at || (at == c.at && c.granted && !granted),
        };
        if replaces {
            *current = Some(Standing {
                granted,
                source: source.to_owned(),
                at,
            });
        }
    }
}

/// Parses a yes/no consent flag as exports spell it (`yes`, `true`, `1`, `opted_in`,
/// `subscribed`; `no`, `false`, `0`, `unsubscribed`, ...).
pub fn parse_flag(raw: &str) -> Result<bool, Invalid> {
    let v: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect();
    match v.as_str() {
        "yes" | "y" | "true" | "t" | "1" | "on" | "opted_in" | "opt_in" | "optin"
        | "subscribed" | "granted" | "accepted" | "consented" => Ok(true),
        "no" | "n" | "false" | "f" | "0" | "off" | "opted_out" | "opt_out" | "optout"
        | "unsubscribed" | "not_subscribed" | "withdrawn" | "declined" | "revoked" => Ok(false),
        _ => Err(Invalid::new(
            "not a consent flag; expected yes/no, true/false, 1/0 or opted_in/opted_out",
        )),
    }
}

/// The most tags one record may carry, and the longest tag.
const MAX_TAGS: usize = 50;
const MAX_TAG_CHARS: usize = 64;

/// Parses a tag list (`VIP, wholesale; newsletter`): split on commas, semicolons and bars,
/// trimmed, lower-cased, inner whitespace collapsed, duplicates dropped, order kept.
pub fn parse_tags(raw: &str) -> Result<Vec<String>, Invalid> {
    let mut tags: Vec<String> = Vec::new();
    for t in raw.split([',', ';', '|']) {
        let tag = t
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if tag.is_empty() || tags.contains(&tag) {
            continue;
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(Invalid::new(format!(
                "a tag is at most {MAX_TAG_CHARS} characters"
            )));
        }
        tags.push(tag);
    }
    if tags.len() > MAX_TAGS {
        return Err(Invalid::new(format!("at most {MAX_TAGS} tags per record")));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_as_exports_spell_them() {
        for (raw, want) in [
            ("yes", Some(true)),
            (" TRUE ", Some(true)),
            ("1", Some(true)),
            ("opted-in", Some(true)),
            ("Subscribed", Some(true)),
            ("no", Some(false)),
            ("0", Some(false)),
            ("unsubscribed", Some(false)),
            ("Opted Out", Some(false)),
            ("maybe", None),
            ("2", None),
        ] {
            assert_eq!(parse_flag(raw).ok(), want, "{raw:?}");
        }
    }

    #[test]
    fn tags_are_split_normalized_and_deduplicated() {
        for (raw, want) in [
            (
                "VIP, wholesale;  News  Letter",
                vec!["vip", "wholesale", "news letter"],
            ),
            ("vip|VIP|,", vec!["vip"]),
            (" , ", vec![]),
        ] {
            assert_eq!(parse_tags(raw).unwrap(), want, "{raw:?}");
        }
        assert!(parse_tags(&"x".repeat(65)).is_err());
        let many = (0..51).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        assert!(parse_tags(&many).is_err());
    }

    #[test]
    fn the_latest_statement_stands_and_a_tie_withdraws() {
        let mut s = None;
        Standing::fold(&mut s, true, "web", 10);
        Standing::fold(&mut s, false, "store", 5);
        assert_eq!(s.as_ref().map(|s| (s.granted, s.at)), Some((true, 10)));
        Standing::fold(&mut s, false, "app", 10);
        assert_eq!(
            s.as_ref().map(|s| (s.granted, s.source.as_str())),
            Some((false, "app"))
        );
        Standing::fold(&mut s, true, "web", 10);
        assert_eq!(s.as_ref().map(|s| s.granted), Some(false));
        Standing::fold(&mut s, true, "web", 11);
        assert_eq!(s.map(|s| s.granted), Some(true));
    }

    #[test]
    fn channels_parse_by_name() {
        assert_eq!(Channel::parse(" SMS ").unwrap(), Channel::Sms);
        assert!(Channel::parse("fax").is_err());
    }
}
