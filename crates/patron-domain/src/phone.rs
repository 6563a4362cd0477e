//! Phone numbers in E.164, by libphonenumber's rules (the `phonenumber` crate).

use crate::{check_len, Country, Invalid};
use phonenumber::country;
use unicode_normalization::UnicodeNormalization;

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
        with_database(|db, rules| match plain_digits(db, rules, &cleaned, id) {
            Some(phone) => Ok(phone),
            None => read_with_crate(db, rules, &cleaned, id),
        })
    }

    /// The E.164 string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Compiles, on the calling thread, the phone patterns of `regions` and of every region that
/// shares a calling code with one of them, and parses one example number of each. A thread
/// otherwise pays for them when it meets them: 70 ms for its first number of all (the
/// metadata), up to 15 ms for its first number of a region, and 40–50 ms for a number that
/// does not fit its country and is tried under each of the other regions of its code (+1
/// has 25). Batch work amortizes that; a server's request threads warm up on the countries
/// of its records before they take requests (`patron serve`), or a lookup pays. Every region
/// at once would hold about 150 MB per thread.
pub fn warm_phone_rules(regions: &[Country]) {
    let examples: Vec<String> = with_database(|db, rules| {
        let codes: std::collections::BTreeSet<u16> = regions
            .iter()
            .filter_map(|c| db.by_id(c.as_str()).map(|m| m.country_code()))
            .collect();
        codes
            .iter()
            .filter_map(|code| db.by_code(code))
            .flatten()
            .filter_map(|meta| {
                rules.region(meta);
                let d = meta.descriptors();
                let example = [d.mobile(), d.fixed_line(), Some(d.general())]
                    .into_iter()
                    .flatten()
                    .find_map(|d| d.example())?;
                Some(format!("+{}{example}", meta.country_code()))
            })
            .collect()
    });
    // Patron's validity rules were compiled above; parsing compiles the crate's own patterns.
    for example in examples {
        let _ = Phone::parse(&example, None);
    }
}

/// Why a number without a country code is not read when its record has no country.
pub const NO_REGION: &str = "no country code, and no country to read the number in: give the \
     record a country, or set a default region (--default-region, PATRON_DEFAULT_REGION)";

/// libphonenumber's metadata (the XML the `phonenumber` crate ships; see build.rs).
const METADATA_XML: &str = include_str!(concat!(env!("OUT_DIR"), "/PhoneNumberMetadata.xml"));

/// Runs `f` with this thread's phone metadata and validity rules.
///
/// The crate's built-in database keeps every compiled pattern in one LRU cache of 100 regexes
/// behind one `Mutex` held for each search: numbers from a handful of countries cycle through
/// more patterns than that (every parse recompiled some, ~300 µs a number), and parallel
/// parsing takes turns on the lock. Each thread therefore loads its own copy of the metadata
/// once, with a cache large enough to keep every pattern compiled.
fn with_database<T>(f: impl FnOnce(&phonenumber::metadata::Database, &mut Rules) -> T) -> T {
    use phonenumber::metadata::{Database, DATABASE};
    use std::cell::RefCell;
    thread_local! {
        static OWN: Option<Database> = (!METADATA_XML.is_empty())
            .then(|| Database::parse(METADATA_XML).ok())
            .flatten()
            .inspect(keep_all_patterns);
        static RULES: RefCell<Rules> = RefCell::default();
    }
    static SHARED: std::sync::Once = std::sync::Once::new();
    RULES.with_borrow_mut(|rules| {
        OWN.with(|own| match own {
            Some(db) => f(db, rules),
            None => {
                SHARED.call_once(|| keep_all_patterns(&DATABASE));
                f(&DATABASE, rules)
            }
        })
    })
}

fn keep_all_patterns(db: &phonenumber::metadata::Database) {
    if let Ok(mut cache) = db.cache().lock() {
        cache.set_capacity(100_000);
    }
}

/// libphonenumber's validity check (`phonenumber::is_valid_with`), with each region's patterns
/// compiled once into anchored regexes.
///
/// The crate looks every pattern up in its regex cache by hashing the pattern's whole text and
/// runs an unanchored search, for each of up to eleven number types: two thirds of the cost of
/// parsing a number. The decisions are the same (see the differential test below).
#[derive(Default)]
struct Rules {
    /// Keyed by (country calling code, region id); non-geographic entities share id `001`.
    regions:
        std::collections::HashMap<u16, std::collections::HashMap<String, std::rc::Rc<RegionRules>>>,
    /// Per country calling code, the distinct prefix rules of its regions (+1 has 25 regions
    /// and three rules).
    code_prefixes: std::collections::HashMap<u16, std::rc::Rc<[Prefixes]>>,
}

