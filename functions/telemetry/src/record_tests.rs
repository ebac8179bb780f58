//! The ingest service on the memory adapters: every branch, no server.

use canopy::adapters::contract::telemetry;
use canopy::adapters::memory::{MemoryDeviceStateTable, MemoryDirectory, MemoryLedger, MemoryStateTable, MemoryStore};
use canopy::domain::access::{VehicleGroups, View};
use canopy::domain::device_id::DeviceId;
use canopy::ports::device_state::DeviceStateStore;
use canopy::ports::directory::{Listing, VehicleDirectory};
use canopy::ports::ledger::ExistingClaim;
use canopy::ports::state::LatestStateStore;

use super::*;

const NOW_MS: i64 = 1_800_000_000_000;

type Service = Recorder<MemoryStateTable, MemoryDeviceStateTable, MemoryLedger, MemoryStore, MemoryDirectory>;

/// A recorder on the memory adapters, with the built-in kinds.
pub(crate) fn service() -> Service {
    Recorder {
        state: MemoryStateTable::default(),
        listings: Listings::new(MemoryDirectory::default(), VehicleGroups::default()),
        devices: MemoryDeviceStateTable::default(),
        ledger: MemoryLedger::default(),
        store: MemoryStore::new("lake"),
        kinds: Kinds::builtin(),
        options: RecordOptions::default(),
    }
}

/// The archive objects held.
fn archived(s: &Service) -> Vec<String> {
    s.store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("telemetry/"))
        .collect()
}

/// The archive objects the markers held name, each once.
fn marked(s: &Service) -> Vec<String> {
    let mut objects: Vec<String> = s
        .store
        .keys()
        .iter()
        .filter_map(|k| archive::pending_of(k).map(|(object, _)| object))
        .collect();
    objects.dedup();
    objects
}

fn vehicle(n: u32) -> DeviceId {
    DeviceId::new(format!("veh-{n:03}")).unwrap()
}

/// A queue message carrying `vehicle`'s message `seq`, sent at `seq` seconds.
fn incoming(id: &str, vehicle: &DeviceId, seq: u64) -> Incoming {
    Incoming {
        id: id.to_string(),
        body: telemetry(vehicle, seq, seq as i64).to_json().to_string(),
    }
}

#[test]
fn batch_names_depend_on_the_set_of_messages_only() {
    assert_eq!(batch_name(&["a", "b"]), batch_name(&["b", "a"]));
    assert_ne!(batch_name(&["a", "b"]), batch_name(&["a", "c"]));
    assert_ne!(batch_name(&["ab"]), batch_name(&["a", "b"]));
}

#[tokio::test]
async fn a_batch_is_archived_once_and_the_newest_message_becomes_the_state() {
    let s = service();
    let (v1, v2) = (vehicle(1), vehicle(2));
    let batch = [
        incoming("m1", &v1, 1),
        incoming("m2", &v1, 2),
        incoming("m2-again", &v1, 2),
        incoming("m3", &v2, 7),
        Incoming {
            id: "bad".into(),
            body: r#"{"v":1}"#.into(),
        },
    ];
    let outcome = s.process(&batch, NOW_MS).await;
    assert_eq!(outcome.failed, Vec::<String>::new());
    assert_eq!((outcome.received, outcome.valid, outcome.rejected), (5, 4, 1));
    assert_eq!((outcome.duplicates, outcome.archived), (1, 3));
    assert_eq!(outcome.archive_objects.len(), 1);
    assert_eq!(archived(&s), outcome.archive_objects);
    assert_eq!(
        marked(&s),
        outcome.archive_objects,
        "each object marked for the copy by vehicle"
    );
    assert_eq!(s.state.get(&v1).await.unwrap().unwrap().telemetry.seq, 2);
    assert_eq!(s.state.get(&v2).await.unwrap().unwrap().telemetry.seq, 7);

    // The same batch again (SQS redelivery) rewrites its own object and nothing else.
    let again = s.process(&batch, NOW_MS + 1).await;
    assert_eq!(again.archive_objects, outcome.archive_objects);
    assert_eq!(archived(&s).len(), 1);
    assert_eq!(marked(&s), outcome.archive_objects, "and marks it again");

    // The same message in another batch is a duplicate: its object exists.
    let other = s.process(&[incoming("m9", &v1, 2)], NOW_MS + 2).await;
    assert_eq!((other.duplicates, other.archived), (1, 0));
    assert_eq!(archived(&s).len(), 1);
}

