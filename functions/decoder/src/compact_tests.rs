//! A compaction run over the memory store, with objects the decoder wrote:
//! one bad unit does not stop the others, a unit too large for one object
//! is written in parts, and a purge leaves an object decoded again since.

use std::sync::Arc;

use bytes::Bytes;
use canopy::adapters::memory::MemoryStore;
use canopy::format::dbc;
use canopy::format::frame::{CanFrame, FrameFlags};
use canopy::format::lake::raw::RawWriter;
use serde_json::json;

use super::*;
use crate::event::DecoderEvent;
use crate::{Config, Decoder};

const HOUR0: i64 = 1_700_002_800_000_000; // 2023-11-14T23:00Z
const H: i64 = 3_600_000_000;

/// Decoded objects (and their tiers) of `batches` batches of `vehicle` in the hour at `HOUR0`.
async fn drive(store: &MemoryStore, vehicle: &str, batches: u64) {
    let db = dbc::built_in().unwrap();
    let message = db.messages().iter().find(|m| m.name == "BMS_PackStatus").unwrap();
    let decoder = Decoder::new(
        store.clone(),
        Config::from_vars(&std::collections::BTreeMap::from([(
            "DATA_BUCKET".to_string(),
            "lake".to_string(),
        )]))
        .unwrap(),
    )
    .unwrap();
    for seq in 0..batches {
        let first = HOUR0 + seq as i64 * 60_000_000;
        let mut writer = RawWriter::new(Vec::new(), "unit").unwrap();
        for i in 0..200 {
            let payload = message.encode(|_, s| Some(s.minimum.unwrap_or(0.0))).unwrap();
            let frame = CanFrame::new(
                first + i * 10_000,
                Arc::from("can0"),
                message.id,
                FrameFlags::empty(),
                &payload,
            )
            .unwrap();
            writer.push(frame).unwrap();
        }
        let key = RawKey::new(DeviceId::new(vehicle).unwrap(), first, seq).raw_key();
        store
            .put(&key, Bytes::from(writer.finish().unwrap().0), None)
            .await
            .unwrap();
        let event: DecoderEvent = serde_json::from_value(
            json!({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "lake"}, "object": {"key": key}}}]}),
        )
        .unwrap();
        decoder.handle(event).await.unwrap();
    }
}

fn hour(vehicle: &str) -> Unit {
    Unit {
        vehicle: DeviceId::new(vehicle).unwrap(),
        period: Period::Hour,
        start_us: HOUR0,
    }
}

async fn keys(store: &MemoryStore, prefix: &str) -> Vec<String> {
    store.list(prefix).await.unwrap().into_iter().map(|(k, _)| k).collect()
}

#[tokio::test]
async fn a_unit_that_fails_is_reported_retried_then_quarantined_and_the_others_compact() {
    let store = MemoryStore::new("lake");
    drive(&store, "veh-001", 3).await;
    drive(&store, "veh-002", 2).await;
    // Garbage where veh-003's hour has a decoded object.
    let bad = format!(
        "decoded/vehicle_id=veh-003/date=2023-11-14/veh-003_{}_000001.parquet",
        HOUR0 + 60_000_000
    );
    store.put(&bad, Bytes::from_static(b"not parquet"), None).await.unwrap();
    let veh_003 = DeviceId::new("veh-003").unwrap();
    // Marked as the decoder marks what it wrote.
    store
        .put(&written_key(Period::Hour, HOUR0, &veh_003), Bytes::new(), None)
        .await
        .unwrap();

    let compactor = Compactor::new(store.clone());
    let now = HOUR0 + H + SETTLE_US;
    let report = compactor.run(now).await.unwrap();
    let compacted: std::collections::BTreeSet<&str> =
        report.compacted.iter().map(|(u, _, _, _)| u.vehicle.as_str()).collect();
    assert_eq!(compacted, ["veh-001", "veh-002"].into(), "the others compact");
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert_eq!(report.failed[0].0, hour("veh-003"));
    assert!(report.failed[0].1.contains("veh-003"), "{}", report.failed[0].1);
    assert_eq!(
        keys(&store, "compaction/failed/").await,
        ["compaction/failed/veh-003/hour/1700002800000000"]
    );

    // Tried again by the next runs, then left alone with an alarm's metric.
    let second = compactor.run(now + 1).await.unwrap();
    assert_eq!((second.failed.len(), second.quarantined.len()), (1, 0));
    let third = compactor.run(now + 2).await.unwrap();
    assert_eq!(third.quarantined, [hour("veh-003")]);
    assert!(keys(&store, "compaction/failed/").await.is_empty());
    assert_eq!(keys(&store, "compaction/quarantine/").await.len(), 1);
    let fourth = compactor.run(now + 3).await.unwrap();
    assert!(fourth.failed.is_empty() && fourth.compacted.is_empty(), "{fourth:?}");
    assert!(
        store.exists(&bad).await.unwrap().is_some(),
        "a quarantined unit's objects stay"
    );
}

