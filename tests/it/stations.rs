//! Battery-swap stations, a declared device kind (`kinds/station.toml`),
//! through the same telemetry function, ledger and archive as vehicles, on
//! moto's DynamoDB and S3.

use std::collections::BTreeSet;

use canopy::ports::device_state::DeviceStateStore;
use canopy::ports::store::ObjectStore;
use canopy_telemetry::record::{Incoming, RecordOptions};
use canopy_tests::fixtures::Rng;
use canopy_tests::local;
use serde_json::{Value, json};

use crate::support::lake::id_seq_rows_under;
use crate::telemetry::dynamo_ingest;

const T0: i64 = 1_700_000_000; // seconds

/// Station `n`'s status at `second`, as the device rule delivers it.
pub(crate) fn station_message(n: usize, second: i64, available: i64) -> Value {
    let ts = chrono::DateTime::from_timestamp(T0 + second, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = format!("st-{n:02}");
    json!({"station_id": id, "ts": ts, "seq": T0 + second, "slots": 4,
        "batteries_available": available, "charging": 4 - available, "faulted": 0, "swaps_today": second / 60,
        "temperature_c": 20.0 + n as f64 / 10.0, "grid_power_kw": 30.5,
        "slot_soc_pct": [100, 96.5, 40, 12], "slot_temp_c": [25, 26, 31.5, 29],
        "topic_kind": "canopy-station", "topic_device_id": id, "received_at": (T0 + second) * 1000 + 150})
}

/// Each archived status's station and seq under `devices/kind=station/`.
async fn station_rows<S: ObjectStore>(store: &S) -> Vec<(String, i64)> {
    id_seq_rows_under(store, "devices/kind=station/", "device_id").await
}

#[tokio::test]
async fn station_batches_shuffled_with_duplicates_and_invalid_messages_land_exactly_once() {
    let ingest = dynamo_ingest(local::bucket("stations").await, RecordOptions::default()).await;
    let store = &ingest.store;

    // 20 stations × 50 statuses, 150 duplicates, 40 invalid ones, shuffled.
    let mut rng = Rng::new(7);
    let mut messages: Vec<Value> = (1..=20)
        .flat_map(|n| (0..50).map(move |s| station_message(n, s * 30, 2)))
        .collect();
    for _ in 0..150 {
        let copy = messages[(rng.next_u64() % 1000) as usize].clone();
        messages.push(copy);
    }
    for i in 0..40 {
        let mut m = station_message(1 + i % 20, 5_000 + i as i64, 2);
        match i % 4 {
            0 => drop(m.as_object_mut().unwrap().remove("slots")),
            1 => m["batteries_available"] = json!(9),   // more than its 4 slots
            2 => m["slot_temp_c"] = json!([25, 26]),    // a value per slot
            _ => m["topic_device_id"] = json!("st-99"), // not the topic's station
        }
        messages.push(m);
    }
    for i in (1..messages.len()).rev() {
        messages.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    let incoming: Vec<Incoming> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Incoming {
            id: format!("st-msg-{i:04}"),
            body: m.to_string(),
        })
        .collect();

    let now = chrono::Utc::now().timestamp_millis();
    let (mut rejected, mut failed, mut duplicates) = (0, 0, 0);
    for batch in incoming.chunks(100) {
        let outcome = ingest.process(batch, now).await;
        rejected += outcome.rejected;
        failed += outcome.failed.len();
        duplicates += outcome.duplicates;
    }
    // SQS redelivers a whole batch: it rewrites its own objects, nothing more.
    let objects_before = store.list("devices/").await.unwrap().len();
    let again = ingest.process(&incoming[300..400], now).await;
    assert!(again.failed.is_empty());
    assert_eq!(store.list("devices/").await.unwrap().len(), objects_before);

    assert_eq!((rejected, failed, duplicates), (40, 0, 150));
    let rows = station_rows(store).await;
    let unique: BTreeSet<(String, i64)> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), 1000, "every valid status, once");
    assert_eq!(unique.len(), 1000);
    assert!(
        store.list("telemetry/").await.unwrap().is_empty(),
        "no station in the vehicle archive"
    );
    for n in 1..=20 {
        let id = format!("st-{n:02}");
        let latest = ingest.devices.get("station", &id).await.unwrap().unwrap();
        assert_eq!(latest.record.seq, (T0 + 49 * 30) as u64, "{id}: the newest status");
        assert_eq!(latest.heard_at_ms(), (T0 + 49 * 30) * 1000 + 150);
    }
    let page = ingest.devices.list("station", 50, None).await.unwrap();
    let ids: Vec<String> = page.items.iter().map(|s| s.record.id.to_string()).collect();
    assert_eq!(ids, (1..=20).map(|n| format!("st-{n:02}")).collect::<Vec<_>>());
}

