//! The telemetry and alerts Lambdas against moto: the state table, the
//! archive, the ledger, SNS.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use canopy::adapters::aws::dynamodb::{
    DynamoAlertLog, DynamoDeviceStateTable, DynamoDirectory, DynamoLedger, DynamoStateTable,
};
use canopy::adapters::aws::iot::IotPublisher;
use canopy::adapters::aws::s3::S3Store;
use canopy::adapters::aws::sns::SnsNotifier;
use canopy::adapters::contract;
use canopy::domain::access::{VehicleGroups, View};
use canopy::domain::alert::default_rules;
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kinds;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::directory::{Listing, VehicleDirectory};
use canopy::ports::ledger::Ledger;
use canopy::ports::state::LatestStateStore;
use canopy::ports::store::ObjectStore;
use canopy_alerts::raise::Raiser;
use canopy_alerts::{AlertsHandler, AlertsResponse};
use canopy_local::resources::{
    alerts_table, create_topic, device_state_table, fleet_index_table, ledger_table, state_table,
};
use canopy_telemetry::TelemetryHandler;
use canopy_telemetry::listing::Listings;
use canopy_telemetry::record::{Incoming, RecordOptions, Recorder};
use canopy_tests::fixtures::Rng;
use canopy_tests::local;
use canopy_tests::messages;
use serde_json::{Value, json};

use crate::support::lake::{id_seq_rows, id_seq_rows_under};

const T0: i64 = 1_700_000_000; // seconds

fn message(vehicle: usize, second: i64, temp_max: f64) -> Value {
    messages::with(
        messages::telemetry(&format!("veh-{vehicle:02}"), (T0 + second) as u64, T0 + second),
        json!({"soc_pct": 80.0 - second as f64 / 100.0, "pack_current_a": 10.0 + vehicle as f64,
            "cell_temp_max_c": temp_max, "speed_kph": second as f64 % 120.0, "received_at": (T0 + second) * 1000 + 150}),
    )
}

/// The telemetry function's recorder on moto's tables and a bucket.
pub(crate) type DynamoRecorder =
    Recorder<DynamoStateTable, DynamoDeviceStateTable, DynamoLedger, S3Store, DynamoDirectory>;

/// The ingest service on moto's DynamoDB and S3, with fresh tables.
pub(crate) async fn dynamo_ingest(store: S3Store, options: RecordOptions) -> DynamoRecorder {
    let client = local::dynamodb().await;
    Recorder {
        state: DynamoStateTable::new(client.clone(), &local::table(state_table, "state").await),
        listings: Listings::new(
            DynamoDirectory::new(client.clone(), &local::table(fleet_index_table, "index").await),
            VehicleGroups::default(),
        ),
        devices: DynamoDeviceStateTable::new(client.clone(), &local::table(device_state_table, "devices").await),
        ledger: DynamoLedger::new(client, &local::table(ledger_table, "ledger").await),
        store,
        kinds: Kinds::builtin(),
        options,
    }
}

/// Every archived message's vehicle and sequence number, from objects whose keys all start with `prefix`.
pub(crate) async fn archive_rows<S: ObjectStore>(store: &S, prefix: &str) -> Vec<(String, i64)> {
    let mut rows = Vec::new();
    for (key, _) in store.list("telemetry/").await.unwrap() {
        assert!(key.starts_with(prefix), "{key}");
        rows.extend(id_seq_rows(store, &key, "vehicle_id").await);
    }
    rows
}

/// Fisher-Yates, from `rng`.
fn shuffle(messages: &mut [Value], rng: &mut Rng) {
    for i in (1..messages.len()).rev() {
        messages.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
}

/// The messages as the telemetry queue delivers them, each its own id.
fn queued(messages: &[Value]) -> Vec<Incoming> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| Incoming {
            id: format!("msg-{i:04}"),
            body: m.to_string(),
        })
        .collect()
}

