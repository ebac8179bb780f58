//! The MQTT topics of a vehicle: where it publishes telemetry and where it
//! hears its alerts.

use crate::domain::device_id::DeviceId;

/// MQTT topic a vehicle publishes telemetry to (AWS's `dt/<app>/<thing>/<kind>` pattern).
pub fn topic(vehicle: &DeviceId) -> String {
    format!("dt/canopy/{vehicle}/bms")
}

/// The Basic Ingest topic of the topic rule `rule` for a vehicle's
/// telemetry: that rule alone gets the message, and sees it on
/// [`topic`] (IoT Core strips the prefix), so `topic(3)` is the vehicle.
pub fn basic_ingest_topic(rule: &str, vehicle: &DeviceId) -> String {
    format!("{BASIC_INGEST_PREFIX}{rule}/{}", topic(vehicle))
}

/// What a Basic Ingest topic starts with, before the rule's name.
pub const BASIC_INGEST_PREFIX: &str = "$aws/rules/";

/// MQTT topic a vehicle receives alerts on.
pub fn alert_topic(vehicle: &DeviceId) -> String {
    format!("cmd/canopy/{vehicle}/alert")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_design() {
        let v = DeviceId::new("sim-001").unwrap();
        assert_eq!(topic(&v), "dt/canopy/sim-001/bms");
        assert_eq!(alert_topic(&v), "cmd/canopy/sim-001/alert");
    }
}