#[tokio::test]
async fn a_claim_still_in_flight_sends_the_message_back_to_the_queue() {
    let s = service();
    let v = vehicle(1);
    // Another batch claimed seq 1 a moment ago and has not written its object yet.
    s.ledger.insert(
        v.as_str(),
        1,
        ExistingClaim {
            archive_key: "telemetry/date=2023-11-14/batch-other.parquet".into(),
            claimed_at_ms: NOW_MS - 1_000,
        },
    );
    let outcome = s.process(&[incoming("m1", &v, 1), incoming("m2", &v, 2)], NOW_MS).await;
    assert_eq!(outcome.failed, ["m1"]);
    assert_eq!(outcome.archived, 1, "the other message is archived");
    assert_eq!(s.state.get(&v).await.unwrap().unwrap().telemetry.seq, 2);
}

#[tokio::test]
async fn a_stale_claim_whose_object_never_appeared_is_taken_over() {
    let s = service();
    let v = vehicle(1);
    s.ledger.insert(
        v.as_str(),
        1,
        ExistingClaim {
            archive_key: "telemetry/date=2023-11-14/batch-died.parquet".into(),
            claimed_at_ms: NOW_MS - RecordOptions::default().claim_stale_after_ms - 1,
        },
    );
    let outcome = s.process(&[incoming("m1", &v, 1)], NOW_MS).await;
    assert_eq!(outcome.failed, Vec::<String>::new());
    assert_eq!(outcome.archived, 1);
}

#[tokio::test]
async fn a_failed_ledger_write_retries_only_that_message() {
    let s = service();
    let v = vehicle(1);
    s.ledger.faults.fail_next_of("claim", 1);
    let outcome = s.process(&[incoming("m1", &v, 1), incoming("m2", &v, 2)], NOW_MS).await;
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.archived, 1);
}

#[tokio::test]
async fn a_failed_archive_write_sends_its_messages_back_and_a_retry_archives_them_once() {
    let s = service();
    let (v1, v2) = (vehicle(1), vehicle(2));
    let batch = [incoming("m1", &v1, 1), incoming("m2", &v2, 1)];
    // The first PUT, the object's marker, fails: the object is not written.
    s.store.faults().fail_next_of("put", 1);
    let outcome = s.process(&batch, NOW_MS).await;
    assert_eq!(outcome.failed, ["m1", "m2"]);
    assert_eq!(outcome.archived, 0);
    assert!(s.store.keys().is_empty());

    // The queue brings the same batch back: its claims are its own, so it archives them.
    let retry = s.process(&batch, NOW_MS + 30_000).await;
    assert_eq!(retry.failed, Vec::<String>::new());
    assert_eq!(retry.archived, 2);
    assert_eq!(archived(&s).len(), 1);
    assert_eq!(marked(&s), archived(&s));
}

/// The vehicles `view` of the directory lists.
async fn listed(s: &Service, view: &View) -> Vec<String> {
    let every = Listing {
        prefix: "",
        filter: None,
        after: None,
        limit: 100,
    };
    let ids = s.listings.directory.list(view, every).await.unwrap();
    ids.iter().map(|v| v.to_string()).collect()
}

#[tokio::test]
async fn a_vehicle_is_listed_and_counted_in_its_views_on_its_first_message_and_not_read_again_in_its_step() {
    let mut s = service();
    s.listings = Listings::new(
        MemoryDirectory::default(),
        VehicleGroups::parse("north=veh-001").unwrap(),
    );
    let (v1, v2) = (vehicle(1), vehicle(2));
    let first = s
        .process(&[incoming("a1", &v1, 1), incoming("b1", &v2, 1)], NOW_MS)
        .await;
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert_eq!(listed(&s, &View::All).await, ["veh-001", "veh-002"]);
    assert_eq!(listed(&s, &View::Group("north".into())).await, ["veh-001"]);
    for seq in 2..10 {
        s.process(&[incoming(&format!("a{seq}"), &v1, seq)], NOW_MS).await;
    }
    assert_eq!(
        s.listings.directory.faults.calls("record"),
        2,
        "one read per vehicle, on its first message"
    );
    let counts = s.listings.directory.counts(&View::All).await.unwrap();
    assert_eq!((counts.total, counts.driving), (2, 2), "{counts:?}");
}

#[tokio::test]
async fn a_failed_listing_sends_the_vehicles_messages_back_and_writes_no_state_until_listed() {
    let s = service();
    let v1 = vehicle(1);
    s.listings.directory.faults.fail_next_of("transact", 1);
    let outcome = s.process(&[incoming("a1", &v1, 1)], NOW_MS).await;
    assert_eq!(outcome.failed, ["a1"]);
    assert!(
        s.state.get(&v1).await.unwrap().is_none(),
        "no state for a vehicle the directory lacks"
    );
    let retried = s.process(&[incoming("a1", &v1, 1)], NOW_MS + 1).await;
    assert!(retried.failed.is_empty(), "{:?}", retried.failed);
    assert_eq!(listed(&s, &View::All).await, ["veh-001"]);
    assert!(s.state.get(&v1).await.unwrap().is_some());
}

