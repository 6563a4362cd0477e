//! Rule segments: a small, safe expression language over customer attributes and metrics,
//! such as `total_spent > 500 and days_since_last_order <= 30 and country = 'CN'` or
//! `rfm_segment in ('At Risk', 'Can''t Lose Them')`. Expressions are parsed and type-checked
//! against a schema, with errors that point at the column of the mistake, and evaluated over
//! columnar data; no SQL is ever built from them.
//!
//! ```text
//! expr       := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" expr ")" | comparison
//! comparison := column op literal | column ["not"] "in" "(" literal ("," literal)* ")"
//!             | string "in" column                      (for list columns)
//! op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal    := number | 'text' (quote doubled inside) | true | false
//! ```
//! A comparison with a missing value is false (so `not` of it is true).

use std::collections::HashMap;
use std::sync::Arc;

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A number.
    Number,
    /// A text.
    Text,
    /// A list of texts (tested with `'x' in column`).
    List,
}

/// A column's values, one per customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers (`None`: missing).
    Number(Vec<Option<f64>>),
    /// Texts (`None`: missing); shared, since few distinct values repeat over many rows.
    Text(Vec<Option<Arc<str>>>),
    /// Lists of texts.
    List(Vec<Vec<String>>),
}

impl Column {
    fn ty(&self) -> Type {
        match self {
            Column::Number(_) => Type::Number,
            Column::Text(_) => Type::Text,
            Column::List(_) => Type::List,
        }
    }
}

