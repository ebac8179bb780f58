//! A telemetry message as the IoT rule delivers it: accepted or rejected
//! with a reason, never a panic.
#![no_main]

use canopy::format::telemetry::Telemetry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(message) = Telemetry::parse(text) {
        let _ = message.ts_us();
        let _ = message.extra_with_optional();
    }
});
