//! What every adapter of a port must do, as suites that panic on the first
//! broken promise. The memory adapters run them in this crate's unit tests;
//! the AWS adapters run the same suites against moto in `tests/it/contracts.rs`.
//! That is what keeps the fakes honest: a service tested on a memory adapter
//! is tested on the behaviour its AWS adapter has.
//!
//! Each suite takes a `tag` that it puts in every key and vehicle id it
//! writes, so suites can share a bucket or a table with other tests.

use bytes::Bytes;
use chrono::{TimeZone, Utc};

use crate::domain::access::View;
use crate::domain::alert::{Alert, Comparison, Quantity, Severity};
use crate::domain::device::{DeviceRecord, FieldValue};
use crate::domain::device_id::DeviceId;
use crate::domain::device_key::DeviceKey;
use crate::domain::measure::Measure;
use crate::domain::standing::{Filter, Order, Readings, Standing, Status, heard_bucket};
use crate::domain::telemetry::Telemetry;
use crate::ports::alert_log::{AlertLog, FeedPosition};
use crate::ports::device_state::DeviceStateStore;
use crate::ports::directory::{Listing, Ranking, VehicleDirectory};
use crate::ports::keys::KeyStore;
use crate::ports::ledger::{Claim, ExistingClaim, Ledger};
use crate::ports::live::{Connection, ConnectionStore, Subscription};
use crate::ports::messaging::{DevicePublisher, Notifier};
use crate::ports::queue::MessageQueue;
use crate::ports::quota::QuotaCounter;
use crate::ports::state::LatestStateStore;
use crate::ports::store::{ObjectStore, UploadSink};

fn vehicle(tag: &str, n: u32) -> DeviceId {
    DeviceId::new(format!("{tag}-{n:03}")).expect("contract suites take tags that make valid vehicle ids")
}

/// A valid message of `vehicle` at `ts_s` seconds past 2023-11-14T22:13:20Z.
pub fn telemetry(vehicle: &DeviceId, seq: u64, ts_s: i64) -> Telemetry {
    Telemetry {
        vehicle_id: vehicle.clone(),
        ts: Utc
            .timestamp_opt(1_700_000_000 + ts_s, 0)
            .single()
            .expect("a valid time"),
        seq,
        soc_pct: 80.0 - seq as f64 * 0.01,
        pack_voltage_v: 380.5,
        pack_current_a: -12.25,
        cell_voltage_min_v: 3.9,
        cell_voltage_max_v: 3.95,
        cell_temp_min_c: 24.5,
        cell_temp_max_c: 31.0,
        speed_kph: 54.2,
        cell_voltage_spread_v: Some(0.03),
        received_at_ms: Some((1_700_000_000 + ts_s) * 1000 + 40),
        extra: [("firmware".to_string(), serde_json::json!("1.2.3"))].into(),
    }
}

/// An over-temperature alert of `vehicle` raised by message `seq` at `ts_s`.
pub fn alert(vehicle: &DeviceId, seq: u64, ts_s: i64) -> Alert {
    Alert {
        vehicle_id: vehicle.clone(),
        kind: None,
        rule: "over-temperature".into(),
        severity: Severity::Critical,
        measure: Quantity::Measure(Measure::CellTempMaxC),
        value: 61.5,
        comparison: Comparison::Above,
        threshold: 60.0,
        ts: format!("t+{ts_s}"),
        ts_us: (1_700_000_000 + ts_s) * 1_000_000,
        seq,
    }
}

/// Whole objects, listing by prefix, ranges, deletes, multipart uploads.
pub async fn object_store<S: ObjectStore>(store: &S, tag: &str) {
    let key = |name: &str| format!("contract/{tag}/{name}");
    let missing = store.get(&key("missing")).await.expect_err("a missing object");
    assert!(missing.is_not_found(), "a missing object is NotFound: {missing}");
    assert!(store.head(&key("missing")).await.is_err());
    assert_eq!(store.exists(&key("missing")).await.expect("exists"), None);

    store
        .put(&key("a"), Bytes::from_static(b"0123456789"), None)
        .await
        .expect("put");
    store
        .put(&key("ab"), Bytes::from_static(b"x"), None)
        .await
        .expect("put");
    let object = store.get(&key("a")).await.expect("get");
    assert_eq!(object.body, Bytes::from_static(b"0123456789"));
    let info = store.head(&key("a")).await.expect("head");
    assert_eq!(info.size, 10);
    assert_eq!(info.etag, object.etag);
    assert_eq!(
        store.get_range(&key("a"), 2..5).await.expect("range"),
        Bytes::from_static(b"234")
    );
    let exists = store.exists(&key("a")).await.expect("exists");
    assert_eq!(
        exists.map(|i| i.size),
        Some(10),
        "exists finds the key, not its longer neighbour"
    );
    let listed: Vec<String> = store
        .list(&key("a"))
        .await
        .expect("list")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(listed, [key("a"), key("ab")]);
    for name in ["d/x=1/f", "d/x=1/g", "d/x=2/y/f", "d/top"] {
        store.put(&key(name), Bytes::new(), None).await.expect("put");
    }
    assert_eq!(
        store.list_dirs(&key("d/")).await.expect("list dirs"),
        [key("d/x=1/"), key("d/x=2/")],
        "one entry per folder right under the prefix, no plain objects"
    );

    store
        .put(&key("a"), Bytes::from_static(b"new"), None)
        .await
        .expect("put");
    let replaced = store.get(&key("a")).await.expect("get");
    assert_eq!(replaced.body, Bytes::from_static(b"new"));
    assert_ne!(replaced.etag, object.etag, "a new body has a new ETag");

    store.delete(&key("ab")).await.expect("delete");
    assert!(store.get(&key("ab")).await.expect_err("deleted").is_not_found());

    // Multipart: two full parts and a short one, then an aborted upload.
    let part = crate::ports::store::MIN_PART;
    let mut sink = UploadSink::new(store, &key("big"), part);
    let mut data: Vec<u8> = (0..part * 2 + 100).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    sink.write(&mut data).await.expect("write parts");
    assert_eq!(sink.finish().await.expect("complete"), expected.len() as u64);
    assert_eq!(store.get(&key("big")).await.expect("get").body, Bytes::from(expected));
    let id = store.create_multipart(&key("never")).await.expect("create");
    store
        .upload_part(&key("never"), &id, 1, Bytes::from(vec![1u8; part]))
        .await
        .expect("part");
    store.abort_multipart(&key("never"), &id).await.expect("abort");
    assert!(
        store.get(&key("never")).await.is_err(),
        "an aborted upload leaves no object"
    );
}

