//! Probabilistic record linkage (Fellegi–Sunter) over plain comparison features.
//!
//! The steps, each a plain function so tests and benchmarks can call them alone:
//! 1. [`candidate_pairs`]: blocking. Several rules each give records keys; records sharing a
//!    key are compared. Every rule has a block-size cap, so a hot key (a store's shared phone,
//!    a default birthday) is skipped for that rule instead of exploding the run.
//! 2. [`compare`]: a comparison level per field (exact, close, different, missing).
//! 3. [`estimate`]: u probabilities from random pairs (nearly all non-matches), then m
//!    probabilities and the match prior by expectation–maximisation over the blocked pairs,
//!    without labels.
//! 4. [`Model::score`]: the match weight, with a term-frequency adjustment so agreeing on a
//!    rare name counts more than agreeing on 王伟 or John Smith.
//! 5. [`cluster`]: scored pairs into entities, with merges checked against every scored pair
//!    across the two groups, so a weak link cannot chain two strong groups together.

use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::collections::HashMap;

/// The features of one record that matching compares. Values are already standardized by
/// the clean stage; comparisons here are about closeness, not format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchRecord {
    /// Name keys: lower-case words sorted, one per spelling (a Chinese name also gives its
    /// pinyin), so word order and script do not matter.
    pub names: Vec<String>,
    /// The email's match key (lower-case, provider aliases folded).
    pub email: Option<String>,
    /// The phone in E.164.
    pub phone: Option<String>,
    /// The birth date as `YYYYMMDD`.
    pub birth: Option<String>,
    /// Street address, lower-case.
    pub address: Option<String>,
    /// Postal code.
    pub postal: Option<String>,
    /// City, lower-case (a Chinese city as its pinyin, so 苏州 and Suzhou agree).
    pub city: Option<String>,
    /// Which of the Chinese cities sharing the `city` key the record wrote in characters (苏州
    /// or 宿州, both `suzhou`): two different ones are different places.
    pub city_homophone: Option<&'static str>,
    /// Gender code.
    pub gender: Option<String>,
    /// A key of the loyalty or membership id (its blind index): not a compared field but a
    /// deterministic link, since the retailer itself issued it to one person.
    pub loyalty: Option<String>,
    /// From a source whose identifiers do not link outright ([`LinkRules`]): the record is
    /// weighed like any other, but never joined by the deterministic rules.
    pub untrusted: bool,
}

/// The compared fields, in the order of a comparison vector.
pub const FIELDS: [&str; 8] = [
    "name",
    "email",
    "phone",
    "birth_date",
    "address",
    "postal_code",
    "city",
    "gender",
];

const NAME: usize = 0;
const EMAIL: usize = 1;
const PHONE: usize = 2;
const BIRTH: usize = 3;
const ADDRESS: usize = 4;
const POSTAL: usize = 5;
const CITY: usize = 6;

/// The levels of each field, best first; level 0 (not listed) is "a value is missing".
pub const LEVELS: [&[&str]; 8] = [
    &[
        "exact",
        "Jaro-Winkler >= 0.94, or spaced differently",
        "Jaro-Winkler >= 0.88",
        "same surname, given name shortened or missing",
        "different",
    ],
    &[
        "exact",
        "same local part, other domain",
        "1-2 edits apart",
        "different",
    ],
    &["exact", "same last 8 digits", "different"],
    &[
        "exact",
        "day and month swapped",
        "one digit off",
        "different",
    ],
    &["exact", "Jaro-Winkler >= 0.9", "different"],
    &["exact", "different"],
    &["exact", "different"],
    &["exact", "different"],
];

/// Fields whose exact agreement is weighted by how common the agreed value is.
const TERM_FREQUENCY: [usize; 7] = [NAME, EMAIL, PHONE, BIRTH, ADDRESS, POSTAL, CITY];

/// A comparison vector: the level per field (0 = missing on either side).
pub type Gamma = [u8; 8];

/// Which identifiers link two records outright, before any weighing. The same email or the
/// same phone is the same person unless the names or the birth dates say otherwise (a family
/// sharing a phone or a mailbox is not one person, nor are two namesakes born decades apart
/// whose records carry the same address by a typing or migration error); the same loyalty id
/// unless the names differ. The rules also hold where there is too little data to estimate a
/// model. Pairs they leave out are still weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LinkRules {
    /// The same email links.
    pub email: bool,
    /// The same phone links.
    pub phone: bool,
    /// The same loyalty or membership id links.
    pub loyalty: bool,
}

impl Default for LinkRules {
    fn default() -> Self {
        LinkRules {
            email: true,
            phone: true,
            loyalty: true,
        }
    }
}

impl LinkRules {
    /// Whether the email or phone rule links a compared pair.
    pub fn links(&self, g: &Gamma, a: &MatchRecord, b: &MatchRecord) -> bool {
        !a.untrusted
            && !b.untrusted
            && ((self.email && g[EMAIL] == 1) || (self.phone && g[PHONE] == 1))
            && g[NAME] != 5
            && g[BIRTH] != 4
    }

    /// [`LinkRules::links`] unless the model vetoes the link ([`Model::vetoes`]).
    fn links_weighed(
        &self,
        model: &Model,
        g: &Gamma,
        w: f64,
        a: &MatchRecord,
        b: &MatchRecord,
    ) -> bool {
        self.links(g, a, b) && !model.vetoes(g, w, a, b)
    }

    /// Whether the loyalty rule links a pair.
    fn same_loyalty(&self, a: &MatchRecord, b: &MatchRecord) -> bool {
        self.loyalty && !a.untrusted && !b.untrusted && same_loyalty(a, b)
    }
}

/// Pairs of records with the same loyalty id whose names do not differ (a card lent within a
/// family stays two people), in groups of at most `cap` records (a till's test card).
fn loyalty_links(records: &[MatchRecord], rules: &LinkRules, cap: usize) -> Vec<(u32, u32)> {
    let rule = Blocking {
        keys: |r, k| r.loyalty.iter().for_each(|l| k.add(&[l])),
        uses: &[],
        household: false,
    };
    rule_pairs(records, &rule, cap)
        .into_iter()
        .filter(|&(i, j)| rules.same_loyalty(&records[i as usize], &records[j as usize]))
        .collect()
}

/// The loyalty-id rule for one pair: the same id and names that do not differ.
fn same_loyalty(a: &MatchRecord, b: &MatchRecord) -> bool {
    a.loyalty.is_some() && a.loyalty == b.loyalty && compare_names(&a.names, &b.names) != 5
}

/// Fields that identify a person; names and places only describe one.
const IDENTIFYING: [usize; 4] = [EMAIL, PHONE, BIRTH, ADDRESS];

/// A field level counts as identifying evidence when it moves the odds at least this much
/// (log2: 16 times) either way; a level near 0 (two streets that merely look alike where
/// every address reads "… Main Street") is no evidence.
const EVIDENCE: f64 = 4.0;

/// Compares two records field by field.
pub fn compare(a: &MatchRecord, b: &MatchRecord) -> Gamma {
    [
        compare_names(&a.names, &b.names),
        both(&a.email, &b.email, |x, y| {
            match compare_email(x, y) {
                // A partial agreement of two addresses spelt from the names says no more than
                // the names do: kevin.hart@yahoo and kevinhart@outlook are what any two Kevin
                // Harts would choose. Nor is it disagreement (one person may use both), so the
                // email is left out of the comparison.
                2 | 3 if spelt_from_names(x, &a.names) && spelt_from_names(y, &b.names) => 0,
                level => level,
            }
        }),
        both(&a.phone, &b.phone, |x, y| {
            if x == y {
                1
            } else if last_digits(x, 8) == last_digits(y, 8) && x.len() >= 8 && y.len() >= 8 {
                2
            } else {
                3
            }
        }),
        both(&a.birth, &b.birth, compare_birth),
        both(&a.address, &b.address, |x, y| {
            if x == y {
                1
            } else if jaro_winkler_bound(x, y) >= 0.9 && jaro_winkler(x, y) >= 0.9 {
                2
            } else {
                3
            }
        }),
        both(&a.postal, &b.postal, |x, y| if x == y { 1 } else { 2 }),
        both(&a.city, &b.city, |x, y| {
            let homophones =
                matches!((a.city_homophone, b.city_homophone), (Some(p), Some(q)) if p != q);
            if x == y && !homophones {
                1
            } else {
                2
            }
        }),
        both(&a.gender, &b.gender, |x, y| if x == y { 1 } else { 2 }),
    ]
}

fn both(a: &Option<String>, b: &Option<String>, f: impl Fn(&str, &str) -> u8) -> u8 {
    match (a, b) {
        (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => f(x, y),
        _ => 0,
    }
}

fn compare_names(a: &[String], b: &[String]) -> u8 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    if a.iter().any(|x| b.contains(x)) && !middle_initials_differ(a, b) {
        return 1;
    }
    // Some words of the other and nothing else ("smith", "john smith"; "estrada quintero",
    // "estrada kay quintero"): a given name left out. Close as strings, but it says no more
    // than an initial would, and fits anyone of the family.
    if a.iter()
        .any(|x| b.iter().any(|y| shares_word(x, y) && words_left_out(x, y)))
    {
        return 4;
    }
    // Only whether the best similarity reaches 0.88 or 0.94 matters below, so a pair whose
    // letters cannot reach 0.88 in any word order (most strangers') counts as 0 unmeasured.
    let best = a
        .iter()
        .flat_map(|x| {
            b.iter().map(move |y| {
                if jaro_winkler_bound(x, y) < 0.88 {
                    0.0
                } else {
                    jaro_winkler_any_order(x, y)
                }
            })
        })
        .fold(0.0, f64::max);
    // Close as whole strings is not enough: "baker mary" and "baker tom" share a surname
    // and so most letters, and would reach 0.88. Every word of the shorter name must also
    // be close to a word of the other (a typo, not another given name).
    let best = if best >= 0.88 && !a.iter().any(|x| b.iter().any(|y| words_correspond(x, y))) {
        0.0
    } else {
        best
    };
    if best >= 0.94 || a.iter().any(|x| b.iter().any(|y| spaced_differently(x, y))) {
        2
    } else if best >= 0.88 {
        3
    } else if a.iter().any(|x| {
        b.iter()
            .any(|y| shares_word(x, y) && same_surname_and_initial(x, y))
    }) {
        4
    } else {
        5
    }
}

/// Whether two names have a word in common: what a left-out given name and a shortened one
/// both need, checked first because most compared names (strangers') have none.
fn shares_word(a: &str, b: &str) -> bool {
    a.split(' ').any(|w| b.split(' ').any(|v| v == w))
}

/// Whether both names carry one-letter words and share none of them: "mary a smith" and
/// "mary b smith" share the key without initials ("mary smith"), yet are as likely two people
/// as one, so they are compared as spellings, not as one name.
fn middle_initials_differ(a: &[String], b: &[String]) -> bool {
    // Iterated, not collected: this runs for every compared pair that shares a name.
    fn initials(names: &[String]) -> impl Iterator<Item = char> + '_ {
        names.iter().flat_map(|n| n.split(' ')).filter_map(|w| {
            let mut chars = w.trim_end_matches('.').chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
                _ => None,
            }
        })
    }
    initials(a).next().is_some()
        && initials(b).next().is_some()
        && !initials(a).any(|c| initials(b).any(|d| d == c))
}

/// Whether one name is some of the other's words, the rest including a whole word (not only
/// initials: "john smith" and "john m smith" are left to Jaro–Winkler, a middle initial
/// written once and not again).
fn words_left_out(a: &str, b: &str) -> bool {
    // Words are split again rather than collected: nearly every compared pair stops at the
    // first word, and an allocation per call was a visible share of matching.
    let within = |few: &str, many: &str| {
        few.split(' ').all(|w| many.split(' ').any(|v| v == w))
            && many
                .split(' ')
                .any(|v| v.chars().count() >= 2 && !few.split(' ').any(|w| w == v))
    };
    within(a, b) || within(b, a)
}

/// Jaro–Winkler of two sorted-word names, also with the second one's words in the other
/// order: a typo in a first letter moves a word ("lukas schäfer", "cshäfer lukas"). Only one
/// side is swapped; swapping both would line up a shared surname first and let the Winkler
/// prefix bonus hide different given names.
fn jaro_winkler_any_order(a: &str, b: &str) -> f64 {
    let sorted = jaro_winkler(a, b);
    match b.split_once(' ') {
        // Equal first letters mean the sort already lined the words up.
        Some((first, rest))
            if sorted < 0.94 && !rest.contains(' ') && a.chars().next() != b.chars().next() =>
        {
            sorted.max(jaro_winkler_swapped(a, first, rest))
        }
        _ => sorted,
    }
}

/// Jaro–Winkler of `a` and the two words `first rest` written as `rest first`, built on
/// the stack when it can be (it runs for most compared pairs of two-word names).
fn jaro_winkler_swapped(a: &str, first: &str, rest: &str) -> f64 {
    let n = first.len() + 1 + rest.len();
    if a.is_ascii() && first.is_ascii() && rest.is_ascii() && n <= 128 {
        let mut swapped = [b' '; 128];
        swapped[..rest.len()].copy_from_slice(rest.as_bytes());
        swapped[rest.len() + 1..n].copy_from_slice(first.as_bytes());
        jaro_winkler_of(a.as_bytes(), &swapped[..n])
    } else {
        jaro_winkler(a, &format!("{rest} {first}"))
    }
}

/// Whether every word of the name with fewer words is close (Jaro–Winkler at least 0.8) to
/// some word of the other one: "jon smith" and "john smith", "maryjane watson" and "jane
/// mary watson", but not "mary baker" and "tom baker".
fn words_correspond(a: &str, b: &str) -> bool {
    let (short, long) = if a.split(' ').count() <= b.split(' ').count() {
        (a, b)
    } else {
        (b, a)
    };
    short
        .split(' ')
        .all(|w| long.split(' ').any(|v| jaro_winkler(w, v) >= 0.8))
}

/// Whether two names are the same letters with a space typed elsewhere: moved ("pingxi axu"
/// and "pingxia xu", "mar ymartin"), dropped or added ("maryann", "mc donald"), or with a
/// letter swapped across it ("arthur alurent"). Word by word such names look unrelated; joined
/// in some word order they are close. Only names of the same letters are joined and compared.
fn spaced_differently(a: &str, b: &str) -> bool {
    // Same letters: as many, then equal byte counts, spaces aside (on the stack; nearly every
    // compared pair stops at the length).
    fn letters(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.bytes().filter(|&c| c != b' ')
    }
    if a == b || letters(a).count() != letters(b).count() {
        return false;
    }
    if bytes_apart::<256>(letters(a), letters(b)) != 0 {
        return false;
    }
    let (wa, wb): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
    if wa.len() > 3 || wb.len() > 3 {
        return false;
    }
    let (ja, jb) = (joined_orders(&wa), joined_orders(&wb));
    ja.iter()
        .any(|x| jb.iter().any(|y| jaro_winkler(x, y) >= 0.94))
}

