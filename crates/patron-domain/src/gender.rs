//! Gender codes from the many spellings exports use.

use crate::Invalid;

/// A gender code as stored: `F`, `M` or `X` (other / non-binary). Unknown stays `None` at the
/// call site rather than a fourth code, so "we don't know" never looks like data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Another gender.
    Other,
}

impl Gender {
    /// Parses `M`, `male`, `男`, `F`, `W`, `female`, `女`, `X`, ... (case-insensitive).
    /// Blank and explicit unknowns (`U`, `unknown`, `未知`) parse to `Ok(None)`.
    pub fn parse(raw: &str) -> Result<Option<Gender>, Invalid> {
        let s = raw.trim().to_lowercase();
        Ok(Some(match s.as_str() {
            "" | "u" | "unknown" | "未知" | "n/a" | "-" => return Ok(None),
            "m" | "male" | "man" | "男" | "h" | "homme" | "herr" | "mr" => Gender::Male,
            "f" | "female" | "woman" | "女" | "w" | "weiblich" | "femme" | "frau" | "mrs"
            | "ms" => Gender::Female,
            "x" | "o" | "other" | "diverse" | "d" | "non-binary" | "nonbinary" => Gender::Other,
            _ => return Err(Invalid::new("unknown gender code")),
        }))
    }

    /// The one-letter code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Gender::Female => "F",
            Gender::Male => "M",
            Gender::Other => "X",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genders() {
        let check = |raw: &str, expected: Result<Option<&str>, ()>| {
            let got = Gender::parse(raw)
                .map(|g| g.map(Gender::code))
                .map_err(|_| ());
            assert_eq!(got, expected, "{raw:?}");
        };
        check("M", Ok(Some("M")));
        check(" female ", Ok(Some("F")));
        check("男", Ok(Some("M")));
        check("女", Ok(Some("F")));
        check("W", Ok(Some("F")));
        check("", Ok(None));
        check("unknown", Ok(None));
        check("banana", Err(()));
    }
}
