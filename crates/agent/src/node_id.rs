//! The node's stable UUID: given in config, else read from `<data-dir>/node-id`, else generated
//! (and persisted when there is a data dir).

use std::path::Path;

/// Load or create the node ID.
pub fn load_or_create(given: Option<&str>, data_dir: Option<&Path>) -> std::io::Result<String> {
    if let Some(id) = given.filter(|s| !s.is_empty()) {
        return Ok(id.to_lowercase());
    }
    let Some(dir) = data_dir else {
        return Ok(uuid::Uuid::new_v4().to_string());
    };
    let path = dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => Ok(s.trim().to_lowercase()),
        Ok(_) | Err(_) => {
            std::fs::create_dir_all(dir)?;
            let id = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, &id)?;
            Ok(id)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn persists_across_calls() {
        let dir = tempfile::tempdir().unwrap();
        let a = super::load_or_create(None, Some(dir.path())).unwrap();
        let b = super::load_or_create(None, Some(dir.path())).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            super::load_or_create(Some("ABC"), Some(dir.path())).unwrap(),
            "abc"
        );
    }
}
