//! Masks for showing personal values to people who may know a customer exists but not who
//! they are (analysts): enough to tell records apart, not enough to identify or contact.

/// `ann.lee@example.com` → `a***@example.com`.
pub fn email(v: &str) -> String {
    match v.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// `+14155552671` → `+*********71`: the length and the last two digits.
pub fn phone(v: &str) -> String {
    let n = v.chars().count();
    v.chars()
        .enumerate()
        .map(|(i, c)| if c == '+' || i + 2 >= n { c } else { '*' })
        .collect()
}

/// `Ann Lee` → `A. L.`; `王伟` → `王*`: initials for spaced names, the family name for
/// unspaced CJK names.
pub fn name(v: &str) -> String {
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.len() == 1 && words[0].chars().count() > 1 && !words[0].is_ascii() {
        let mut chars = words[0].chars();
        let first = chars.next().expect("non-empty");
        return format!("{first}{}", "*".repeat(chars.count()));
    }
    words
        .iter()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `1990-01-02` → `1990-**-**`: the year only.
pub fn birth_date(v: &str) -> String {
    match v.split_once('-') {
        Some((year, _)) => format!("{year}-**-**"),
        None => "****".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_just_enough() {
        assert_eq!(email("ann.lee@example.com"), "a***@example.com");
        assert_eq!(email("broken"), "***");
        assert_eq!(phone("+14155552671"), "+*********71");
        assert_eq!(name("Ann Lee"), "A. L.");
        assert_eq!(name("ann"), "A.");
        assert_eq!(name("王伟"), "王*");
        assert_eq!(name("欧阳娜娜"), "欧***");
        assert_eq!(birth_date("1990-01-02"), "1990-**-**");
    }
}
