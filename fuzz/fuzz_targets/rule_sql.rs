//! The local stack's IoT rule engine: any rule text is parsed or refused at a
//! byte inside it, and any message through a parsed rule is selected or not,
//! never a panic.
//!
//! Input: `<rule SQL>\0<topic>\0<payload>`, the shape of the seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| canopy_fuzz_targets::rule_sql::run(data));
