//! The API's requests as a client may send them: any path, query string and
//! body through the real router (memory adapters, data in them) answers a
//! JSON error or a result, never a panic and never a 5xx.
//!
//! Input: `<METHOD> <path and query>\n<body>`, the shape of the seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| canopy_fuzz_targets::api::run(data));
