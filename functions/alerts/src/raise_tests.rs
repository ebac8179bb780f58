//! The alerts service on the memory adapters: every branch, no server.

use canopy::adapters::memory::{MemoryAlertLog, MemoryDevicePublisher, MemoryNotifier};
use canopy::domain::alert::default_rules;
use canopy::ports::alert_log::AlertLog;
use serde_json::json;

use super::*;

type Memory = Raiser<MemoryAlertLog, MemoryNotifier, MemoryDevicePublisher>;

fn service() -> Memory {
    Raiser {
        log: MemoryAlertLog::default(),
        notifier: MemoryNotifier::default(),
        device: MemoryDevicePublisher::default(),
        rules: default_rules(60.0, 10.0, 0.15, Duration::from_secs(600)),
        retention: Duration::from_secs(90 * 86_400),
        groups: Default::default(),
    }
}

/// 2023-11-14T22:00:00Z in ms.
const T0_MS: i64 = 1_699_999_200_000;

/// veh-001's message `seq`, `s` seconds in (by its clock and IoT Core's
/// alike), with its hottest cell at `temp`.
fn hot(seq: u64, s: u32, temp: f64) -> Telemetry {
    stamped(
        seq,
        &format!("2023-11-14T22:{:02}:{:02}Z", s / 60, s % 60),
        T0_MS + i64::from(s) * 1000,
        temp,
    )
}

/// A message with the vehicle's `ts` and the time IoT Core received it.
fn stamped(seq: u64, ts: &str, received_at_ms: i64, temp: f64) -> Telemetry {
    Telemetry::from_json(&json!({"v":1,"vehicle_id":"veh-001","ts":ts,"received_at":received_at_ms,
        "seq":seq,"soc_pct":50,"pack_voltage_v":380,"pack_current_a":10,"cell_voltage_min_v":3.9,"cell_voltage_max_v":3.95,
        "cell_temp_min_c":20,"cell_temp_max_c":temp,"speed_kph":50}))
    .unwrap()
}

#[test]
fn messages_read_well_and_carry_the_json() {
    let alert = evaluate(&service().rules, &hot(9, 0, 63.5)).remove(0);
    let (subject, body) = message(&alert);
    assert_eq!(
        subject,
        "[CRITICAL] veh-001: hottest cell temperature 63.5 °C above 60 °C"
    );
    assert!(
        body.starts_with("Vehicle veh-001 reported a hottest cell temperature of 63.50 °C at 2023-11-14T22:00:00.000Z")
    );
    assert!(body.contains("\"rule\": \"over-temperature\""));
    assert!(body.contains("\"unit\": \"°C\""));
}

#[tokio::test]
async fn one_alert_per_cooldown_and_a_retry_sends_nothing_twice() {
    let s = service();
    assert_eq!(s.raise(&hot(1, 0, 61.0), 0).await.unwrap().sent, 1);
    assert_eq!(
        s.raise(&hot(1, 0, 61.0), 0).await.unwrap().already_sent,
        1,
        "a retry of the same message"
    );
    assert_eq!(s.raise(&hot(2, 60, 62.0), 0).await.unwrap().suppressed, 1);
    assert_eq!(
        s.raise(&hot(3, 600, 62.0), 0).await.unwrap().sent,
        1,
        "the window ended"
    );
    assert_eq!(s.notifier.sent().len(), 2);
    assert_eq!(s.device.published().len(), 2);
    assert_eq!(s.device.published()[0].0, "cmd/canopy/veh-001/alert");
    let logged = s
        .log
        .alerts(hot(1, 0, 61.0).vehicle_id.as_str(), 10, None)
        .await
        .unwrap();
    assert_eq!(logged.iter().map(|a| a.seq).collect::<Vec<_>>(), [3, 1]);
    // 2023-11-14T22:00:00Z plus the 90 days of retention.
    assert_eq!(s.log.expiry(&logged[1]), Some(1_699_999_200 + 90 * 86_400));
}

#[tokio::test]
async fn a_failed_notification_fails_the_message_and_its_retry_sends_once() {
    let s = service();
    s.notifier.faults.fail_next(1);
    let err = s.raise(&hot(1, 0, 61.0), 0).await.unwrap_err();
    assert_eq!(err.alert, "veh-001#1#over-temperature");
    assert!(err.message.contains("injected fault in notify"), "{}", err.message);
    assert!(s.notifier.sent().is_empty());
    // Lambda retries the invocation: the window is the alert's own, so it is sent now.
    let retried = s.raise(&hot(1, 0, 61.0), 0).await.unwrap();
    assert_eq!(retried.sent, 1);
    assert_eq!(s.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_failed_device_publish_is_counted_and_the_alert_still_sent_and_logged() {
    let s = service();
    s.device.faults.fail_next(1);
    let raised = s.raise(&hot(1, 0, 61.0), 0).await.unwrap();
    assert_eq!((raised.sent, raised.vehicle_notify_failures), (1, 1));
    assert_eq!(s.notifier.sent().len(), 1);
    assert!(s.log.recorded(&evaluate(&s.rules, &hot(1, 0, 61.0))[0]).await.unwrap());
}

#[tokio::test]
async fn a_failed_log_read_fails_before_anything_is_sent() {
    let s = service();
    s.log.faults.fail_next_of("claim_cooldown", 1);
    assert!(s.raise(&hot(1, 0, 61.0), 0).await.is_err());
    assert!(s.notifier.sent().is_empty());
}

#[tokio::test]
async fn a_failed_log_write_is_retried_without_a_second_email_only_if_logged() {
    let s = service();
    s.log.faults.fail_next_of("record", 1);
    assert!(s.raise(&hot(1, 0, 61.0), 0).await.is_err());
    assert_eq!(s.notifier.sent().len(), 1);
    // The retry owns the window and finds no log entry: it sends again (at
    // least once beats never), then logs.
    assert_eq!(s.raise(&hot(1, 0, 61.0), 0).await.unwrap().sent, 1);
    assert_eq!(s.raise(&hot(1, 0, 61.0), 0).await.unwrap().already_sent, 1);
}

#[tokio::test]
async fn a_vehicle_clock_far_ahead_holds_back_no_later_alert_and_its_row_expires() {
    let s = service();
    // A faulty clock stamps 2099; IoT Core received it at T0.
    let wrong = stamped(1, "2099-01-01T00:00:00Z", T0_MS, 61.0);
    assert_eq!(s.raise(&wrong, 0).await.unwrap().sent, 1);
    let logged = s.log.alerts(wrong.vehicle_id.as_str(), 10, None).await.unwrap();
    assert_eq!(
        s.log.expiry(&logged[0]),
        Some(T0_MS / 1000 + 90 * 86_400),
        "kept 90 days from when it was received, not from 2099"
    );
    // Ten minutes later by the server's clock the cooldown is over.
    let later = stamped(2, "2023-11-14T22:10:01Z", T0_MS + 601_000, 62.0);
    assert_eq!(s.raise(&later, 0).await.unwrap().sent, 1);
    // And stamping each message ahead does not defeat the cooldown.
    let ahead = stamped(3, "2099-06-01T00:00:00Z", T0_MS + 602_000, 63.0);
    assert_eq!(s.raise(&ahead, 0).await.unwrap().suppressed, 1);
    assert_eq!(s.notifier.sent().len(), 2);
}