#[tokio::test]
async fn shuffled_batches_with_duplicates_and_invalid_messages_land_exactly_once() {
    let ingest = dynamo_ingest(local::bucket("telemetry").await, RecordOptions::default()).await;
    let store = &ingest.store;

    // 20 vehicles × 60 messages, 150 duplicates, 40 invalid ones, shuffled.
    let mut rng = Rng::new(42);
    let mut messages: Vec<Value> = (1..=20)
        .flat_map(|v| (0..60).map(move |s| message(v, s, 30.0)))
        .collect();
    for _ in 0..150 {
        let copy = messages[(rng.next_u64() % 1200) as usize].clone();
        messages.push(copy);
    }
    let mut invalid = Vec::new();
    for i in 0..40 {
        let mut m = message(1 + i % 20, 1000 + i as i64, 30.0);
        match i % 4 {
            0 => drop(m.as_object_mut().unwrap().remove("soc_pct")),
            1 => m["speed_kph"] = json!("fast"),
            2 => m["v"] = json!(2),
            _ => m["ts"] = json!("yesterday"),
        }
        invalid.push(m);
    }
    messages.extend(invalid);
    shuffle(&mut messages, &mut rng);
    let incoming = queued(&messages);

    let now = chrono::Utc::now().timestamp_millis();
    let (mut rejected, mut failed) = (0, 0);
    for batch in incoming.chunks(100) {
        let outcome = ingest.process(batch, now).await;
        rejected += outcome.rejected;
        failed += outcome.failed.len();
    }
    // SQS redelivers a whole batch (a timeout): it rewrites its own object, nothing more.
    let objects_before = store.list("telemetry/").await.unwrap().len();
    let again = ingest.process(&incoming[300..400], now).await;
    assert!(again.failed.is_empty());
    assert_eq!(store.list("telemetry/").await.unwrap().len(), objects_before);

    assert_eq!(rejected, 40);
    assert_eq!(failed, 0);
    let rows = archive_rows(store, "telemetry/date=2023-11-1").await;
    let unique: BTreeSet<(String, i64)> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), 1200, "every valid message, once");
    assert_eq!(unique.len(), 1200);
    for v in 1..=20 {
        let vehicle = DeviceId::new(format!("veh-{v:02}")).unwrap();
        let latest = ingest.state.get(&vehicle).await.unwrap().unwrap();
        assert_eq!(latest.telemetry.seq, (T0 + 59) as u64, "{vehicle}: the newest message");
        assert_eq!(latest.telemetry.received_at_ms, Some((T0 + 59) * 1000 + 150));
    }
    let page = ingest.state.list(50, None).await.unwrap();
    assert_eq!(page.items.len(), 20);
}

/// A v2 message of `vehicle`'s samples at `seconds` (what the edge sends every 5 s).
fn samples_message(vehicle: usize, seconds: std::ops::Range<i64>) -> Value {
    let samples: Vec<canopy::domain::telemetry::Telemetry> = seconds
        .map(|s| {
            let mut m = message(vehicle, s, 30.0);
            m.as_object_mut().unwrap().remove("received_at");
            canopy::domain::telemetry::Telemetry::from_json(&m).unwrap()
        })
        .collect();
    let last = samples.last().unwrap().ts.timestamp_millis();
    let mut v2 = canopy::format::telemetry::Message::to_json(&samples);
    v2["received_at"] = json!(last + 150);
    v2
}

/// What [`mixed_senders`] sends, and what must come of it.
struct Sent {
    messages: Vec<Value>,
    /// Every valid sample's (vehicle, seq).
    expected: BTreeSet<(String, i64)>,
    /// Each vehicle's newest seq.
    newest: BTreeMap<String, i64>,
}

/// Vehicles 1..=10 send v1 (60 messages), 11..=20 v2 (12 messages of 5
/// samples), 21 v2 messages that run over midnight (T0 + 6400 s); ten v2
/// messages carry a bad sample; 150 messages are sent twice; all shuffled.
fn mixed_senders() -> Sent {
    let mut messages: Vec<Value> = Vec::new();
    let mut expected: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    for v in 1..=21usize {
        let base = if v == 21 { 6_378 } else { 0 };
        for s in base..base + 60 {
            expected.insert((format!("veh-{v:02}"), T0 + s));
        }
        newest.insert(format!("veh-{v:02}"), T0 + base + 59);
        if v <= 10 {
            messages.extend((0..60).map(|s| message(v, s, 30.0)));
        } else {
            messages.extend((0..12).map(|m| samples_message(v, base + m * 5..base + m * 5 + 5)));
        }
    }
    let mut rng = Rng::new(7);
    for i in 0..10 {
        let m = &mut messages[600 + i * 13];
        let v = m["vehicle_id"].as_str().unwrap().to_string();
        let seq = m["samples"][i % 5]["seq"].as_i64().unwrap();
        m["samples"][i % 5]["soc_pct"] = json!(-5);
        expected.remove(&(v, seq));
    }
    for _ in 0..150 {
        let copy = messages[(rng.next_u64() % messages.len() as u64) as usize].clone();
        messages.push(copy);
    }
    shuffle(&mut messages, &mut rng);
    Sent {
        messages,
        expected,
        newest,
    }
}

/// Processes `incoming` in batches of 40, checking after each that no
/// vehicle of `vehicles` has its state moved back in time, whatever order the
/// batches come in; the messages rejected and failed.
async fn process_never_going_back(
    ingest: &DynamoRecorder,
    incoming: &[Incoming],
    vehicles: impl Iterator<Item = &String> + Clone,
    now: i64,
) -> (u64, usize) {
    let (mut rejected, mut failed) = (0, 0);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for batch in incoming.chunks(40) {
        let outcome = ingest.process(batch, now).await;
        rejected += outcome.rejected;
        failed += outcome.failed.len();
        for vehicle in vehicles.clone() {
            let id = DeviceId::new(vehicle.clone()).unwrap();
            if let Some(state) = ingest.state.get(&id).await.unwrap() {
                let before = seen.insert(vehicle.clone(), state.telemetry.seq).unwrap_or(0);
                assert!(
                    state.telemetry.seq >= before,
                    "{vehicle}: {} after {before}",
                    state.telemetry.seq
                );
            }
        }
    }
    (rejected, failed)
}