/// The words joined without spaces, in every order (at most three words: six orders).
fn joined_orders(words: &[&str]) -> Vec<String> {
    match words {
        [] => Vec::new(),
        [w] => vec![(*w).to_owned()],
        _ => (0..words.len())
            .flat_map(|i| {
                let mut rest = words.to_vec();
                let first = rest.remove(i);
                joined_orders(&rest)
                    .into_iter()
                    .map(move |tail| format!("{first}{tail}"))
            })
            .collect(),
    }
}

/// Whether two sorted-word names share a word of two letters or more and what else they hold
/// is the same name shortened: an initial or the start of a word ("j smith" and "john
/// smith", "chris lee" and "christopher lee"), or nothing on one side ("smith" alone). Two
/// whole given names that merely start alike ("deborah saenz" and "devyn saenz") are two
/// people, often of one household.
fn same_surname_and_initial(a: &str, b: &str) -> bool {
    // Most compared names share no word: that is decided before anything is collected.
    if !a
        .split(' ')
        .any(|s| s.chars().count() >= 2 && b.split(' ').any(|t| t == s))
    {
        return false;
    }
    let (wa, wb): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
    // The words each has that the other lacks.
    let ra: Vec<&str> = wa.iter().filter(|w| !wb.contains(w)).copied().collect();
    let rb: Vec<&str> = wb.iter().filter(|w| !wa.contains(w)).copied().collect();
    // Some such word shortens, or is shortened to, one of the other's, and every such word
    // of two letters or more does: "mary j smith" and "john smith" are two people, while an
    // extra middle initial ("j m smith") says nothing.
    let shortens =
        |x: &&str, other: &[&str]| other.iter().any(|y| x.starts_with(y) || y.starts_with(*x));
    let whole_words_shorten = |words: &[&str], other: &[&str]| {
        words
            .iter()
            .all(|w| w.chars().count() < 2 || shortens(w, other))
    };
    ra.is_empty()
        || rb.is_empty()
        || (ra.iter().any(|x| shortens(x, &rb))
            && whole_words_shorten(&ra, &rb)
            && whole_words_shorten(&rb, &ra))
}

fn compare_email(a: &str, b: &str) -> u8 {
    if a == b {
        return 1;
    }
    fn local(e: &str) -> &str {
        e.split('@').next().unwrap_or_default()
    }
    // Two addresses a typo apart are one mailbox mistyped, unless their numbers differ:
    // ann.lee12@ and ann.lee13@ are two people with the same name.
    if local(a) == local(b) {
        2
    } else if same_digits(a, b) && levenshtein_at_most(a, b, 2) {
        3
    } else {
        4
    }
}

/// Whether two strings hold the same digits in the same order.
fn same_digits(a: &str, b: &str) -> bool {
    fn digits(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.bytes().filter(u8::is_ascii_digit)
    }
    digits(a).eq(digits(b))
}

/// Whether an email's local part is nothing but words of the name and their initials, each
/// used once, with at least one whole word (kevin.hart, hartk, k_hart; not zml1995 or kh).
fn spelt_from_names(email: &str, names: &[String]) -> bool {
    fn spells(rest: &str, words: &mut Vec<&str>, whole: bool) -> bool {
        if rest.is_empty() {
            return whole;
        }
        for i in 0..words.len() {
            let w = words.swap_remove(i);
            let initial = w.chars().next().map_or(0, char::len_utf8);
            let found = (rest.starts_with(w) && spells(&rest[w.len()..], words, true))
                || (initial > 0
                    && rest.starts_with(&w[..initial])
                    && spells(&rest[initial..], words, whole));
            words.push(w);
            let last = words.len() - 1;
            words.swap(i, last);
            if found {
                return true;
            }
        }
        false
    }
    let local = email.split('@').next().unwrap_or_default();
    if local.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let letters: String = local.chars().filter(|c| c.is_alphabetic()).collect();
    names.iter().any(|n| {
        let mut words: Vec<&str> = n.split(' ').filter(|w| !w.is_empty()).collect();
        words.len() <= 4 && spells(&letters, &mut words, false)
    })
}

fn compare_birth(a: &str, b: &str) -> u8 {
    if a == b {
        return 1;
    }
    if a.len() == 8 && b.len() == 8 && a[..4] == b[..4] && a[4..6] == b[6..8] && a[6..8] == b[4..6]
    {
        return 2;
    }
    let differing = a.bytes().zip(b.bytes()).filter(|(x, y)| x != y).count();
    if a.len() == b.len() && differing == 1 {
        3
    } else {
        4
    }
}

fn last_digits(s: &str, n: usize) -> &str {
    &s[s.len().saturating_sub(n)..]
}

/// Jaro–Winkler similarity of two strings (1 = equal).
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    // Most compared values are ASCII; comparing bytes spares collecting characters.
    if a.is_ascii() && b.is_ascii() {
        return jaro_winkler_of(a.as_bytes(), b.as_bytes());
    }
    // Other names (a quarter of a Chinese retailer's: every one's hanzi key is compared with
    // the other record's keys) have their characters collected on the stack when they fit.
    const ON_STACK: usize = 32;
    let (mut x, mut y) = (['\0'; ON_STACK], ['\0'; ON_STACK]);
    let fill = |s: &str, buf: &mut [char; ON_STACK]| -> Option<usize> {
        let mut n = 0;
        for c in s.chars() {
            *buf.get_mut(n)? = c;
            n += 1;
        }
        Some(n)
    };
    match (fill(a, &mut x), fill(b, &mut y)) {
        (Some(n), Some(m)) => jaro_winkler_of(&x[..n], &y[..m]),
        _ => {
            let a: Vec<char> = a.chars().collect();
            let b: Vec<char> = b.chars().collect();
            jaro_winkler_of(&a, &b)
        }
    }
}

/// How far apart the byte counts of two strings are: the bytes of either that the other
/// lacks, counted with repeats (0 for the same bytes in any order). Counted in a table of `N`
/// entries: 256 for any text, 128 for ASCII only, half the table to clear and sum (it runs for
/// millions of compared names and streets a run: 29 ns a call, measured against 79 ns for the
/// 256 64-bit counts used before).
fn bytes_apart<const N: usize>(a: impl Iterator<Item = u8>, b: impl Iterator<Item = u8>) -> usize {
    let mut count = [0i32; N];
    a.for_each(|c| count[usize::from(c) % N] += 1);
    b.for_each(|c| count[usize::from(c) % N] -= 1);
    count.iter().map(|n| n.unsigned_abs() as usize).sum()
}

/// An upper bound of the Jaro–Winkler similarity of two strings, in either of their word
/// orders, from their letters alone: no more characters can match than the two have in
/// common, whatever their positions, and the prefix bonus is at most four letters. Cheaper
/// than the similarity itself, it turns most pairs of strangers' names or streets away
/// before it. Only ASCII is bounded (other strings get 1).
fn jaro_winkler_bound(a: &str, b: &str) -> f64 {
    if !a.is_ascii() || !b.is_ascii() || a.is_empty() || b.is_empty() {
        return 1.0;
    }
    // The characters two strings have in common, counted with repeats.
    let common = ((a.len() + b.len() - bytes_apart::<128>(a.bytes(), b.bytes())) / 2) as f64;
    let jaro = (common / a.len() as f64 + common / b.len() as f64 + 1.0) / 3.0;
    jaro + 0.4 * (1.0 - jaro)
}

fn jaro_winkler_of<T: PartialEq + Copy>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return if a == b { 1.0 } else { 0.0 };
    }
    // Which characters matched, as bits: on the stack for any name or street. This runs
    // millions of times a run, and two allocations a call were a tenth of matching's time.
    if a.len() <= 256 && b.len() <= 256 {
        jaro_winkler_marking(a, b, &mut [0; 4], &mut [0; 4])
    } else {
        let words = |s: &[T]| vec![0; s.len().div_ceil(64)];
        jaro_winkler_marking(a, b, &mut words(a), &mut words(b))
    }
}

/// Jaro–Winkler of two non-empty sequences, given zeroed bitsets of their lengths.
fn jaro_winkler_marking<T: PartialEq + Copy>(
    a: &[T],
    b: &[T],
    a_used: &mut [u64],
    b_used: &mut [u64],
) -> f64 {
    let marked = |bits: &[u64], i: usize| (bits[i / 64] >> (i % 64)) & 1 == 1;
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut m = 0usize;
    for (i, ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        if let Some(j) = (lo..hi).find(|&j| !marked(b_used, j) && b[j] == *ca) {
            b_used[j / 64] |= 1 << (j % 64);
            a_used[i / 64] |= 1 << (i % 64);
            m += 1;
        }
    }
    if m == 0 {
        return 0.0;
    }
    let a_matched = (0..a.len()).filter(|&i| marked(a_used, i)).map(|i| a[i]);
    let b_matched = (0..b.len()).filter(|&j| marked(b_used, j)).map(|j| b[j]);
    let transpositions = a_matched.zip(b_matched).filter(|(x, y)| x != y).count();
    let m = m as f64;
    let jaro =
        (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions as f64 / 2.0) / m) / 3.0;
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    jaro + prefix as f64 * 0.1 * (1.0 - jaro)
}

