use serde_json::json;

use super::*;
use crate::schemas::{CHECK_SERVICE_NODE, HEALTH_CHECK, MEMBER, NODE, SERVICE};

fn pass(schema: &'static Schema, expr: &str, item: &Value) -> bool {
    Filter::new(expr, schema)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .matches_value(item)
}

fn error(schema: &'static Schema, expr: &str) -> String {
    Filter::new(expr, schema).unwrap_err().0
}

fn csn() -> Value {
    json!({
        "Node": {"Node": "n1", "Address": "10.0.0.1", "Meta": {"zone": "eu.west1", "rack": "r1"},
                 "TaggedAddresses": {"lan": "10.0.0.1"}},
        "Service": {"ID": "web-1", "Service": "web", "Tags": ["primary", "v2"], "Port": 8080,
                    "Meta": {}, "EnableTagOverride": false,
                    "TaggedAddresses": {"lan": {"Address": "10.0.0.1", "Port": 8080}},
                    "Weights": {"Passing": 1, "Warning": 1}},
        "Checks": [
            {"CheckID": "serfHealth", "Status": "passing", "ServiceTags": []},
            {"CheckID": "service:web-1", "Status": "critical", "ServiceTags": ["primary"]}
        ]
    })
}

#[test]
fn every_operator() {
    let v = csn();
    let t = |e: &str| pass(CHECK_SERVICE_NODE, e, &v);
    assert!(t("Service.Service == web"));
    assert!(t(r#"Service.Service == "web""#));
    assert!(t("Service.Service==`web`"));
    assert!(!t("Service.Service != web"));
    assert!(t(
        r#""prim" in Service.Service or "primary" in Service.Tags"#
    ));
    assert!(t(r#""eb" in Service.Service"#), "substring of a string");
    assert!(!t(r#""prim" in Service.Tags"#), "exact element of a list");
    assert!(t(r#""v3" not in Service.Tags"#));
    assert!(t("Service.Tags contains primary"));
    assert!(t("Service.Tags not contains v3"));
    assert!(t(r#"Node.Address matches `^10\.0\.`"#));
    assert!(
        t(r#"Node.Address matches "^10\\.0\\.""#),
        "Go escapes in double quotes"
    );
    assert!(t(r#"Node.Address not matches "^192""#));
    assert!(t("Service.Meta is empty"));
    assert!(t("Service.Tags is not empty"));
    assert!(t("Checks is not empty"));
    assert!(t("Service.Port == 8080 and Service.Port != 80"));
    assert!(
        t(r#"Service.Port == "0x1f90""#),
        "Go's base prefixes, quoted"
    );
    assert!(t("Service.EnableTagOverride == false"));
    assert!(t("Service.EnableTagOverride == F"));
    assert!(t("Service.Weights.Passing == 1"));
    assert!(t("Service.TaggedAddresses.lan.Port == 8080"));
    assert!(t(r#"Service.TaggedAddresses["lan"].Address == "10.0.0.1""#));
    assert!(t("lan in Node.TaggedAddresses"));
    assert!(t("Node.Meta.zone == eu.west1"), "unquoted dotted value");
    assert!(t(r#"Node.Meta["rack"] == r1"#));
    assert!(t("Node.Meta contains zone"));
}

#[test]
fn lists_of_structs_match_any_element_and_missing_keys_fail_positives() {
    let v = csn();
    let t = |e: &str| pass(CHECK_SERVICE_NODE, e, &v);
    assert!(t("Checks.Status == passing"));
    assert!(t("Checks.Status == critical"));
    assert!(t("Checks.Status != passing"), "some check is not passing");
    assert!(!t("not Checks.Status != passing"), "not every check passes");
    assert!(t("primary in Checks.ServiceTags"));
    assert!(!t("Node.Meta.nokey == x"));
    assert!(t("Node.Meta.nokey != x"));
    assert!(!t("Node.Meta.nokey contains x"));
    assert!(t("Node.Meta.nokey not contains x"));
    // An absent nested struct (Go's nil pointer) reads as zero values.
    assert!(t("Service.Connect.Native == false"));
    assert!(t(r#"Service.Proxy.DestinationServiceName == """#));
    assert!(t("Service.Proxy.Upstreams is empty"));
    let empty = json!({"Checks": []});
    assert!(!pass(
        CHECK_SERVICE_NODE,
        "Checks.Status == passing",
        &empty
    ));
    assert!(!pass(
        CHECK_SERVICE_NODE,
        "Checks.Status != passing",
        &empty
    ));
}

#[test]
fn precedence_and_grouping() {
    let v = csn();
    let t = |e: &str| pass(CHECK_SERVICE_NODE, e, &v);
    // `and` binds tighter than `or`; `not` tighter than `and`.
    assert!(t(
        "Service.Port == 1 and Service.Port == 2 or Service.Service == web"
    ));
    assert!(!t(
        "Service.Port == 1 and (Service.Port == 2 or Service.Service == web)"
    ));
    assert!(t("not Service.Port == 1 and Service.Service == web"));
    assert!(t("not not Service.Service == web"));
    assert!(t(" ( Service.Service == web ) "));
    assert!(t("Service.Service == web or\n Service.Port == 1"));
}

#[test]
fn selectors_and_operators_are_checked_against_the_type() {
    assert_eq!(
        error(HEALTH_CHECK, "Foo == 1"),
        r#"Selector "Foo" is not valid"#
    );
    assert_eq!(
        error(SERVICE, "Weights.Foo == 1"),
        r#"Selector "Weights.Foo" is not valid"#
    );
    assert_eq!(
        error(HEALTH_CHECK, "status == passing"),
        r#"Selector "status" is not valid"#
    );
    assert_eq!(
        error(HEALTH_CHECK, "ServiceTags == x"),
        r#"Invalid match operator "Equal" for selector "ServiceTags""#
    );
    assert_eq!(
        error(HEALTH_CHECK, "Status is empty"),
        r#"Invalid match operator "Is Empty" for selector "Status""#
    );
    assert_eq!(
        error(SERVICE, "Weights contains x"),
        r#"Invalid match operator "In" for selector "Weights""#
    );
    assert_eq!(
        error(SERVICE, "EnableTagOverride == yes"),
        r#"Failed to coerce value "yes" for selector "EnableTagOverride": strconv.ParseBool: parsing "yes": invalid syntax"#
    );
    assert_eq!(
        error(SERVICE, "Port == web"),
        r#"Failed to coerce value "web" for selector "Port": strconv.ParseInt: parsing "web": invalid syntax"#
    );
    assert!(error(NODE, r#"Node matches "(""#).starts_with("Failed to compile regular expression"));
    assert!(Filter::new("Tags.role == consul", MEMBER).is_ok());
}

#[test]
fn parse_errors_read_like_go_bexpr() {
    let e = |x: &str| error(HEALTH_CHECK, x);
    assert_eq!(
        e(r#"Name == "12x"#),
        r#"1:13 (12): rule "string": Unterminated string literal"#
    );
    assert_eq!(
        e("Name == 3x"),
        r#"1:10 (9): rule "number": Invalid number literal"#
    );
    assert_eq!(
        e("Address == 10.10.10.10"),
        r#"1:17 (16): rule "number": Invalid number literal"#
    );
    assert_eq!(
        e("Name[3] == abc"),
        r#"1:6 (5): rule "index": Invalid index"#
    );
    assert_eq!(
        e(r#"x in Name["abc""#),
        r#"1:16 (15): rule "index": Unclosed index expression"#
    );
    assert_eq!(e("x in 32"), r#"1:6 (5): rule "match": Invalid selector"#);
    assert_eq!(
        e("(Name == 4"),
        r#"1:11 (10): rule "grouping": Unmatched parentheses"#
    );
    assert_eq!(
        e("32 == 32"),
        r#"1:4 (3): no match found, expected: "in", "not" or [ \t\r\n]"#
    );
    assert_eq!(
        e("foo"),
        r#"1:4 (3): no match found, expected: "!=", ".", "==", "[", [ \t\r\n] or [a-zA-Z0-9_]"#
    );
    assert_eq!(
        e("x in Name abc"),
        r#"1:11 (10): no match found, expected: "and", "or", [ \t\r\n] or EOF"#
    );
    assert!(
        e("Name == a AND Name == b").contains("no match found"),
        "keywords are lower-case"
    );
    assert_eq!(
        Filter::new("Status == passing", HEALTH_CHECK)
            .unwrap_err_or_ok()
            .to_string(),
        "ok"
    );
    assert_eq!(
        FilterError("x".into()).to_string(),
        "Failed to create boolean expression evaluator: x"
    );
}

trait OkOrErr {
    fn unwrap_err_or_ok(self) -> String;
}
impl OkOrErr for Result<Filter, FilterError> {
    fn unwrap_err_or_ok(self) -> String {
        match self {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }
}

#[test]
fn strings_unquote_like_go() {
    let v = json!({"Name": "a\"b\tc", "Notes": "x\\y"});
    assert!(pass(HEALTH_CHECK, r#"Name == `a"b	c`"#, &v));
    assert!(pass(HEALTH_CHECK, r#"Name matches "b\tc$""#, &v));
    assert!(pass(HEALTH_CHECK, r#"Notes == "x\\y""#, &v));
    assert!(pass(HEALTH_CHECK, r#"Notes == "\x78\\y""#, &v));
    // `\.` is no Go escape: the string does not parse, as in Consul.
    assert!(error(HEALTH_CHECK, r#"Name matches "a\.b""#).ends_with("invalid syntax"));
}

#[test]
fn filters_lists_and_map_values() {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Check {
        status: String,
    }
    let f = Filter::new("Status == passing", HEALTH_CHECK).unwrap();
    let mut v = vec![
        Check {
            status: "passing".into(),
        },
        Check {
            status: "critical".into(),
        },
    ];
    f.retain(&mut v);
    assert_eq!(v.len(), 1);
    let mut m = std::collections::BTreeMap::new();
    m.insert(
        "a",
        Check {
            status: "critical".into(),
        },
    );
    m.insert(
        "b",
        Check {
            status: "passing".into(),
        },
    );
    f.retain_values(&mut m);
    assert_eq!(m.keys().collect::<Vec<_>>(), vec![&"b"]);
}
