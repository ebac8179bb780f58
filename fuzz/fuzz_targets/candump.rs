//! A candump log: every line parses to a frame or to an error that names it,
//! a frame that parses writes back as a line that parses to the same frame,
//! and the parser's one-pass fast path reads every line as its general one does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| canopy_fuzz_targets::candump::run(data));