#[tokio::test]
async fn v1_and_v2_senders_shuffled_and_redelivered_archive_every_sample_once() {
    let ingest = dynamo_ingest(local::bucket("telemetry-v2").await, RecordOptions::default()).await;
    let store = &ingest.store;
    let Sent {
        messages,
        expected,
        newest,
    } = mixed_senders();
    let bad = messages
        .iter()
        .filter(|m| m.to_string().contains(r#""soc_pct":-5"#))
        .count();
    let incoming = queued(&messages);

    let now = (T0 + 7_000) * 1000;
    let (rejected, failed) = process_never_going_back(&ingest, &incoming, newest.keys(), now).await;
    // SQS redelivers whole batches: nothing is archived twice.
    for batch in incoming[200..400].chunks(40) {
        assert!(ingest.process(batch, now).await.failed.is_empty());
    }
    assert!(bad >= 10);
    assert_eq!((rejected, failed), (bad as u64, 0), "the bad samples alone, each copy");
    let rows = archive_rows(store, "telemetry/date=2023-11-1").await;
    let unique: BTreeSet<(String, i64)> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), unique.len(), "no sample twice");
    assert_eq!(unique, expected, "every valid sample");
    // veh-21's samples after midnight are in the new day's partition.
    let next_day = id_seq_rows_under(store, "telemetry/date=2023-11-15/", "vehicle_id").await;
    assert_eq!(next_day.len(), 38);
    assert!(next_day.iter().all(|(v, seq)| v == "veh-21" && *seq >= T0 + 6_400));
    for (vehicle, seq) in &newest {
        let latest = ingest
            .state
            .get(&DeviceId::new(vehicle.clone()).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.telemetry.seq, *seq as u64, "{vehicle}: the newest sample");
    }
}

#[tokio::test]
async fn the_handler_answers_with_the_messages_to_retry_and_older_messages_never_win() {
    let ingest = dynamo_ingest(local::bucket("telemetry-handler").await, RecordOptions::default()).await;
    let state = ingest.state.clone();
    let handler = TelemetryHandler::new(ingest);
    let event: SqsEvent = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/../events/sqs-telemetry.json", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap();
    let response = handler.handle(event).await;
    assert_eq!(
        serde_json::to_value(response).unwrap(),
        json!({"batchItemFailures": []}),
        "the invalid message is rejected, not retried"
    );
    let vehicle = DeviceId::new("sim-001").unwrap();
    assert_eq!(state.get(&vehicle).await.unwrap().unwrap().telemetry.seq, 1_700_000_001);
    // An older message arriving late does not roll the state back.
    let old: SqsEvent = serde_json::from_value(
        json!({"Records": [{"messageId": "late", "body": message(1, -100, 30.0).to_string().replace("veh-01", "sim-001")}]}),
    )
    .unwrap();
    handler.handle(old).await;
    assert_eq!(state.get(&vehicle).await.unwrap().unwrap().telemetry.seq, 1_700_000_001);
}

#[tokio::test]
async fn a_stale_claim_whose_object_never_appeared_is_taken_over() {
    let options = RecordOptions {
        claim_stale_after_ms: 60_000,
        concurrency: 4,
        ..RecordOptions::default()
    };
    let ingest = dynamo_ingest(local::bucket("telemetry-stale").await, options).await;
    let vehicle = DeviceId::new("veh-01").unwrap();
    // A batch claimed the message an hour ago and died before writing its object.
    ingest
        .ledger
        .claim(
            vehicle.as_str(),
            (T0 + 5) as u64,
            "telemetry/date=2023-11-14/batch-dead.parquet",
            0,
        )
        .await
        .unwrap();
    let batch = [Incoming {
        id: "m1".into(),
        body: message(1, 5, 30.0).to_string(),
    }];
    let now = 3_600_000;
    let outcome = ingest.process(&batch, now).await;
    assert_eq!(outcome.archived, 1);
    // A fresh claim of a batch still running sends the message back to the queue instead.
    ingest
        .ledger
        .claim(
            vehicle.as_str(),
            (T0 + 6) as u64,
            "telemetry/date=2023-11-14/batch-running.parquet",
            now,
        )
        .await
        .unwrap();
    let batch = [Incoming {
        id: "m2".into(),
        body: message(1, 6, 30.0).to_string(),
    }];
    let outcome = ingest.process(&batch, now + 1000).await;
    assert_eq!(outcome.failed, ["m2"]);
}

