//! Request bodies through the one decoding layer (case-insensitive keys, `null` as absent,
//! numeric durations): never a panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proconsul_types::json::from_slice_ci;
use proconsul_types::{CheckDefinition, RegisterRequest, ServiceDefinition, TxnOp};

fuzz_target!(|data: &[u8]| {
    let _ = from_slice_ci::<ServiceDefinition>(data);
    let _ = from_slice_ci::<CheckDefinition>(data);
    let _ = from_slice_ci::<RegisterRequest>(data);
    let _ = from_slice_ci::<Vec<TxnOp>>(data);
});