/// Whether the edit distance of two strings is at most `k`.
fn levenshtein_at_most(a: &str, b: &str, k: usize) -> bool {
    // Cheap refusal first: most compared addresses differ in length by more than `k`.
    if a.chars().count().abs_diff(b.chars().count()) > k {
        return false;
    }
    // Emails are ASCII and short: their bytes, and the two rows on the stack (this runs for
    // most compared pairs of addresses without digits).
    if a.is_ascii() && b.is_ascii() && b.len() < 64 {
        // An edit changes the letter counts by at most two, so counts further apart than
        // twice `k` refuse the pair without the table (most pairs of strangers' addresses).
        if bytes_apart::<128>(a.bytes(), b.bytes()) > 2 * k {
            return false;
        }
        let (mut prev, mut cur) = ([0; 64], [0; 64]);
        return edits_at_most(a.as_bytes(), b.as_bytes(), k, &mut prev, &mut cur);
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    edits_at_most(
        &a,
        &b,
        k,
        &mut vec![0; b.len() + 1],
        &mut vec![0; b.len() + 1],
    )
}

/// Whether the edit distance of `a` and `b` is at most `k`, given two rows of at least
/// `b.len() + 1` cells.
fn edits_at_most<T: PartialEq>(
    a: &[T],
    b: &[T],
    k: usize,
    prev: &mut [usize],
    cur: &mut [usize],
) -> bool {
    let n = b.len() + 1;
    let (mut prev, mut cur) = (&mut prev[..n], &mut cur[..n]);
    for (j, cell) in prev.iter_mut().enumerate() {
        *cell = j;
    }
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        if cur.iter().min().is_some_and(|m| *m > k) {
            return false;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] <= k
}

/// One blocking rule: the keys a record is filed under.
type Rule = fn(&MatchRecord, &mut Keys);

/// A record's blocking keys, each kept as a 64-bit hash of its parts: no key text is built.
/// Two keys colliding would only join their blocks (more pairs compared, none lost).
#[derive(Default)]
struct Keys(Vec<u64>);

impl Keys {
    /// Files the record under the key made of `parts`, spaces left out: a space typed into or
    /// dropped from a word (`coplanddrive`, `birmingha m gardens`) keeps its key.
    fn add(&mut self, parts: &[&str]) {
        use std::hash::Hasher;
        let mut h = rustc_hash::FxHasher::default();
        for p in parts {
            // Byte by byte: FxHasher's `write` of a slice depends on how it is split.
            p.bytes().filter(|&b| b != b' ').for_each(|b| h.write_u8(b));
            h.write_u8(0xff);
        }
        self.0.push(h.finish());
    }
}

/// A blocking rule with the fields its keys are made of: pairs it finds agree on those by
/// construction, so they teach nothing about how matches compare on them.
struct Blocking {
    keys: Rule,
    uses: &'static [usize],
    /// Whether its keys are what a household shares (an address, a surname and a place):
    /// its pairs are family members as often as one person twice, and EM on them learns
    /// "same household" (different given names and birth dates counted as a match's), so it
    /// finds candidates but does not teach m while other rules can.
    household: bool,
}

/// The blocking rules, unioned. Each is narrow enough to keep blocks small and together they
/// give nearly every true pair more than one way to be found.
const RULES: [Blocking; 16] = [
    // Email.
    Blocking {
        keys: |r, k| r.email.iter().for_each(|e| k.add(&[e])),
        uses: &[EMAIL],
        household: false,
    },
    // Phone.
    Blocking {
        keys: |r, k| r.phone.iter().for_each(|p| k.add(&[p])),
        uses: &[PHONE],
        household: false,
    },
    // Phone last 8.
    Blocking {
        keys: |r, k| r.phone.iter().for_each(|p| k.add(&[last_digits(p, 8)])),
        uses: &[PHONE],
        household: false,
    },
    // A word of the name + birth date (a typo elsewhere in the name does not hide the pair).
    Blocking {
        keys: |r, k| {
            if let Some(b) = &r.birth {
                name_words(r).for_each(|w| k.add(&[w, b]));
            }
        },
        uses: &[NAME, BIRTH],
        household: false,
    },
    // A word of the name + postal code or city (a typo elsewhere in the name, no birth date).
    Blocking {
        keys: |r, k| {
            for place in [&r.postal, &r.city].into_iter().flatten() {
                name_words(r).for_each(|w| k.add(&[w, place]));
            }
        },
        uses: &[NAME, POSTAL, CITY],
        household: true,
    },
    // The whole name + city: where a word of it with the place is too common a block.
    Blocking {
        keys: |r, k| {
            if let Some(c) = &r.city {
                r.names.iter().for_each(|n| k.add(&[n, c]));
            }
        },
        uses: &[NAME, CITY],
        household: false,
    },
    // Street + postal code (names spelled differently, same home).
    Blocking {
        keys: |r, k| {
            if let (Some(a), Some(p)) = (&r.address, &r.postal) {
                k.add(&[a, p]);
            }
        },
        uses: &[ADDRESS, POSTAL],
        household: true,
    },
    // House number + postal code (the street misspelled).
    Blocking {
        keys: |r, k| {
            if let (Some(a), Some(p)) = (&r.address, &r.postal) {
                a.split(' ').next().iter().for_each(|n| k.add(&[n, p]));
            }
        },
        uses: &[POSTAL],
        household: true,
    },
    // Birth date + postal code.
    Blocking {
        keys: |r, k| {
            if let (Some(b), Some(p)) = (&r.birth, &r.postal) {
                k.add(&[b, p]);
            }
        },
        uses: &[BIRTH, POSTAL],
        household: false,
    },
    // Street + birth date (the postal code and city mistyped).
    Blocking {
        keys: |r, k| {
            if let (Some(a), Some(b)) = (&r.address, &r.birth) {
                k.add(&[a, b]);
            }
        },
        uses: &[ADDRESS, BIRTH],
        household: false,
    },
    // Birth date + city (the name and the postal code mistyped).
    Blocking {
        keys: |r, k| {
            if let (Some(b), Some(c)) = (&r.birth, &r.city) {
                k.add(&[b, c]);
            }
        },
        uses: &[BIRTH, CITY],
        household: false,
    },
    // Birth date + initials.
    Blocking {
        keys: |r, k| {
            if let Some(b) = &r.birth {
                r.names.iter().for_each(|n| k.add(&[b, &initials(n)]));
            }
        },
        uses: &[NAME, BIRTH],
        household: false,
    },
    // Email local part.
    Blocking {
        keys: |r, k| {
            if let Some(e) = &r.email {
                e.split('@').next().iter().for_each(|l| k.add(&[l]));
            }
        },
        uses: &[EMAIL],
        household: false,
    },
    // House number + the street's first word (the rest of the street, postal code and city
    // mistyped).
    Blocking {
        keys: |r, k| {
            if let Some((number, street)) = r.address.as_deref().and_then(house_and_street) {
                k.add(&[number, street]);
            }
        },
        uses: &[ADDRESS],
        household: true,
    },
    // The whole name alone (everything else changed: a move, a new phone).
    Blocking {
        keys: |r, k| r.names.iter().for_each(|n| k.add(&[n])),
        uses: &[NAME],
        household: false,
    },
    // The start of the street's first word + the start of a word of the name (a new house
    // number, and a typo late in the street or the name).
    Blocking {
        keys: |r, k| {
            if let Some(street) = r.address.as_deref().and_then(street_word) {
                name_words(r).for_each(|w| k.add(&[prefix(street, 4), prefix(w, 3)]));
            }
        },
        uses: &[NAME, ADDRESS],
        household: true,
    },
];

// [`Blocked`] records the rules that found a pair as bits of a u32.
const _: () = assert!(RULES.len() <= 32);

/// The distinct words of a record's names, of two letters or more.
fn name_words(r: &MatchRecord) -> impl Iterator<Item = &str> {
    let mut words: Vec<&str> = r
        .names
        .iter()
        .flat_map(|n| n.split(' '))
        .filter(|w| w.chars().count() >= 2)
        .collect();
    words.sort_unstable();
    words.dedup();
    words.into_iter()
}

/// The house number and the first word of the street after it (`24 eddy crescent` gives
/// `24` and `eddy`), if the address has both.
fn house_and_street(address: &str) -> Option<(&str, &str)> {
    let mut words = address.split(' ');
    let number = words.find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let street = words.find(|w| w.starts_with(char::is_alphabetic))?;
    Some((number, street))
}

/// The street's first word: the first word after the house number, or the first word.
fn street_word(address: &str) -> Option<&str> {
    house_and_street(address)
        .map(|(_, street)| street)
        .or_else(|| {
            address
                .split(' ')
                .find(|w| w.starts_with(char::is_alphabetic))
        })
}

/// The first `n` characters of `s`.
fn prefix(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn initials(name: &str) -> String {
    name.split(' ').filter_map(|w| w.chars().next()).collect()
}

/// Candidate pairs `(i, j)` with `i < j`, each once: records sharing a key of any rule, for
/// blocks of at most `cap` records.
pub fn candidate_pairs(records: &[MatchRecord], cap: usize) -> Vec<(u32, u32)> {
    block(records, cap).pairs
}

/// What blocking found: the candidate pairs, and which rules found each (estimation fits one
/// model per rule).
#[derive(Debug, Clone)]
pub struct Blocked {
    /// The union of the rules' pairs, sorted and distinct.
    pub pairs: Vec<(u32, u32)>,
    /// Per pair, bit `r` set when rule `r` of [`RULES`] found it.
    found_by: Vec<u32>,
}

/// Runs every blocking rule once, with blocks of at most `cap` records.
pub fn block(records: &[MatchRecord], cap: usize) -> Blocked {
    let per_rule: Vec<Vec<(u32, u32)>> = RULES
        .par_iter()
        .map(|rule| rule_pairs(records, rule, cap))
        .collect();
    // One allocation of the final size: collecting the rules' millions of pairs piecewise
    // grew and copied them into fresh memory several times over.
    let mut tagged: Vec<((u32, u32), u32)> =
        Vec::with_capacity(per_rule.iter().map(Vec::len).sum());
    for (r, pairs) in per_rule.into_iter().enumerate() {
        tagged.extend(pairs.into_iter().map(|p| (p, 1u32 << r)));
    }
    tagged.par_sort_unstable_by_key(|t| t.0);
    let (mut pairs, mut found_by) = (Vec::new(), Vec::new());
    for same in tagged.chunk_by(|x, y| x.0 == y.0) {
        pairs.push(same[0].0);
        found_by.push(same.iter().fold(0, |m, t| m | t.1));
    }
    Blocked { pairs, found_by }
}

/// The pairs `(i, j)`, `i < j`, one rule finds: records sharing a key, in blocks of at most
/// `cap`.
fn rule_pairs(records: &[MatchRecord], rule: &Blocking, cap: usize) -> Vec<(u32, u32)> {
    let mut filed: Vec<(u64, u32)> = records
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, r)| {
            let mut keys = Keys::default();
            (rule.keys)(r, &mut keys);
            keys.0.sort_unstable();
            keys.0.dedup();
            keys.0.into_iter().map(move |k| (k, i as u32))
        })
        .collect();
    // By key, then record: each block's records come out in ascending order.
    filed.par_sort_unstable();
    let mut out = Vec::new();
    for block in filed.chunk_by(|x, y| x.0 == y.0) {
        if block.len() < 2 || block.len() > cap {
            continue;
        }
        for (x, &(_, a)) in block.iter().enumerate() {
            out.extend(block[x + 1..].iter().map(|&(_, b)| (a, b)));
        }
    }
    out
}

/// How common each value of a field is: its share of the records' values.
pub type TermFrequencies = rustc_hash::FxHashMap<String, f64>;

/// Fitted Fellegi–Sunter parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Model {
    /// Prior probability that two records drawn at random are a match. Blocking chooses
    /// which pairs are compared; it is not evidence, so scores start from this prior.
    pub lambda: f64,
    /// `m[f][l]`: probability of level `l + 1` of field `f` among matches.
    pub m: Vec<Vec<f64>>,
    /// `u[f][l]`: probability of level `l + 1` of field `f` among non-matches.
    pub u: Vec<Vec<f64>>,
    /// The name levels' probabilities among different people of one home (candidates at the
    /// same street address with different birth dates), when enough such pairs were seen.
    /// Family members share a surname, so a partly agreeing name is far commoner between
    /// two people at one address than between two people drawn at random; at an agreed
    /// address a name below exact agreement is weighed against this instead of `u`.
    #[serde(default)]
    pub u_home: Option<Vec<f64>>,
    /// Per term-frequency field, the share of records holding each value.
    #[serde(skip)]
    pub tf: Vec<TermFrequencies>,
    /// EM iterations run.
    pub iterations: usize,
}

/// The smallest probability any level is given, so no single field can veto a pair outright.
const FLOOR: f64 = 1e-6;

/// Estimates the model without labels.
///
/// u comes from `u_pairs` random pairs (seeded): nearly all of them are non-matches. m comes
/// from expectation–maximisation run once per blocking rule over the pairs that rule finds,
/// with the rule's own fields left out (its pairs agree on them by construction, which would
/// otherwise teach EM that "a match" means "same name, same city"); each level's m is the
/// weighted median over the rules that did not use the field. Finally the share of matches
/// among all `pairs` (the prior) is fitted with m and u held fixed.
pub fn estimate(records: &[MatchRecord], blocked: &Blocked, u_pairs: usize, seed: u64) -> Model {
    let gammas = compare_all(records, &blocked.pairs);
    estimate_with(records, blocked, &gammas, u_pairs, seed)
}

/// Comparison vectors of `pairs`, in their order (sorted pairs read records in sequence).
fn compare_all(records: &[MatchRecord], pairs: &[(u32, u32)]) -> Vec<Gamma> {
    pairs
        .par_iter()
        .map(|&(i, j)| compare(&records[i as usize], &records[j as usize]))
        .collect()
}

/// [`estimate`] with the candidates' comparison vectors already computed.
fn estimate_with(
    records: &[MatchRecord],
    blocked: &Blocked,
    gammas: &[Gamma],
    u_pairs: usize,
    seed: u64,
) -> Model {
    let pairs = &blocked.pairs;
    let n = records.len();
    let mut random: Vec<(u32, u32)> = (0..if n < 2 { 0 } else { u_pairs })
        .into_par_iter()
        .map(|k| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ k as u64);
            let i = rng.gen_range(0..n);
            let mut j = rng.gen_range(0..n - 1);
            if j >= i {
                j += 1;
            }
            (i as u32, j as u32)
        })
        .collect();
    // Compared in record order, so one side of each pair is read from memory in sequence
    // (every field of a random pair is a cache miss otherwise; the counts do not depend on
    // the order).
    random.par_sort_unstable();
    let random = compare_all(records, &random);
    let counts = level_counts(random.iter());
    let u = counts_to_probabilities(&counts);
    // Fields the records hold at all (a field nobody has keeps the starting m and a uniform u,
    // and would weigh in [`describes_matches`] without being evidence of anything).
    let held: Vec<bool> = counts.iter().map(|c| c.iter().sum::<f64>() > 0.0).collect();
    let u_home = home_name_levels(gammas);
    // Per field, each rule's estimate of m with the weight it carries, and whether the rule
    // blocks on what a household shares.
    let mut estimates: Vec<Vec<(f64, Vec<f64>, bool)>> = vec![Vec::new(); FIELDS.len()];
    let mut iterations = 0;
    // Distinct (comparison vector, rules that found it) with their counts: every fit below
    // runs over these rather than over pairs.
    let combos: Vec<((Gamma, u32), f64)> = gammas
        .par_iter()
        .zip(&blocked.found_by)
        .fold(rustc_hash::FxHashMap::default, |mut acc, (g, &rules)| {
            *acc.entry((*g, rules)).or_insert(0.0) += 1.0;
            acc
        })
        .reduce(rustc_hash::FxHashMap::default, |mut a, b| {
            for (k, v) in b {
                *a.entry(k).or_insert(0.0) += v;
            }
            a
        })
        .into_iter()
        .collect();
    for (r, rule) in RULES.iter().enumerate() {
        let found = combos
            .iter()
            .filter(|((_, rules), _)| rules & (1 << r) != 0)
            .map(|((g, _), n)| (*g, *n));
        let patterns = patterns(found, rule.uses);
        let fit = em(&patterns, initial_m(), &u, None, 0.5, true);
        iterations += fit.iterations;
        for f in (0..FIELDS.len()).filter(|f| !rule.uses.contains(f)) {
            // Weighted by how many matches the rule found with the field present, times the
            // share of its pairs that match: a rule whose pairs are mostly strangers (a word
            // of the name in a big city) gives EM little to separate, and its estimate of
            // how matches compare is the least reliable.
            let present: f64 = fit.matched_with[f] * fit.lambda;
            if present > 0.0 {
                estimates[f].push((present, fit.m[f].clone(), rule.household));
            }
        }
    }
    let m: Vec<Vec<f64>> = estimates
        .iter()
        .zip(initial_m())
        .map(|(by_rule, init)| {
            // The household rules' estimates count only where no other rule gave one.
            let person: Vec<_> = by_rule.iter().filter(|(_, _, h)| !h).collect();
            let by_rule: Vec<_> = if person.is_empty() {
                by_rule.iter().collect()
            } else {
                person
            };
            if by_rule.is_empty() {
                return init;
            }
            let mut m: Vec<f64> = (0..init.len())
                .map(|l| weighted_median(by_rule.iter().map(|(w, m, _)| (m[l], *w))))
                .collect();
            normalize(&mut m);
            m
        })
        .collect();
    let all = patterns(combos.iter().map(|((g, _), n)| (*g, *n)), &[]);
    // The matches EM expects among the candidates, spread over all pairs.
    let prior = |fit: &Fit| {
        (fit.lambda * pairs.len() as f64 / (n as f64 * (n as f64 - 1.0) / 2.0).max(1.0))
            .clamp(1e-12, 0.5)
    };
    let mut fit = em(&all, m, &u, u_home.clone(), 0.1, false);
    iterations += fit.iterations;
    if !describes_matches(prior(&fit), &fit.m, &u, &held) {
        // Records without duplicates (a deduplicated CRM export, say) give EM no matches to
        // learn from: it takes some other likeness among the candidates for one. Such a model
        // then kept every record matched online apart from everyone (a record no longer
        // matched even its own copy), or joined namesakes born years apart (most "matches"
        // had different birth dates), until a run on duplicated data. What matches look like
        // is taken from the starting guess instead, with u and the prior still from these
        // records.
        fit = em(&all, initial_m(), &u, u_home.clone(), 0.1, false);
        iterations += fit.iterations;
    }
    let mut model = Model {
        lambda: prior(&fit),
        m: fit.m,
        u,
        u_home,
        tf: Vec::new(),
        iterations,
    };
    model.count_term_frequencies(records);
    model
}

/// Whether a fitted model has learnt real matches: it links two records agreeing exactly on
/// every field the records hold (`held`), and does not take most matches to have different
/// birth dates (the steadiest thing a person's records share: in the models fitted on
/// FEBRL and the generated data at most 5% do).
fn describes_matches(lambda: f64, m: &[Vec<f64>], u: &[Vec<f64>], held: &[bool]) -> bool {
    let agreeing: f64 = (0..m.len())
        .filter(|&f| held[f])
        .map(|f| (m[f][0] / u[f][0]).log2())
        .sum();
    let births_differ = m[BIRTH].last().is_some_and(|&p| p >= 0.5);
    (lambda / (1.0 - lambda)).log2() + agreeing > 0.0 && !(held[BIRTH] && births_differ)
}

/// Fewest pairs of different people at one home to estimate [`Model::u_home`] from.
const HOME_PAIRS: usize = 100;

/// Above this share of exact names among them, the pairs at one address with different birth
/// dates are mostly one person (placeholder or mistyped birth dates), not a family.
const HOME_SAME_NAME: f64 = 0.2;

