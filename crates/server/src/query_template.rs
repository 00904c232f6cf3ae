//! Prepared query templates (Consul's `agent/consul/prepared_query/template.go`): a query
//! whose `Template.Type` is `name_prefix_match` answers for every name its own name is a
//! prefix of, with `${name.full}`, `${name.prefix}`, `${name.suffix}`, `${match(N)}` (the
//! `Template.Regexp` groups matched against the full name) and `${agent.segment}` filled in
//! its service fields. Pure: compiling and rendering need nothing but the query and the name.

use proconsul_types::PreparedQuery;
use regex_lite::Regex;

/// Consul's only template type.
pub(crate) const NAME_PREFIX_MATCH: &str = "name_prefix_match";

/// Is `q` a template?
pub(crate) fn is_template(q: &PreparedQuery) -> bool {
    !q.template.kind.is_empty()
}

/// Consul's `Compile`: a template's type and regexp, with its texts.
pub(crate) fn check(q: &PreparedQuery) -> Result<Option<Regex>, String> {
    if q.template.kind != NAME_PREFIX_MATCH {
        return Err(format!("Bad Template.Type '{}'", q.template.kind));
    }
    if q.template.regexp.is_empty() {
        return Ok(None);
    }
    Regex::new(&q.template.regexp)
        .map(Some)
        .map_err(|e| format!("Bad Regexp: {e}"))
}

/// The query `template` answers for `name` (which its name is a prefix of).
pub(crate) fn render(template: &PreparedQuery, name: &str) -> Result<PreparedQuery, String> {
    let re = check(template)?;
    let matches: Vec<String> = re
        .as_ref()
        .and_then(|re| re.captures(name))
        .map(|c| {
            c.iter()
                .map(|m| m.map(|m| m.as_str().to_string()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let prefix = &template.name;
    let suffix = name.get(prefix.len()..).unwrap_or("");
    let fill = |s: &str| interpolate(s, name, prefix, suffix, &matches);

    let mut q = template.clone();
    let s = &mut q.service;
    s.service = fill(&s.service)?;
    s.near = fill(&s.near)?;
    for v in s
        .tags
        .iter_mut()
        .chain(s.ignore_check_ids.iter_mut())
        .chain(s.failover.datacenters.iter_mut())
        .chain(s.node_meta.values_mut())
        .chain(s.service_meta.values_mut())
    {
        *v = fill(v)?;
    }
    if q.template.remove_empty_tags {
        q.service.tags.retain(|t| !t.is_empty());
    }
    q.dns.ttl = fill(&q.dns.ttl)?;
    Ok(q)
}

/// Fill `${…}` in `s`; an unknown variable is an error, as in Consul's HIL.
fn interpolate(
    s: &str,
    full: &str,
    prefix: &str,
    suffix: &str,
    matches: &[String],
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("failed to parse {s:?}: unterminated ${{"));
        };
        let expr = after[..end].trim();
        let value = match expr {
            "name.full" => full.to_string(),
            "name.prefix" => prefix.to_string(),
            "name.suffix" => suffix.to_string(),
            // No network segments in open-source Consul.
            "agent.segment" => String::new(),
            _ => match expr
                .strip_prefix("match(")
                .and_then(|e| e.strip_suffix(')'))
                .and_then(|n| n.trim().parse::<usize>().ok())
            {
                Some(n) => matches.get(n).cloned().unwrap_or_default(),
                None => return Err(format!("unknown variable accessed: {expr}")),
            },
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_types::{QueryTemplateOptions, ServiceQuery};

    fn template(name: &str, regexp: &str, service: &str, tags: &[&str]) -> PreparedQuery {
        PreparedQuery {
            name: name.into(),
            template: QueryTemplateOptions {
                kind: NAME_PREFIX_MATCH.into(),
                regexp: regexp.into(),
                remove_empty_tags: true,
            },
            service: ServiceQuery {
                service: service.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn names_and_matches_fill_the_service_fields() {
        let t = template(
            "geo-db-",
            "^geo-db-(.*?)-([^-]+?)$",
            "mysql-${match(1)}",
            &[
                "${match(2)}",
                "${name.suffix}",
                "${match(7)}",
                "full-${name.full}",
            ],
        );
        let q = render(&t, "geo-db-customer-master").unwrap();
        assert_eq!(q.service.service, "mysql-customer");
        assert_eq!(
            q.service.tags,
            ["master", "customer-master", "full-geo-db-customer-master"]
        );
        let q = render(&template("", "", "${name.full}", &[]), "anything").unwrap();
        assert_eq!(q.service.service, "anything");
    }

    #[test]
    fn consul_texts_for_bad_templates() {
        let mut t = template("x", "", "web", &[]);
        t.template.kind = "nope".into();
        assert_eq!(check(&t).unwrap_err(), "Bad Template.Type 'nope'");
        let t = template("x", "(", "web", &[]);
        assert!(check(&t).unwrap_err().starts_with("Bad Regexp: "));
        let t = template("x", "", "${bogus}", &[]);
        assert_eq!(
            render(&t, "xy").unwrap_err(),
            "unknown variable accessed: bogus"
        );
    }
}
