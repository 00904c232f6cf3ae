//! `?filter=` expressions: parsing and checking never panic, and a filter that compiles
//! evaluates any health row without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proconsul_filter::{schemas, Filter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for schema in [schemas::CHECK_SERVICE_NODE, schemas::SERVICE, schemas::NODE] {
        if let Ok(f) = Filter::new(text, schema) {
            let row = serde_json::json!({
                "Node": {"Node": "n1", "Meta": {"a": "b"}, "TaggedAddresses": {"lan": "x"}},
                "Service": {"Service": "web", "Tags": ["t"], "Port": 80, "Meta": {},
                            "TaggedAddresses": {"lan": {"Address": "a", "Port": 1}}},
                "Checks": [{"Status": "passing", "ServiceTags": []}],
                "ID": "x", "Tags": ["a"], "Port": 1, "Meta": {"k": "v"}
            });
            let _ = f.matches_value(&row);
        }
    }
});