struct RegionRules {
    leading_digits: Option<regex::Regex>,
    /// The international dialling prefix (`011`) the crate strips from the front of a number
    /// read with this region's rules; [`plain_digits`] leaves a number it could apply to for
    /// the crate to read.
    international_prefix: Option<regex::Regex>,
    prefixes: Prefixes,
    general: Pattern,
    /// The specific number types; a number is valid when the general pattern and any of these
    /// match.
    types: Vec<Pattern>,
}

struct Pattern {
    lengths: Vec<u16>,
    /// The metadata pattern anchored at the start, as the crate's `find(..).start() == 0` is.
    regex: regex::Regex,
}

impl Pattern {
    fn new(d: &phonenumber::metadata::Descriptor) -> Pattern {
        Pattern {
            lengths: d.possible_length().to_vec(),
            regex: anchored(d.national_number().as_str()),
        }
    }

    fn is_match(&self, national: &str) -> bool {
        let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
        (self.lengths.is_empty() || self.lengths.contains(&len)) && self.regex.is_match(national)
    }
}

/// Compiles a metadata pattern (written for whitespace-insensitive mode) anchored at the start;
/// the newline ends any comment before the closing parenthesis.
fn anchored(pattern: &str) -> regex::Regex {
    regex::RegexBuilder::new(&format!("^(?:{pattern}\n)"))
        .ignore_whitespace(true)
        .build()
        .expect("libphonenumber patterns compile (the crate compiles the same ones)")
}

impl RegionRules {
    fn new(meta: &phonenumber::metadata::Metadata) -> RegionRules {
        let d = meta.descriptors();
        let types = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ];
        RegionRules {
            leading_digits: meta.leading_digits().map(|r| anchored(r.as_str())),
            international_prefix: meta.international_prefix().map(|r| anchored(r.as_str())),
            prefixes: Prefixes::new(meta),
            general: Pattern::new(d.general()),
            types: types.into_iter().flatten().map(Pattern::new).collect(),
        }
    }

    /// Whether the number has a known type (the crate's `number_type(..) != Unknown`).
    fn is_typed(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national))
    }
}

/// What the crate strips from the front of a national number read with a region's rules:
/// its national prefix (`0`), and the pattern for national prefixes and carrier codes.
struct Prefixes {
    national_prefix: Option<String>,
    for_parsing: Option<regex::Regex>,
    /// Whether what `for_parsing` matches is rewritten rather than taken off.
    transforms: bool,
}

impl Prefixes {
    fn new(meta: &phonenumber::metadata::Metadata) -> Prefixes {
        Prefixes {
            national_prefix: meta.national_prefix().map(str::to_owned),
            for_parsing: meta
                .national_prefix_for_parsing()
                .map(|r| anchored(r.as_str())),
            transforms: meta.national_prefix_transform_rule().is_some(),
        }
    }

    /// The national number the crate reads from `digits` written in the region: what the
    /// pattern for national prefixes matches (else the national prefix) taken off the front,
    /// then the national prefix once more if it is there again (the crate's
    /// `national_number`, then its own strip). `None` when the pattern's match would be
    /// rewritten instead, left to the crate.
    fn strip<'a>(&self, digits: &'a str) -> Option<&'a str> {
        let without_prefix = |n: &'a str| match self.national_prefix.as_deref() {
            Some(p) => n.strip_prefix(p).unwrap_or(n),
            None => n,
        };
        let national = match &self.for_parsing {
            Some(pattern) => match pattern.find(digits) {
                Some(_) if self.transforms => return None,
                Some(m) => &digits[m.end()..],
                None => digits,
            },
            None => without_prefix(digits),
        };
        Some(without_prefix(national))
    }

    /// Whether the crate could strip a prefix from the front of `national`.
    fn apply_to(&self, national: &str) -> bool {
        self.for_parsing
            .as_ref()
            .is_some_and(|p| p.is_match(national))
            || self
                .national_prefix
                .as_deref()
                .is_some_and(|p| national.starts_with(p))
    }
}

