//! The snapshot archive restore (`PUT /v1/snapshot`, `consul snapshot restore`): gzip, tar,
//! `meta.json` and `SHA256SUMS` checked by `proconsul_archive::read`, then the state restored
//! into a store. The first byte chooses the input: the archive itself, or a tar that is
//! gzip'd here first (so mutations reach the tar and checksum layers, past gzip's CRC).
//! Never a panic.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let archive = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(rest).expect("in-memory gzip");
        gz.finish().expect("in-memory gzip")
    };
    if let Ok((_meta, state)) = proconsul_archive::read(&archive) {
        let _ = proconsul_state::Store::new().restore(&state);
    }
});
