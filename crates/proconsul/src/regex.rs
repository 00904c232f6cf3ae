//! A tiny backtracking regular-expression matcher for `members -status=<regexp>`.
//!
//! Consul matches the status word (`alive`, `failed`, ...) with Go's `regexp.MatchString`, an
//! unanchored search. The inputs are five short words, so a small backtracking engine is
//! plenty, and it keeps a regex crate out of the build. Supported: literals and escapes,
//! `.`, classes (`[a-z]`, `[^x]`, `\d \w \s`), groups (`(...)`, `(?:...)`), `|`, `* + ?`
//! (lazy forms accepted), `{n}`, `{n,}`, `{n,m}`, `^` and `$`.

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
    Start,
    End,
    Alt(Vec<Vec<Node>>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    alts: Vec<Vec<Node>>,
}

impl Regex {
    /// Compile `pattern`; the error reads like Go's (`error parsing regexp: ...`).
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser { s: &chars, i: 0 };
        let alts = p.alternation()?;
        if p.i < chars.len() {
            return Err(format!("error parsing regexp: unexpected ): `{pattern}`"));
        }
        Ok(Regex { alts })
    }

    /// Does the pattern match anywhere in `text`?
    pub fn is_match(&self, text: &str) -> bool {
        let input: Vec<char> = text.chars().collect();
        let node = Node::Alt(self.alts.clone());
        (0..=input.len()).any(|start| match_node(&node, &input, start, &mut |_| true))
    }
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn pattern(&self) -> String {
        self.s.iter().collect()
    }

    fn alternation(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            seq.push(self.quantified(atom)?);
        }
        Ok(seq)
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => match self.braces() {
                Some(r) => r,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        self.i += 1; // past `*`, `+`, `?` or the closing `}`
        if matches!(atom, Node::Start | Node::End) {
            // Go accepts `^*`; it matches like the anchor alone.
            return Ok(atom);
        }
        if self.peek() == Some('?') {
            self.i += 1; // lazy: same answer for a yes/no match
        }
        if matches!(self.peek(), Some('*' | '+' | '?')) {
            return Err(format!(
                "error parsing regexp: invalid nested repetition operator: `{}`",
                self.pattern()
            ));
        }
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }

    /// `{n}`, `{n,}`, `{n,m}`; leaves `i` on the closing brace. `None` (and `i` untouched)
    /// when the brace is a literal.
    fn braces(&mut self) -> Option<(u32, Option<u32>)> {
        let rest: String = self.s[self.i..].iter().collect();
        let end = rest.find('}')?;
        let inner = &rest[1..end];
        let (a, b) = match inner.split_once(',') {
            Some((a, "")) => (a.parse().ok()?, None),
            Some((a, b)) => (a.parse().ok()?, Some(b.parse().ok()?)),
            None => {
                let n: u32 = inner.parse().ok()?;
                (n, Some(n))
            }
        };
        self.i += rest[..end].chars().count();
        Some((a, b))
    }

    fn atom(&mut self) -> Result<Node, String> {
        let c = self.peek().unwrap_or_default();
        self.i += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '(' => {
                if self.s[self.i..].starts_with(&['?', ':']) {
                    self.i += 2;
                }
                let alts = self.alternation()?;
                if self.peek() != Some(')') {
                    return Err(format!(
                        "error parsing regexp: missing closing ): `{}`",
                        self.pattern()
                    ));
                }
                self.i += 1;
                Node::Alt(alts)
            }
            '[' => self.class()?,
            '\\' => self.escape()?,
            '*' | '+' | '?' => {
                return Err(format!(
                    "error parsing regexp: missing argument to repetition operator: `{c}`"
                ))
            }
            c => Node::Char(c),
        })
    }

    fn escape(&mut self) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err("error parsing regexp: trailing backslash at end of expression: ``".into());
        };
        self.i += 1;
        Ok(match c {
            'd' => Node::Class {
                ranges: vec![('0', '9')],
                negated: false,
            },
            'D' => Node::Class {
                ranges: vec![('0', '9')],
                negated: true,
            },
            'w' => Node::Class {
                ranges: word(),
                negated: false,
            },
            'W' => Node::Class {
                ranges: word(),
                negated: true,
            },
            's' => Node::Class {
                ranges: space(),
                negated: false,
            },
            'S' => Node::Class {
                ranges: space(),
                negated: true,
            },
            'n' => Node::Char('\n'),
            't' => Node::Char('\t'),
            c if c.is_ascii_alphanumeric() => {
                return Err(format!(
                    "error parsing regexp: invalid escape sequence: `\\{c}`"
                ))
            }
            c => Node::Char(c),
        })
    }

    fn class(&mut self) -> Result<Node, String> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.i += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err(format!(
                    "error parsing regexp: missing closing ]: `{}`",
                    self.pattern()
                ));
            };
            self.i += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                match self.escape()? {
                    Node::Char(c) => c,
                    Node::Class {
                        ranges: r,
                        negated: false,
                    } => {
                        ranges.extend(r);
                        continue;
                    }
                    _ => return Err("error parsing regexp: invalid character class".into()),
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.s.get(self.i + 1).is_some_and(|&n| n != ']') {
                let hi = self.s[self.i + 1];
                self.i += 2;
                if hi < lo {
                    return Err(format!(
                        "error parsing regexp: invalid character class range: `{lo}-{hi}`"
                    ));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class { ranges, negated })
    }
}