#[tokio::test]
async fn a_unit_larger_than_a_part_is_written_in_parts_and_is_done_after() {
    let store = MemoryStore::new("lake");
    drive(&store, "veh-001", 6).await;
    let sizes: Vec<u64> = store
        .list("decoded/")
        .await
        .unwrap()
        .into_iter()
        .map(|(_, i)| i.size)
        .collect();
    let rows_before = decoded_rows(&store).await;
    let mut compactor = Compactor::new(store.clone());
    // About two inputs a part.
    compactor.part_input_bytes = sizes.iter().max().unwrap() * 2 + 1;
    let report = compactor.run(HOUR0 + H + SETTLE_US).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let decoded = keys(&store, "decoded/").await;
    let parts: Vec<&String> = decoded.iter().filter(|k| k.contains("_hour_")).collect();
    assert!(parts.len() >= 3, "{decoded:?}");
    assert!(parts.iter().any(|k| k.ends_with("-1.parquet")), "{parts:?}");
    // Every value once, after the inputs' grace period too.
    compactor.run(HOUR0 + H + SETTLE_US + GRACE_US).await.unwrap();
    assert_eq!(decoded_rows(&store).await, rows_before);
    let again = compactor.run(HOUR0 + H + SETTLE_US + 2 * GRACE_US).await.unwrap();
    assert!(
        again.compacted.is_empty(),
        "the parts are the unit's compaction: {again:?}"
    );
}

/// Rows of the decoded objects in the store.
async fn decoded_rows(store: &MemoryStore) -> u64 {
    let mut rows = 0;
    for key in keys(store, "decoded/").await {
        let body = store.get(&key).await.unwrap().body;
        let reader = parquet::file::reader::SerializedFileReader::new(body).unwrap();
        rows += parquet::file::reader::FileReader::metadata(&reader)
            .file_metadata()
            .num_rows() as u64;
    }
    rows
}

#[tokio::test]
async fn a_purge_leaves_an_object_decoded_again_after_it_was_copied() {
    let store = MemoryStore::new("lake");
    drive(&store, "veh-001", 2).await;
    let compactor = Compactor::new(store.clone());
    let now = HOUR0 + H + SETTLE_US;
    compactor.run(now).await.unwrap();
    // Decoded again (a DBC fix) between the compaction and the purge.
    let batch = keys(&store, "decoded/")
        .await
        .into_iter()
        .find(|k| !k.contains("_hour_"))
        .unwrap();
    let body = store.get(&batch).await.unwrap().body;
    let mut changed = body.to_vec();
    changed.extend_from_slice(b" ");
    store.put(&batch, Bytes::from(changed), None).await.unwrap();
    let report = compactor.run(now + GRACE_US).await.unwrap();
    assert!(report.kept_changed >= 1, "{report:?}");
    assert!(store.exists(&batch).await.unwrap().is_some(), "the newer copy stays");
}

#[tokio::test]
async fn a_run_visits_the_vehicles_that_wrote_in_the_hour_whatever_the_fleet() {
    // The requests of a run over one vehicle's hour, beside a fleet of
    // `others` vehicles that did not drive in it (their earlier days in the lake).
    async fn run_beside(others: usize) -> (usize, usize, Vec<String>) {
        let store = MemoryStore::new("lake");
        drive(&store, "veh-001", 2).await;
        for n in 0..others {
            let key = format!("decoded/vehicle_id=fleet-{n:05}/date=2023-11-13/fleet-{n:05}_1_000001.parquet");
            store.put(&key, Bytes::new(), None).await.unwrap();
        }
        assert_eq!(
            keys(&store, "compaction/written/").await,
            [
                format!("compaction/written/day/{}/veh-001", Period::Day.start_of(HOUR0)),
                format!("compaction/written/hour/{HOUR0}/veh-001"),
            ],
            "the decoder marked the hour and the day it wrote in, once each"
        );
        let faults = store.faults();
        let (lists, heads) = (faults.calls("list"), faults.calls("head"));
        let report = Compactor::new(store.clone()).run(HOUR0 + H + SETTLE_US).await.unwrap();
        let compacted: Vec<String> = report.compacted.iter().map(|(u, _, _, _)| u.describe()).collect();
        assert!(
            keys(&store, "compaction/written/hour/").await.is_empty(),
            "the hour's markers go once it is done"
        );
        (faults.calls("list") - lists, faults.calls("head") - heads, compacted)
    }
    let alone = run_beside(0).await;
    assert!(
        alone.2.iter().all(|unit| unit.contains("veh-001")) && !alone.2.is_empty(),
        "{alone:?}"
    );
    assert_eq!(
        run_beside(10_000).await,
        alone,
        "the same requests and units beside 10,000 vehicles"
    );
}