/// The name levels of candidate pairs at the same street address whose birth dates differ:
/// nearly all of them two people of one household (a birth date mistyped beyond one digit is
/// rare among a person's own records). `None` below [`HOME_PAIRS`] such pairs, or when
/// more than [`HOME_SAME_NAME`] of them have the same name: there birth dates do not tell
/// people apart (a default birthday, a signup date), and the pairs would teach that a
/// person's own typos are a family's.
fn home_name_levels(gammas: &[Gamma]) -> Option<Vec<f64>> {
    let home = gammas
        .iter()
        .filter(|g| g[ADDRESS] == 1 && g[BIRTH] == 4 && g[NAME] > 0);
    let counts = level_counts(home);
    let total: f64 = counts[NAME].iter().sum();
    (total >= HOME_PAIRS as f64 && counts[NAME][0] <= HOME_SAME_NAME * total).then(|| {
        let mut p = counts[NAME].clone();
        normalize(&mut p);
        p
    })
}

/// The value that holds half the weight on either side. The rules' estimates of m are
/// combined by it rather than averaged: a rule whose pairs EM cannot separate (everyone
/// sharing a local part of an email taken for one person) is outvoted, where it would pull
/// an average.
fn weighted_median(values: impl Iterator<Item = (f64, f64)>) -> f64 {
    let mut v: Vec<(f64, f64)> = values.collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = v.iter().map(|x| x.1).sum::<f64>() / 2.0;
    let mut seen = 0.0;
    for (x, w) in &v {
        seen += w;
        if seen >= half {
            return *x;
        }
    }
    v.last().map_or(0.0, |x| x.0)
}

/// "Agreement is likely among matches": where EM starts.
fn initial_m() -> Vec<Vec<f64>> {
    LEVELS
        .iter()
        .map(|levels| {
            let k = levels.len();
            let mut p: Vec<f64> = (0..k)
                .map(|l| if l == 0 { 0.9 } else { 0.1 / (k - 1) as f64 })
                .collect();
            normalize(&mut p);
            p
        })
        .collect()
}

/// Distinct comparison vectors with their counts, summed over `counted` with the `masked`
/// fields set to missing: EM runs over these, not over pairs.
fn patterns(counted: impl Iterator<Item = (Gamma, f64)>, masked: &[usize]) -> Vec<(Gamma, f64)> {
    let mut map: HashMap<Gamma, f64> = HashMap::new();
    for (mut g, n) in counted {
        for &f in masked {
            g[f] = 0;
        }
        *map.entry(g).or_default() += n;
    }
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort_by_key(|p| p.0);
    v
}

struct Fit {
    m: Vec<Vec<f64>>,
    lambda: f64,
    iterations: usize,
    /// Per field, the expected number of matches with a value in that field.
    matched_with: Vec<f64>,
}

/// Expectation–maximisation of the match share and (when `update_m`) the m probabilities,
/// with u fixed.
fn em(
    patterns: &[(Gamma, f64)],
    mut m: Vec<Vec<f64>>,
    u: &[Vec<f64>],
    u_home: Option<Vec<f64>>,
    mut lambda: f64,
    update_m: bool,
) -> Fit {
    let mut iterations = 0;
    let mut matched_with = vec![0.0; FIELDS.len()];
    for _ in 0..100 {
        iterations += 1;
        let model = Model {
            lambda,
            m: m.clone(),
            u: u.to_vec(),
            u_home: u_home.clone(),
            tf: Vec::new(),
            iterations,
        };
        let mut weighted: Vec<Vec<f64>> = LEVELS.iter().map(|l| vec![0.0; l.len()]).collect();
        let (mut total, mut matched) = (0.0, 0.0);
        for (g, count) in patterns {
            let p = model.probability_of(g);
            total += count;
            matched += p * count;
            for (f, &level) in g.iter().enumerate() {
                if level > 0 {
                    weighted[f][level as usize - 1] += p * count;
                }
            }
        }
        matched_with = weighted.iter().map(|w| w.iter().sum()).collect();
        let new_lambda = if total > 0.0 {
            (matched / total).clamp(1e-6, 1.0 - 1e-6)
        } else {
            lambda
        };
        let mut change = (new_lambda - lambda).abs();
        if update_m {
            let new_m: Vec<Vec<f64>> = weighted
                .into_iter()
                .zip(&m)
                .map(|(mut w, old)| {
                    if w.iter().sum::<f64>() > 0.0 {
                        normalize(&mut w);
                        w
                    } else {
                        old.clone()
                    }
                })
                .collect();
            change = new_m
                .iter()
                .flatten()
                .zip(m.iter().flatten())
                .map(|(a, b)| (a - b).abs())
                .fold(change, f64::max);
            m = new_m;
        }
        lambda = new_lambda;
        if change < 1e-6 {
            break;
        }
    }
    Fit {
        m,
        lambda,
        iterations,
        matched_with,
    }
}

fn level_counts<'a>(gammas: impl Iterator<Item = &'a Gamma>) -> Vec<Vec<f64>> {
    let mut counts: Vec<Vec<f64>> = LEVELS.iter().map(|l| vec![0.0; l.len()]).collect();
    for g in gammas {
        for (f, &level) in g.iter().enumerate() {
            if level > 0 {
                counts[f][level as usize - 1] += 1.0;
            }
        }
    }
    counts
}

fn counts_to_probabilities(counts: &[Vec<f64>]) -> Vec<Vec<f64>> {
    counts
        .iter()
        .map(|c| {
            let mut p = c.clone();
            normalize(&mut p);
            p
        })
        .collect()
}

/// Scales to sum 1 with every entry at least [`FLOOR`]; all-zero becomes uniform.
fn normalize(p: &mut [f64]) {
    let sum: f64 = p.iter().sum();
    let k = p.len() as f64;
    for x in p.iter_mut() {
        *x = if sum > 0.0 { *x / sum } else { 1.0 / k };
        *x = x.max(FLOOR);
    }
    let sum: f64 = p.iter().sum();
    for x in p.iter_mut() {
        *x /= sum;
    }
}

fn term_frequencies(records: &[MatchRecord], field: usize) -> TermFrequencies {
    let mut counts: rustc_hash::FxHashMap<&str, f64> = Default::default();
    let mut total = 0.0;
    for r in records {
        for v in values(r, field) {
            *counts.entry(v).or_default() += 1.0;
            total += 1.0;
        }
    }
    counts
        .into_iter()
        .map(|(v, c)| (v.to_owned(), c / total))
        .collect()
}

/// The smallest frequency, by `frequency_of(k, value)` for `a`'s `k`-th value, of the values
/// of field `f` that `a` and `b` share.
fn agreed_frequency(
    f: usize,
    a: &MatchRecord,
    b: &MatchRecord,
    frequency_of: impl Fn(usize, &str) -> Option<f64>,
) -> Option<f64> {
    let (va, vb) = (values(a, f), values(b, f));
    va.iter()
        .enumerate()
        .filter(|(_, v)| vb.contains(v))
        .filter_map(|(k, v)| frequency_of(k, v))
        .reduce(f64::min)
}

/// A model made ready to score millions of candidate pairs of `records`: each level's weight
/// computed once, and the term frequency of every value of the term-frequency fields looked
/// up once per record, so scoring a pair takes no logarithm but the term-frequency ones and
/// hashes no strings.
struct Scorer<'a> {
    model: &'a Model,
    /// `level_weights[f][l]`: the weight of level `l + 1` of field `f`.
    level_weights: Vec<Vec<f64>>,
    /// Record `r`'s frequencies are `tf[start[r]..start[r + 1]]`: field by field in
    /// [`TERM_FREQUENCY`] order, value by value; NaN for a value the model has not counted.
    start: Vec<usize>,
    tf: Vec<f64>,
}

impl<'a> Scorer<'a> {
    fn new(model: &'a Model, records: &[MatchRecord]) -> Scorer<'a> {
        let per_record: Vec<Vec<f64>> = records
            .par_iter()
            .map(|r| {
                let mut out = Vec::new();
                for (slot, &f) in TERM_FREQUENCY.iter().enumerate() {
                    let tf = model.tf.get(slot);
                    out.extend(values(r, f).iter().map(|v| {
                        tf.and_then(|tf| tf.get(v.as_str()).copied())
                            .unwrap_or(f64::NAN)
                    }));
                }
                out
            })
            .collect();
        let mut start = Vec::with_capacity(records.len() + 1);
        let mut tf = Vec::new();
        for v in per_record {
            start.push(tf.len());
            tf.extend(v);
        }
        start.push(tf.len());
        let level_weights = (0..FIELDS.len())
            .map(|f| {
                (0..model.m[f].len())
                    .map(|l| model.level_weight(f, l))
                    .collect()
            })
            .collect();
        Scorer {
            model,
            level_weights,
            start,
            tf,
        }
    }

    /// [`Model::link_weight`] of record `i` (that is `a`) and `b`, compared into `g`.
    fn link_weight(
        &self,
        g: &Gamma,
        i: usize,
        a: &MatchRecord,
        b: &MatchRecord,
    ) -> (f64, Evidence) {
        self.model.link_weight_of(|f| {
            let tf = if g[f] == 1 {
                self.agreed(f, i, a, b)
            } else {
                None
            };
            let w = self
                .model
                .field_weight_by(f, g[f], tf, |l| self.level_weights[f][l]);
            self.model.at_home(g, f, w)
        })
    }

    /// [`Model::agreed_tf`] for record `i` (that is `a`) and `b`, which agree exactly on
    /// field `f` (level 1 is equality for every term-frequency field).
    fn agreed(&self, f: usize, i: usize, a: &MatchRecord, b: &MatchRecord) -> Option<f64> {
        let slot = TERM_FREQUENCY.iter().position(|&t| t == f)?;
        let before: usize = TERM_FREQUENCY[..slot]
            .iter()
            .map(|&t| values(a, t).len())
            .sum();
        let mine = &self.tf[self.start[i] + before..self.start[i + 1]];
        let counted = |k: usize| Some(mine[k]).filter(|x| !x.is_nan());
        // With one value, the agreed value is `a`'s, and `b` is not read: at scale reading
        // it is a cache miss per pair (at 1,000,000 records, skipping it halved scoring).
        match values(a, f).len() {
            1 => counted(0),
            _ => agreed_frequency(f, a, b, |k, _| counted(k)),
        }
    }
}

fn values(r: &MatchRecord, field: usize) -> &[String] {
    match field {
        NAME => &r.names,
        EMAIL => r.email.as_slice(),
        PHONE => r.phone.as_slice(),
        BIRTH => r.birth.as_slice(),
        ADDRESS => r.address.as_slice(),
        POSTAL => r.postal.as_slice(),
        CITY => r.city.as_slice(),
        _ => r.gender.as_slice(),
    }
}

/// One field's part of a pair's match weight, for explanations.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldWeight {
    /// The field.
    pub field: &'static str,
    /// Its comparison level (`"missing"` when either side has no value).
    pub level: &'static str,
    /// log2 of the Bayes factor m/u (0 for missing values).
    pub weight: f64,
    /// Why the weight is not the level's usual one, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// A pair's match weight and probability with the per-field parts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Explanation {
    /// Per field.
    pub fields: Vec<FieldWeight>,
    /// log2 of the prior odds.
    pub prior_weight: f64,
    /// The total match weight.
    pub weight: f64,
    /// The match probability.
    pub probability: f64,
    /// Whether a deterministic rule links the pair outright, whatever the weight (set by
    /// [`LinkRules::explain`]).
    pub linked_outright: bool,
}

impl LinkRules {
    /// The `model`'s explanation of a pair, marked with whether these rules link it
    /// outright.
    pub fn explain(&self, model: &Model, a: &MatchRecord, b: &MatchRecord) -> Explanation {
        let g = compare(a, b);
        let mut e = model.explain_compared(&g, a, b);
        // A veto needs the email or phone to agree as evidence, and then the link weight is
        // the whole weight.
        e.linked_outright =
            self.links_weighed(model, &g, e.weight, a, b) || self.same_loyalty(a, b);
        e
    }
}

/// The match weight below which a fitted model vetoes an email or phone link: the other
/// fields together make two people likelier than one (a probability under one half), as when
/// two records of one mailbox differ in phone, street and city. Pairs near it go to review.
const OUTRIGHT_VETO: f64 = 0.0;

impl Model {
    /// Counts how common each value of the term-frequency fields is in `records` (a stored
    /// model does not keep these counts; they are recounted from the records it scores).
    pub fn count_term_frequencies(&mut self, records: &[MatchRecord]) {
        self.tf = TERM_FREQUENCY
            .par_iter()
            .map(|&f| term_frequencies(records, f))
            .collect();
    }

    /// log2 Bayes factor of one field's level, `None` for a missing value.
    fn field_weight(&self, f: usize, level: u8, tf_u: Option<f64>) -> f64 {
        self.field_weight_by(f, level, tf_u, |l| self.level_weight(f, l))
    }

    /// log2 Bayes factor of level `l + 1` of field `f`, without term frequency.
    fn level_weight(&self, f: usize, l: usize) -> f64 {
        (self.m[f][l] / self.u[f][l]).log2()
    }

    /// [`Model::field_weight`], with the weight of a level without term frequency from
    /// `untuned(level - 1)`.
    fn field_weight_by(
        &self,
        f: usize,
        level: u8,
        tf_u: Option<f64>,
        untuned: impl Fn(usize) -> f64,
    ) -> f64 {
        if level == 0 {
            return 0.0;
        }
        match (level as usize - 1, tf_u) {
            (0, Some(t)) => (self.m[f][0] / t.max(FLOOR)).log2(),
            (l, _) => untuned(l),
        }
    }

    fn probability_of(&self, g: &Gamma) -> f64 {
        let w = (self.lambda / (1.0 - self.lambda)).log2()
            + g.iter()
                .enumerate()
                .map(|(f, &l)| self.at_home(g, f, self.field_weight(f, l, None)))
                .sum::<f64>();
        probability(w)
    }

    /// The term frequency of the value two records agree on exactly in field `f`.
    fn agreed_tf(&self, f: usize, a: &MatchRecord, b: &MatchRecord) -> Option<f64> {
        let slot = TERM_FREQUENCY.iter().position(|&t| t == f)?;
        let tf = self.tf.get(slot)?;
        agreed_frequency(f, a, b, |_, v| tf.get(v).copied())
    }

    /// The match weight of two records, with each field's part.
    pub fn explain(&self, a: &MatchRecord, b: &MatchRecord) -> Explanation {
        self.explain_compared(&compare(a, b), a, b)
    }

