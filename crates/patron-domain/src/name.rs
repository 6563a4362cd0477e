//! Person names: Unicode NFC, whitespace collapsed, honorifics dropped, `LAST, First`
//! reordered, shouted or lower-case Latin names put in name case; CJK names kept as written
//! with a pinyin match key, so 张伟 and Zhang Wei can be found and matched as one.

use crate::{check_len, Invalid};
use pinyin::ToPinyin;
use unicode_normalization::UnicodeNormalization;

/// A person's name, normalized for display and storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

/// Titles that say nothing about who the person is, compared without a trailing dot.
const HONORIFICS: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "herr", "frau", "fr", "hr", "m",
    "mme", "mlle", "sr", "sra", "srta", "don", "doña",
];
/// Chinese forms of address written after the surname (张先生 = Mr Zhang).
const CJK_HONORIFICS: &[&str] = &["先生", "女士", "小姐", "老师"];
/// Lower-case name particles kept lower-case inside a name (Ludwig van Beethoven).
const PARTICLES: &[&str] = &[
    "van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "la", "le", "dos", "das",
    "bin", "binti", "al", "ter", "ten",
];
/// Two-character Chinese surnames; all others are one character.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "司徒", "夏侯",
];

impl PersonName {
    /// Normalizes a full name.
    pub fn parse(raw: &str) -> Result<PersonName, Invalid> {
        check_len(raw.trim())?;
        let nfc: String = raw.nfc().collect();
        let mut name = nfc.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.chars().any(|c| c.is_control() || c == '@') {
            return Err(Invalid::new("contains control characters or '@'"));
        }
        // "LEE, Ann" is "Ann LEE".
        if let Some((last, first)) = name.split_once(',') {
            if !first.contains(',') && !first.trim().is_empty() && !last.trim().is_empty() {
                name = format!("{} {}", first.trim(), last.trim());
            }
        }
        let mut words: Vec<&str> = name.split(' ').collect();
        while words.len() > 1 && is_honorific(words[0]) {
            words.remove(0);
        }
        let mut name = words.join(" ");
        if is_cjk_name(&name) {
            for h in CJK_HONORIFICS {
                if let Some(rest) = name.strip_suffix(h) {
                    if !rest.is_empty() {
                        name = rest.to_owned();
                    }
                }
            }
        } else {
            name = name_case(&name);
        }
        if name.is_empty() {
            return Err(Invalid::new("empty"));
        }
        if !name.chars().any(char::is_alphabetic) {
            return Err(Invalid::new("contains no letters"));
        }
        Ok(PersonName(name))
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

    /// Order-independent keys that two spellings of the same name share: the lower-case words
    /// sorted (`ann lee` for "Lee Ann" and "Ann Lee"), and for Chinese names the pinyin of
    /// surname and given name sorted the same way (张伟 → `wei zhang`, like "Zhang Wei").
    ///
    /// Latin names also give their spelling without accents or hyphens, the way a form or a
    /// till without those characters takes them (Zoë Martínez-López → `lopez martinez zoe`),
    /// and with German umlauts written out (Müller → `mueller`), so each of those spellings
    /// shares a key with the written one; with a common English nickname for a first name,
    /// the name it stands for (Liz Ocean → `elizabeth ocean`); and with a middle initial, the
    /// name without it (John Q. Smith → `john smith`).
    pub fn match_keys(&self) -> Vec<String> {
        let lower = self.0.to_lowercase();
        let mut keys = vec![sorted_words(&lower)];
        let mut add = |key: String| {
            if !key.is_empty() && !keys.contains(&key) {
                keys.push(key);
            }
        };
        let folded = fold_latin(&lower);
        add(sorted_words(&folded));
        if lower.contains(['ä', 'ö', 'ü']) {
            let written_out = lower
                .replace('ä', "ae")
                .replace('ö', "oe")
                .replace('ü', "ue");
            add(sorted_words(&fold_latin(&written_out)));
        }
        // The given name comes first once a name is parsed ("Smith, Bob" is "Bob Smith"); a
        // later word may be a surname or a pinyin syllable (Wang Dan is no Daniel).
        let mut words = folded.split_whitespace();
        if let (Some(given), Some(_)) = (words.next(), words.clone().next()) {
            if let Some(formal) = formal_name(given) {
                let rest: Vec<&str> = words.collect();
                add(sorted_words(&format!("{formal} {}", rest.join(" "))));
            }
        }
        // A middle initial written on one record and not on another ("John Q. Smith", "John
        // Smith"): also the name without its one-letter Latin words between the first word
        // and the last, when the first is a whole given name ("J. Smith-Jones" is not
        // "Smith-Jones", nor "Mary Jane X" "Mary Jane").
        let all: Vec<&str> = folded.split_whitespace().collect();
        let is_initial = |w: &str| w.len() == 1 && w.bytes().all(|b| b.is_ascii_alphabetic());
        if all.len() >= 3 && !is_initial(all[0]) {
            let last = all.len() - 1;
            let kept: Vec<&str> = all
                .iter()
                .enumerate()
                .filter(|&(i, w)| i == 0 || i == last || !is_initial(w))
                .map(|(_, w)| *w)
                .collect();
            if kept.len() < all.len() {
                add(sorted_words(&kept.join(" ")));
            }
        }
        if let Some(p) = self.pinyin() {
            add(sorted_words(&p));
        }
        keys
    }

    /// The pinyin of a Chinese name as "surname given" (张志强 → `zhang zhiqiang`), `None`
    /// for names that are not written in Chinese characters.
    pub fn pinyin(&self) -> Option<String> {
        if !is_cjk_name(&self.0) {
            return None;
        }
        let compact: String = self.0.chars().filter(|c| !c.is_whitespace()).collect();
        let surname_len = COMPOUND_SURNAMES
            .iter()
            .find(|s| compact.starts_with(*s))
            .map_or(1, |s| s.chars().count());
        let surname: String = compact.chars().take(surname_len).collect();
        let given: String = compact.chars().skip(surname_len).collect();
        Some(
            format!("{} {}", to_pinyin(&surname), to_pinyin(&given))
                .trim()
                .to_owned(),
        )
    }

    /// Lower-cased tokens a search may use: each word, the whole name, and the match keys.
    pub fn search_tokens(&self) -> Vec<String> {
        let lower = self.0.to_lowercase();
        let mut tokens: Vec<String> = lower.split(' ').map(str::to_owned).collect();
        if let Some(p) = self.pinyin() {
            tokens.extend(p.split(' ').map(str::to_owned));
        }
        tokens.push(lower);
        tokens.extend(self.match_keys());
        tokens.sort();
        tokens.dedup();
        tokens
    }
}

/// Pinyin without tones, syllables run together (上海 → `shanghai`).
fn to_pinyin(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_pinyin() {
            Some(p) => p.plain().to_owned(),
            None => c.to_lowercase().collect(),
        })
        .collect()
}

