//! The local stack's IoT rule engine: any rule text is parsed or refused at a
//! byte inside it, and any message through a parsed rule is selected or not,
//! never a panic.
//!
//! Input: `<rule SQL>\0<topic>\0<payload>`, the shape of the seeds.

pub fn run(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0);
    let Ok(sql) = std::str::from_utf8(parts.next().unwrap_or_default()) else {
        return;
    };
    let topic = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap_or("dt/canopy/veh-001/bms");
    let payload = parts.next().unwrap_or_default();
    match canopy_rules::TopicRule::parse(sql) {
        Ok(rule) => {
            if let Some(message) = rule.apply(topic, payload, 1_700_000_000_000) {
                assert!(message.is_object(), "{sql}: selected {message}");
            }
        }
        Err(e) => assert!(e.at <= sql.len(), "{sql}: error at {} past the end", e.at),
    }
}
