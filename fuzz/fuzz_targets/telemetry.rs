//! A telemetry message of either version as the IoT rule delivers it:
//! accepted or rejected with a reason, never a panic; what it accepts
//! written back as v2 reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| canopy_fuzz_targets::telemetry::run(data));
