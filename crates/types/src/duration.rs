//! Go-style durations (`10s`, `1m30s`, `150ms`, `1h`), as Consul's API and config use them.
//!
//! Parsing accepts what Go's `time.ParseDuration` accepts (units ns, us/µs, ms, s, m, h, decimal
//! fractions, a leading sign, and a bare `0`); formatting produces what Go's `Duration.String()`
//! prints, so values round-trip through clients that compare strings.

use std::time::Duration;

/// A duration string that could not be parsed; the message mirrors Go's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for DurationError {}

/// Parse a Go duration. Negative durations are rejected (nothing in the API takes them).
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let nanos = parse_nanos(s)?;
    if nanos < 0 {
        return Err(DurationError(format!("time: negative duration \"{s}\"")));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Parse a Go duration to signed nanoseconds.
pub fn parse_nanos(orig: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError(format!("time: invalid duration \"{orig}\""));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        // number: digits [. digits]
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let num = &s[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        s = &s[num_end..];
        let unit_end = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_end];
        s = &s[unit_end..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(DurationError(format!(
                    "time: missing unit in duration \"{orig}\""
                )))
            }
            other => {
                return Err(DurationError(format!(
                    "time: unknown unit \"{other}\" in duration \"{orig}\""
                )))
            }
        };
        total += value * scale;
        if total > i64::MAX as f64 {
            return Err(invalid());
        }
    }
    let n = total.round() as i64;
    Ok(if neg { -n } else { n })
}

/// Format like Go's `time.Duration.String()`: `0s`, `1.5s`, `1m30s`, `2h0m0s`, `150ms`.
pub fn format(d: Duration) -> String {
    format_nanos(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// Format signed nanoseconds like Go's `time.Duration.String()`.
pub fn format_nanos(n: i64) -> String {
    if n == 0 {
        return "0s".to_string();
    }
    let neg = n < 0;
    let u = n.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if u < 1_000_000_000 {
        // sub-second: pick ns, µs or ms with a fraction
        let (unit, div) = if u < 1_000 {
            ("ns", 1u64)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&fraction(u, div));
        out.push_str(unit);
        return out;
    }
    let hours = u / 3_600_000_000_000;
    let rem = u % 3_600_000_000_000;
    let mins = rem / 60_000_000_000;
    let secs_n = rem % 60_000_000_000;
    if hours > 0 {
        out.push_str(&format!("{hours}h{mins}m"));
    } else if mins > 0 {
        out.push_str(&format!("{mins}m"));
    }
    out.push_str(&fraction(secs_n, 1_000_000_000));
    out.push('s');
    out
}

fn fraction(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("150ms").unwrap(), Duration::from_millis(150));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("2us").unwrap(), Duration::from_micros(2));
        assert!(parse("10").is_err());
        assert!(parse("").is_err());
        assert!(parse("abc").is_err());
        assert!(parse("5x").is_err());
        assert!(parse("-5s").is_err());
        assert_eq!(parse_nanos("-5s").unwrap(), -5_000_000_000);
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(10)), "10s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(7200)), "2h0m0s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_millis(150)), "150ms");
        assert_eq!(format(Duration::from_nanos(15)), "15ns");
        assert_eq!(format(Duration::from_secs(86400)), "24h0m0s");
    }
}