/// The pinyin of a word written in Chinese characters (spaces dropped), `None` for any
/// other script.
pub(crate) fn han_pinyin(s: &str) -> Option<String> {
    is_cjk_name(s).then(|| to_pinyin(&s.chars().filter(|c| !c.is_whitespace()).collect::<String>()))
}

fn is_honorific(word: &str) -> bool {
    let w = word.trim_end_matches('.').to_lowercase();
    HONORIFICS.contains(&w.as_str())
}

/// Whether the name is written in Han characters (spaces aside).
fn is_cjk_name(name: &str) -> bool {
    let mut letters = name
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '·')
        .peekable();
    letters.peek().is_some() && letters.all(is_han)
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// English nicknames that stand for one given name only (Chris, Sam or Alex could be either
/// of two, and are left out), lower-case and without accents.
const NICKNAMES: &[(&str, &str)] = &[
    ("abby", "abigail"),
    ("andy", "andrew"),
    ("barb", "barbara"),
    ("becca", "rebecca"),
    ("becky", "rebecca"),
    ("ben", "benjamin"),
    ("benny", "benjamin"),
    ("beth", "elizabeth"),
    ("betsy", "elizabeth"),
    ("betty", "elizabeth"),
    ("bill", "william"),
    ("billy", "william"),
    ("bob", "robert"),
    ("bobby", "robert"),
    ("cathy", "catherine"),
    ("chuck", "charles"),
    ("cindy", "cynthia"),
    ("dan", "daniel"),
    ("danny", "daniel"),
    ("dave", "david"),
    ("deb", "deborah"),
    ("debbie", "deborah"),
    ("dick", "richard"),
    ("don", "donald"),
    ("dottie", "dorothy"),
    ("doug", "douglas"),
    ("fred", "frederick"),
    ("gabe", "gabriel"),
    ("geoff", "geoffrey"),
    ("greg", "gregory"),
    ("hank", "henry"),
    ("herb", "herbert"),
    ("jake", "jacob"),
    ("jeff", "jeffrey"),
    ("jen", "jennifer"),
    ("jenny", "jennifer"),
    ("jess", "jessica"),
    ("jim", "james"),
    ("jimmy", "james"),
    ("joe", "joseph"),
    ("joey", "joseph"),
    ("johnny", "john"),
    ("josh", "joshua"),
    ("ken", "kenneth"),
    ("kenny", "kenneth"),
    ("larry", "lawrence"),
    ("libby", "elizabeth"),
    ("liz", "elizabeth"),
    ("lizzie", "elizabeth"),
    ("maggie", "margaret"),
    ("mandy", "amanda"),
    ("matt", "matthew"),
    ("meg", "margaret"),
    ("mike", "michael"),
    ("nick", "nicholas"),
    ("norm", "norman"),
    ("pam", "pamela"),
    ("patsy", "patricia"),
    ("patty", "patricia"),
    ("peggy", "margaret"),
    ("pete", "peter"),
    ("phil", "philip"),
    ("ray", "raymond"),
    ("rich", "richard"),
    ("rick", "richard"),
    ("ricky", "richard"),
    ("rob", "robert"),
    ("robbie", "robert"),
    ("ron", "ronald"),
    ("russ", "russell"),
    ("stan", "stanley"),
    ("steph", "stephanie"),
    ("sue", "susan"),
    ("susie", "susan"),
    ("tim", "timothy"),
    ("timmy", "timothy"),
    ("tom", "thomas"),
    ("tommy", "thomas"),
    ("tony", "anthony"),
    ("trish", "patricia"),
    ("vicky", "victoria"),
    ("vince", "vincent"),
    ("walt", "walter"),
    ("wes", "wesley"),
    ("will", "william"),
    ("zach", "zachary"),
    ("zack", "zachary"),
];

