//! The files the driver keeps: Serf's member snapshot (for rejoining after a restart) and
//! the keyring file (saved after a key query changed the keyring).
//!
//! Their formats are the Serf layer's ([`crate::serf::snapshot`],
//! [`crate::serf::keyring::keyring_file_contents`]); this module only reads, writes and
//! appends.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::serf::keyring;
use crate::serf::membership::Serf;
use crate::serf::snapshot::{self, parse_snapshot, Previous};
use crate::wire::security::Keyring;

/// Write a keyring file: a JSON list of base64 keys, primary first (Serf's format).
pub fn save_keyring(path: &Path, kr: &Keyring) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, keyring::keyring_file_contents(kr))
}

/// Serf's member snapshot file: the log of [`snapshot::Record`]s, compacted at start and
/// appended to as members come and go. The format is [`crate::serf::snapshot`]'s; this only
/// reads, writes and appends.
pub struct SnapshotFile {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl SnapshotFile {
    /// A snapshot at `path` (created on first write).
    pub fn new(path: PathBuf) -> Self {
        SnapshotFile {
            path,
            file: Mutex::new(None),
        }
    }

    /// Replay the file.
    pub fn load(&self) -> std::io::Result<Previous> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Previous::default()),
            Err(e) => return Err(e),
        };
        Ok(parse_snapshot(&text))
    }

    /// Rewrite the file with the current state (compaction) and keep it open for appends.
    pub(super) fn start_fresh(&self, serf: &Serf) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.path.with_extension("tmp");
        let prev = self.load().unwrap_or_default();
        let text = snapshot::compact(&prev, &serf.members(), serf.name(), serf.clocks());
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
        *self.file.lock().unwrap() = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .ok();
    }

    pub(super) fn append(&self, records: &[snapshot::Record]) {
        use std::io::Write;
        if let Some(f) = self.file.lock().unwrap().as_mut() {
            let _ = f.write_all(snapshot::encode(records).as_bytes());
        }
    }
}
