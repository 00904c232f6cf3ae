//! Raft log entries as a server reads them: the payload decoder of every entry version
//! (`Proposal::decode`, version 2 and the legacy version 1), and the redb log record around it
//! (openraft's entry, `proconsul_raft::fuzzing::decode_log_entry`). A decoded proposal is
//! applied to a fresh store twice (indexes 1 and 2, so updates of what the first created run
//! too). Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proconsul_state::{Proposal, Store};

fn apply(p: &Proposal) {
    let store = Store::new();
    let _ = store.apply(1, p);
    let _ = store.apply(2, p);
    let _ = store.dump();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Proposal::decode(data) {
        // What this build writes must read back as the same proposal.
        assert_eq!(Proposal::decode(&p.encode()).ok().as_ref(), Some(&p));
        apply(&p);
    }
    if let Ok(Some(p)) = proconsul_raft::fuzzing::decode_log_entry(data) {
        apply(&p);
    }
});