/// Only newer telemetry replaces a vehicle's state; listing pages through every vehicle once.
pub async fn latest_state<S: LatestStateStore>(states: &S, tag: &str) {
    let v1 = vehicle(tag, 1);
    assert_eq!(states.get(&v1).await.expect("get"), None);
    let first = telemetry(&v1, 10, 100);
    assert!(states.put_if_newer(&first, 5_000).await.expect("put"));
    assert!(
        !states.put_if_newer(&telemetry(&v1, 9, 90), 6_000).await.expect("put"),
        "an older message never wins"
    );
    assert!(
        !states.put_if_newer(&telemetry(&v1, 11, 100), 6_000).await.expect("put"),
        "nor one of the same time"
    );
    let stored = states.get(&v1).await.expect("get").expect("a state");
    assert_eq!(stored.telemetry, first, "the message comes back whole, extras included");
    assert_eq!(stored.updated_at_ms, 5_000);
    assert!(states.put_if_newer(&telemetry(&v1, 12, 101), 7_000).await.expect("put"));
    assert_eq!(states.get(&v1).await.expect("get").expect("a state").telemetry.seq, 12);

    for n in 2..=5 {
        states
            .put_if_newer(&telemetry(&vehicle(tag, n), 1, 1), 1)
            .await
            .expect("put");
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let page = states.list(2, after.as_deref()).await.expect("list");
        seen.extend(page.items.into_iter().map(|s| s.telemetry.vehicle_id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut ours: Vec<String> = seen.into_iter().filter(|v| v.starts_with(tag)).collect();
    ours.sort();
    let expected: Vec<String> = (1..=5).map(|n| vehicle(tag, n).to_string()).collect();
    assert_eq!(ours, expected, "every vehicle listed exactly once");

    let asked = [vehicle(tag, 3), vehicle(tag, 99), vehicle(tag, 1)];
    let many: Vec<String> = (states.get_many(&asked).await.expect("get many").iter())
        .map(|s| s.telemetry.vehicle_id.to_string())
        .collect();
    assert_eq!(
        many,
        [vehicle(tag, 3).to_string(), vehicle(tag, 1).to_string()],
        "in the order asked, those that have a state"
    );
    let hundreds: Vec<DeviceId> = (1..=250).map(|n| vehicle(tag, n % 5 + 1)).collect();
    assert_eq!(
        states.get_many(&hundreds).await.expect("get many").len(),
        250,
        "past a batch's hundred keys, repeats included"
    );
}

/// Entries by view, in id order, by prefix and cursor; re-entering is a read;
/// a vehicle that leaves a view leaves its listing.
pub async fn vehicle_directory<D: VehicleDirectory>(directory: &D, tag: &str) {
    let group = View::Group(format!("{tag}-g"));
    let ids: Vec<DeviceId> = [1, 2, 3, 10, 11, 12, 20].into_iter().map(|n| vehicle(tag, n)).collect();
    for id in &ids {
        let views = if id.as_str().ends_with('1') {
            vec![View::All, group.clone()]
        } else {
            vec![View::All]
        };
        let standing = Standing::new(
            if views.len() > 1 {
                Status::Driving
            } else {
                Status::Parked
            },
            1_000,
        );
        assert!(
            directory.enter(id, &views, standing).await.expect("enter"),
            "{id}: first entered"
        );
        assert!(
            !directory.enter(id, &views, standing).await.expect("enter"),
            "{id}: the same views and standing again change nothing"
        );
    }
    let all = |prefix, after, limit| async move {
        let listing = Listing {
            prefix,
            filter: None,
            after,
            limit,
        };
        (directory.list(&View::All, listing).await.expect("list").iter())
            .map(|v| v.to_string())
            .collect::<Vec<String>>()
    };
    let name = |n: u32| vehicle(tag, n).to_string();
    assert_eq!(
        all(tag, None, 3).await,
        [name(1), name(2), name(3)],
        "id order, from the start"
    );
    let after_3 = name(3);
    assert_eq!(
        all(tag, Some(&after_3), 3).await,
        [name(10), name(11), name(12)],
        "after the cursor"
    );
    let after_12 = name(12);
    assert_eq!(all(tag, Some(&after_12), 3).await, [name(20)], "the last page");
    let prefix = format!("{tag}-01");
    assert_eq!(all(&prefix, None, 10).await, [name(10), name(11), name(12)], "a prefix");
    let after_10 = name(10);
    assert_eq!(
        all(&prefix, Some(&after_10), 10).await,
        [name(11), name(12)],
        "a prefix after a cursor"
    );
    let after_all = format!("{tag}-999");
    assert!(all(tag, Some(&after_all), 10).await.is_empty(), "past the end");

    let group = &group;
    let in_group = |listing| async move {
        (directory.list(group, listing).await.expect("list").iter())
            .map(|v| v.to_string())
            .collect::<Vec<String>>()
    };
    let every = Listing {
        prefix: tag,
        filter: None,
        after: None,
        limit: 10,
    };
    assert_eq!(
        in_group(every).await,
        [name(1), name(11)],
        "a group lists its own vehicles only"
    );
    standings(directory, tag, group).await;
    let back = Standing::new(Status::Driving, 1_002);
    assert!(
        directory
            .enter(&vehicle(tag, 11), &[View::All], back)
            .await
            .expect("enter")
    );
    assert_eq!(
        in_group(every).await,
        [name(1)],
        "a vehicle that left the group leaves its listing"
    );
    let counts = directory.counts(group).await.expect("counts");
    assert_eq!((counts.total, counts.charging), (1, 1), "and its counts: {counts:?}");
    assert_eq!(
        all(&prefix, None, 10).await,
        [name(10), name(11), name(12)],
        "and stays in the fleet's"
    );
}

/// The sorted listings: a group's vehicles by state of charge, hottest cell
/// and last heard, either way, paged by (rank, id); readings move a vehicle
/// only with its five-minute step.
pub async fn vehicle_rankings<D: VehicleDirectory>(directory: &D, tag: &str) {
    let group = View::Group(format!("{tag}-ranked"));
    let in_group = std::slice::from_ref(&group);
    let at = |heard: i64, soc: Option<i64>, hottest: i64| Standing {
        readings: Readings {
            soc_pct: soc,
            cell_temp_max_c: Some(hottest),
        },
        ..Standing::new(Status::Driving, heard)
    };
    // Vehicles of their own: the directory suite's vehicles share the table.
    let fleet = [
        (31, at(1_000, Some(50), 30)),
        (32, at(1_001, Some(20), 45)),
        (33, at(1_002, Some(80), -5)),
        (34, at(1_003, Some(20), 31)),
        (35, at(1_004, None, 40)),
    ];
    for (n, standing) in fleet {
        assert!(
            directory
                .enter(&vehicle(tag, n), in_group, standing)
                .await
                .expect("enter")
        );
    }
    let group = &group;
    let ranked = |order, descending, after: Option<(i64, String)>, limit| async move {
        let ranking = Ranking {
            order,
            descending,
            after: after.as_ref().map(|(rank, id)| (*rank, id.as_str())),
            limit,
        };
        (directory.ranked(group, ranking).await.expect("ranked").into_iter())
            .map(|(v, rank)| (v.to_string(), rank))
            .collect::<Vec<(String, i64)>>()
    };
    let name = |n: u32| vehicle(tag, n).to_string();
    assert_eq!(
        ranked(Order::SocPct, false, None, 10).await,
        [(name(32), 20), (name(34), 20), (name(31), 50), (name(33), 80)],
        "lowest first, ties by id; a vehicle without the reading is not ranked"
    );
    assert_eq!(
        ranked(Order::SocPct, true, None, 2).await,
        [(name(33), 80), (name(31), 50)],
        "highest first"
    );
    assert_eq!(
        ranked(Order::SocPct, true, Some((50, name(31))), 2).await,
        [(name(34), 20), (name(32), 20)],
        "after the cursor, ties by id reversed"
    );
    assert_eq!(
        ranked(Order::CellTempMaxC, false, None, 2).await,
        [(name(33), -5), (name(31), 30)],
        "below zero first"
    );
    assert_eq!(
        ranked(Order::LastHeard, true, None, 1).await,
        [(name(35), 1_002)],
        "the most recently heard first (in spans of three steps, then by id)"
    );
    let later_reading = at(1_000, Some(10), 30);
    assert!(
        !directory
            .enter(&vehicle(tag, 31), in_group, later_reading)
            .await
            .expect("enter"),
        "a reading in the same step moves nothing"
    );
    assert!(
        directory
            .enter(&vehicle(tag, 31), in_group, at(1_005, Some(10), 30))
            .await
            .expect("enter")
    );
    assert_eq!(
        ranked(Order::SocPct, false, None, 1).await,
        [(name(31), 10)],
        "the next step takes the reading"
    );
    assert_eq!(ranked(Order::LastHeard, true, None, 1).await, [(name(31), 1_005)]);
}

/// Counts by status, stale messages, silence and alerting: what a group of
/// the directory suite (vehicles 1 and 11 driving, heard in step 1,000) goes through.
async fn standings<D: VehicleDirectory>(directory: &D, tag: &str, group: &View) {
    let counts = |expected: [i64; 4], why: &'static str| async move {
        let counts = directory.counts(group).await.expect("counts");
        let got = [counts.driving, counts.charging, counts.parked, counts.silent];
        assert_eq!((got, counts.total), (expected, expected.iter().sum()), "{why}");
        counts.alerting
    };
    counts([2, 0, 0, 0], "both driving").await;
    let views = [View::All, group.clone()];
    let (v1, v11) = (vehicle(tag, 1), vehicle(tag, 11));
    let charging = Standing::new(Status::Charging, 1_001);
    assert!(directory.enter(&v1, &views, charging).await.expect("enter"));
    counts([1, 1, 0, 0], "one moved to charging").await;
    let with = |filter: Filter| async move {
        let listing = Listing {
            prefix: tag,
            filter: Some(filter),
            after: None,
            limit: 10,
        };
        (directory.list(group, listing).await.expect("list").iter())
            .map(|v| v.to_string())
            .collect::<Vec<String>>()
    };
    assert_eq!(
        with(Status::Charging.into()).await,
        [v1.to_string()],
        "the group's vehicles of one status"
    );
    assert_eq!(with(Status::Driving.into()).await, [v11.to_string()]);
    let stale = Standing::new(Status::Driving, 999);
    assert!(
        !directory.enter(&v1, &views, stale).await.expect("enter"),
        "a stale message changes nothing"
    );
    counts([1, 1, 0, 0], "a stale message changes nothing").await;

    let ours = |found: Vec<(DeviceId, i64)>| -> Vec<(String, i64)> {
        (found.into_iter())
            .filter(|(v, _)| v.as_str().starts_with(tag))
            .map(|(v, step)| (v.to_string(), step))
            .collect()
    };
    let unheard = ours(directory.unheard(1_001, 100).await.expect("unheard"));
    let expected: Vec<(String, i64)> = [2, 3, 10, 11, 12, 20]
        .iter()
        .map(|&n| (vehicle(tag, n).to_string(), 1_000))
        .collect();
    assert_eq!(unheard, expected, "heard before step 1,001, by step then id");
    assert_eq!(
        ours(directory.unheard(1_000, 100).await.expect("unheard")),
        [],
        "none before step 1,000"
    );
    assert!(directory.silence(&v11, 1_000).await.expect("silence"));
    assert!(
        !directory.silence(&v11, 1_000).await.expect("silence"),
        "silent already"
    );
    assert!(!directory.silence(&v1, 1_000).await.expect("silence"), "heard since");
    counts([0, 1, 0, 1], "one silent").await;
    assert_eq!(with(Status::Silent.into()).await, [v11.to_string()], "the silent ones");
    assert!(with(Status::Driving.into()).await.is_empty());
    let unheard = ours(directory.unheard(1_001, 100).await.expect("unheard"));
    assert!(
        unheard.iter().all(|(v, _)| *v != v11.to_string()),
        "a silent vehicle leaves the heard index: {unheard:?}"
    );
    let late = Standing::new(Status::Driving, 1_000);
    assert!(
        !directory.enter(&v11, &views, late).await.expect("enter"),
        "a late message of its last step keeps it silent"
    );

    let tripped = Standing::new(Status::Charging, 1_002);
    assert!(directory.alerted(&v1, &views, tripped).await.expect("alerted"));
    assert!(
        !directory.alerted(&v1, &views, tripped).await.expect("alerted"),
        "a second trip in the same step changes nothing"
    );
    assert_eq!(counts([0, 1, 0, 1], "alerting beside its status").await, 1);
    assert_eq!(with(Filter::Alerting).await, [v1.to_string()], "the alerting ones");
    assert_eq!(
        ours(directory.calming(1_003, 100).await.expect("calming")),
        [(v1.to_string(), 1_002)],
        "alerting since step 1,002"
    );
    assert!(ours(directory.calming(1_002, 100).await.expect("calming")).is_empty());
    assert!(
        !directory.calm(&v1, 1_001).await.expect("calm"),
        "not the step it tripped in"
    );
    assert!(directory.calm(&v1, 1_002).await.expect("calm"));
    assert_eq!(counts([0, 1, 0, 1], "calm again").await, 0);
    assert!(with(Filter::Alerting).await.is_empty());
    assert!(ours(directory.calming(1_003, 100).await.expect("calming")).is_empty());
}

/// A valid station status of `id` at `ts_s` seconds past 2023-11-14T22:13:20Z.
pub fn station_status(id: &str, seq: u64, ts_s: i64) -> DeviceRecord {
    DeviceRecord {
        kind: "station".into(),
        id: DeviceId::new(id).expect("contract suites take tags that make valid ids"),
        ts: Utc
            .timestamp_opt(1_700_000_000 + ts_s, 0)
            .single()
            .expect("a valid time"),
        seq,
        values: [
            ("slots".to_string(), FieldValue::Integer(2)),
            ("batteries_available".to_string(), FieldValue::Integer(1)),
            ("slot_temp_c".to_string(), FieldValue::Numbers(vec![25.5, 31.0])),
            ("temperature_c".to_string(), FieldValue::Number(19.25)),
        ]
        .into(),
        received_at_ms: Some((1_700_000_000 + ts_s) * 1000 + 40),
    }
}

/// One state per (kind, device), replaced only by a newer status; a kind's
/// devices listed in id order, each once, across pages.
pub async fn device_state<S: DeviceStateStore>(states: &S, tag: &str) {
    let s1 = vehicle(tag, 1).to_string();
    assert_eq!(states.get("station", &s1).await.expect("get"), None);
    let first = station_status(&s1, 10, 100);
    assert!(states.put_if_newer(&first, 5_000).await.expect("put"));
    assert!(
        !states
            .put_if_newer(&station_status(&s1, 9, 90), 6_000)
            .await
            .expect("put"),
        "an older status never wins"
    );
    assert!(
        !states
            .put_if_newer(&station_status(&s1, 11, 100), 6_000)
            .await
            .expect("put"),
        "nor one of the same time"
    );
    let stored = states.get("station", &s1).await.expect("get").expect("a state");
    assert_eq!(stored.record, first, "the status comes back whole");
    assert_eq!(stored.updated_at_ms, 5_000);
    assert_eq!(
        states.get("pump", &s1).await.expect("get"),
        None,
        "kinds do not share ids"
    );
    for n in 2..=5 {
        states
            .put_if_newer(&station_status(&vehicle(tag, n).to_string(), 1, 1), 1)
            .await
            .expect("put");
    }
    let mut pump = station_status(&vehicle(tag, 9).to_string(), 1, 1);
    pump.kind = "pump".into();
    states.put_if_newer(&pump, 1).await.expect("put");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let page = states.list("station", 2, after.as_deref()).await.expect("list");
        seen.extend(page.items.into_iter().map(|s| s.record.id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let ours: Vec<String> = seen.into_iter().filter(|v| v.starts_with(tag)).collect();
    let expected: Vec<String> = (1..=5).map(|n| vehicle(tag, n).to_string()).collect();
    assert_eq!(ours, expected, "every station listed once, in id order, and no pump");
    heard_index(states, tag).await;
}

/// The heard index of the device-state suite's stations (1 heard at 100 s,
/// 2–5 at 1 s, the five-minute step before).
async fn heard_index<S: DeviceStateStore>(states: &S, tag: &str) {
    let step = |ts_s: i64| station_status("x", 1, ts_s).received_at_ms.map_or(0, heard_bucket);
    let (early, first, late) = (step(1), step(100), step(1_000));
    assert!(early < first && first < late, "{early} {first} {late}");
    let id = |n: u32| vehicle(tag, n);
    let ours = |found: Vec<(DeviceId, i64)>| -> Vec<(DeviceId, i64)> {
        found.into_iter().filter(|(v, _)| v.as_str().starts_with(tag)).collect()
    };
    let unheard = |before: i64, after: Option<(i64, DeviceId)>, limit: usize| async move {
        let after = after.as_ref().map(|(step, id)| (*step, id));
        ours(states.unheard("station", before, after, limit).await.expect("unheard"))
    };
    let at = |ns: &[u32], step: i64| -> Vec<(DeviceId, i64)> { ns.iter().map(|n| (id(*n), step)).collect() };
    let mut expected = at(&[2, 3, 4, 5], early);
    expected.extend(at(&[1], first));
    assert_eq!(
        unheard(late + 1, None, 100).await,
        expected,
        "each at its step, earliest first, then in id order (and not at its older status's step)"
    );
    assert!(unheard(early, None, 100).await.is_empty(), "none before it");
    assert!(
        states
            .put_if_newer(&station_status(&id(1).to_string(), 12, 1_000), 7_000)
            .await
            .expect("put")
    );
    assert!(
        !states
            .put_if_newer(&station_status(&id(1).to_string(), 11, 500), 7_000)
            .await
            .expect("put"),
        "an older status of another step"
    );
    let mut expected = at(&[2, 3, 4, 5], early);
    expected.extend(at(&[1], late));
    assert_eq!(
        unheard(late + 1, None, 100).await,
        expected,
        "a later status moves it, an older one does not"
    );
    assert_eq!(unheard(late, None, 100).await, at(&[2, 3, 4, 5], early));
    assert_eq!(
        unheard(late + 1, Some((early, id(3))), 2).await,
        at(&[4, 5], early),
        "a page after an entry"
    );
    states.refile("station", &id(2), early, None).await.expect("refile");
    states
        .refile("station", &id(3), early, Some(late))
        .await
        .expect("refile");
    let mut expected = at(&[4, 5], early);
    expected.extend(at(&[1, 3], late));
    assert_eq!(unheard(late + 1, None, 100).await, expected, "removed, and moved");
    let mut pump = station_status(&id(4).to_string(), 2, 1_000);
    pump.kind = "pump".into();
    states.put_if_newer(&pump, 1).await.expect("put");
    assert_eq!(
        unheard(late + 1, None, 100).await,
        expected,
        "kinds do not share an index"
    );
}

/// A (vehicle, seq) belongs to one archive object; stale claims are taken over only as they were.
pub async fn ledger<L: Ledger>(ledger: &L, tag: &str) {
    let v = vehicle(tag, 1);
    let v = v.as_str();
    assert_eq!(ledger.claim(v, 1, "obj-a", 1_000).await.expect("claim"), Claim::Claimed);
    assert_eq!(
        ledger.claim(v, 1, "obj-a", 2_000).await.expect("claim"),
        Claim::Claimed,
        "a retried batch claims its messages again"
    );
    let taken = match ledger.claim(v, 1, "obj-b", 3_000).await.expect("claim") {
        Claim::Taken(existing) => existing,
        Claim::Claimed => panic!("a second object must not claim a claimed message"),
    };
    assert_eq!(taken.archive_key, "obj-a");
    assert_eq!(taken.claimed_at_ms, 2_000);
    assert_eq!(ledger.claim(v, 2, "obj-b", 3_000).await.expect("claim"), Claim::Claimed);

    let wrong = ExistingClaim {
        archive_key: "obj-a".into(),
        claimed_at_ms: 1_000,
    };
    assert!(
        !ledger.reclaim(v, 1, &wrong, "obj-c", 4_000).await.expect("reclaim"),
        "a claim that changed since it was read is not taken over"
    );
    assert!(ledger.reclaim(v, 1, &taken, "obj-c", 4_000).await.expect("reclaim"));
    match ledger.claim(v, 1, "obj-a", 5_000).await.expect("claim") {
        Claim::Taken(existing) => assert_eq!(existing.archive_key, "obj-c"),
        Claim::Claimed => panic!("the reclaimed message belongs to obj-c"),
    }

    // Which messages are claimed, in the order asked, across BatchGetItem's 100-key pages.
    let seqs: Vec<u64> = (0..250).rev().chain([2, 1, 2]).collect();
    let claimed = ledger.claimed(v, &seqs).await.expect("claimed");
    let want: Vec<bool> = seqs.iter().map(|s| matches!(s, 1 | 2)).collect();
    assert_eq!(claimed, want);
    let other = format!("station/{tag}");
    assert_eq!(ledger.claimed(&other, &[1, 2]).await.expect("claimed"), [false, false]);
    assert!(ledger.claimed(v, &[]).await.expect("claimed").is_empty());
}

/// One alert per vehicle and rule per window; the log newest first.
pub async fn alert_log<A: AlertLog>(log: &A, tag: &str) {
    let v = vehicle(tag, 1);
    let [first, other_rule, after] = alert_log_windows(log, &v).await;
    alert_log_history(log, tag, &v, [first.clone(), other_rule, after]).await;
    alert_log_devices(log, &v, first).await;
    alert_feed(log, tag).await;
}

/// The feed of a view: every alert recorded to it, newest first (ties by
/// vehicle, then rule), paged by position with none lost or repeated; only
/// its own view's; a second write of an alert changes nothing.
async fn alert_feed<A: AlertLog>(log: &A, tag: &str) {
    let (group, other) = (View::Group(format!("feed-{tag}")), View::Group(format!("other-{tag}")));
    let mut recorded = Vec::new();
    for i in 0..23_i64 {
        let v = vehicle(&format!("feed-{tag}"), (i % 11) as u32);
        // Three alerts share each second: ties across vehicles and partitions.
        let mut a = alert(&v, i as u64, 1_000 + i / 3);
        if i % 4 == 0 {
            a.rule = "low-state-of-charge".into();
        }
        let views = if i % 5 == 0 {
            vec![group.clone(), other.clone()]
        } else {
            vec![group.clone()]
        };
        log.record(&a, &views, 1_800_000_000).await.expect("record");
        recorded.push((a, views));
    }
    let (again, views) = &recorded[7];
    log.record(again, views, 1_800_000_000).await.expect("record again");
    let newest_first = |view: &View| {
        let mut want: Vec<Alert> = (recorded.iter())
            .filter(|(_, views)| views.contains(view))
            .map(|(a, _)| a.clone())
            .collect();
        want.sort_by_cached_key(|a| std::cmp::Reverse(FeedPosition::of(a)));
        want
    };
    let (mut paged, mut after) = (Vec::new(), None);
    loop {
        let page = log.feed(&group, 4, after.as_ref()).await.expect("feed");
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after = Some(FeedPosition::of(last));
        paged.extend(page);
    }
    assert_eq!(paged, newest_first(&group), "every alert once, newest first");
    assert_eq!(log.feed(&other, 50, None).await.expect("feed"), newest_first(&other));
    let empty = View::Group(format!("empty-{tag}"));
    assert!(log.feed(&empty, 50, None).await.expect("feed").is_empty());
}

/// The server's clock (`now`) at `s` seconds into a contract: windows run on
/// it, whatever the alerts' own times say.
fn alert_now(s: i64) -> i64 {
    (1_800_000_000 + s) * 1_000_000
}

/// Cooldown windows: claimed once per rule, kept by a retry, not ended early
/// by a time far ahead; the first, other-rule and after-window alerts claimed.
async fn alert_log_windows<A: AlertLog>(log: &A, v: &DeviceId) -> [Alert; 3] {
    let first = alert(v, 1, 0);
    assert!(
        log.claim_cooldown(&first, alert_now(0), alert_now(600))
            .await
            .expect("claim")
    );
    assert!(
        log.claim_cooldown(&first, alert_now(0), alert_now(600))
            .await
            .expect("claim"),
        "the same alert (a retry, with the same receive time) keeps its window"
    );
    let within = alert(v, 2, 300);
    assert!(
        !log.claim_cooldown(&within, alert_now(300), alert_now(900))
            .await
            .expect("claim")
    );
    let far_future = alert(v, 9, 86_400 * 365);
    assert!(
        !log.claim_cooldown(&far_future, alert_now(301), alert_now(901))
            .await
            .expect("claim"),
        "a message stamped far ahead does not end the window early"
    );
    let other_rule = Alert {
        rule: "low-state-of-charge".into(),
        ..within.clone()
    };
    assert!(
        log.claim_cooldown(&other_rule, alert_now(300), alert_now(900))
            .await
            .expect("claim"),
        "windows are per rule"
    );
    let after = alert(v, 3, 600);
    assert!(
        log.claim_cooldown(&after, alert_now(600), alert_now(1200))
            .await
            .expect("claim"),
        "a window ends at its end"
    );
    [first, other_rule, after]
}

/// The log: what is recorded reads back newest first, whole, a page at a
/// time, and only for its own vehicle.
async fn alert_log_history<A: AlertLog>(log: &A, tag: &str, v: &DeviceId, [first, other_rule, after]: [Alert; 3]) {
    assert!(!log.recorded(&first).await.expect("recorded"));
    for a in [&first, &other_rule, &after] {
        log.record(a, &[], 1_800_000_000).await.expect("record");
    }
    assert!(log.recorded(&first).await.expect("recorded"));
    let all = log.alerts(v.as_str(), 10, None).await.expect("alerts");
    assert_eq!(
        all,
        [after.clone(), other_rule.clone(), first.clone()],
        "newest first, whole"
    );
    assert_eq!(
        log.alerts(v.as_str(), 1, None).await.expect("alerts"),
        std::slice::from_ref(&after)
    );
    assert_eq!(
        log.alerts(v.as_str(), 10, Some(after.ts_us)).await.expect("alerts"),
        [other_rule, first.clone()],
        "before is exclusive"
    );
    assert!(
        log.alerts(vehicle(tag, 2).as_str(), 10, None)
            .await
            .expect("alerts")
            .is_empty()
    );
}

/// A device's alerts: their own windows and log, beside a vehicle of the same id.
async fn alert_log_devices<A: AlertLog>(log: &A, v: &DeviceId, first: Alert) {
    let station = Alert {
        kind: Some("station".into()),
        rule: "over-temperature".into(),
        measure: Quantity::Field {
            name: "slot_temp_c".into(),
            unit: "°C".into(),
            description: "Battery temperature per slot".into(),
        },
        ..first
    };
    assert_eq!(station.stream(), format!("station/{v}"));
    assert!(
        log.claim_cooldown(&station, alert_now(300), alert_now(900))
            .await
            .expect("claim"),
        "a device's window is not its namesake vehicle's"
    );
    log.record(&station, &[], 1_800_000_000).await.expect("record");
    assert_eq!(
        log.alerts(&station.stream(), 10, None).await.expect("alerts"),
        [station]
    );
    assert_eq!(log.alerts(v.as_str(), 10, None).await.expect("alerts").len(), 3);
}

/// A quota counts up to its limit and no further, by one or by many at a
/// time; what does not fit is not counted; keys count apart; a new window
/// starts at zero.
pub async fn quota_counter<Q: QuotaCounter>(quota: &Q, tag: &str) {
    let key = format!("{tag}#user-a#1");
    for expected in 1..=3 {
        assert_eq!(
            quota.take(&key, 1, 3, 2_000_000_000).await.expect("take"),
            Some(expected)
        );
    }
    assert_eq!(
        quota.take(&key, 1, 3, 2_000_000_000).await.expect("take"),
        None,
        "the fourth of three"
    );
    assert_eq!(
        quota.take(&key, 1, 4, 2_000_000_000).await.expect("take"),
        Some(4),
        "refusals were not counted: a higher limit admits exactly one more"
    );
    let many = format!("{tag}#user-c#1");
    assert_eq!(quota.take(&many, 40, 100, 2_000_000_000).await.expect("take"), Some(40));
    assert_eq!(
        quota.take(&many, 61, 100, 2_000_000_000).await.expect("take"),
        None,
        "41 + 60 > 100"
    );
    assert_eq!(
        quota.take(&many, 60, 100, 2_000_000_000).await.expect("take"),
        Some(100),
        "exactly the limit"
    );
    assert_eq!(quota.take(&many, 1, 100, 2_000_000_000).await.expect("take"), None);
    assert_eq!(
        quota
            .take(&format!("{tag}#user-d#1"), 101, 100, 2_000_000_000)
            .await
            .expect("take"),
        None,
        "more than the limit at once never fits"
    );
    assert_eq!(
        quota
            .take(&format!("{tag}#user-b#1"), 1, 3, 2_000_000_000)
            .await
            .expect("take"),
        Some(1)
    );
    assert_eq!(
        quota
            .take(&format!("{tag}#user-a#2"), 1, 3, 2_000_000_000)
            .await
            .expect("take"),
        Some(1),
        "the next window starts at zero"
    );
}

/// A notification with attributes is accepted, and `sent` (what reached
/// subscribers: subject and body) shows it once.
pub async fn notifier<N: Notifier>(notifier: &N, tag: &str, sent: impl AsyncFn() -> Vec<(String, String)>) {
    let subject = format!("[CRITICAL] {tag}: contract");
    notifier
        .notify(
            &subject,
            "body\nwith lines",
            &[("vehicle_id", tag), ("severity", "critical")],
        )
        .await
        .expect("notify");
    let ours: Vec<(String, String)> = sent().await.into_iter().filter(|(s, _)| *s == subject).collect();
    assert_eq!(ours, [(subject, "body\nwith lines".to_string())]);
}

/// A message to a vehicle's topic is accepted.
pub async fn device_publisher<D: DevicePublisher>(device: &D, tag: &str) {
    device
        .publish(&format!("cmd/canopy/{tag}/alert"), br#"{"alert":{}}"#.to_vec())
        .await
        .expect("publish");
}

/// Keys are created once per id, read back whole, listed page by page,
/// and revoked once.
pub async fn key_store<K: KeyStore>(keys: &K, tag: &str) {
    let device = vehicle(tag, 1);
    let issued: Vec<DeviceKey> = (0..5)
        .map(|i| {
            crate::domain::device_key::issue(device.clone(), 60 + i, &format!("rig {i}"), 1_000)
                .expect("a key")
                .record
        })
        .collect();
    for key in &issued {
        assert!(keys.create(key).await.expect("create"));
    }
    let mut impostor = issued[0].clone();
    impostor.device_id = vehicle(tag, 2);
    assert!(
        !keys.create(&impostor).await.expect("create"),
        "an id in use is not replaced"
    );
    assert_eq!(
        keys.get(&issued[0].key_id).await.expect("get").as_ref(),
        Some(&issued[0])
    );
    assert_eq!(keys.get("000000000000").await.expect("get"), None);

    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1_000 {
        let page = keys.list(2, after.as_deref()).await.expect("list");
        assert!(page.items.len() <= 2);
        listed.extend(page.items.into_iter().filter(|k| k.device_id == device));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    listed.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    let mut want = issued.clone();
    want.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    assert_eq!(listed, want, "every key once, across pages");

    assert!(keys.revoke(&issued[1].key_id, 5_000).await.expect("revoke"));
    assert!(keys.revoke(&issued[1].key_id, 6_000).await.expect("revoke"));
    let revoked = keys.get(&issued[1].key_id).await.expect("get").expect("the key");
    assert_eq!(revoked.revoked_at_ms, Some(5_000), "the first revocation's time stays");
    assert_eq!(revoked.secret_sha256, issued[1].secret_sha256);
    assert!(!keys.revoke("000000000000", 5_000).await.expect("revoke"));
    assert_eq!(
        keys.get("000000000000").await.expect("get"),
        None,
        "revoking creates nothing"
    );
}

/// Every body sent arrives once; `received` is what a consumer got.
pub async fn message_queue<Q: MessageQueue>(queue: &Q, tag: &str, received: impl AsyncFn() -> Vec<String>) {
    let bodies: Vec<String> = (0..25).map(|i| format!(r#"{{"tag":"{tag}","n":{i}}}"#)).collect();
    let outcomes = queue.send_all(&bodies).await;
    assert_eq!(outcomes.len(), bodies.len());
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert!(queue.send_all(&[]).await.is_empty());
    let mut got: Vec<String> = received().await.into_iter().filter(|b| b.contains(tag)).collect();
    got.sort();
    let mut want = bodies;
    want.sort();
    assert_eq!(got, want);
}

/// Connections are kept whole, subscribed and unsubscribed, listed, and deleted.
pub async fn connection_store<C: ConnectionStore>(store: &C, tag: &str) {
    let id = |n: u32| format!("{tag}-conn-{n}");
    let caller = crate::domain::access::Caller {
        subject: format!("{tag}-user"),
        groups: ["viewer".to_string(), "north".to_string()].into(),
    };
    let first = Connection {
        id: id(1),
        caller: Some(caller),
        subscription: None,
        connected_at_ms: 1_000,
        expires_at_s: 8_200,
    };
    let before = store.version().await.expect("version");
    store.put(&first).await.expect("put");
    let put = store.version().await.expect("version");
    assert_ne!(put, before, "a put changes the version");
    store
        .put(&Connection {
            id: id(2),
            caller: None,
            subscription: Some(Subscription::Fleet),
            ..first.clone()
        })
        .await
        .expect("put");
    assert_eq!(store.get(&id(1)).await.expect("get").as_ref(), Some(&first));
    let only = Subscription::Vehicles([vehicle(tag, 1), vehicle(tag, 2)].into());
    assert!(store.subscribe(&id(1), Some(&only)).await.expect("subscribe"));
    assert_eq!(
        store.get(&id(1)).await.expect("get").and_then(|c| c.subscription),
        Some(only)
    );
    let subscribed = store.version().await.expect("version");
    assert!(store.subscribe(&id(1), None).await.expect("subscribe"));
    assert_ne!(
        store.version().await.expect("version"),
        subscribed,
        "so does a subscription"
    );
    assert_eq!(store.get(&id(1)).await.expect("get").and_then(|c| c.subscription), None);
    assert!(
        !store
            .subscribe(&id(9), Some(&Subscription::Fleet))
            .await
            .expect("subscribe"),
        "no such connection"
    );
    assert!(
        store.get(&id(9)).await.expect("get").is_none(),
        "subscribing creates nothing"
    );
    let mine: Vec<String> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .filter(|c| c.starts_with(tag))
        .collect();
    assert_eq!(mine.len(), 2, "the version's own item is no connection");
    let listed = store.version().await.expect("version");
    assert_eq!(
        store.version().await.expect("version"),
        listed,
        "reading changes nothing"
    );
    store.delete(&id(1)).await.expect("delete");
    assert_ne!(store.version().await.expect("version"), listed, "a deletion changes it");
    store.delete(&id(1)).await.expect("deleting twice is fine");
    assert!(store.get(&id(1)).await.expect("get").is_none());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::*;

    #[tokio::test]
    async fn memory_adapters_keep_every_contract() {
        object_store(&MemoryStore::new("lake"), "t1").await;
        latest_state(&MemoryStateTable::default(), "t1").await;
        ledger(&MemoryLedger::default(), "t1").await;
        device_state(&MemoryDeviceStateTable::default(), "t1").await;
        alert_log(&MemoryAlertLog::default(), "t1").await;
        vehicle_directory(&MemoryDirectory::default(), "t1").await;
        vehicle_rankings(&MemoryDirectory::default(), "t1").await;
        quota_counter(&MemoryQuotaCounter::default(), "t1").await;
        key_store(&MemoryKeyStore::default(), "t1").await;
        connection_store(&MemoryConnectionStore::default(), "t1").await;
        let q = MemoryQueue::default();
        message_queue(&q, "t1", async || q.take()).await;
        let n = MemoryNotifier::default();
        notifier(&n, "t1", async || {
            n.sent().into_iter().map(|s| (s.subject, s.body)).collect()
        })
        .await;
        let d = MemoryDevicePublisher::default();
        device_publisher(&d, "t1").await;
        assert_eq!(d.published().len(), 1);
    }

    #[tokio::test]
    async fn a_broken_fake_breaks_the_contract() {
        // The suites can fail: a store that forgets what it was given does.
        let store = MemoryStore::new("lake");
        store.faults().fail_next_of("put", 1);
        let outcome = tokio::spawn(async move { object_store(&store, "t2").await }).await;
        assert!(outcome.is_err(), "the suite notices a failing put");
    }
}
