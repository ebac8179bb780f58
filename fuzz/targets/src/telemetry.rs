//! A telemetry message of either version as the IoT rule delivers it:
//! accepted or rejected with a reason, never a panic; what it accepts
//! written back as v2 reads back the same.

use canopy::domain::telemetry::Telemetry;
use canopy::format::telemetry::Message;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(message) = Telemetry::parse(text) {
        let _ = message.ts_us();
        let _ = message.extra_with_optional();
    }
    if let Ok(message) = Message::parse(text)
        && !message.samples.is_empty()
    {
        let again = Message::from_json(&Message::to_json(&message.samples)).expect("its own v2 message");
        // The rule's receive time stays in the envelope; times go to the millisecond.
        let strip = |t: &Telemetry| {
            let mut t = t.clone();
            t.received_at_ms = None;
            t.ts = chrono::DateTime::from_timestamp_millis(t.ts.timestamp_millis()).unwrap_or_default();
            t
        };
        assert_eq!(
            again.samples.iter().map(strip).collect::<Vec<_>>(),
            message.samples.iter().map(strip).collect::<Vec<_>>()
        );
    }
}
