//! Fuzz target: `backprop::fuzzing::idx` on arbitrary bytes (see src/fuzzing.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    backprop::fuzzing::idx(data);
});