/// What a station publishes, its `seq`th status a second apart (the rule
/// adds the topic's kind and id and the receive time).
fn published(id: &str, seq: u64, available: i64) -> Value {
    let ts = (chrono::Utc::now() - chrono::Duration::seconds(10 - seq as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"station_id": id, "ts": ts, "seq": seq, "slots": 4,
        "batteries_available": available, "charging": 4 - available, "faulted": 0, "swaps_today": 12,
        "temperature_c": 22.0, "grid_power_kw": 80.0,
        "slot_soc_pct": [100, 97, 60, 5], "slot_temp_c": [25, 26, 31.5, 29]})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_station_over_mqtt_reaches_its_state_archive_and_alerts_through_the_device_rule() {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use canopy::adapters::aws::dynamodb::{self, DynamoDeviceStateTable};
    use canopy::adapters::aws::s3::S3Store;
    use canopy_local::demo::wait_idle;
    use canopy_local::template::topic_arn;
    use canopy_tests::local::SnsCapture;

    let stack = local::own_stack().await;
    let alerts = SnsCapture::subscribe_on(&stack.sdk, &topic_arn("AlertTopic")).await;
    let mut unknown = published("st-c", 1, 2);
    unknown["pressure_bar"] = json!(3.0);
    let sent = [
        ("st-a", published("st-a", 1, 0)),
        ("st-a", published("st-a", 2, 0)),
        ("st-b", published("st-b", 1, 3)),
        ("st-c", unknown),
    ];
    let (client, acked) = crate::ingest::mqtt(&stack);
    for (id, m) in &sent {
        let topic = format!("dt/canopy-station/{id}/status");
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, m.to_string())
            .await
            .unwrap();
    }
    let waited = std::time::Instant::now();
    while acked.load(Ordering::SeqCst) < sent.len() {
        assert!(waited.elapsed() < Duration::from_secs(30), "acknowledged {acked:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_idle(&stack, Duration::from_secs(60)).await.unwrap();
    client.disconnect().await.ok();

    let table = stack.template.function("TelemetryFunction").unwrap().environment["DEVICE_STATE_TABLE"].clone();
    let states = DynamoDeviceStateTable::new(dynamodb::client(&stack.sdk), &table);
    let page = states.list("station", 10, None).await.unwrap();
    let latest: Vec<(String, u64)> = page
        .items
        .iter()
        .map(|s| (s.record.id.to_string(), s.record.seq))
        .collect();
    assert_eq!(
        latest,
        [("st-a".to_string(), 2), ("st-b".to_string(), 1)],
        "st-c was refused"
    );
    assert!(page.items[0].record.received_at_ms.is_some(), "the rule's receive time");
    let rows = station_rows(&S3Store::new(&stack.sdk, &stack.bucket)).await;
    assert_eq!(rows.len(), 3);
    let subjects: Vec<String> = alerts
        .received()
        .await
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    assert_eq!(subjects.len(), 1, "one alert per cooldown: {subjects:?}");
    assert!(subjects[0].contains("st-a"), "{subjects:?}");
}
