//! A DBC file, loaded strictly and leniently; every message of what loads
//! decodes any payload (the input's last 64 bytes) without panicking, and
//! encodes what it decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| canopy_fuzz_targets::dbc::run(data));
