//! Any bytes as a presented token: `KeySet::verify` never panics, and accepts nothing it
//! did not sign.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::KeySet;

fuzz_target!(|data: &[u8]| {
    let keys = KeySet::new([[7u8; 32], [9u8; 32]]).expect("keys");
    assert!(keys.verify(data).is_err(), "a token we never issued verified");
});