    /// [`Model::explain`] for two records already compared into `g`.
    fn explain_compared(&self, g: &Gamma, a: &MatchRecord, b: &MatchRecord) -> Explanation {
        let prior_weight = (self.lambda / (1.0 - self.lambda)).log2();
        let fields: Vec<FieldWeight> = g
            .iter()
            .enumerate()
            .map(|(f, &level)| FieldWeight {
                field: FIELDS[f],
                level: if level == 0 {
                    "missing"
                } else {
                    LEVELS[f][level as usize - 1]
                },
                weight: self.weight_of(g, f, a, b),
                note: self
                    .home_weight(g, f)
                    .is_some_and(|home| home < self.field_weight(f, g[f], None))
                    .then_some(
                        "weighed against the names of people sharing a home: the street address agrees",
                    ),
            })
            .collect();
        let weight = prior_weight + fields.iter().map(|f| f.weight).sum::<f64>();
        Explanation {
            fields,
            prior_weight,
            weight,
            probability: probability(weight),
            linked_outright: false,
        }
    }

    /// Whether the model overrules the email or phone rule for a pair of link weight `w`: it
    /// has learnt that the shared identifier is strong evidence (at least [`EVIDENCE`]), and
    /// the pair is still clearly a non-match. A model fitted on too few records to learn that
    /// never vetoes, so the rules hold on small data.
    fn vetoes(&self, g: &Gamma, w: f64, a: &MatchRecord, b: &MatchRecord) -> bool {
        w < OUTRIGHT_VETO
            && [EMAIL, PHONE]
                .iter()
                .any(|&f| g[f] == 1 && self.weight_of(g, f, a, b) >= EVIDENCE)
    }

    /// The match weight of two records.
    pub fn score(&self, a: &MatchRecord, b: &MatchRecord) -> f64 {
        self.explain(a, b).weight
    }

    /// The weight used to link two records, and whether an identifying field (email, phone,
    /// birth date, street) gave evidence either way.
    ///
    /// Names and places are shared by many people, and agreeing on both is not independent
    /// evidence (a common Japanese name and Tokyo go together), so:
    /// - when an identifying field agrees, the match weight;
    /// - when none agrees and one disagrees, the match weight without the city: a city says
    ///   little about people who already share a name (names follow regions), so namesakes
    ///   in one city stay apart, while a shared postal code and street still count;
    /// - when no identifying field can be compared, the weight without the places, as a weak
    ///   link that [`join_unambiguous`] uses only when it points at a single group.
    pub fn link_weight(&self, a: &MatchRecord, b: &MatchRecord) -> (f64, Evidence) {
        self.link_weight_compared(&compare(a, b), a, b)
    }

    fn link_weight_compared(&self, g: &Gamma, a: &MatchRecord, b: &MatchRecord) -> (f64, Evidence) {
        self.link_weight_of(|f| self.weight_of(g, f, a, b))
    }

    /// [`Model::link_weight`] from each field's weight.
    fn link_weight_of(&self, weight_of: impl Fn(usize) -> f64) -> (f64, Evidence) {
        // The same sums as `explain_compared`, without its allocations: this runs for every
        // candidate pair.
        let fields: [f64; 8] = std::array::from_fn(weight_of);
        let weight = (self.lambda / (1.0 - self.lambda)).log2() + fields.iter().sum::<f64>();
        let evidence = IDENTIFYING.map(|f| fields[f]);
        if evidence.iter().any(|w| *w >= EVIDENCE) {
            (weight, Evidence::Agrees)
        } else if evidence.iter().any(|w| *w <= -EVIDENCE) {
            (weight - fields[CITY].max(0.0), Evidence::Disagrees)
        } else {
            (weight, Evidence::None)
        }
    }

    /// Field `f`'s part of the weight of a pair compared into `g`; the term frequency of the
    /// agreed value is looked up only for exact agreement, the one level it adjusts.
    fn weight_of(&self, g: &Gamma, f: usize, a: &MatchRecord, b: &MatchRecord) -> f64 {
        let tf = if g[f] == 1 {
            self.agreed_tf(f, a, b)
        } else {
            None
        };
        self.at_home(g, f, self.field_weight(f, g[f], tf))
    }

    /// Field `f`'s weight `w` in a pair compared into `g`, weighed as between people of one
    /// home when the street address agrees and the name agrees only partly: the lower of
    /// `w` and the weight against [`Model::u_home`].
    fn at_home(&self, g: &Gamma, f: usize, w: f64) -> f64 {
        self.home_weight(g, f).map_or(w, |home| w.min(home))
    }

    /// The weight of field `f` of a pair compared into `g` as between people of one home, when
    /// it is weighed so: the name, agreeing only partly (resembling, or a given name
    /// shortened or left out; a spelling within a typo of the other is still one person's),
    /// at an agreed street.
    fn home_weight(&self, g: &Gamma, f: usize) -> Option<f64> {
        let u_home = self.u_home.as_ref()?;
        if f != NAME || g[ADDRESS] != 1 || !matches!(g[NAME], 3 | 4) {
            return None;
        }
        let l = g[NAME] as usize - 1;
        Some((self.m[NAME].get(l)? / u_home.get(l)?).log2())
    }
}

/// What identifying fields said about a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// One agrees.
    Agrees,
    /// None agrees and one disagrees.
    Disagrees,
    /// None could be compared.
    None,
}

/// Adds weak links (pairs with no identifying evidence, at or above `threshold`) to a
/// clustering, but only between two groups that each have no weak link to any other group:
/// a record known by name and city alone joins the one person it could be, never one of
/// several namesakes, never one a person said it is not, and never a group one of whose
/// records is a scored non-match of one of its own.
pub fn join_unambiguous(
    clustering: crate::unify::Clustering,
    weak: &[(u32, u32, f64)],
    threshold: f64,
    scored: &[(u32, u32, f64)],
    apart: &Apart,
) -> crate::unify::Clustering {
    let group = &clustering.cluster_of;
    let mut partners: HashMap<u32, std::collections::BTreeSet<u32>> = HashMap::new();
    for &(a, b, w) in weak {
        let (ga, gb) = (group[a as usize], group[b as usize]);
        if w >= threshold && ga != gb {
            partners.entry(ga).or_default().insert(gb);
            partners.entry(gb).or_default().insert(ga);
        }
    }
    // A group with a record that is a scored non-match of a record of the other group (a
    // different birth date, say) is not joined by a name: the weak link would chain them.
    let mut apart = apart.clone();
    apart.0.extend(
        scored
            .iter()
            .filter(|&&(a, b, w)| {
                w < 0.0
                    && partners.contains_key(&group[a as usize])
                    && partners.contains_key(&group[b as usize])
            })
            .map(|&(a, b, _)| (a.min(b), a.max(b))),
    );
    let mut parent: Vec<u32> = (0..clustering.clusters as u32).collect();
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); clustering.clusters];
    for (i, &g) in group.iter().enumerate() {
        members[g as usize].push(i as u32);
    }
    for (&g, set) in &partners {
        if let [only] = set.iter().copied().collect::<Vec<_>>()[..] {
            let (rg, ro) = (root(&mut parent, g), root(&mut parent, only));
            if rg != ro
                && partners.get(&only).is_some_and(|s| s.len() == 1)
                && !apart.between(&members[rg as usize], &members[ro as usize])
            {
                join(&mut parent, &mut members, g, only);
            }
        }
    }
    numbered(group.iter().map(|&g| root(&mut parent, g)))
}

/// Pairs of records people said are different persons: no automatic link may put them in
/// one profile.
#[derive(Debug, Clone, Default)]
pub struct Apart(std::collections::HashSet<(u32, u32)>);

impl Apart {
    /// The set of `pairs`, in either order.
    pub fn new(pairs: &[(u32, u32)]) -> Apart {
        Apart(pairs.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect())
    }

    /// Whether any record of `a` was said to differ from any record of `b`.
    fn between(&self, a: &[u32], b: &[u32]) -> bool {
        !self.0.is_empty()
            && a.iter()
                .any(|&x| b.iter().any(|&y| self.0.contains(&(x.min(y), x.max(y)))))
    }
}

/// The probability of a match weight.
pub fn probability(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

/// Clusters records from scored pairs `(i, j, weight)`.
///
/// `same` pairs (people's decisions) are joined first, unconditionally. `must_link` pairs
/// (deterministic rules: the same email or phone) are joined next, unless that would put two
/// records a person kept `apart` in one profile. Then pairs at or above `threshold` are merged
/// strongest first, and two groups merge only when the pairs scored across them agree on
/// average (mean probability at least one half), none of them is a confident non-match
/// (see [`CONTRADICTION_MARGIN`]) and no pair across them was kept apart.
pub fn cluster(
    n: usize,
    scored: &[(u32, u32, f64)],
    must_link: &[(u32, u32)],
    threshold: f64,
    same: &[(u32, u32)],
    apart: &Apart,
) -> crate::unify::Clustering {
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut members: Vec<Vec<u32>> = (0..n as u32).map(|i| vec![i]).collect();
    // Looked up by binary search: a map of every scored pair would hold millions of entries.
    // `resolve` gives them sorted with `i < j`; only others are copied and sorted.
    let in_order = scored
        .par_windows(2)
        .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        && scored.par_iter().all(|p| p.0 < p.1);
    let weight_of: std::borrow::Cow<[(u32, u32, f64)]> = if in_order {
        std::borrow::Cow::Borrowed(scored)
    } else {
        let mut v: Vec<(u32, u32, f64)> = scored
            .iter()
            .map(|&(i, j, w)| (i.min(j), i.max(j), w))
            .collect();
        v.par_sort_unstable_by_key(|p| (p.0, p.1));
        std::borrow::Cow::Owned(v)
    };
    let weight = |x: u32, y: u32| {
        let key = (x.min(y), x.max(y));
        weight_of
            .binary_search_by_key(&key, |p| (p.0, p.1))
            .ok()
            .map(|k| weight_of[k].2)
    };
    for &(a, b) in same {
        join(&mut parent, &mut members, a, b);
    }
    for &(a, b) in must_link {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if !apart.between(&members[ra as usize], &members[rb as usize]) {
            join(&mut parent, &mut members, a, b);
        }
    }
    let mut strong: Vec<&(u32, u32, f64)> = scored.iter().filter(|p| p.2 >= threshold).collect();
    strong.sort_by(|x, y| y.2.total_cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    for &&(a, b, _) in &strong {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra == rb {
            continue;
        }
        let (ma, mb) = (&members[ra as usize], &members[rb as usize]);
        let (mut sum, mut seen, mut veto) = (0.0, 0usize, false);
        for &x in ma {
            for &y in mb {
                if let Some(w) = weight(x, y) {
                    sum += probability(w);
                    seen += 1;
                    veto |= contradicts(w, threshold);
                }
            }
        }
        if !veto && seen > 0 && sum / seen as f64 >= 0.5 && !apart.between(ma, mb) {
            join(&mut parent, &mut members, a, b);
        }
    }
    numbered((0..n as u32).map(|i| root(&mut parent, i)))
}

/// How far beyond the link weight's mirror image a pair must score, in bits, to keep its
/// records' groups apart: with the default link weight, eight times as likely two people as
/// one. At the mirror image itself (likelier two people, however slightly), FEBRL3's
/// duplicates with typos in four fields stayed apart: F1 0.980, against 0.986 at 1 bit and
/// 0.989 at 3. Generated records barely move: at 1,000,000, F1 0.9791, 0.9789, 0.9788.
const CONTRADICTION_MARGIN: f64 = 3.0;

/// Whether a pair's weight says "two people" confidently enough to veto a merge.
fn contradicts(weight: f64, link_weight: f64) -> bool {
    weight < -link_weight - CONTRADICTION_MARGIN
}

/// Clusters numbered `0..` in order of their first record, from each record's group label.
fn numbered(labels: impl Iterator<Item = u32>) -> crate::unify::Clustering {
    let mut number: rustc_hash::FxHashMap<u32, u32> = Default::default();
    let cluster_of = labels
        .map(|label| {
            let next = number.len() as u32;
            *number.entry(label).or_insert(next)
        })
        .collect();
    crate::unify::Clustering {
        cluster_of,
        clusters: number.len(),
    }
}

fn root(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        parent[i as usize] = parent[parent[i as usize] as usize];
        i = parent[i as usize];
    }
    i
}

fn join(parent: &mut [u32], members: &mut [Vec<u32>], a: u32, b: u32) {
    let (ra, rb) = (root(parent, a), root(parent, b));
    if ra == rb {
        return;
    }
    // The smaller index stays the root so results do not depend on merge order details.
    let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
    parent[hi as usize] = lo;
    let moved = std::mem::take(&mut members[hi as usize]);
    members[lo as usize].extend(moved);
}

/// How [`resolve`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Blocks bigger than this are skipped by their rule (a shared store phone, a default
    /// birthday); their records are still found through the other rules.
    pub block_cap: usize,
    /// Random pairs drawn to estimate how often non-matches agree.
    pub u_pairs: usize,
    /// Seed of that draw.
    pub seed: u64,
    /// Pairs with identifying evidence link at this match weight (log2 odds; 0 is a
    /// probability of 1/2, the most likely answer).
    pub link_weight: f64,
    /// Pairs with no identifying evidence (name, place and gender only) need this weight and
    /// a single candidate group.
    pub weak_link_weight: f64,
    /// Pairs within this many bits of the weight that links them go to the review queue.
    pub review_band: f64,
    /// The deterministic rules.
    pub rules: LinkRules,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            block_cap: 50,
            u_pairs: 300_000,
            seed: 0x5eed,
            link_weight: 0.0,
            // A probability of 2/3. At 0.85 (2.5, until session 10) the demo's recall was
            // 0.978-0.982 across generator seeds, under its 0.98 bar for some; at 2/3 it is
            // 0.987-0.989 with precision 0.991-0.994, and F1 at 200,000 records is unchanged
            // (0.9837). Weaker still (1/2) costs precision as namesakes multiply with size.
            weak_link_weight: 1.0,
            // Probabilities of about 0.26 to 0.74 around the link weight.
            review_band: 1.5,
            rules: LinkRules::default(),
        }
    }
}

/// What [`resolve`] found.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The entity of each record.
    pub clustering: crate::unify::Clustering,
    /// The fitted model.
    pub model: Model,
    /// Pairs compared.
    pub candidate_pairs: usize,
    /// Pairs at or above the link weight (before clustering).
    pub linked_pairs: usize,
    /// Pairs the deterministic rules, loyalty ids and tracking aliases link outright, each
    /// once (some are also among `linked_pairs`).
    pub linked_outright: usize,
    /// Pairs close to the weight that would link them, for people to review: `(i, j,
    /// weight)`, most uncertain first. Deterministic links and decided pairs are left out.
    pub uncertain: Vec<(u32, u32, f64)>,
}

