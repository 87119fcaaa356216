#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| relayguard_fuzz_targets::proxy(data));
