//! A Vector ASC or BLF log: every input reads to frames or to an error, and
//! every frame read writes back and reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| canopy_fuzz_targets::can_logs::run(data));
