//! Countries as ISO 3166-1 alpha-2 codes.

use crate::Invalid;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;

/// Every assigned ISO 3166-1 alpha-2 code, space separated.
const CODES: &str =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK \
DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU \
GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY \
MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU \
RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO \
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Names and other codes retailers' exports commonly use, lower-case, mapped to alpha-2.
const NAMES: &[(&str, &str)] = &[
    ("china", "CN"),
    ("中国", "CN"),
    ("中華人民共和國", "CN"),
    ("prc", "CN"),
    ("chn", "CN"),
    ("people's republic of china", "CN"),
    ("hong kong", "HK"),
    ("香港", "HK"),
    ("taiwan", "TW"),
    ("台湾", "TW"),
    ("united states", "US"),
    ("united states of america", "US"),
    ("usa", "US"),
    ("u.s.", "US"),
    ("u.s.a.", "US"),
    ("美国", "US"),
    ("united kingdom", "GB"),
    ("uk", "GB"),
    ("great britain", "GB"),
    ("england", "GB"),
    ("gbr", "GB"),
    ("英国", "GB"),
    ("germany", "DE"),
    ("deutschland", "DE"),
    ("deu", "DE"),
    ("德国", "DE"),
    ("france", "FR"),
    ("fra", "FR"),
    ("法国", "FR"),
    ("japan", "JP"),
    ("jpn", "JP"),
    ("日本", "JP"),
    ("south korea", "KR"),
    ("korea", "KR"),
    ("韩国", "KR"),
    ("canada", "CA"),
    ("can", "CA"),
    ("australia", "AU"),
    ("aus", "AU"),
    ("singapore", "SG"),
    ("新加坡", "SG"),
    ("spain", "ES"),
    ("españa", "ES"),
    ("italy", "IT"),
    ("italia", "IT"),
    ("netherlands", "NL"),
    ("the netherlands", "NL"),
    ("brazil", "BR"),
    ("brasil", "BR"),
    ("india", "IN"),
    ("ind", "IN"),
    ("mexico", "MX"),
    ("méxico", "MX"),
];

/// An ISO 3166-1 alpha-2 country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses an alpha-2 code in any case, or a common name or alpha-3 code (`China`, `中国`,
    /// `USA`, `United States`).
    pub fn parse(raw: &str) -> Result<Country, Invalid> {
        static CODE_SET: LazyLock<HashSet<&'static str>> =
            LazyLock::new(|| CODES.split(' ').collect());
        static NAME_MAP: LazyLock<HashMap<&'static str, &'static str>> =
            LazyLock::new(|| NAMES.iter().copied().collect());
        let s = raw.trim();
        let code = if s.len() == 2 {
            let upper = s.to_ascii_uppercase();
            CODE_SET.get(upper.as_str()).copied()
        } else {
            None
        };
        let lower = s.to_lowercase();
        let known = code
            .or_else(|| NAME_MAP.get(lower.as_str()).copied())
            .or_else(|| {
                // Every other country by its English name, alias or alpha-3 code, compared
                // without spaces, punctuation or accents (Czech Republic, Viet Nam, Côte
                // d'Ivoire). Not two letters or digits once squashed: `N/A` is no Namibia,
                // nor `840` the United States.
                let squashed: String = crate::name::fold_latin(&lower)
                    .chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect();
                if squashed.chars().count() < 3 || squashed.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                celes::Country::from_str(&squashed).ok().map(|c| c.alpha2)
            });
        known
            .map(|code| {
                let b = code.as_bytes();
                Country([b[0], b[1]])
            })
            .ok_or_else(|| Invalid::new("not an ISO 3166 country code or known country name"))
    }

    /// The alpha-2 code.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("country codes are ASCII")
    }

    /// Whether people in this country write `02/01/1990` meaning February 1st.
    pub fn writes_month_first(self) -> bool {
        matches!(
            self.as_str(),
            "US" | "PH" | "FM" | "MH" | "PW" | "AS" | "GU" | "PR"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries() {
        let check = |raw: &str, expected: Option<&str>| {
            let got = Country::parse(raw).ok();
            assert_eq!(got.as_ref().map(Country::as_str), expected, "{raw:?}");
        };
        check("cn", Some("CN"));
        check("China", Some("CN"));
        check("中国", Some("CN"));
        check("US", Some("US"));
        check("United States", Some("US"));
        check(" gb ", Some("GB"));
        check("XX", None);
        check("Czech Republic", Some("CZ"));
        check("Viet Nam", Some("VN"));
        check("Côte d'Ivoire", Some("CI"));
        check("New Zealand", Some("NZ"));
        check("SWE", Some("SE"));
        check("Atlantis", None);
        check("N/A", None);
        check("n.a.", None);
        check("840", None);
        check("Atlantis", None);
        check("N/A", None);
        check("n.a.", None);
        check("840", None);
        assert_eq!(CODES.split(' ').count(), 249);
    }
}
