//! Money as integer minor units with an ISO 4217 currency: never floating point.

use crate::Invalid;

/// Currencies whose minor unit is not 1/100, with their number of decimals.
const EXPONENTS: &[(&str, u8)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
];

/// Active ISO 4217 codes with two decimals that Patron accepts besides those above.
const TWO_DECIMAL: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL \
BSD BTN BWP BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL \
GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL \
MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR \
PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SYP SZL THB TJS TMT TOP TRY TTD \
TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWL";

/// An ISO 4217 currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a three-letter code in any case (`usd`, `CNY`).
    pub fn parse(raw: &str) -> Result<Currency, Invalid> {
        let upper = raw.trim().to_ascii_uppercase();
        let known = EXPONENTS.iter().any(|(c, _)| *c == upper)
            || TWO_DECIMAL.split(' ').any(|c| c == upper);
        if !known {
            return Err(Invalid::new("not an ISO 4217 currency code"));
        }
        let b = upper.as_bytes();
        Ok(Currency([b[0], b[1], b[2]]))
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }

    /// How many decimals the minor unit has (2 for USD, 0 for JPY, 3 for KWD).
    pub fn exponent(self) -> u8 {
        EXPONENTS
            .iter()
            .find(|(c, _)| *c == self.as_str())
            .map_or(2, |(_, e)| *e)
    }
}

/// An amount of money in integer minor units (cents, fen) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// The amount in minor units; negative for refunds.
    pub minor: i64,
    /// The currency the amount is in.
    pub currency: Currency,
}

impl Money {
    /// Parses a decimal amount (`19.99`, `1,299.00`, `-5`) exactly into minor units. More
    /// decimals than the currency has is an error, never a silent rounding.
    pub fn parse(raw: &str, currency: Currency) -> Result<Money, Invalid> {
        let s: String = raw.trim().chars().filter(|c| *c != ',').collect();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.as_str()),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let exp = usize::from(currency.exponent());
        let all_digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return Err(Invalid::new("not a decimal amount"));
        }
        if frac.len() > exp {
            return Err(Invalid::new(format!(
                "more than {exp} decimals for {}",
                currency.as_str()
            )));
        }
        let padded = format!("{whole}{frac:0<exp$}");
        let minor: i64 = padded
            .parse()
            .map_err(|_| Invalid::new("amount too large"))?;
        Ok(Money {
            minor: if negative { -minor } else { minor },
            currency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        let check = |raw: &str, cur: &str, expected: Option<i64>| {
            let c = Currency::parse(cur).unwrap();
            assert_eq!(
                Money::parse(raw, c).ok().map(|m| m.minor),
                expected,
                "{raw:?} {cur}"
            );
        };
        check("19.99", "USD", Some(1999));
        check("1,299.5", "usd", Some(129_950));
        check("-5", "EUR", Some(-500));
        check("1500", "JPY", Some(1500));
        check("1.5", "JPY", None);
        check("1.234", "KWD", Some(1234));
        check("12.345", "USD", None);
        check("abc", "USD", None);
        check("99999999999999999999", "USD", None);
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("cny").unwrap().as_str(), "CNY");
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("US").is_err());
    }
}
