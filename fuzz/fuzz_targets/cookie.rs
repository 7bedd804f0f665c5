//! Any bytes as `Cookie` and `Authorization` headers: `find_token` never panics, and what
//! it returns is a slice of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::extract::{Presented, find_token};

fuzz_target!(|data: &[u8]| {
    // Split the input into header values at 0x00 bytes; odd ones are Authorization.
    let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let cookies = parts.iter().step_by(2).copied();
    let auth = parts.iter().skip(1).step_by(2).copied();
    if let Presented::Token(_, token) = find_token(cookies, auth, b"session", true) {
        let start = token.as_ptr() as usize;
        let base = data.as_ptr() as usize;
        assert!(start >= base && start + token.len() <= base + data.len());
    }
});
