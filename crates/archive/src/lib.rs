//! The snapshot archive of `GET/PUT /v1/snapshot` and `snapshot save|restore|inspect`:
//! like Consul's, a gzip-compressed tar holding `meta.json` (ID, Size, Index, Term,
//! Version), `state.bin` (the state; proconsul's own encoding) and `SHA256SUMS` over both,
//! which is verified before anything is restored.

use std::io::{Read, Write};

pub mod tar;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest archive accepted (and largest state inside one).
pub const MAX_ARCHIVE: usize = 256 << 20;

/// `meta.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SnapshotMeta {
    #[serde(rename = "ID")]
    pub id: String,
    pub size: u64,
    pub index: u64,
    pub term: u64,
    pub version: u32,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tar_entry(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let size = data.len() as u64;
    let h = tar::header(name, tar::Entry::File { size }, 0o644, 0).expect("short names");
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// Build an archive around a state dump.
pub fn write(index: u64, term: u64, state: &[u8], now_ms: u64) -> Vec<u8> {
    let meta = SnapshotMeta {
        id: format!("{term}-{index}-{now_ms}"),
        size: state.len() as u64,
        index,
        term,
        version: 1,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).expect("meta encodes");
    let sums = format!(
        "{}  meta.json\n{}  state.bin\n",
        hex(&Sha256::digest(&meta_json)),
        hex(&Sha256::digest(state))
    );
    let mut tar = Vec::with_capacity(state.len() + 4096);
    tar_entry(&mut tar, "meta.json", &meta_json);
    tar_entry(&mut tar, "state.bin", state);
    tar_entry(&mut tar, "SHA256SUMS", sums.as_bytes());
    tar.extend(std::iter::repeat_n(0u8, 1024));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("in-memory gzip");
    gz.finish().expect("in-memory gzip")
}

fn octal(field: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    usize::from_str_radix(s, 8).ok()
}

/// Open an archive: its metadata and state, after checking every checksum.
pub fn read(archive: &[u8]) -> Result<(SnapshotMeta, Vec<u8>), String> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(archive)
        .take(MAX_ARCHIVE as u64 + 1)
        .read_to_end(&mut tar)
        .map_err(|e| format!("failed to decompress snapshot: {e}"))?;
    if tar.len() > MAX_ARCHIVE {
        return Err("snapshot is too large".into());
    }
    let (mut meta, mut state, mut sums) = (None, None, None);
    let mut pos = 0;
    while pos + 512 <= tar.len() {
        let h = &tar[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let name_end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&h[..name_end]).into_owned();
        let size = octal(&h[124..136]).ok_or("corrupt tar header")?;
        let start = pos + 512;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= tar.len())
            .ok_or("truncated snapshot")?;
        let data = tar[start..end].to_vec();
        match name.as_str() {
            "meta.json" => meta = Some(data),
            "state.bin" => state = Some(data),
            "SHA256SUMS" => sums = Some(data),
            _ => {}
        }
        pos = end + (512 - size % 512) % 512;
    }
    let (Some(meta_raw), Some(state), Some(sums)) = (meta, state, sums) else {
        return Err("snapshot is missing meta.json, state.bin or SHA256SUMS".into());
    };
    let sums = String::from_utf8_lossy(&sums).into_owned();
    for (file, data) in [("meta.json", &meta_raw), ("state.bin", &state)] {
        let want = sums
            .lines()
            .find_map(|l| l.strip_suffix(&format!("  {file}")))
            .ok_or_else(|| format!("no checksum for {file}"))?;
        if hex(&Sha256::digest(data)) != want {
            return Err(format!("checksum mismatch for {file}"));
        }
    }
    let meta: SnapshotMeta =
        serde_json::from_slice(&meta_raw).map_err(|e| format!("bad meta.json: {e}"))?;
    Ok((meta, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let state = vec![7u8; 10_000];
        let a = write(42, 3, &state, 1_700_000_000_000);
        let (meta, back) = read(&a).unwrap();
        assert_eq!(back, state);
        assert_eq!(
            (meta.index, meta.term, meta.size, meta.version),
            (42, 3, 10_000, 1)
        );
        assert_eq!(meta.id, "3-42-1700000000000");
        // Flip a byte of state.bin inside the tar, re-gzip: the checksum catches it.
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut tar)
            .unwrap();
        let i = tar.windows(4).position(|w| w == [7, 7, 7, 7]).unwrap();
        tar[i] = 8;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let bad = gz.finish().unwrap();
        assert_eq!(read(&bad).unwrap_err(), "checksum mismatch for state.bin");
        assert!(read(b"not gzip").is_err());
        assert!(read(&a[..a.len() / 2]).is_err());
    }
}
