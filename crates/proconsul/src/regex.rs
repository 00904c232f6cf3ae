//! Go regular expressions (RE2 syntax, as Consul's `regexp.MustCompile` reads them) for the
//! CLI's filters: `members -status`, and the compile check of `exec` and `event` filters (the
//! agent matches those with `regex-lite` too).
//!
//! Matching is `regex-lite`'s; this module only adds the two places where Go's parser reads a
//! pattern differently: a `{` that does not start a valid counted repetition is a literal
//! (`a{`, `{x}`, `a{,3}`), and stacked repetitions (`a**`, `a+{2}`) or counts above 1000 are
//! errors. Errors read like Go's: ``error parsing regexp: <what>: `<pattern>` ``.

use regex_lite::Regex;

/// Go's limit on a counted repetition (`{n}`, `{n,m}`).
const MAX_REPEAT: u32 = 1000;

/// Compile `pattern` with Go's reading of it.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern)?;
    Regex::new(&translated).map_err(|e| format!("error parsing regexp: {e}: `{pattern}`"))
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `s` (Go's `parseRepeat`: decimal numbers without
/// leading zeros): its length in chars and its bounds. `None` when it is a literal brace.
fn counted(s: &[char]) -> Option<(usize, u32, Option<u32>)> {
    fn number(s: &[char], i: &mut usize) -> Option<u32> {
        let start = *i;
        while s.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        let digits: String = s[start..*i].iter().collect();
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        // Larger than any allowed count, but still a repetition (an error, not a literal).
        Some(digits.parse().unwrap_or(u32::MAX))
    }
    let mut i = 1;
    let min = number(s, &mut i)?;
    let max = if s.get(i) == Some(&',') {
        i += 1;
        if s.get(i) == Some(&'}') {
            None
        } else {
            Some(number(s, &mut i)?)
        }
    } else {
        Some(min)
    };
    (s.get(i) == Some(&'}')).then_some((i + 1, min, max))
}

/// Rewrite a Go pattern for `regex-lite`: escape literal braces, reject what Go rejects.
fn translate(pattern: &str) -> Result<String, String> {
    let s: Vec<char> = pattern.chars().collect();
    let fail = |what: &str, at: &[char]| {
        let at: String = at.iter().collect();
        Err(format!("error parsing regexp: {what}: `{at}`"))
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    // Start of the previous token if it was a repetition operator (with its lazy `?`).
    let mut last_repeat: Option<usize> = None;
    let mut i = 0;
    while i < s.len() {
        let start = i;
        let mut repeat = None;
        match s[i] {
            '\\' => {
                out.push('\\');
                i += 1;
                if let Some(&c) = s.get(i) {
                    out.push(c);
                    i += 1;
                }
            }
            '[' => {
                // Copy a class verbatim: braces and stars are literals inside it.
                out.push('[');
                i += 1;
                if s.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                let mut first = true;
                while let Some(&c) = s.get(i) {
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    out.push(c);
                    i += 1;
                    if c == '\\' {
                        if let Some(&n) = s.get(i) {
                            out.push(n);
                            i += 1;
                        }
                    } else if c == '[' && s.get(i) == Some(&':') {
                        // `[:alpha:]` inside a class.
                        while let Some(&n) = s.get(i) {
                            out.push(n);
                            i += 1;
                            if n == ']' {
                                break;
                            }
                        }
                    }
                }
                if i < s.len() {
                    out.push(']');
                    i += 1;
                }
            }
            '*' | '+' | '?' | '{' => {
                let len = if s[i] == '{' {
                    match counted(&s[i..]) {
                        None => {
                            out.push_str("\\{");
                            i += 1;
                            last_repeat = None;
                            continue;
                        }
                        Some((len, min, max)) => {
                            if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
                                return fail("invalid repeat count", &s[i..i + len]);
                            }
                            len
                        }
                    }
                } else {
                    1
                };
                let mut end = i + len;
                if s.get(end) == Some(&'?') {
                    end += 1; // lazy
                }
                if let Some(prev) = last_repeat {
                    return fail("invalid nested repetition operator", &s[prev..end]);
                }
                out.extend(&s[i..end]);
                i = end;
                repeat = Some(start);
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
        last_repeat = repeat;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::compile;

    fn m(p: &str, t: &str) -> bool {
        compile(p).unwrap().is_match(t)
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
        assert!(m("(?i)^ALIVE$", "alive"));
        assert!(m("^a{1,}l+?", "alive"));
    }

    #[test]
    fn braces_that_are_not_repetitions_are_literals() {
        assert!(m("a{", "a{") && !m("a{", "a"));
        assert!(m("^{x}$", "{x}"));
        assert!(m("a{,3}", "a{,3}"));
        assert!(m("a{01}", "a{01}"));
        assert!(m("^[{]+$", "{{"));
        assert!(m("\\{2}", "{2}"));
        assert!(m("x{2}", "xx") && !m("x{2}", "x"));
    }

    #[test]
    fn errors_read_like_go() {
        assert_eq!(
            compile("a**").unwrap_err(),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert_eq!(
            compile("a+{2}").unwrap_err(),
            "error parsing regexp: invalid nested repetition operator: `+{2}`"
        );
        assert_eq!(
            compile("a{1001}").unwrap_err(),
            "error parsing regexp: invalid repeat count: `{1001}`"
        );
        assert!(compile("a{2,1}").is_err());
        let e = compile("(alive").unwrap_err();
        assert!(
            e.starts_with("error parsing regexp: ") && e.ends_with(": `(alive`"),
            "{e}"
        );
        assert!(compile("[a-").is_err());
        assert!(compile("*a").is_err());
        assert!(compile("a)").is_err());
        assert!(compile("\\").is_err());
    }
}