#[tokio::test]
async fn hot_messages_send_one_alert_per_vehicle_and_rule_per_cooldown_window() {
    let table = local::table(alerts_table, "alerts").await;
    let sdk = local::sdk().await;
    let topic = create_topic(&aws_sdk_sns::Client::new(&sdk), &local::unique("alerts"))
        .await
        .unwrap();
    let capture = local::SnsCapture::subscribe(&topic).await;
    let index = local::table(fleet_index_table, "alerts-index").await;
    let alert_log = DynamoAlertLog::new(local::dynamodb().await, &table, &index);
    let handler = AlertsHandler::new(
        Raiser {
            log: alert_log.clone(),
            notifier: SnsNotifier::new(&sdk, &topic),
            device: IotPublisher::new(&sdk),
            rules: default_rules(60.0, 10.0, 0.1, Duration::from_secs(600)),
            retention: Duration::from_secs(90 * 24 * 3600),
            groups: Default::default(),
        },
        canopy::adapters::memory::MemoryDeviceStateTable::default(),
        DynamoDirectory::new(local::dynamodb().await, &index),
    );
    let sent_of = |r: AlertsResponse| match r {
        AlertsResponse::Raised { sent, .. } => sent,
        AlertsResponse::Rejected { rejected } => panic!("rejected: {rejected}"),
    };
    // Vehicle 3 overheats: a hot message every 30 s for 15 minutes, each delivered twice.
    let mut sent = BTreeMap::new();
    for second in (0..900).step_by(30) {
        for _ in 0..2 {
            let r = handler
                .handle(message(3, second, 61.0 + second as f64 / 100.0))
                .await
                .unwrap();
            *sent.entry(second).or_insert(0) += sent_of(r);
        }
    }
    // Vehicle 4 stays cool.
    for second in (0..900).step_by(30) {
        assert_eq!(sent_of(handler.handle(message(4, second, 35.0)).await.unwrap()), 0);
    }
    // One alert at the first hot message, one when the 10-minute window has passed.
    let alerted: Vec<i64> = sent.iter().filter(|(_, n)| **n > 0).map(|(s, _)| *s).collect();
    assert_eq!(alerted, [0, 600]);
    let notifications = capture.received().await;
    assert_eq!(notifications.len(), 2);
    assert!(
        notifications
            .iter()
            .all(|(subject, _)| subject.starts_with("[CRITICAL] veh-03: hottest cell temperature"))
    );
    assert!(notifications[0].1.contains("\"rule\": \"over-temperature\""));
    let log = alert_log.alerts("veh-03", 10, None).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.ts_us).collect::<Vec<_>>(),
        [(T0 + 600) * 1_000_000, T0 * 1_000_000],
        "newest first"
    );
    assert!(alert_log.alerts("veh-04", 10, None).await.unwrap().is_empty());
    // An invalid message is answered, not retried.
    match handler.handle(json!({"v": 1, "vehicle_id": "veh-03"})).await.unwrap() {
        AlertsResponse::Rejected { rejected } => assert!(rejected.starts_with("missing field ts"), "{rejected}"),
        other => panic!("not rejected: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_fleet_lists_the_vehicles_the_state_table_holds_in_their_groups_views_and_again_changes_nothing() {
    let client = local::dynamodb().await;
    let (states, index) = (
        local::table(state_table, "list-fleet-state").await,
        local::table(fleet_index_table, "list-fleet-index").await,
    );
    let state = DynamoStateTable::new(client.clone(), &states);
    // More than a page of the state table's scan.
    for n in 0..130 {
        let id = DeviceId::new(format!("veh-lf{n:03}")).unwrap();
        state.put_if_newer(&contract::telemetry(&id, 1, 1), 1).await.unwrap();
    }
    let run = || {
        let out = std::process::Command::new(local::binary("list-fleet"))
            .args([
                "--endpoint",
                &local::moto().endpoint,
                "--state-table",
                &states,
                "--index-table",
                &index,
            ])
            .args(["--groups", "north=veh-lf00*"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(run(), json!({"vehicles": 130, "listed_or_moved": 130}));
    assert_eq!(
        run(),
        json!({"vehicles": 130, "listed_or_moved": 0}),
        "a second run changes nothing"
    );
    let directory = DynamoDirectory::new(client, &index);
    let listed = |view: View| {
        let directory = &directory;
        async move {
            let every = Listing {
                prefix: "veh-lf",
                filter: None,
                after: None,
                limit: 200,
            };
            directory.list(&view, every).await.unwrap().len()
        }
    };
    assert_eq!(listed(View::All).await, 130);
    assert_eq!(listed(View::Group("north".into())).await, 10, "veh-lf000 to veh-lf009");
}