/// The given name a nickname stands for, if it is one of [`NICKNAMES`].
fn formal_name(word: &str) -> Option<&'static str> {
    NICKNAMES
        .binary_search_by_key(&word, |(nick, _)| nick)
        .ok()
        .map(|i| NICKNAMES[i].1)
}

/// A lower-case name as plain letters: accents on Latin letters dropped (é → e, å → a),
/// letters without a decomposition spelled out (ß → ss, æ → ae, ø → o, ł → l), hyphens and
/// dots as spaces, apostrophes dropped (O'Brien → obrien). Other scripts pass through as they
/// are (a kana's voicing mark or a Hangul syllable is part of the name).
pub fn fold_latin(lower: &str) -> String {
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        match c {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'þ' => out.push_str("th"),
            'ø' => out.push('o'),
            'ł' => out.push('l'),
            'đ' | 'ð' => out.push('d'),
            'ı' => out.push('i'),
            '-' | '‐' | '‑' | '–' | '.' => out.push(' '),
            '\'' | '’' | '`' | 'ʼ' => {}
            // Latin-1 Supplement to Latin Extended-B, and Latin Extended Additional.
            '\u{c0}'..='\u{24f}' | '\u{1e00}'..='\u{1eff}' => out.extend(
                std::iter::once(c)
                    .nfd()
                    .filter(|m| !unicode_normalization::char::is_combining_mark(*m)),
            ),
            c => out.push(c),
        }
    }
    out
}

fn sorted_words(s: &str) -> String {
    let mut words: Vec<&str> = s.split_whitespace().collect();
    words.sort_unstable();
    words.join(" ")
}

