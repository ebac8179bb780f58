//! J1939 transport frames: reassembly never panics and completes only
//! messages of the sizes the protocol carries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| canopy_fuzz_targets::j1939::run(data));