impl Rules {
    fn region(&mut self, meta: &phonenumber::metadata::Metadata) -> std::rc::Rc<RegionRules> {
        let regions = self.regions.entry(meta.country_code()).or_default();
        if let Some(rules) = regions.get(meta.id()) {
            return rules.clone();
        }
        let rules = std::rc::Rc::new(RegionRules::new(meta));
        regions.insert(meta.id().to_owned(), rules.clone());
        rules
    }

    /// The distinct prefix rules of the regions of calling code `code`.
    fn code_prefixes(
        &mut self,
        db: &phonenumber::metadata::Database,
        code: u16,
    ) -> std::rc::Rc<[Prefixes]> {
        self.code_prefixes
            .entry(code)
            .or_insert_with(|| {
                let mut seen = std::collections::HashSet::new();
                db.by_code(&code)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|meta| {
                        seen.insert((
                            meta.national_prefix().map(str::to_owned),
                            meta.national_prefix_for_parsing()
                                .map(|r| r.as_str().to_owned()),
                            meta.national_prefix_transform_rule().map(str::to_owned),
                        ))
                    })
                    .map(Prefixes::new)
                    .collect()
            })
            .clone()
    }

    /// Whether `national` is a valid number under country calling code `code`: the region is
    /// chosen as the crate's `source_for` does (the only region of the code, else the first
    /// whose leading digits or number patterns fit), then the number must have a known type.
    fn is_valid(
        &mut self,
        db: &phonenumber::metadata::Database,
        code: u16,
        national: &str,
    ) -> bool {
        let Some(regions) = db.region(&code) else {
            return false;
        };
        let meta = if let [only] = regions[..] {
            if only == "001" {
                db.by_code(&code).and_then(|m| m.into_iter().next())
            } else {
                db.by_id(only)
            }
        } else {
            regions.iter().filter_map(|r| db.by_id(*r)).find(|meta| {
                let rules = self.region(meta);
                match &rules.leading_digits {
                    Some(leading) => leading.is_match(national),
                    None => rules.is_typed(national),
                }
            })
        };
        meta.is_some_and(|meta| self.region(meta).is_typed(national))
    }
}

/// A number read by the crate's parser, then checked by the compiled rules.
fn read_with_crate(
    db: &phonenumber::metadata::Database,
    rules: &mut Rules,
    cleaned: &str,
    id: Option<country::Id>,
) -> Result<Phone, Invalid> {
    let number = phonenumber::parse_with(db, id, cleaned).map_err(|e| match e {
        // The usual cause in a shop's export: local numbers and no country column.
        phonenumber::ParseError::InvalidCountryCode if id.is_none() => Invalid::new(NO_REGION),
        e => Invalid::new(format!("not a phone number ({e})")),
    })?;
    let code = number.code().value();
    let national = number.national().to_string();
    if !rules.is_valid(db, code, &national) {
        return Err(Invalid::new("not a valid number for its country"));
    }
    // E.164 needs none of the country's display formats.
    Ok(Phone(format!("+{code}{national}")))
}

/// The usual number read without the crate's parser: plain digits after `+` and a country
/// code that no prefix rule could rewrite, or a national number written as digits in the
/// region given, with the region's national prefix (`0`) taken off as the crate takes it.
/// Then the crate's reading is known without its parser (about 3 µs a number, a fifth of a
/// customer import's work), and the same validity check decides. `None` for anything else (an
/// international dialling prefix, a prefix rule that rewrites the number, a leading zero left,
/// the country code written without `+`, an invalid number): the crate reads it. A
/// differential test holds the two to the same answers.
fn plain_digits(
    db: &phonenumber::metadata::Database,
    rules: &mut Rules,
    cleaned: &str,
    region: Option<country::Id>,
) -> Option<Phone> {
    let (plus, digits) = match cleaned.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, cleaned),
    };
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let region = match region {
        Some(id) => Some(db.by_id(id.as_ref())?),
        None => None,
    };
    let own = region.map(|meta| rules.region(meta));
    // The crate first takes the given region's international dialling prefix off the front.
    if own
        .as_ref()
        .and_then(|r| r.international_prefix.as_ref())
        .is_some_and(|p| p.is_match(digits))
    {
        return None;
    }
    let (code, national) = if plus {
        if digits.starts_with('0') {
            return None;
        }
        let (code, national) = (1..=3).find_map(|n| {
            let code: u16 = digits[..n].parse().ok()?;
            db.by_code(&code).map(|_| (code, &digits[n..]))
        })?;
        // It strips by the given region's rules (even from a number with another country
        // code), else by one region of the code's: none of them may apply.
        if own.as_ref().is_some_and(|r| r.prefixes.apply_to(national))
            || rules
                .code_prefixes(db, code)
                .iter()
                .any(|p| p.apply_to(national))
        {
            return None;
        }
        (code, national)
    } else {
        let code = region?.country_code();
        if digits.starts_with(&code.to_string()) {
            return None;
        }
        (code, own?.prefixes.strip(digits)?)
    };
    if !(3..=17).contains(&national.len()) || national.starts_with('0') {
        return None;
    }
    // A stripped number the crate finds too short it reads unstripped; a valid one is not.
    rules
        .is_valid(db, code, national)
        .then(|| Phone(format!("+{code}{national}")))
}