#[tokio::test]
async fn a_failed_state_write_sends_back_that_vehicles_messages_only() {
    let s = service();
    let (v1, v2) = (vehicle(1), vehicle(2));
    s.state.faults.fail_next_of("put_if_newer", 1);
    let outcome = s
        .process(
            &[incoming("a1", &v1, 1), incoming("a2", &v1, 2), incoming("b1", &v2, 1)],
            NOW_MS,
        )
        .await;
    assert_eq!(outcome.state_written, 1);
    assert_eq!(outcome.archived, 3, "the archive is written all the same");
    let failed_vehicle = if outcome.failed == ["a1", "a2"] { &v1 } else { &v2 };
    assert!(
        outcome.failed == ["a1", "a2"] || outcome.failed == ["b1"],
        "{:?}",
        outcome.failed
    );
    assert!(s.state.get(failed_vehicle).await.unwrap().is_none());
}

#[tokio::test]
async fn an_older_message_never_replaces_the_state() {
    let s = service();
    let v = vehicle(1);
    s.process(&[incoming("m5", &v, 5)], NOW_MS).await;
    let outcome = s.process(&[incoming("m4", &v, 4)], NOW_MS).await;
    assert_eq!((outcome.state_written, outcome.state_stale), (0, 1));
    assert_eq!(s.state.get(&v).await.unwrap().unwrap().telemetry.seq, 5);
}

#[test]
fn the_rules_receive_time_is_part_of_the_message() {
    let body = r#"{"v":1,"vehicle_id":"v1","ts":"2023-11-14T22:13:20Z","seq":1,"soc_pct":1,"pack_voltage_v":1,
        "pack_current_a":1,"cell_voltage_min_v":1,"cell_voltage_max_v":1,"cell_temp_min_c":1,"cell_temp_max_c":1,
        "speed_kph":1,"received_at":1700000000123}"#;
    let t = Telemetry::parse(body).unwrap();
    assert_eq!(t.received_at_ms, Some(1_700_000_000_123));
    assert!(t.extra.is_empty());
    assert!(Telemetry::parse("{}").unwrap_err().reason.contains("missing field v"));
}

#[tokio::test]
async fn a_vehicle_cannot_speak_for_another() {
    let s = service();
    let (a, b) = (vehicle(1), vehicle(2));
    // veh-001 publishes on its own topic, claiming to be veh-002: the rule adds the topic's id.
    let mut spoof = telemetry(&b, 5, 5).to_json();
    spoof[canopy::format::telemetry::TOPIC_VEHICLE_ID] = serde_json::json!(a.as_str());
    let outcome = s
        .process(
            &[Incoming {
                id: "spoof".into(),
                body: spoof.to_string(),
            }],
            NOW_MS,
        )
        .await;
    assert_eq!((outcome.rejected, outcome.archived, outcome.failed.len()), (1, 0, 0));
    assert!(s.state.get(&b).await.unwrap().is_none(), "veh-002's state untouched");
    assert!(archived(&s).is_empty(), "nothing archived");
    // veh-002's real message with that seq is not taken for a duplicate.
    let real = s.process(&[incoming("real", &b, 5)], NOW_MS).await;
    assert_eq!((real.archived, real.duplicates), (1, 0));
}

#[tokio::test]
async fn a_vehicle_message_that_brings_a_device_rules_fields_is_never_a_device() {
    let s = service();
    let a = vehicle(1);
    // A payload with topic_kind, through the vehicle rule (which adds topic_vehicle_id):
    // were it routed on topic_kind alone, it would write a station's state.
    let mut forged = telemetry(&a, 5, 5).to_json();
    forged["topic_kind"] = serde_json::json!("canopy-station");
    forged["topic_device_id"] = serde_json::json!("st-01");
    forged[canopy::format::telemetry::TOPIC_VEHICLE_ID] = serde_json::json!(a.as_str());
    s.process(
        &[Incoming {
            id: "forged".into(),
            body: forged.to_string(),
        }],
        NOW_MS,
    )
    .await;
    let stations = s.devices.list("canopy-station", 10, None).await.unwrap();
    assert!(stations.items.is_empty(), "{:?}", stations.items);
}

#[tokio::test]
async fn a_clock_far_ahead_cannot_freeze_the_state() {
    let s = service();
    let v = vehicle(1);
    let mut wrong = telemetry(&v, 1, 0);
    wrong.ts = chrono::DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let outcome = s
        .process(
            &[Incoming {
                id: "2099".into(),
                body: wrong.to_json().to_string(),
            }],
            NOW_MS,
        )
        .await;
    assert_eq!(outcome.rejected, 1);
    assert!(s.state.get(&v).await.unwrap().is_none());
    s.process(&[incoming("m2", &v, 2)], NOW_MS).await;
    assert_eq!(
        s.state.get(&v).await.unwrap().unwrap().telemetry.seq,
        2,
        "later messages still land"
    );
}