fn word() -> Vec<(char, char)> {
    vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')]
}

fn space() -> Vec<(char, char)> {
    vec![(' ', ' '), ('\t', '\n'), ('\x0c', '\r')]
}

/// Match `node` at `pos`, then hand every possible end position to `k` until it accepts.
fn match_node(node: &Node, input: &[char], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    match node {
        Node::Char(c) => input.get(pos) == Some(c) && k(pos + 1),
        Node::Any => input.get(pos).is_some_and(|&c| c != '\n') && k(pos + 1),
        Node::Class { ranges, negated } => {
            input
                .get(pos)
                .is_some_and(|&c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
                && k(pos + 1)
        }
        Node::Start => pos == 0 && k(pos),
        Node::End => pos == input.len() && k(pos),
        Node::Alt(alts) => alts.iter().any(|seq| match_seq(seq, input, pos, k)),
        Node::Repeat { node, min, max } => repeat(node, *min, *max, 0, input, pos, k),
    }
}

fn match_seq(seq: &[Node], input: &[char], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    match seq.split_first() {
        None => k(pos),
        Some((first, rest)) => match_node(first, input, pos, &mut |p| {
            match_seq(rest, input, p, &mut *k)
        }),
    }
}

fn repeat(
    node: &Node,
    min: u32,
    max: Option<u32>,
    count: u32,
    input: &[char],
    pos: usize,
    k: &mut dyn FnMut(usize) -> bool,
) -> bool {
    if !matches!(max, Some(m) if count >= m) {
        let more = match_node(node, input, pos, &mut |p| {
            if p == pos {
                // An empty iteration makes no progress: count it once and stop looping.
                count + 1 >= min && k(p)
            } else {
                repeat(node, min, max, count + 1, input, p, &mut *k)
            }
        });
        if more {
            return true;
        }
    }
    count >= min && k(pos)
}

#[cfg(test)]
mod tests {
    use super::Regex;

    fn m(p: &str, t: &str) -> bool {
        Regex::new(p).unwrap().is_match(t)
    }

    #[test]
    fn status_patterns() {
        assert!(m(".*", "alive"));
        assert!(m("alive", "alive"));
        assert!(m("ali", "alive")); // unanchored, like Go's MatchString
        assert!(!m("^ali$", "alive"));
        assert!(m("left|failed", "failed"));
        assert!(!m("left|failed", "alive"));
        assert!(m("^(alive|leaving)$", "leaving"));
        assert!(m("^[adefil]+$", "failed") && !m("^[adefil]+$", "alive"));
        assert!(m("^l.{2}t$", "left"));
        assert!(m("a(b*)*c", "ac"));
        assert!(m("^[^x]+$", "none"));
        assert!(m("\\w+", "left") && !m("^\\d", "left"));
    }

    #[test]
    fn errors() {
        assert!(Regex::new("(alive")
            .unwrap_err()
            .contains("missing closing )"));
        assert!(Regex::new("[a-").is_err());
        assert!(Regex::new("*a").is_err());
        assert!(Regex::new("a)").is_err());
    }
}
