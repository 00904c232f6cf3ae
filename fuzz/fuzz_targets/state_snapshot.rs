//! Snapshot files: a node's `snapshots/current.snap` (the envelope, then its state restored
//! into the store, as on boot) and the state bytes themselves (`Store::restore`, also what an
//! InstallSnapshot and a restore through the log feed it; `dump_stats`, the
//! `snapshot inspect` reader). Never a panic; a restored state dumps to bytes that restore to
//! the same state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proconsul_state::Store;

fn restore(state: &[u8]) {
    let store = Store::new();
    if store.restore(state).is_ok() {
        let dump = store.dump();
        let again = Store::new();
        again.restore(&dump).expect("a dump restores");
        assert_eq!(again.dump(), dump, "dump → restore → dump is not stable");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = proconsul_state::dump_stats(data);
    restore(data);
    if let Ok(state) = proconsul_raft::fuzzing::decode_snapshot_file(data) {
        restore(&state);
    }
});