/// Rewrites the international-prefix spellings libphonenumber only knows per region
/// (`0086…`, `(+86)…`) into a plain `+86…` so they parse without a region.
fn pre_clean(s: &str) -> String {
    // Compatibility forms as one: full-width digits and signs (＋８６ １３８…) typed on
    // Chinese and Japanese keyboards.
    let kept = |c: &char| !matches!(c, '(' | ')' | ' ' | '-' | '.' | '\u{3000}');
    let mut out: String = if s.is_ascii() {
        s.chars().filter(kept).collect() // NFKC leaves ASCII as it is
    } else {
        s.nfkc().filter(kept).collect()
    };
    if let Some(rest) = out.strip_prefix("00") {
        out = format!("+{rest}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::Mode;

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

    /// An example number (digits), and each of it with a digit dropped, a digit changed (by
    /// `shift`), or one added.
    fn near_misses(example: &str, shift: u8) -> Vec<String> {
        let mut variants = vec![example.to_owned(), format!("{example}7")];
        for i in 0..example.len() {
            let mut dropped = example.to_owned();
            dropped.remove(i);
            variants.push(dropped);
            let mut changed = example.to_owned();
            let digit = (example.as_bytes()[i] - b'0' + shift) % 10;
            changed.replace_range(i..=i, &digit.to_string());
            variants.push(changed);
        }
        variants
    }

    /// The compiled validity rules and the E.164 string agree with the crate's own
    /// `is_valid_with` and formatter on every region's example numbers and near misses (a
    /// digit dropped, added or changed), written with and without the country code.
    #[test]
    fn compiled_rules_agree_with_the_crate() {
        use phonenumber::metadata::DATABASE;
        let mut checked = 0;
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            let examples = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.voip(),
                d.personal_number(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|d| d.example());
            for example in examples {
                let variants = near_misses(example, 3);
                // Regions Patron cannot name as a country (Ascension `AC`, the non-geographic
                // `001`) are only written with their country code.
                let region = Country::parse(meta.id())
                    .ok()
                    .and_then(|_| meta.id().parse::<country::Id>().ok());
                for v in variants {
                    let written = [
                        (format!("+{}{v}", meta.country_code()), None),
                        (v.clone(), region),
                    ];
                    for (raw, region) in written
                        .into_iter()
                        .filter(|(raw, region)| region.is_some() || raw.starts_with('+'))
                    {
                        let Ok(number) = phonenumber::parse(region, &raw) else {
                            continue;
                        };
                        let expected = phonenumber::is_valid(&number)
                            .then(|| number.format().mode(Mode::E164).to_string());
                        let got = Phone::parse(
                            &raw,
                            region.and_then(|r| Country::parse(r.as_ref()).ok()),
                        )
                        .ok()
                        .map(|p| p.0);
                        assert_eq!(got, expected, "{raw} in {}", meta.id());
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "only {checked} numbers compared");
    }

    /// The digits read without the parser ([`plain_digits`]) are what the crate reads, for
    /// every region's example numbers and near misses, written with `+` and the country code
    /// or as national digits, read with no region, their own, or another country's.
    #[test]
    fn plain_digits_are_read_as_the_crate_reads_them() {
        use phonenumber::metadata::DATABASE;
        let regions: Vec<Option<country::Id>> = std::iter::once(None)
            .chain(
                [
                    "US", "GB", "CN", "DE", "IT", "AR", "MX", "BR", "RU", "JP", "FR", "IN", "AU",
                    "KR",
                ]
                .iter()
                .map(|r| r.parse().ok()),
            )
            .collect();
        let (mut compared, mut read_plain) = (0, 0);
        with_database(|db, rules| {
            for meta in DATABASE.iter() {
                let own = meta.id().parse::<country::Id>().ok();
                let d = meta.descriptors();
                let examples = [d.fixed_line(), d.mobile(), d.toll_free(), d.voip(), d.uan()]
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.example());
                for example in examples {
                    for v in near_misses(example, 7) {
                        let written = [
                            format!("+{}{v}", meta.country_code()),
                            format!("{}{v}", meta.country_code()),
                            format!("{}{v}", meta.national_prefix().unwrap_or("0")),
                            v,
                        ];
                        for raw in &written {
                            for region in regions.iter().chain([&own]) {
                                compared += 1;
                                let Some(plain) = plain_digits(db, rules, raw, *region) else {
                                    continue;
                                };
                                read_plain += 1;
                                let by_crate = read_with_crate(db, rules, raw, *region);
                                assert_eq!(
                                    Ok(&plain),
                                    by_crate.as_ref(),
                                    "{raw} read in {region:?} (examples of {})",
                                    meta.id()
                                );
                            }
                        }
                    }
                }
            }
        });
        println!("{read_plain} of {compared} read as plain digits");
        // The trunk prefix is taken off without the parser: by the pattern for it (GB), and
        // by the national prefix alone (DE).
        with_database(|db, rules| {
            for (raw, region, e164) in [
                ("02079460958", "GB", "+442079460958"),
                ("0301234567", "DE", "+49301234567"),
            ] {
                let plain = plain_digits(db, rules, raw, region.parse().ok());
                assert_eq!(plain.map(|p| p.0).as_deref(), Some(e164), "{raw}");
            }
        });
        // Most numbers written plainly skip the parser.
        assert!(compared > 100_000, "only {compared} compared");
        assert!(read_plain > compared / 10, "{read_plain} of {compared}");
    }

    #[test]
    fn warming_compiles_the_regions_given_and_their_neighbours_on_the_calling_thread() {
        let compiled = |id: &str| {
            with_database(|db, rules| {
                let meta = db.by_id(id).unwrap();
                rules
                    .regions
                    .get(&meta.country_code())
                    .is_some_and(|r| r.contains_key(id))
            })
        };
        std::thread::spawn(move || {
            let regions = ["DE", "JP", "US"].map(|c| Country::parse(c).unwrap());
            warm_phone_rules(&regions);
            // CA and PR share +1 with the US, which a number that does not fit the US
            // is tried under.
            for id in ["DE", "JP", "US", "CA", "PR"] {
                assert!(compiled(id), "{id} not compiled");
            }
            assert!(!compiled("FR"), "FR was not asked for");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn phones() {
        check("+86 138-0013-8000", "", Some("+8613800138000"));
        check("0086 138 0013 8000", "", Some("+8613800138000"));
        check("(+86)13800138000", "", Some("+8613800138000"));
        check("138 0013 8000", "CN", Some("+8613800138000"));
        check("１３８ ００１３ ８０００", "CN", Some("+8613800138000"));
        check("＋８６ １３８００１３８０００", "", Some("+8613800138000"));
        check("(415) 555-2671", "US", Some("+14155552671"));
        check("+1 415 555 2671", "CN", Some("+14155552671"));
        check("030 1234567", "DE", Some("+49301234567"));
        check("138 0013 8000", "", None);
        check("12345", "US", None);
        check("call me", "US", None);
    }

    #[test]
    fn a_local_number_without_a_region_says_how_to_read_it() {
        let why = |raw: &str, region: Option<&str>| {
            Phone::parse(raw, region.map(|r| Country::parse(r).unwrap()))
                .unwrap_err()
                .to_string()
        };
        assert!(why("(415) 555-2671", None).contains("--default-region"));
        assert!(why("138 0013 8000", None).contains("default region"));
        // With a region, or a number that is no phone at all, the reason is libphonenumber's.
        assert!(!why("12345", Some("US")).contains("region"));
        assert!(!why("call me", Some("US")).contains("region"));
    }
}