/// A parse or type error, with the 1-based character column it points at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct RuleError {
    /// 1-based character position in the expression.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(f64),
    Text(String),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed, type-checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Both hold.
    And(Box<Node>, Box<Node>),
    /// Either holds.
    Or(Box<Node>, Box<Node>),
    /// It does not hold.
    Not(Box<Node>),
    /// `column op literal`.
    Compare(String, Op, Literal),
    /// `column in (…)`.
    In(String, Vec<Literal>),
    /// `'text' in column` for a list column.
    Contains(String, String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(f64),
    Text(String),
    Symbol(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<(Token, usize)>, RuleError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: &str| RuleError {
        column,
        message: message.to_owned(),
    };
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(err(at, "unterminated text: a closing ' is missing")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        text.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push((Token::Text(text), at));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse()
                .map_err(|_| err(at, &format!("'{text}' is not a number")))?;
            out.push((Token::Number(n), at));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Token::Word(chars[start..i].iter().collect()), at));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = ["<=", ">=", "!=", "<>"]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    ["=", "<", ">", "(", ")", ","]
                        .into_iter()
                        .find(|s| s.starts_with(c))
                });
            match symbol {
                Some(s) => {
                    i += s.chars().count();
                    out.push((Token::Symbol(s), at));
                }
                None => return Err(err(at, &format!("unexpected character '{c}'"))),
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    end: usize,
    schema: &'a HashMap<String, Type>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(_, c)| *c)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, RuleError> {
        Err(RuleError {
            column: self.at(),
            message: message.into(),
        })
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn symbol(&mut self, s: &str) -> bool {
        if self.peek()
            == Some(&Token::Symbol(match s {
                "(" => "(",
                ")" => ")",
                "," => ",",
                _ => return false,
            }))
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Node, RuleError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Node::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, RuleError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Node::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, RuleError> {
        if self.keyword("not") {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.symbol("(") {
            let inner = self.or()?;
            if !self.symbol(")") {
                return self.error("expected ')'");
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn column(&mut self) -> Result<(String, Type), RuleError> {
        let at = self.at();
        match self.peek().cloned() {
            Some(Token::Word(w)) => {
                let name = w.to_ascii_lowercase();
                match self.schema.get(&name) {
                    Some(t) => {
                        self.pos += 1;
                        Ok((name, *t))
                    }
                    None => {
                        let mut known: Vec<&String> = self.schema.keys().collect();
                        known.sort();
                        let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
                        Err(RuleError {
                            column: at,
                            message: format!("unknown column '{w}' (known: {})", known.join(", ")),
                        })
                    }
                }
            }
            _ => self.error("expected a column name"),
        }
    }

    fn literal(&mut self, want: Type, column: &str) -> Result<Literal, RuleError> {
        let at = self.at();
        let lit = match self.peek().cloned() {
            Some(Token::Number(n)) => Literal::Number(n),
            Some(Token::Text(t)) => Literal::Text(t),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => return self.error("expected a number or a 'text'"),
        };
        let fits = matches!(
            (&lit, want),
            (Literal::Number(_), Type::Number) | (Literal::Text(_), Type::Text)
        );
        if !fits {
            let expected = match want {
                Type::Number => "a number",
                _ => "a 'text'",
            };
            return Err(RuleError {
                column: at,
                message: format!("'{column}' is compared with {expected}"),
            });
        }
        self.pos += 1;
        Ok(lit)
    }

    fn comparison(&mut self) -> Result<Node, RuleError> {
        // 'text' in list_column
        if let Some(Token::Text(t)) = self.peek().cloned() {
            self.pos += 1;
            if !self.keyword("in") {
                return self.error("expected 'in' after a text (as in 'vip' in tags)");
            }
            let at = self.at();
            let (name, ty) = self.column()?;
            if ty != Type::List {
                return Err(RuleError {
                    column: at,
                    message: format!("'{name}' is not a list; write {name} = '{t}'"),
                });
            }
            return Ok(Node::Contains(name, t));
        }
        let at = self.at();
        let (name, ty) = self.column()?;
        if ty == Type::List {
            return Err(RuleError {
                column: at,
                message: format!("'{name}' is a list; test it with 'value' in {name}"),
            });
        }
        let negated = self.keyword("not");
        if self.keyword("in") {
            if !self.symbol("(") {
                return self.error("expected '(' after 'in'");
            }
            let mut values = vec![self.literal(ty, &name)?];
            while self.symbol(",") {
                values.push(self.literal(ty, &name)?);
            }
            if !self.symbol(")") {
                return self.error("expected ',' or ')'");
            }
            let rule = Node::In(name, values);
            return Ok(if negated {
                Node::Not(Box::new(rule))
            } else {
                rule
            });
        }
        if negated {
            return self.error("expected 'in' after 'not'");
        }
        let op = match self.peek() {
            Some(Token::Symbol("=")) => Op::Eq,
            Some(Token::Symbol("!=" | "<>")) => Op::Ne,
            Some(Token::Symbol("<")) => Op::Lt,
            Some(Token::Symbol("<=")) => Op::Le,
            Some(Token::Symbol(">")) => Op::Gt,
            Some(Token::Symbol(">=")) => Op::Ge,
            _ => {
                return self.error(format!(
                    "expected a comparison (=, !=, <, <=, >, >=) or 'in' after '{name}'"
                ))
            }
        };
        if ty == Type::Text && !matches!(op, Op::Eq | Op::Ne) {
            return self.error(format!("'{name}' is text: compare it with = or !="));
        }
        self.pos += 1;
        let lit = self.literal(ty, &name)?;
        Ok(Node::Compare(name, op, lit))
    }
}

/// Parses and type-checks `src` against `schema` (column name → type).
pub fn parse(src: &str, schema: &HashMap<String, Type>) -> Result<Rule, RuleError> {
    let tokens = tokenize(src)?;
    if tokens.is_empty() {
        return Err(RuleError {
            column: 1,
            message: "the rule is empty".into(),
        });
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        end: src.chars().count() + 1,
        schema,
    };
    let rule = p.or()?;
    if p.pos < p.tokens.len() {
        return p.error("expected 'and', 'or' or the end of the rule");
    }
    Ok(Rule(rule))
}

/// The schema of `columns`.
pub fn schema(columns: &HashMap<String, Column>) -> HashMap<String, Type> {
    columns.iter().map(|(k, c)| (k.clone(), c.ty())).collect()
}

/// Which of `rows` customers satisfy `rule` (parsed against the schema of `columns`).
/// Evaluated column by column: each node of the rule looks its column up once and runs one
/// tight loop over the rows.
pub fn evaluate(rule: &Rule, columns: &HashMap<String, Column>, rows: usize) -> Vec<bool> {
    eval(&rule.0, columns, rows)
}

fn eval(node: &Node, columns: &HashMap<String, Column>, rows: usize) -> Vec<bool> {
    let combine = |a: &Node, b: &Node, f: fn(bool, bool) -> bool| {
        let mut x = eval(a, columns, rows);
        for (p, q) in x.iter_mut().zip(eval(b, columns, rows)) {
            *p = f(*p, q);
        }
        x
    };
    match node {
        Node::And(a, b) => combine(a, b, |p, q| p && q),
        Node::Or(a, b) => combine(a, b, |p, q| p || q),
        Node::Not(a) => eval(a, columns, rows).into_iter().map(|v| !v).collect(),
        Node::Compare(name, op, lit) => match (&columns[name], lit) {
            (Column::Number(v), Literal::Number(n)) => {
                let n = *n;
                let test: fn(f64, f64) -> bool = match op {
                    Op::Eq => |x, n| x == n,
                    Op::Ne => |x, n| x != n,
                    Op::Lt => |x, n| x < n,
                    Op::Le => |x, n| x <= n,
                    Op::Gt => |x, n| x > n,
                    Op::Ge => |x, n| x >= n,
                };
                v.iter().map(|x| x.is_some_and(|x| test(x, n))).collect()
            }
            (Column::Text(v), Literal::Text(t)) => {
                let equal = *op != Op::Ne;
                // Rows share a few distinct values: compare each distinct one once.
                let mut last: Option<(&Arc<str>, bool)> = None;
                v.iter()
                    .map(|x| match x {
                        None => false,
                        Some(x) => match last {
                            Some((prev, same)) if Arc::ptr_eq(prev, x) => same == equal,
                            _ => {
                                let same = x.eq_ignore_ascii_case(t);
                                last = Some((x, same));
                                same == equal
                            }
                        },
                    })
                    .collect()
            }
            _ => vec![false; rows],
        },
        Node::In(name, values) => {
            let mut out = vec![false; rows];
            for v in values {
                let one = eval(
                    &Node::Compare(name.clone(), Op::Eq, v.clone()),
                    columns,
                    rows,
                );
                for (o, x) in out.iter_mut().zip(one) {
                    *o |= x;
                }
            }
            out
        }
        Node::Contains(name, t) => match &columns[name] {
            Column::List(v) => v
                .iter()
                .map(|xs| xs.iter().any(|x| x.eq_ignore_ascii_case(t)))
                .collect(),
            _ => vec![false; rows],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check;

    fn table() -> HashMap<String, Column> {
        HashMap::from([
            (
                "total_spent".to_owned(),
                Column::Number(vec![Some(600.0), Some(100.0), None]),
            ),
            (
                "country".to_owned(),
                Column::Text(vec![
                    Some("CN".into()),
                    Some("US".into()),
                    Some("CN".into()),
                ]),
            ),
            (
                "rfm_segment".to_owned(),
                Column::Text(vec![
                    Some("Can't Lose Them".into()),
                    Some("At Risk".into()),
                    None,
                ]),
            ),
            (
                "sources".to_owned(),
                Column::List(vec![
                    vec!["wechat".into()],
                    vec!["web".into(), "pos".into()],
                    vec![],
                ]),
            ),
        ])
    }

    fn run(src: &str) -> Result<Vec<bool>, RuleError> {
        let t = table();
        let rule = parse(src, &schema(&t))?;
        Ok(evaluate(&rule, &t, 3))
    }

    #[test]
    fn rules_select_the_customers_they_describe() {
        let f = |s: &&str| run(s).map_err(|e| e.to_string());
        check(
            f,
            "total_spent > 500 and country = 'cn'",
            Ok(vec![true, false, false]),
        );
        check(
            f,
            "total_spent <= 500 or country != 'CN'",
            Ok(vec![false, true, false]),
        );
        check(
            f,
            "rfm_segment in ('At Risk', 'Can''t Lose Them')",
            Ok(vec![true, true, false]),
        );
        check(
            f,
            "rfm_segment not in ('At Risk')",
            Ok(vec![true, false, true]),
        );
        check(f, "'pos' in sources", Ok(vec![false, true, false]));
        check(f, "not (total_spent >= 100)", Ok(vec![false, false, true]));
        // A missing value compares false; `not` of that is true.
        check(
            f,
            "NOT total_spent > 0 AND country = 'CN'",
            Ok(vec![false, false, true]),
        );
    }

    #[test]
    fn errors_point_at_the_mistake() {
        for (src, column, starts) in [
            (
                "total_spend > 500",
                1,
                "unknown column 'total_spend' (known: country, rfm_segment",
            ),
            (
                "total_spent > 'a lot'",
                15,
                "'total_spent' is compared with a number",
            ),
            (
                "country > 'CN'",
                9,
                "'country' is text: compare it with = or !=",
            ),
            ("country = 'CN", 11, "unterminated text"),
            ("total_spent > 5 and", 20, "expected a column name"),
            ("(total_spent > 5", 17, "expected ')'"),
            (
                "total_spent > 5 country = 'CN'",
                17,
                "expected 'and', 'or' or the end",
            ),
            (
                "sources = 'web'",
                1,
                "'sources' is a list; test it with 'value' in sources",
            ),
            ("'web' in country", 10, "'country' is not a list"),
            (
                "total_spent > 5; drop table",
                16,
                "unexpected character ';'",
            ),
            ("", 1, "the rule is empty"),
        ] {
            let e = run(src).unwrap_err();
            assert_eq!(e.column, column, "{src}: {e}");
            assert!(e.message.starts_with(starts), "{src}: {e}");
        }
    }
}