/// What people decided about pairs of records (by index), which [`resolve`] obeys.
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    /// The same person: joined whatever the scores say.
    pub same: Vec<(u32, u32)>,
    /// Different persons: never in one profile through automatic links.
    pub different: Vec<(u32, u32)>,
    /// Outright links from outside the records (tracking aliases): joined like the
    /// deterministic rules, so a person's `different` still keeps them apart.
    pub links: Vec<(u32, u32)>,
}

/// The whole of identity resolution: blocking, estimation, scoring and clustering, obeying
/// people's `decisions`. The records are taken, not borrowed: they are copied into another
/// order in memory, and the caller's copy is freed then rather than at the end.
pub fn resolve(
    records: Vec<MatchRecord>,
    settings: &Settings,
    decisions: &Decisions,
) -> Resolution {
    let near = Nearby::new(records);
    let (found, uncertain) = resolve_in_order(&near.records, settings, &near.decisions(decisions));
    near.restore(found, uncertain)
}

/// The records in an order that puts the ones likely compared with each other next to each
/// other in memory: by name key, and copied in that order, so their fields sit together too.
/// Comparing the candidate pairs of 200,000 records in the order they were read spent most of
/// its time waiting for memory (0.84 s, against 0.49 s in this order). The copy costs memory
/// while it is made: at 1,000,000 records the run's peak is 2.75–2.96 GB against 2.51–2.53 GB
/// (and 22.8–23.9 s against 25.4–25.7 s).
struct Nearby {
    /// The records, reordered.
    records: Vec<MatchRecord>,
    /// `order[k]`: the caller's index of record `k` here.
    order: Vec<u32>,
    /// `position[i]`: where the caller's record `i` is here.
    position: Vec<u32>,
}

impl Nearby {
    fn new(records: Vec<MatchRecord>) -> Nearby {
        // By the name's first letters, then the whole name (hashed: comparing millions of
        // strings scattered in memory cost what the order saves).
        let mut keyed: Vec<(u64, u64, u32)> = records
            .par_iter()
            .enumerate()
            .map(|(i, r)| {
                let name = r.names.first().map_or("", String::as_str);
                let mut first = [0u8; 8];
                let n = name.len().min(8);
                first[..n].copy_from_slice(&name.as_bytes()[..n]);
                let whole = std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, name);
                (u64::from_be_bytes(first), whole, i as u32)
            })
            .collect();
        keyed.par_sort_unstable();
        let order: Vec<u32> = keyed.into_iter().map(|k| k.2).collect();
        let mut position = vec![0; records.len()];
        for (k, &i) in order.iter().enumerate() {
            position[i as usize] = k as u32;
        }
        let near = order
            .par_iter()
            .map(|&i| records[i as usize].clone())
            .collect();
        // The caller's copy goes now, not when the run ends: at 1,000,000 records two copies
        // raised the peak from 2.53 to 3.17 GB. (Freed on both cores: ten million strings.)
        records.into_par_iter().for_each(drop);
        Nearby {
            records: near,
            order,
            position,
        }
    }

    fn decisions(&self, decisions: &Decisions) -> Decisions {
        let here = |pairs: &[(u32, u32)]| -> Vec<(u32, u32)> {
            pairs
                .iter()
                .map(|&(a, b)| (self.position[a as usize], self.position[b as usize]))
                .collect()
        };
        Decisions {
            same: here(&decisions.same),
            different: here(&decisions.different),
            links: here(&decisions.links),
        }
    }

    /// The resolution in the caller's record indices, with the pairs for review (`(i, j,
    /// weight, distance from the weight that links)`) ordered most uncertain first, ties in
    /// the caller's order (the review queue keeps only the first ten thousand).
    fn restore(&self, found: Resolution, uncertain: Vec<Uncertain>) -> Resolution {
        let clustering = numbered(
            self.position
                .iter()
                .map(|&k| found.clustering.cluster_of[k as usize]),
        );
        let mut uncertain: Vec<Uncertain> = uncertain
            .into_iter()
            .map(|(i, j, w, distance)| {
                let (a, b) = (self.order[i as usize], self.order[j as usize]);
                (a.min(b), a.max(b), w, distance)
            })
            .collect();
        uncertain.sort_by(|x, y| x.3.total_cmp(&y.3).then((x.0, x.1).cmp(&(y.0, y.1))));
        Resolution {
            clustering,
            uncertain: uncertain
                .into_iter()
                .map(|(a, b, w, _)| (a, b, w))
                .collect(),
            ..found
        }
    }
}

/// A pair for review: its records, weight, and distance from the weight that would link it.
type Uncertain = (u32, u32, f64, f64);

/// [`resolve`] over records already in [`Nearby`] order; the pairs for review come apart,
/// unsorted, for [`Nearby::restore`] to order.
fn resolve_in_order(
    records: &[MatchRecord],
    settings: &Settings,
    decisions: &Decisions,
) -> (Resolution, Vec<Uncertain>) {
    let blocked = block(records, settings.block_cap);
    let gammas = compare_all(records, &blocked.pairs);
    let model = estimate_with(records, &blocked, &gammas, settings.u_pairs, settings.seed);
    // Each rule's own pairs were for estimation only.
    let Blocked { pairs, .. } = blocked;
    let scorer = Scorer::new(&model, records);
    let links: Vec<(u32, u32, f64, Evidence)> = pairs
        .par_iter()
        .zip(&gammas)
        .map(|(&(i, j), g)| {
            let (a, b) = (&records[i as usize], &records[j as usize]);
            let (w, evidence) = scorer.link_weight(g, i as usize, a, b);
            (i, j, w, evidence)
        })
        .collect();
    drop(scorer);
    // Every pass below reads millions of pairs at scale, so each runs in parallel (rayon's
    // collect keeps their order).
    let mut must_link: Vec<(u32, u32)> = links
        .par_iter()
        .zip(&gammas)
        .filter(|((i, j, w, _), g)| {
            let (a, b) = (&records[*i as usize], &records[*j as usize]);
            settings.rules.links_weighed(&model, g, *w, a, b)
        })
        .map(|(l, _)| (l.0, l.1))
        .collect();
    must_link.extend(loyalty_links(records, &settings.rules, settings.block_cap));
    must_link.extend_from_slice(&decisions.links);
    let linked_outright = must_link
        .iter()
        .map(|&(a, b)| (a.min(b), a.max(b)))
        .collect::<rustc_hash::FxHashSet<_>>()
        .len();
    let decided: rustc_hash::FxHashSet<(u32, u32)> = decisions
        .same
        .iter()
        .chain(&decisions.different)
        .chain(&must_link)
        .map(|&(a, b)| (a.min(b), a.max(b)))
        .collect();
    let uncertain: Vec<Uncertain> = links
        .par_iter()
        .filter_map(|&(i, j, w, evidence)| {
            let threshold = if evidence == Evidence::None {
                settings.weak_link_weight
            } else {
                settings.link_weight
            };
            let distance = (w - threshold).abs();
            (distance < settings.review_band && !decided.contains(&(i.min(j), i.max(j))))
                .then_some((i, j, w, distance))
        })
        .collect();
    let split = |weak: bool| -> Vec<(u32, u32, f64)> {
        links
            .par_iter()
            .filter(|l| (l.3 == Evidence::None) == weak)
            .map(|l| (l.0, l.1, l.2))
            .collect()
    };
    let (weak, scored) = (split(true), split(false));
    drop(links);
    let linked_pairs = scored
        .iter()
        .filter(|p| p.2 >= settings.link_weight)
        .count();
    let apart = Apart::new(&decisions.different);
    let clustering = join_unambiguous(
        cluster(
            records.len(),
            &scored,
            &must_link,
            settings.link_weight,
            &decisions.same,
            &apart,
        ),
        &weak,
        settings.weak_link_weight,
        &scored,
        &apart,
    );
    let resolution = Resolution {
        clustering,
        model,
        candidate_pairs: pairs.len(),
        linked_pairs,
        linked_outright,
        uncertain: Vec::new(),
    };
    (resolution, uncertain)
}

/// How a new record compares with one existing profile.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ProfileMatch {
    /// Index of the profile among the candidates given.
    pub profile: usize,
    /// The best match weight with one of its records.
    pub weight: f64,
    /// The probability of that weight.
    pub probability: f64,
    /// Whether the deterministic rule links it (the same email or phone, no conflict).
    pub deterministic: bool,
    /// Whether it links by the rules a full run uses (see [`place`]).
    pub links: bool,
}

/// Where a new record goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The candidate profile it joins, if any (else a new profile).
    pub joins: Option<usize>,
    /// Every candidate, best first.
    pub matches: Vec<ProfileMatch>,
}

/// Places one new record among existing profiles (each given as its records) without a full
/// run, by the rules clustering uses: the deterministic link; a scored link at or above the
/// link weight with the profile's records agreeing on average and none a confident
/// non-match; or, with no identifying evidence, a weak link to the only profile it could
/// be. When several profiles link, the deterministic and then the heaviest wins (a full run
/// reconciles). `model` should have term frequencies counted; without, exact agreement
/// weighs as an average value would.
pub fn place(
    model: &Model,
    settings: &Settings,
    record: &MatchRecord,
    profiles: &[Vec<&MatchRecord>],
) -> Placement {
    // (match, links only through a weak link)
    let scored: Vec<(ProfileMatch, bool)> = profiles
        .iter()
        .enumerate()
        .map(|(profile, members)| {
            let (mut deterministic, mut best, mut veto) = (false, f64::NEG_INFINITY, false);
            let (mut sum, mut scored, mut weak_best) = (0.0, 0usize, f64::NEG_INFINITY);
            for m in members {
                let g = compare(record, m);
                let (w, evidence) = model.link_weight_compared(&g, record, m);
                deterministic |= settings.rules.links_weighed(model, &g, w, record, m)
                    || settings.rules.same_loyalty(record, m);
                best = best.max(w);
                if evidence == Evidence::None {
                    weak_best = weak_best.max(w);
                } else {
                    sum += probability(w);
                    scored += 1;
                    veto |= contradicts(w, settings.link_weight);
                }
            }
            let strong =
                scored > 0 && !veto && sum / scored as f64 >= 0.5 && best >= settings.link_weight;
            let weak = scored == 0 && weak_best >= settings.weak_link_weight;
            let m = ProfileMatch {
                profile,
                weight: best,
                probability: probability(best),
                deterministic,
                links: deterministic || strong || weak,
            };
            (m, weak && !deterministic && !strong)
        })
        .collect();
    // A weak link counts only when it points at a single profile.
    let ambiguous = scored.iter().filter(|(_, weak_only)| *weak_only).count() > 1;
    let mut matches: Vec<ProfileMatch> = scored
        .into_iter()
        .map(|(mut m, weak_only)| {
            m.links &= !(weak_only && ambiguous);
            m
        })
        .collect();
    matches.sort_by(|x, y| {
        (y.links, y.deterministic)
            .cmp(&(x.links, x.deterministic))
            .then(y.weight.total_cmp(&x.weight))
            .then(x.profile.cmp(&y.profile))
    });
    Placement {
        joins: matches.first().filter(|m| m.links).map(|m| m.profile),
        matches,
    }
}

/// Pairwise precision, recall and F1 of a clustering against true entity labels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairQuality {
    /// True pairs found / pairs found.
    pub precision: f64,
    /// True pairs found / true pairs.
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// Pairs the clustering puts together.
    pub predicted_pairs: u64,
    /// Pairs that belong together.
    pub true_pairs: u64,
}