/// Puts all-capital and all-lower-case words in name case ("ANN o'brien-smith" →
/// "Ann O'Brien-Smith"); words already in mixed case (McDonald) are kept.
fn name_case(name: &str) -> String {
    name.split(' ')
        .enumerate()
        .map(|(i, word)| {
            let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
            let shouted = letters.iter().all(|c| c.is_uppercase());
            let quiet = letters.iter().all(|c| c.is_lowercase());
            if letters.len() < 2 || !(shouted || quiet) {
                return word.to_owned();
            }
            let lower = word.to_lowercase();
            if i > 0 && PARTICLES.contains(&lower.as_str()) {
                return lower;
            }
            let mut out = String::with_capacity(word.len());
            let mut start = true;
            for c in lower.chars() {
                if start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                    start = false;
                } else {
                    out.push(c);
                }
                if c == '-' || c == '\'' || c == '’' {
                    start = true;
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Option<&str>) {
        let got = PersonName::parse(raw).ok();
        assert_eq!(got.as_ref().map(PersonName::as_str), expected, "{raw:?}");
    }

    #[test]
    fn names() {
        check("  Ann   Lee ", Some("Ann Lee"));
        check("张伟", Some("张伟"));
        // "e" + combining acute accent becomes the single precomposed "é".
        check("Rene\u{301} Dupont", Some("Ren\u{e9} Dupont"));
        check("ANN LEE", Some("Ann Lee"));
        check("ann lee", Some("Ann Lee"));
        check("ZHANG Wei", Some("Zhang Wei"));
        check("LEE, Ann", Some("Ann Lee"));
        check("Mr. John Smith", Some("John Smith"));
        check("Dr Maria Garcia", Some("Maria Garcia"));
        check("Frau Käthe Müller", Some("Käthe Müller"));
        check("sean o'brien-smith", Some("Sean O'Brien-Smith"));
        check("ludwig VAN beethoven", Some("Ludwig van Beethoven"));
        check("Ronald McDonald", Some("Ronald McDonald"));
        check("张先生", Some("张"));
        check("王小姐", Some("王"));
        check("Mr", Some("Mr"));
        check("   ", None);
        check("12345", None);
        check("a@b.com", None);
        check(&"x".repeat(200_000), None);
    }

    #[test]
    fn pinyin_and_match_keys() {
        let p = |s: &str| PersonName::parse(s).unwrap();
        assert_eq!(p("张伟").pinyin().as_deref(), Some("zhang wei"));
        assert_eq!(p("张志强").pinyin().as_deref(), Some("zhang zhiqiang"));
        assert_eq!(p("欧阳娜娜").pinyin().as_deref(), Some("ouyang nana"));
        assert_eq!(p("Zhang Wei").pinyin(), None);
        // The same person written three ways shares a key.
        let shares = |a: &str, b: &str| {
            p(a).match_keys()
                .iter()
                .any(|k| p(b).match_keys().contains(k))
        };
        assert!(shares("张伟", "Zhang Wei"));
        assert!(shares("张伟", "WEI ZHANG"));
        assert!(shares("Ann Lee", "LEE, Ann"));
        // Homophones share the key too (薇 is also "wei"); matching weighs the rest.
        assert!(shares("张伟", "张薇"));
        assert!(!shares("Ann Lee", "Ann Li"));
        // Accents, hyphens and umlauts as tills and web forms write them.
        assert!(shares("Zoë Martínez-López", "Zoe Martinez Lopez"));
        assert!(shares("Björn Åström", "Bjorn Astrom"));
        assert!(shares("Mary-Jane Watson", "Mary Jane Watson"));
        assert!(shares("Hans-Peter Müller", "Hans Peter Mueller"));
        assert!(shares("Hans-Peter Müller", "Hans Peter Muller"));
        assert!(shares("Sean O'Brien", "Sean OBrien"));
        assert!(shares("Łukasz Straße", "Lukasz Strasse"));
        assert!(!shares("Müller", "Miller"));
        assert_eq!(
            p("Zoë Martínez").match_keys(),
            vec!["martínez zoë", "martinez zoe"]
        );
        assert_eq!(p("Ann Lee").match_keys(), vec!["ann lee"]);
        assert!(shares("Liz Ocean", "Elizabeth Ocean"));
        assert!(shares("Bob Smith", "SMITH, Robert"));
        assert!(!shares("Chris Lee", "Christopher Lee"));
        assert!(!shares("Wang Dan", "Daniel Wang"));
        // Other scripts keep their marks: ガ is not カ.
        assert_eq!(fold_latin("がく"), "がく");
        assert_eq!(fold_latin("йод"), "йод");
        // A nickname alone is no name to expand.
        assert_eq!(p("Bob").match_keys(), vec!["bob"]);
        // A middle initial written once, not again; an initial that is all of a given name
        // stays (J. Smith is not Smith).
        assert!(shares("John Q. Smith", "John Smith"));
        assert!(shares("Diana P Kofron", "Kofron, Diana"));
        assert!(!p("J. Smith").match_keys().contains(&"smith".to_owned()));
        assert!(!p("J. R. Smith").match_keys().contains(&"smith".to_owned()));
        assert!(!shares("J. Smith-Jones", "Smith-Jones"));
        assert!(!shares("J. Smith-Jones", "K. Smith-Jones"));
        assert!(!shares("Mary Jane X", "Mary Jane"));
        assert!(shares("Mary Ann Q. Lee", "Mary Ann Lee"));
        assert!(
            NICKNAMES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no repeats"
        );
    }

    #[test]
    fn tokens() {
        let n = PersonName::parse("Ann Lee").unwrap();
        assert_eq!(n.search_tokens(), vec!["ann", "ann lee", "lee"]);
        let n = PersonName::parse("张伟").unwrap();
        assert_eq!(n.search_tokens(), vec!["wei", "wei zhang", "zhang", "张伟"]);
    }
}
