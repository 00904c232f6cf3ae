//! URL escaping as Go's `net/url` does it, so keys such as `a b/c?d` reach the agent intact.

/// Escape a path: keep unreserved characters, `/` and the sub-delimiters Go leaves alone.
pub fn path(s: &str) -> String {
    escape(
        s,
        |b| b.is_ascii_alphanumeric() || b"-_.~/$&+,:;=@".contains(&b),
        false,
    )
}

/// Escape a query component (`url.QueryEscape`): unreserved kept, space as `+`.
pub fn query(s: &str) -> String {
    escape(
        s,
        |b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b),
        true,
    )
}

fn escape(s: &str, keep: impl Fn(u8) -> bool, space_plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else if b == b' ' && space_plus {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_like_go() {
        assert_eq!(super::path("foo/bar baz?x#y%"), "foo/bar%20baz%3Fx%23y%25");
        assert_eq!(super::path("a:b@c=d"), "a:b@c=d");
        assert_eq!(super::query("a b/c&d"), "a+b%2Fc%26d");
    }
}