/// Compares `cluster_of` with `truth` (an entity label per record) pair by pair.
pub fn pair_quality(cluster_of: &[u32], truth: &[u64]) -> PairQuality {
    /// Pairs within groups: the number of records per group, n choose 2 each.
    fn pairs_in<K: std::hash::Hash + Eq>(labels: impl Iterator<Item = K>) -> u64 {
        let mut sizes: HashMap<K, u64> = HashMap::new();
        for k in labels {
            *sizes.entry(k).or_default() += 1;
        }
        sizes.values().map(|&c| c * (c - 1) / 2).sum()
    }
    let (predicted, actual, correct) = (
        pairs_in(cluster_of.iter()),
        pairs_in(truth.iter()),
        pairs_in(cluster_of.iter().zip(truth)),
    );
    let precision = if predicted == 0 {
        1.0
    } else {
        correct as f64 / predicted as f64
    };
    let recall = if actual == 0 {
        1.0
    } else {
        correct as f64 / actual as f64
    };
    PairQuality {
        precision,
        recall,
        f1: if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        },
        predicted_pairs: predicted,
        true_pairs: actual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check;

    #[test]
    fn name_similarity_does_not_depend_on_word_order() {
        let f = |(a, b): &(&str, &str)| compare_names(&[a.to_string()], &[b.to_string()]);
        // Sorted keys of "Lukas cShäfer" and "Lukas Schäfer".
        check(f, ("cshäfer lukas", "lukas schäfer"), 2);
        check(f, ("ann lee", "ann lee"), 1);
        check(f, ("ann lee", "bob stone"), 5);
    }

    #[test]
    fn jaro_winkler_matches_published_values() {
        let f = |(a, b): &(&str, &str)| (jaro_winkler(a, b) * 1000.0).round() / 1000.0;
        check(f, ("martha", "marhta"), 0.961);
        check(f, ("dwayne", "duane"), 0.84);
        check(f, ("dixon", "dicksonx"), 0.813);
        check(f, ("same", "same"), 1.0);
        check(f, ("abc", "xyz"), 0.0);
        // Beyond the stack bitsets' 256 characters, and outside ASCII.
        let long = format!("{}martha", "x".repeat(300));
        let long_swapped = format!("{}marhta", "x".repeat(300));
        check(f, (long.as_str(), long_swapped.as_str()), 1.0 - 0.001);
        check(f, ("zoë", "zoë"), 1.0);
        check(f, ("müller", "muller"), 0.9);
    }

    #[test]
    fn names_spaced_differently_are_close() {
        let f = |(a, b): &(&str, &str)| spaced_differently(a, b);
        // A space moved, or a letter swapped across it: same letters, joined alike.
        check(f, ("axu pingxi", "pingxia xu"), true);
        check(f, ("mar ymartin", "martin mary"), true);
        check(f, ("alurent arthur", "arthur laurent"), true);
        check(f, ("am jing", "jing ma"), true);
        // A space dropped or added.
        check(f, ("maryann smith", "ann mary smith"), true);
        check(f, ("donald mc", "mcdonald"), true);
        // Other letters, the same name, or anagrams that do not read alike.
        check(f, ("baker mary", "baker tom"), false);
        check(f, ("ma yan", "ma yan"), false);
        check(f, ("lena", "neal"), false);
        check(f, ("a b c d", "abcd"), false);
    }

    #[test]
    fn spaced_differently_is_a_close_name() {
        let f = |(a, b): &(&str, &str)| compare_names(&[a.to_string()], &[b.to_string()]);
        check(f, ("axu pingxi", "pingxia xu"), 2);
        check(f, ("baker mary", "baker tom"), 5);
    }

    #[test]
    fn joined_orders_are_every_order() {
        let f = |w: &Vec<&str>| {
            let mut o = joined_orders(w);
            o.sort();
            o
        };
        check(f, vec!["a"], vec!["a".to_string()]);
        check(f, vec!["a", "b"], vec!["ab".to_string(), "ba".to_string()]);
        let all = ["abc", "acb", "bac", "bca", "cab", "cba"];
        check(f, vec!["a", "b", "c"], all.map(String::from).to_vec());
    }

    #[test]
    fn swapped_words_compare_as_if_written_in_the_other_order() {
        let f = |(a, first, rest): &(&str, &str, &str)| {
            jaro_winkler_swapped(a, first, rest) == jaro_winkler(a, &format!("{rest} {first}"))
        };
        check(f, ("smith john", "john", "smith"), true);
        check(f, ("schäfer lukas", "cshäfer", "lukas"), true);
        check(f, ("a b", &"y".repeat(200), "z"), true);
    }

    #[test]
    fn edit_distance_bound() {
        let f = |(a, b, k): &(&str, &str, usize)| levenshtein_at_most(a, b, *k);
        check(f, ("ann@x.com", "anne@x.com", 1), true);
        check(f, ("ann@x.com", "nna@x.com", 1), false);
        check(f, ("ann@x.com", "nna@x.com", 2), true);
        check(f, ("kitten", "sitting", 2), false);
        check(f, ("kitten", "sitting", 3), true);
        check(f, ("zoë@x.com", "zoe@x.com", 1), true);
    }

    /// The shortcuts that turn pairs away before measuring them never turn away one the
    /// measure would accept: the letter bound is at least the similarity in either word
    /// order, and the letter-count refusal agrees with the full edit distance table.
    #[test]
    fn shortcuts_never_refuse_what_the_measure_accepts() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let word = |rng: &mut rand_chacha::ChaCha8Rng| -> String {
            let n = rng.gen_range(1..9);
            (0..n)
                .map(|_| char::from(b"aeinorst"[rng.gen_range(0..8)]))
                .collect()
        };
        for _ in 0..20_000 {
            let a = format!("{} {}", word(&mut rng), word(&mut rng));
            let b = if rng.gen_bool(0.5) {
                word(&mut rng)
            } else {
                format!("{} {}", word(&mut rng), word(&mut rng))
            };
            let bound = jaro_winkler_bound(&a, &b);
            assert!(bound >= jaro_winkler_any_order(&a, &b), "{a} / {b}");
            assert!(bound >= jaro_winkler_any_order(&b, &a), "{b} / {a}");
            for k in 0..3 {
                let (x, y): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                let n = y.len() + 1;
                let full = edits_at_most(&x, &y, k, &mut vec![0; n], &mut vec![0; n]);
                assert_eq!(levenshtein_at_most(&a, &b, k), full, "{a} / {b} / {k}");
            }
        }
    }

    #[test]
    fn rules_estimates_combine_by_weighted_median() {
        let f = |v: &Vec<(f64, f64)>| weighted_median(v.iter().copied());
        check(f, vec![(0.0, 0.4), (0.2, 0.3), (1.0, 0.3)], 0.2);
        // One rule that took strangers for matches is outvoted, whatever its estimate.
        check(f, vec![(0.22, 1.0), (0.0, 1.5), (0.001, 1.5)], 0.001);
        check(f, vec![(0.5, 2.0)], 0.5);
    }

    fn rec(name: &str, email: &str, phone: &str, birth: &str) -> MatchRecord {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        MatchRecord {
            names: if name.is_empty() {
                vec![]
            } else {
                vec![name.to_owned()]
            },
            email: opt(email),
            phone: opt(phone),
            birth: opt(birth),
            ..MatchRecord::default()
        }
    }

    #[test]
    fn comparison_levels() {
        let f = |(a, b): &(MatchRecord, MatchRecord)| compare(a, b);
        check(
            f,
            (
                rec("ann lee", "ann@x.com", "+8613800138000", "19900102"),
                rec("ann lee", "ann@x.com", "+8613800138000", "19900102"),
            ),
            [1, 1, 1, 1, 0, 0, 0, 0],
        );
        check(
            f,
            (
                rec("jonathan smith", "ann@x.com", "+8613800138000", "19900102"),
                rec("jonathon smith", "ann@y.com", "+8513800138000", "19900201"),
            ),
            [2, 2, 2, 2, 0, 0, 0, 0],
        );
        check(
            f,
            (
                rec("j smith", "ann@x.com", "+8613800138000", "19900102"),
                rec("john smith", "anm@x.com", "+8613899999999", "19900103"),
            ),
            [4, 3, 3, 3, 0, 0, 0, 0],
        );
        check(
            f,
            (rec("", "", "", ""), rec("bob", "b@x.com", "+1", "19900101")),
            [0, 0, 0, 0, 0, 0, 0, 0],
        );
    }

    #[test]
    fn cities_of_one_pinyin_are_told_apart_by_their_characters() {
        let f = |(a, b): &(Option<&'static str>, Option<&'static str>)| {
            let in_suzhou = |city: Option<&'static str>| MatchRecord {
                city: Some("suzhou".into()),
                city_homophone: city,
                ..rec("wang wei", "", "", "")
            };
            compare(&in_suzhou(*a), &in_suzhou(*b))[CITY]
        };
        check(f, (Some("苏州"), Some("苏州")), 1);
        check(f, (Some("苏州"), Some("宿州")), 2);
        // Written in pinyin on one side, either city could be meant: the key decides.
        check(f, (Some("苏州"), None), 1);
        check(f, (None, None), 1);
    }

    #[test]
    fn names_sharing_a_surname_are_not_close_spellings() {
        let f = |(a, b): &(&str, &str)| compare_names(&[a.to_string()], &[b.to_string()]);
        // A household, twins, father and son: the whole strings are close, the given names not.
        check(f, ("baker tom", "baker mary"), 5);
        check(f, ("anna taylor", "emma taylor"), 5);
        check(f, ("anderson john sr", "anderson john jr"), 5);
        // Given names that merely start alike are two people; every shared word counts as
        // shared (a double surname is not a given name).
        check(f, ("deborah saenz", "devyn saenz"), 5);
        check(f, ("estrada loretta quintero", "estrada kay quintero"), 5);
        // A given name shortened to an initial or its start, or left out, is partial
        // agreement.
        check(f, ("j smith", "john smith"), 4);
        check(f, ("smith", "john smith"), 4);
        check(f, ("estrada quintero", "estrada kay quintero"), 4);
        // A middle initial written on one record only is a close spelling, and an initial
        // that fits a second given name does not make another person's name partial.
        check(f, ("john smith", "john m smith"), 2);
        check(f, ("john smith", "j m smith"), 4);
        check(f, ("john smith", "j mary smith"), 5);
        check(f, ("john a smith", "anna smith"), 5);
        check(f, ("a smith", "b smith"), 5);
        // Spellings of one name still are.
        check(f, ("jonathan smith", "jonathon smith"), 2);
        // The same letters with a space dropped are as close as a typo.
        check(f, ("jane mary watson", "maryjane watson"), 2);
        check(f, ("lukas schäfer", "cshäfer lukas"), 2);
    }

    /// Names also keyed without their middle initials agree exactly through that key, unless
    /// both carry initials and they differ.
    #[test]
    fn different_middle_initials_are_not_one_name() {
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = |(a, b): &(&[&str], &[&str])| compare_names(&keys(a), &keys(b));
        let (mary_a, mary_b): (&[&str], &[&str]) = (
            &["a mary smith", "mary smith"],
            &["b mary smith", "mary smith"],
        );
        let (plain, dotted): (&[&str], &[&str]) = (
            &["mary smith"],
            &["a. mary smith", "a mary smith", "mary smith"],
        );
        check(f, (mary_a, plain), 1);
        check(f, (mary_a, dotted), 1);
        check(f, (mary_a, mary_b), 2);
    }

    #[test]
    fn emails_spelt_from_the_name_agree_partly_only_by_the_name() {
        let f = |(a, b): &(&str, &str)| {
            let (x, y) = (rec("hart kevin", a, "", ""), rec("hart kevin", b, "", ""));
            compare(&x, &y)[EMAIL]
        };
        check(f, ("kevin.hart@outlook.com", "kevin.hart@outlook.com"), 1);
        check(f, ("kevin.hart@outlook.com", "kevinhart@outlook.com"), 0);
        check(f, ("kevin.hart@yahoo.com", "kevin.hart@aol.com"), 0);
        check(f, ("k.hart@yahoo.com", "k.hart@aol.com"), 0);
        // Digits or other letters are the person's own choice, and still count.
        check(f, ("kevin.hart81@yahoo.com", "kevin.hart81@aol.com"), 2);
        check(f, ("kh@yahoo.com", "kh@aol.com"), 2);
        check(f, ("khartman@yahoo.com", "khartmann@yahoo.com"), 3);
    }

    #[test]
    fn the_scorer_weighs_every_pair_as_the_model_does() {
        // Common and rare values, a record with two name keys (a Chinese name and its
        // pinyin), missing fields, and a record the frequencies were not counted on.
        let mut records = vec![
            home("lee ann", "1 main st", "2000", "sydney", "19900102"),
            home("lee ann", "1 main st", "2000", "sydney", "19900102"),
            home("lee ann", "9 high st", "2000", "sydney", "19851231"),
            home("bo zhang", "9 high st", "3000", "melbourne", ""),
            home("zed quux", "", "2000", "sydney", "19900102"),
        ];
        records[3].names.push("张博".into());
        records[4].names.push("bo zhang".into());
        records[4].email = Some("zq@x.com".into());
        let mut model = estimate(&records, &block(&records, 50), 1000, 1);
        model.count_term_frequencies(&records[..4]);
        let scorer = Scorer::new(&model, &records);
        for (i, a) in records.iter().enumerate() {
            for b in &records {
                let g = compare(a, b);
                assert_eq!(
                    scorer.link_weight(&g, i, a, b),
                    model.link_weight(a, b),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn hot_blocks_are_capped() {
        // Ten records share one phone; with a cap of 5 that block is skipped, while the two
        // sharing an email are still paired.
        let mut records: Vec<MatchRecord> = (0..10)
            .map(|i| rec(&format!("p{i}"), "", "+15550000000", ""))
            .collect();
        records[3].email = Some("x@y.com".into());
        records[7].email = Some("x@y.com".into());
        assert_eq!(candidate_pairs(&records, 5), vec![(3, 7)]);
        assert_eq!(candidate_pairs(&records, 10).len(), 45);
    }

    fn home(name: &str, address: &str, postal: &str, city: &str, birth: &str) -> MatchRecord {
        MatchRecord {
            address: Some(address.into()),
            postal: Some(postal.into()),
            city: Some(city.into()),
            ..rec(name, "", "", birth)
        }
    }

    #[test]
    fn blocking_finds_duplicates_with_a_typo_in_every_field_it_keys_on() {
        let paired = |(a, b): &(MatchRecord, MatchRecord)| {
            candidate_pairs(&[a.clone(), b.clone()], 50) == [(0, 1)]
        };
        let ann = home(
            "ann weller",
            "11 copland drive",
            "4365",
            "birmingham gardens",
            "19700516",
        );
        let pair = |b: MatchRecord| (ann.clone(), b);
        // A space dropped from the street and added to the city, another name (a family
        // member's form), the postal code mistyped.
        check(
            paired,
            pair(home(
                "bo lin",
                "11 coplanddrive",
                "4356",
                "birmingha m gardens",
                "19700516",
            )),
            true,
        );
        // Moved and born on another day by a typo: only the whole name is left.
        check(
            paired,
            pair(home(
                "ann weller",
                "5 rose street",
                "2000",
                "sydney",
                "19700517",
            )),
            true,
        );
        // Another name, the same house: the number and the street.
        check(
            paired,
            pair(home(
                "bo lin",
                "11 copland drvie",
                "4356",
                "birminghan gardens",
                "19880101",
            )),
            true,
        );
        // A new house number, typos late in the street and in a name word.
        check(
            paired,
            pair(home(
                "anne wellet",
                "27 coplant drive",
                "4356",
                "birmingham gardnes",
                "19700615",
            )),
            true,
        );
        // Nothing in common.
        check(
            paired,
            pair(home(
                "bo lin",
                "5 rose street",
                "2000",
                "sydney",
                "19880101",
            )),
            false,
        );
    }

    #[test]
    fn a_weak_link_does_not_chain_two_groups() {
        // 0-1 and 2-3 are strong pairs; 1-2 is just above the threshold, but 0-3 and 0-2 are
        // confident non-matches, so the groups stay apart.
        let scored = [
            (0, 1, 20.0),
            (2, 3, 20.0),
            (1, 2, 2.0),
            (0, 2, -15.0),
            (1, 3, -15.0),
        ];
        let c = cluster(4, &scored, &[], 1.0, &[], &Apart::default());
        assert_eq!(c.cluster_of, vec![0, 0, 1, 1]);
        // Without the vetoes the link merges them.
        let c = cluster(4, &scored[..3], &[], 1.0, &[], &Apart::default());
        assert_eq!(c.cluster_of, vec![0, 0, 0, 0]);
        // A must-link joins regardless of scores.
        let c = cluster(4, &scored, &[], 1.0, &[(0, 3)], &Apart::default());
        assert_eq!(c.cluster_of[0], c.cluster_of[3]);
    }

    #[test]
    fn weak_links_join_only_a_single_candidate() {
        // Groups {0,1} and {2,3} are two namesakes; record 4 (name only) could be either and
        // stays alone; record 5 (name only) has one candidate, group {6}.
        let base = cluster(
            7,
            &[(0, 1, 20.0), (2, 3, 20.0)],
            &[],
            1.0,
            &[],
            &Apart::default(),
        );
        let weak = [(4, 0, 12.0), (4, 2, 12.0), (5, 6, 12.0)];
        let c = join_unambiguous(base, &weak, 1.0, &[], &Apart::default());
        let g = &c.cluster_of;
        assert_ne!(g[4], g[0]);
        assert_ne!(g[4], g[2]);
        assert_ne!(g[0], g[2]);
        assert_eq!(g[5], g[6]);
        assert_eq!(c.clusters, 4);
        // A record of the candidate group is a scored non-match of 5 (another birth date):
        // the name alone does not join them.
        let base = cluster(8, &[(6, 7, 20.0)], &[], 1.0, &[], &Apart::default());
        let c = join_unambiguous(
            base,
            &[(5, 6, 12.0)],
            1.0,
            &[(5, 7, -10.0)],
            &Apart::default(),
        );
        assert_ne!(c.cluster_of[5], c.cluster_of[6]);
    }

    /// A model that has learnt identifiers are strong evidence overrules the email rule for a
    /// pair whose other fields all say "two people"; one that has learnt nothing never does.
    #[test]
    fn a_fitted_model_vetoes_an_email_link_the_rest_contradicts() {
        let informed = Model {
            lambda: 1e-5,
            // name, email, phone, birth, address, postal, city, gender
            m: vec![
                vec![0.9, 0.04, 0.03, 0.02, 0.01],
                vec![0.9, 0.04, 0.03, 0.03],
                vec![0.98, 0.01, 0.01],
                vec![0.9, 0.04, 0.03, 0.03],
                vec![0.9, 0.05, 0.05],
                vec![0.95, 0.05],
                vec![0.999, 0.001],
                vec![0.95, 0.05],
            ],
            u: vec![
                vec![0.001, 0.01, 0.01, 0.01, 0.969],
                vec![1e-6, 1e-5, 1e-4, 0.999889],
                vec![1e-6, 1e-5, 0.999989],
                vec![1e-4, 1e-4, 1e-3, 0.9988],
                vec![1e-4, 0.01, 0.9899],
                vec![0.01, 0.99],
                vec![0.1, 0.9],
                vec![0.5, 0.5],
            ],
            u_home: None,
            tf: Vec::new(),
            iterations: 0,
        };
        let blank = Model {
            m: informed.u.clone(),
            ..informed.clone()
        };
        let place = |mut r: MatchRecord, city: &str| {
            r.city = Some(city.into());
            r
        };
        let a = place(rec("ann lee", "ann@x.com", "+14155550100", ""), "oakland");
        let moved = place(rec("ann lee", "ann@x.com", "+14155550199", ""), "fresno");
        let same = place(rec("ann lee", "ann@x.com", "", ""), "oakland");
        let rules = LinkRules::default();
        let outright = |m: &Model, b: &MatchRecord| rules.explain(m, &a, b).linked_outright;
        assert!(!outright(&informed, &moved), "phone and city both differ");
        assert!(outright(&informed, &same));
        assert!(
            outright(&blank, &moved),
            "a model that knows nothing vetoes nothing"
        );
    }

    /// A name that only resembles, or lacks the given name, is weighed against the names of
    /// people sharing a home when the street address agrees: Latasha and Latonya Doerr at
    /// one address are sisters, not a typo; elsewhere the same resemblance counts as before.
    #[test]
    fn a_partly_agreeing_name_at_one_address_is_weighed_against_a_familys_names() {
        // Candidates at one address with different birth dates: 150 with different names,
        // 10 whose names resemble each other.
        let pair = |name: u8| {
            let mut g = [0u8; 8];
            (g[NAME], g[ADDRESS], g[BIRTH]) = (name, 1, 4);
            g
        };
        let mut gammas = vec![pair(5); 150];
        gammas.extend([pair(3); 10]);
        let u_home = home_name_levels(&gammas).expect("160 pairs at one address");
        assert!((u_home[2] - 10.0 / 160.0).abs() < 1e-3, "{u_home:?}");
        assert_eq!(home_name_levels(&gammas[..90]), None, "too few to estimate");
        // Where most such pairs have one name, birth dates do not tell people apart there (a
        // default birthday): they are one person's records, not a family's.
        let placeholders = [vec![pair(1); 120], vec![pair(5); 80]].concat();
        assert_eq!(home_name_levels(&placeholders), None);

        let model = Model {
            lambda: 1e-5,
            m: LEVELS
                .iter()
                .map(|l| vec![1.0 / l.len() as f64; l.len()])
                .collect(),
            u: LEVELS.iter().map(|l| vec![1e-3; l.len()]).collect(),
            u_home: Some(u_home),
            tf: Vec::new(),
            iterations: 0,
        };
        let with = |address: &str| {
            let mut r = rec("doerr latonya", "", "", "");
            r.address = Some(address.into());
            r
        };
        let mut sister = rec("doerr latasha", "", "", "");
        sister.address = Some("3050 king george ave".into());
        assert_eq!(
            compare(&sister, &with(""))[NAME],
            3,
            "the names resemble each other"
        );
        let weight = |b: &MatchRecord| model.explain(&sister, b).fields[NAME].weight;
        let (at_home, apart) = (weight(&with("3050 king george ave")), weight(&with("")));
        assert!(
            (apart - (0.2f64 / 1e-3).log2()).abs() < 1e-9,
            "without an address the name is weighed as ever: {apart}"
        );
        assert!(
            (at_home - (0.2 * 160.0 / 10.0f64).log2()).abs() < 1e-3,
            "at one address against the family's names: {at_home}"
        );
        let note = |b: &MatchRecord| model.explain(&sister, b).fields[NAME].note;
        assert!(
            note(&with("3050 king george ave")).is_some(),
            "explain says why"
        );
        assert_eq!(note(&with("")), None);
    }

    #[test]
    fn a_household_sharing_a_phone_stays_two_people() {
        // Ann and her husband share the home phone; Ann's second record (no email) has it too.
        let records = vec![
            rec("ann lee", "ann@x.com", "+14155550100", "19800101"),
            rec("bob lee", "bob@y.com", "+14155550100", "19790505"),
            rec("ann lee", "", "+14155550100", ""),
        ];
        let found = resolve(records.clone(), &Settings::default(), &Decisions::default());
        let without = Settings {
            rules: LinkRules {
                loyalty: false,
                ..LinkRules::default()
            },
            ..Settings::default()
        };
        let apart = resolve(records, &without, &Decisions::default());
        assert_ne!(
            apart.clustering.cluster_of[0], apart.clustering.cluster_of[1],
            "without the loyalty rule, a card alone does not link"
        );
        let g = &found.clustering.cluster_of;
        assert_eq!(g[0], g[2], "the same name and phone are one person");
        assert_ne!(
            g[0], g[1],
            "a shared phone does not make a household one person"
        );
    }

    #[test]
    fn people_s_decisions_override_the_model() {
        // 0 and 1 share an email (a deterministic link); 2 and 3 have nothing in common.
        let records = vec![
            rec("ann lee", "ann@x.com", "+14155550100", "19800101"),
            rec("ann lee", "ann@x.com", "", "19800101"),
            rec("carl diaz", "carl@z.com", "+14155550177", "19700303"),
            rec("dora ng", "dora@w.com", "+14155550188", "19600606"),
        ];
        let run = |decisions: Decisions| {
            let c = resolve(records.clone(), &Settings::default(), &decisions).clustering;
            (
                c.cluster_of[0] == c.cluster_of[1],
                c.cluster_of[2] == c.cluster_of[3],
            )
        };
        assert_eq!(run(Decisions::default()), (true, false));
        let decided = Decisions {
            same: vec![(3, 2)],
            different: vec![(1, 0)],
            links: vec![],
        };
        assert_eq!(run(decided), (false, true));
        // Kept apart also stops a weak, unambiguous link.
        let base = cluster(3, &[], &[], 1.0, &[], &Apart::default());
        let c = join_unambiguous(
            base.clone(),
            &[(0, 1, 9.0)],
            1.0,
            &[],
            &Apart::new(&[(1, 0)]),
        );
        assert_ne!(c.cluster_of[0], c.cluster_of[1]);
        let c = join_unambiguous(base, &[(0, 1, 9.0)], 1.0, &[], &Apart::default());
        assert_eq!(c.cluster_of[0], c.cluster_of[1]);
    }

    #[test]
    fn results_and_decisions_are_in_the_callers_record_order() {
        // Names that sort otherwise than they are given: resolve works in name order inside
        // and must take decisions, and answer, in the caller's indices.
        let records = vec![
            rec("dora ng", "dora@w.com", "+14155550188", "19600606"),
            rec("carl diaz", "carl@z.com", "+14155550177", "19700303"),
            rec("ann lee", "ann@x.com", "", "19800101"),
            rec("bob lee", "bob@y.com", "+14155550100", "19790505"),
            rec("ann lee", "ann@x.com", "+14155550100", "19800101"),
        ];
        let decided = Decisions {
            same: vec![(0, 1)],
            different: vec![],
            links: vec![],
        };
        let c = resolve(records, &Settings::default(), &decided).clustering;
        assert_eq!(c.cluster_of, vec![0, 0, 1, 2, 1]);
        assert_eq!(c.clusters, 3);
    }

    #[test]
    fn pairs_for_review_come_back_in_the_callers_indices_ties_in_the_callers_order() {
        let records = vec![
            rec("dora ng", "dora@w.com", "+14155550188", "19600606"),
            rec("carl diaz", "carl@z.com", "+14155550177", "19700303"),
            rec("ann lee", "ann@x.com", "", "19800101"),
        ];
        let near = Nearby::new(records);
        assert_eq!(near.order, vec![2, 1, 0], "by name inside");
        let (found, _) =
            resolve_in_order(&near.records, &Settings::default(), &Decisions::default());
        // Inside: (1, 2) and (0, 2) equally uncertain, (0, 1) less so.
        let back = near.restore(
            found,
            vec![(0, 1, 0.9, 0.9), (1, 2, 0.2, 0.5), (0, 2, -0.2, 0.5)],
        );
        assert_eq!(back.uncertain, vec![(0, 1, 0.2), (0, 2, -0.2), (1, 2, 0.9)]);
    }

    #[test]
    fn a_new_record_joins_the_profile_a_full_run_would_give_it() {
        let people = vec![
            rec("ann lee", "ann@x.com", "+14155550100", "19800101"),
            rec("ann lee", "", "+14155550100", "19800101"),
            rec("bob stone", "bob@y.com", "+14155550111", "19790505"),
            rec("carl diaz", "carl@z.com", "+14155550177", "19700303"),
        ];
        let blocked = block(&people, 50);
        let model = estimate(&people, &blocked, 1_000, 1);
        let profiles = vec![
            vec![&people[0], &people[1]],
            vec![&people[2]],
            vec![&people[3]],
        ];
        let settings = Settings::default();
        let f = |r: &MatchRecord| place(&model, &settings, r, &profiles).joins;
        // Ann's email: her profile. A stranger: a new profile.
        check(f, rec("ann lee", "ann@x.com", "", ""), Some(0));
        check(
            f,
            rec("dora ng", "dora@w.com", "+14155550188", "19600606"),
            None,
        );
        // Bob's phone but another name and birth date: his wife, not Bob.
        check(f, rec("eve stone", "", "+14155550111", "19810909"), None);
        let all = place(
            &model,
            &settings,
            &rec("ann lee", "ann@x.com", "", ""),
            &profiles,
        );
        assert_eq!(all.matches.len(), 3);
        assert!(all.matches[0].deterministic && all.matches[0].probability > 0.5);

        // The email rule switched off, or the probe from an untrusted source: the shared
        // email is still strong evidence, but no longer an outright link.
        let deterministic = |settings: &Settings, r: &MatchRecord| {
            place(&model, settings, r, &profiles).matches[0].deterministic
        };
        let no_email = Settings {
            rules: LinkRules {
                email: false,
                ..LinkRules::default()
            },
            ..Settings::default()
        };
        check(
            |r| deterministic(&no_email, r),
            rec("ann lee", "ann@x.com", "", ""),
            false,
        );
        let untrusted = MatchRecord {
            untrusted: true,
            ..rec("ann lee", "ann@x.com", "", "")
        };
        check(|r| deterministic(&settings, r), untrusted, false);
    }

    #[test]
    fn a_shared_loyalty_id_links_unless_the_names_differ() {
        let card = |name: &str, id: &str| MatchRecord {
            loyalty: Some(id.to_owned()),
            ..rec(name, "", "", "")
        };
        let records = vec![
            card("ann lee", "k1"),
            card("lee ann", "k1"),
            card("bob lee", "k1"),
            card("cy fox", "k2"),
        ];
        let found = resolve(records, &Settings::default(), &Decisions::default());
        let g = &found.clustering.cluster_of;
        assert_eq!(g[0], g[1]);
        assert_ne!(g[0], g[2], "a card lent to a family member");
        assert_ne!(g[0], g[3]);
    }

    #[test]
    fn pair_quality_counts_pairs() {
        let f = |(c, t): &(Vec<u32>, Vec<u64>)| {
            let q = pair_quality(c, t);
            (q.predicted_pairs, q.true_pairs, (q.f1 * 100.0).round())
        };
        check(f, (vec![0, 0, 1], vec![5, 5, 6]), (1, 1, 100.0));
        check(f, (vec![0, 0, 0], vec![5, 5, 6]), (3, 1, 50.0));
        check(f, (vec![0, 1, 2], vec![5, 5, 6]), (0, 1, 0.0));
    }

    #[test]
    fn em_learns_that_agreement_means_a_match() {
        // 300 people, each with a clean record and a dirty copy; blocking on email finds them.
        let mut records = Vec::new();
        for i in 0..300 {
            let name = format!("person{} family{}", i, i % 17);
            let email = format!("p{i}@mail.com");
            let phone = format!("+1555{:07}", i);
            let birth = format!("19{:02}0{}1{}", 50 + i % 40, 1 + i % 9, i % 10);
            records.push(rec(&name, &email, &phone, &birth));
            let dirty_name = if i % 3 == 0 {
                format!("{name}x")
            } else {
                name.clone()
            };
            records.push(rec(
                &dirty_name,
                &email,
                if i % 4 == 0 { "" } else { &phone },
                &birth,
            ));
        }
        let blocked = block(&records, 50);
        let model = estimate(&records, &blocked, 20_000, 7);
        let pairs = blocked.pairs;
        // Exact agreement is far likelier among matches than among random pairs.
        for f in [NAME, EMAIL, PHONE, BIRTH] {
            assert!(
                model.m[f][0] > 10.0 * model.u[f][0],
                "{}: {model:?}",
                FIELDS[f]
            );
        }
        let scored: Vec<(u32, u32, f64)> = pairs
            .iter()
            .map(|&(i, j)| {
                (
                    i,
                    j,
                    model.score(&records[i as usize], &records[j as usize]),
                )
            })
            .collect();
        let c = cluster(records.len(), &scored, &[], 0.0, &[], &Apart::default());
        let truth: Vec<u64> = (0..records.len() as u64).map(|i| i / 2).collect();
        let q = pair_quality(&c.cluster_of, &truth);
        assert!(q.f1 > 0.99, "{q:?}");
    }
}
