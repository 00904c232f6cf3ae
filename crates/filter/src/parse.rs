//! go-bexpr's grammar (v0.1.2, the version Consul pins), with its error messages:
//! `<line>:<col> (<offset>): <what>`, where custom errors read `rule "<rule>": <message>`.
//!
//! ```text
//! Or    := And ( _ "or" _ Or )?
//! And   := Not ( _ "and" _ And )?
//! Not   := "not" _ Not | "(" _? Or _? ")" | Match
//! Match := Selector _? ("==" | "!=") _? Value
//!        | Selector _ ("not" _)? ("contains" | "matches") _ Value
//!        | Selector _ "is" _ ("not" _)? "empty"
//!        | Value _ ("not" _)? "in" _ Selector
//! Selector := Ident ( "." Ident | "[" _? String _? "]" )*      Ident := [a-zA-Z][a-zA-Z0-9_]*
//! Value := Selector (its segments joined by ".") | Number | String ("…" with Go escapes, `…` raw)
//! ```
//! Keywords are lower-case only; `and`, `or`, `not`, `in`, … need whitespace on both sides.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Equal,
    NotEqual,
    In,
    NotIn,
    Matches,
    NotMatches,
    IsEmpty,
    IsNotEmpty,
}

impl Op {
    /// go-bexpr's name of the operator, used in its messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Equal => "Equal",
            Op::NotEqual => "Not Equal",
            Op::In => "In",
            Op::NotIn => "Not In",
            Op::Matches => "Matches",
            Op::NotMatches => "Not Matches",
            Op::IsEmpty => "Is Empty",
            Op::IsNotEmpty => "Is Not Empty",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ast {
    Or(Box<Ast>, Box<Ast>),
    And(Box<Ast>, Box<Ast>),
    Not(Box<Ast>),
    Match {
        selector: Vec<String>,
        op: Op,
        /// The raw value (`None` for `is empty`).
        value: Option<String>,
    },
}

/// A term before we know its role: a selector, or a literal value.
enum Term {
    Selector(Vec<String>),
    Number(String),
    Str(String),
}

impl Term {
    fn into_value(self) -> String {
        match self {
            Term::Selector(s) => s.join("."),
            Term::Number(n) | Term::Str(n) => n,
        }
    }
}

/// What may start a term, as pigeon lists it.
const TERM_START: &str = r#""(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#;

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

type R<T> = Result<T, String>;

pub(crate) fn parse(text: &str) -> Result<Ast, String> {
    let mut p = Parser { s: text, pos: 0 };
    p.ws();
    let ast = p.or()?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.no_match(r#""and", "or", [ \t\r\n] or EOF"#));
    }
    Ok(ast)
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `<line>:<col> (<offset>)` of `at`: lines and columns from 1, columns in characters.
    fn position(&self, at: usize) -> String {
        let before = &self.s[..at];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        format!("{line}:{col} ({at})")
    }

    fn no_match(&self, expected: &str) -> String {
        format!(
            "{}: no match found, expected: {expected}",
            self.position(self.pos)
        )
    }

    fn rule(&self, at: usize, rule: &str, message: &str) -> String {
        format!("{}: rule \"{rule}\": {message}", self.position(at))
    }

    /// `word` followed by whitespace: consumed (with the whitespace) when present.
    fn keyword(&mut self, word: &str) -> bool {
        let r = self.rest();
        if r.starts_with(word) && r.as_bytes().get(word.len()).is_some_and(|c| is_ws(*c)) {
            self.pos += word.len();
            self.ws();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> R<Ast> {
        let left = self.and()?;
        let save = self.pos;
        if self.ws() > 0 && self.keyword("or") {
            let right = self.or()?;
            return Ok(Ast::Or(Box::new(left), Box::new(right)));
        }
        self.pos = save;
        Ok(left)
    }

    fn and(&mut self) -> R<Ast> {
        let left = self.not()?;
        let save = self.pos;
        if self.ws() > 0 && self.keyword("and") {
            let right = self.and()?;
            return Ok(Ast::And(Box::new(left), Box::new(right)));
        }
        self.pos = save;
        Ok(left)
    }

    fn not(&mut self) -> R<Ast> {
        if self.keyword("not") {
            return match self.not()? {
                // `not not X` is X, as go-bexpr folds it.
                Ast::Not(inner) => Ok(*inner),
                other => Ok(Ast::Not(Box::new(other))),
            };
        }
        if self.peek() == Some(b'(') {
            self.pos += 1;
            self.ws();
            let inner = self.or()?;
            self.ws();
            if self.peek() != Some(b')') {
                return Err(self.rule(self.pos, "grouping", "Unmatched parentheses"));
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.matcher()
    }

    fn matcher(&mut self) -> R<Ast> {
        let term = self.term()?;
        let save = self.pos;
        let spaced = self.ws() > 0;
        for (lit, op) in [("==", Op::Equal), ("!=", Op::NotEqual)] {
            if self.rest().starts_with(lit) {
                let Term::Selector(selector) = term else {
                    return Err(self.no_match(r#""in", "not" or [ \t\r\n]"#));
                };
                self.pos += 2;
                self.ws();
                let value = self.term()?.into_value();
                return Ok(Ast::Match {
                    selector,
                    op,
                    value: Some(value),
                });
            }
        }
        if spaced {
            let negated = self.keyword("not");
            if self.keyword("in") {
                let at = self.pos;
                let Term::Selector(selector) = self.term()? else {
                    return Err(self.rule(at, "match", "Invalid selector"));
                };
                let op = if negated { Op::NotIn } else { Op::In };
                return Ok(Ast::Match {
                    selector,
                    op,
                    value: Some(term.into_value()),
                });
            }
            if let Term::Selector(selector) = term {
                for (word, op, not_op) in [
                    ("contains", Op::In, Op::NotIn),
                    ("matches", Op::Matches, Op::NotMatches),
                ] {
                    if self.keyword(word) {
                        let value = self.term()?.into_value();
                        let op = if negated { not_op } else { op };
                        return Ok(Ast::Match {
                            selector,
                            op,
                            value: Some(value),
                        });
                    }
                }
                if !negated && self.keyword("is") {
                    let not = self.keyword("not");
                    if self.rest().starts_with("empty") {
                        self.pos += "empty".len();
                        let op = if not { Op::IsNotEmpty } else { Op::IsEmpty };
                        return Ok(Ast::Match {
                            selector,
                            op,
                            value: None,
                        });
                    }
                    return Err(self.no_match(r#""empty", "not" or [ \t\r\n]"#));
                }
                if negated {
                    return Err(self.no_match(r#""contains", "in", "matches" or [ \t\r\n]"#));
                }
                return Err(self.no_match(
                    r#""!=", "==", "contains", "in", "is", "matches", "not" or [ \t\r\n]"#,
                ));
            }
            return Err(self.no_match(r#""in", "not" or [ \t\r\n]"#));
        }
        self.pos = save;
        match term {
            Term::Selector(_) => {
                Err(self.no_match(r#""!=", ".", "==", "[", [ \t\r\n] or [a-zA-Z0-9_]"#))
            }
            _ => Err(self.no_match(r#"[ \t\r\n]"#)),
        }
    }

    fn term(&mut self) -> R<Term> {
        match self.peek() {
            Some(b'"') | Some(b'`') => self.string().map(Term::Str),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number().map(Term::Number),
            Some(c) if c.is_ascii_alphabetic() => self.selector().map(Term::Selector),
            _ => Err(self.no_match(TERM_START)),
        }
    }

    fn ident(&mut self) -> Option<String> {
        let r = self.rest().as_bytes();
        if !r.first().is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let len = r
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .unwrap_or(r.len());
        let id = self.rest()[..len].to_string();
        self.pos += len;
        Some(id)
    }

    fn selector(&mut self) -> R<Vec<String>> {
        let mut path = vec![self.ident().expect("caller checked a letter")];
        loop {
            match self.peek() {
                Some(b'.') => {
                    let save = self.pos;
                    self.pos += 1;
                    match self.ident() {
                        Some(id) => path.push(id),
                        None => {
                            self.pos = save;
                            return Ok(path);
                        }
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.ws();
                    if !matches!(self.peek(), Some(b'"') | Some(b'`')) {
                        return Err(self.rule(self.pos, "index", "Invalid index"));
                    }
                    path.push(self.string()?);
                    self.ws();
                    if self.peek() != Some(b']') {
                        return Err(self.rule(self.pos, "index", "Unclosed index expression"));
                    }
                    self.pos += 1;
                }
                _ => return Ok(path),
            }
        }
    }

    fn number(&mut self) -> R<String> {
        let start = self.pos;
        let b = self.s.as_bytes();
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(c) if c.is_ascii_digit() => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => {
                self.pos = i;
                return Err(self.no_match(r#""0" or [1-9]"#));
            }
        }
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.pos = i;
        match b.get(i) {
            None | Some(b')') => {}
            Some(c) if is_ws(*c) => {}
            _ => return Err(self.rule(i, "number", "Invalid number literal")),
        }
        Ok(self.s[start..i].to_string())
    }

    fn string(&mut self) -> R<String> {
        let start = self.pos;
        let quote = self.s.as_bytes()[start];
        let body_start = start + 1;
        let Some(len) = self.s[body_start..].find(quote as char) else {
            self.pos = self.s.len();
            return Err(self.rule(self.pos, "string", "Unterminated string literal"));
        };
        let body = &self.s[body_start..body_start + len];
        self.pos = body_start + len + 1;
        if quote == b'`' {
            return Ok(body.replace('\r', ""));
        }
        unquote(body).ok_or_else(|| format!("{}: invalid syntax", self.position(start)))
    }
}

/// Go's `strconv.Unquote` of a double-quoted string's body.
fn unquote(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\n' {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars, n: usize| -> Option<u32> {
            let s: String = chars.by_ref().take(n).collect();
            (s.len() == n).then(|| u32::from_str_radix(&s, 16).ok())?
        };
        match chars.next()? {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '\'' => return None,
            'x' => out.push(char::from_u32(hex(&mut chars, 2)?)?),
            'u' => out.push(char::from_u32(hex(&mut chars, 4)?)?),
            'U' => out.push(char::from_u32(hex(&mut chars, 8)?)?),
            d @ '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let n = u32::from_str_radix(&format!("{d}{rest}"), 8).ok()?;
                if rest.len() != 2 || n > 255 {
                    return None;
                }
                out.push(char::from_u32(n)?);
            }
            _ => return None,
        }
    }
    Some(out)
}
