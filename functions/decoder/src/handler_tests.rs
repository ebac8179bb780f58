//! The decoder on the memory store: typed events in, objects out, and every
//! failure kept to its own record. No server.

use std::sync::Arc;

use bytes::Bytes;
use canopy::adapters::memory::MemoryStore;
use canopy::domain::device_id::DeviceId;
use canopy::format::frame::{CanFrame, FrameFlags};
use canopy::format::lake::keys::RawKey;
use canopy::format::lake::raw::RawWriter;
use serde_json::json;

use super::*;

fn config() -> Config {
    Config::from_vars(&std::collections::BTreeMap::from([(
        "DATA_BUCKET".to_string(),
        "lake".to_string(),
    )]))
    .unwrap()
}

/// A raw object of `n` BMS_PackStatus frames of `vehicle`, stored; its key.
async fn raw_object(store: &MemoryStore, vehicle: &str, n: usize) -> String {
    let db = dbc::built_in().unwrap();
    let message = db.messages().iter().find(|m| m.name == "BMS_PackStatus").unwrap();
    let mut writer = RawWriter::new(Vec::new(), "unit").unwrap();
    let bus: Arc<str> = Arc::from("can0");
    for i in 0..n {
        let payload = message.encode(|_, s| Some(s.minimum.unwrap_or(0.0))).unwrap();
        let frame = CanFrame::new(
            1_700_000_000_000_000 + i as i64 * 1000,
            bus.clone(),
            message.id,
            FrameFlags::empty(),
            &payload,
        )
        .unwrap();
        writer.push(frame).unwrap();
    }
    let key = RawKey::new(DeviceId::new(vehicle).unwrap(), 1_700_000_000_000_000, 1).raw_key();
    store
        .put(&key, Bytes::from(writer.finish().unwrap().0), None)
        .await
        .unwrap();
    key
}

fn sqs(records: &[(&str, serde_json::Value)]) -> DecoderEvent {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|(id, body)| json!({"messageId": id, "body": body.to_string(), "eventSource": "aws:sqs"}))
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn notification(key: &str) -> serde_json::Value {
    json!({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "lake"}, "object": {"key": key}}}]})
}

fn failures(response: DecoderResponse) -> Vec<String> {
    match response {
        DecoderResponse::Batch(b) => b.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
        DecoderResponse::Decoded { .. } => panic!("not a batch response"),
    }
}

#[tokio::test]
async fn a_notification_decodes_its_object_and_a_redelivery_rewrites_it() {
    let store = MemoryStore::new("lake");
    let key = raw_object(&store, "veh-001", 500).await;
    let decoder = Decoder::new(store.clone(), config()).unwrap();
    let event: DecoderEvent = serde_json::from_value(notification(&key)).unwrap();
    let response = decoder.handle(event.clone()).await.unwrap();
    assert_eq!(response, DecoderResponse::Decoded { decoded: 1 });
    let raw = RawKey::parse(&key).unwrap();
    let mut written = vec![raw.decoded_key(), key.clone()];
    written.extend(canopy::format::lake::rollup::TIERS.map(|t| raw.rollup_key(&t)));
    // The batch's hour and day are marked written, for the compactor to visit;
    // the hour closed long ago, so it is marked for compaction again too.
    written.extend(crate::compact::written_keys(&raw));
    written.push(format!(
        "compaction/late/veh-001/{}",
        raw.first_ts_us / 3_600_000_000 * 3_600_000_000
    ));
    written.sort();
    assert_eq!(store.keys(), written);
    let before: Vec<_> = written.iter().map(|k| rows_and_copy(&store, k)).collect();
    decoder.handle(event).await.unwrap();
    assert_eq!(store.keys(), written, "the same objects, rewritten");
    let after: Vec<_> = written.iter().map(|k| rows_and_copy(&store, k)).collect();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((&b.0, &b.1), (&a.0, &a.1), "the same bytes or rows");
        assert!(a.2 >= b.2, "a newer copy");
    }
}

/// A decoded or tier object's rows without `written_us`, and its
/// `written_us`; the bytes of other objects.
fn rows_and_copy(store: &MemoryStore, key: &str) -> (bytes::Bytes, Vec<arrow_array::RecordBatch>, i64) {
    use arrow_array::cast::AsArray;
    let body = store.bytes(key).unwrap();
    if key.starts_with("raw/") || key.starts_with("compaction/") {
        return (body, Vec::new(), 0);
    }
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
        .unwrap()
        .build()
        .unwrap();
    let mut written = 0;
    let batches = reader
        .map(|b| {
            let mut b = b.unwrap();
            let i = b.schema().index_of("written_us").unwrap();
            written = b.column(i).as_primitive::<arrow_array::types::Int64Type>().value(0);
            b.remove_column(i);
            b
        })
        .collect();
    (bytes::Bytes::new(), batches, written)
}

#[tokio::test]
async fn each_failed_record_goes_back_alone() {
    let store = MemoryStore::new("lake");
    let good = raw_object(&store, "veh-001", 100).await;
    let missing = RawKey::new(DeviceId::new("veh-002").unwrap(), 1_700_000_000_000_000, 9).raw_key();
    let event = sqs(&[
        ("m-good", notification(&good)),
        ("m-missing", notification(&missing)),
        ("m-not-s3", json!({"hello": 1})),
        ("m-test", json!({"Event": "s3:TestEvent"})),
        (
            "m-other-bucket",
            json!({"Records": [{"s3": {"bucket": {"name": "elsewhere"}, "object": {"key": good}}}]}),
        ),
    ]);
    let decoder = Decoder::new(store.clone(), config()).unwrap();
    let failed = failures(decoder.handle(event).await.unwrap());
    assert_eq!(failed, ["m-missing", "m-not-s3", "m-other-bucket"]);
}

#[tokio::test]
async fn an_object_whose_frames_lie_outside_its_keys_date_fails_alone_and_writes_nothing() {
    let store = MemoryStore::new("lake");
    let good = raw_object(&store, "veh-001", 100).await;
    // The frames of 2023-11-14, under a key of the day before.
    let body = store.get(&good).await.unwrap().body;
    let elsewhere = RawKey::new(DeviceId::new("veh-002").unwrap(), 1_699_913_600_000_000, 1).raw_key();
    store.put(&elsewhere, body, None).await.unwrap();
    let decoder = Decoder::new(store.clone(), config()).unwrap();
    let failed = failures(
        decoder
            .handle(sqs(&[
                ("m-good", notification(&good)),
                ("m-elsewhere", notification(&elsewhere)),
            ]))
            .await
            .unwrap(),
    );
    assert_eq!(failed, ["m-elsewhere"]);
    let written: Vec<String> = store
        .list("decoded/vehicle_id=veh-002/")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

#[tokio::test]
async fn a_failed_upload_fails_its_record_and_leaves_no_object() {
    let store = MemoryStore::new("lake");
    let key = raw_object(&store, "veh-001", 100).await;
    store.faults().fail_next_of("put", 1);
    let decoder = Decoder::new(store.clone(), config()).unwrap();
    let failed = failures(decoder.handle(sqs(&[("m1", notification(&key))])).await.unwrap());
    assert_eq!(failed, ["m1"]);
    assert_eq!(store.keys(), std::slice::from_ref(&key));
    assert_eq!(store.open_uploads(), 0);
    // The queue brings it back; now it goes through.
    assert!(failures(decoder.handle(sqs(&[("m1", notification(&key))])).await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_vehicles_own_dbc_wins_and_a_broken_one_fails_its_objects() {
    let store = MemoryStore::new("lake");
    let key = raw_object(&store, "veh-005", 10).await;
    store
        .put(
            "dbc/vehicles/veh-005.dbc",
            Bytes::from_static(b"BO_ 1 Broken: 8 X\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" X\nthis line is not DBC\n"),
            None,
        )
        .await
        .unwrap();
    let decoder = Decoder::new(store.clone(), config()).unwrap();
    let event: DecoderEvent = serde_json::from_value(notification(&key)).unwrap();
    let err = decoder.handle(event).await.unwrap_err().to_string();
    assert!(err.contains("dbc/vehicles/veh-005.dbc"), "{err}");
}

#[tokio::test]
async fn a_vehicles_dbc_with_tolerated_problems_decodes_and_strict_mode_refuses_it() {
    let store = MemoryStore::new("lake");
    let key = raw_object(&store, "veh-006", 10).await;
    // The platform's DBC with a stale value table, as real files have.
    let mut text = String::from_utf8(dbc::BUILT_IN.to_vec()).unwrap();
    text.push_str("\nVAL_ 1234 NoSuchSignal 0 \"off\" 1 \"on\" ;\n");
    store
        .put("dbc/vehicles/veh-006.dbc", Bytes::from(text), None)
        .await
        .unwrap();
    let event: DecoderEvent = serde_json::from_value(notification(&key)).unwrap();
    let decoder = Decoder::new(store.clone(), config()).unwrap();
    assert_eq!(
        decoder.handle(event.clone()).await.unwrap(),
        DecoderResponse::Decoded { decoded: 1 }
    );
    assert_eq!(
        decoder.dbcs.take_warnings(),
        0,
        "handle reported the warning in its metrics"
    );

    let mut strict = config();
    strict.dbc.options = canopy::format::dbc::LoadOptions { strict: true };
    let err = Decoder::new(store.clone(), strict)
        .unwrap()
        .handle(event)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("VAL_ for unknown signal NoSuchSignal"), "{err}");
}

#[tokio::test]
async fn j1939_frames_of_two_sources_land_in_one_message_with_their_source_address() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let store = MemoryStore::new("lake");
    let dbc = include_bytes!("../../../tests/oracle/dbc/lenient/j1939.dbc");
    store
        .put("dbc/vehicles/truck-01.dbc", Bytes::from_static(dbc), None)
        .await
        .unwrap();
    let db = canopy::format::dbc::Database::from_bytes(dbc, "j1939.dbc").unwrap();
    let eec1 = db.message_by_name("EEC1").unwrap();
    let mut writer = RawWriter::new(Vec::new(), "unit").unwrap();
    let bus: Arc<str> = Arc::from("can0");
    for i in 0..100u32 {
        let payload = eec1.encode_named(&[("EngineSpeed", 600.0 + f64::from(i))]).unwrap();
        // The engine (SA 0x00, priority 3) and a retarder (SA 0x0F, priority 6).
        let id = if i % 2 == 0 { 0x0CF0_0400 } else { 0x18F0_040F };
        let frame = CanFrame::new(
            1_700_000_000_000_000 + i64::from(i) * 10_000,
            bus.clone(),
            canopy::format::frame::CanId::Extended(id),
            FrameFlags::empty(),
            &payload,
        )
        .unwrap();
        writer.push(frame).unwrap();
    }
    let key = RawKey::new(DeviceId::new("truck-01").unwrap(), 1_700_000_000_000_000, 1).raw_key();
    store
        .put(&key, Bytes::from(writer.finish().unwrap().0), None)
        .await
        .unwrap();

    let decoder = Decoder::new(store.clone(), config()).unwrap();
    let event: DecoderEvent = serde_json::from_value(notification(&key)).unwrap();
    decoder.handle(event).await.unwrap();

    let decoded = store.get(&RawKey::parse(&key).unwrap().decoded_key()).await.unwrap();
    let mut by_source = std::collections::BTreeMap::<i32, Vec<f64>>::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(decoded.body)
        .unwrap()
        .build()
        .unwrap()
    {
        let batch = batch.unwrap();
        let sources = batch
            .column_by_name("source_address")
            .unwrap()
            .as_primitive::<Int32Type>();
        let values = batch
            .column_by_name("value")
            .unwrap()
            .as_primitive::<arrow_array::types::Float64Type>();
        let messages = batch.column_by_name("message").unwrap().as_dictionary::<Int32Type>();
        let names = messages.values().as_string::<i32>();
        for i in 0..batch.num_rows() {
            assert_eq!(names.value(messages.keys().value(i) as usize), "EEC1");
            by_source.entry(sources.value(i)).or_default().push(values.value(i));
        }
    }
    assert_eq!(by_source.keys().copied().collect::<Vec<_>>(), [0x00, 0x0F]);
    assert_eq!(by_source[&0x00].len(), 50);
    assert_eq!(by_source[&0x0F][0], 601.0);
}

#[tokio::test]
async fn objects_past_the_limits_fail_alone_before_their_data_is_read() {
    let store = MemoryStore::new("lake");
    let small = raw_object(&store, "veh-001", 100).await;
    let big = raw_object(&store, "veh-002", 20_000).await;
    let size = store.head(&big).await.unwrap().size;
    for (name, limit) in [
        ("MAX_OBJECT_MB", "the object is"),
        ("MAX_ROW_GROUP_MB", "row group 0 is"),
        ("MAX_DECOMPRESSED_MB", "uncompressed, above the limit"),
    ] {
        let mut limited = config();
        match name {
            "MAX_OBJECT_MB" => limited.options.limits.object_bytes = size - 1,
            "MAX_ROW_GROUP_MB" => limited.options.limits.row_group_bytes = 1024,
            _ => limited.options.limits.decompressed_bytes = 1024,
        }
        let decoder = Decoder::new(store.clone(), limited).unwrap();
        let reads_before = store.faults().calls("get_range");
        let event = sqs(&[("big", notification(&big))]);
        assert_eq!(failures(decoder.handle(event).await.unwrap()), ["big"], "{name}");
        let reads = store.faults().calls("get_range") - reads_before;
        assert!(reads <= 2, "{name}: {reads} reads, only the footer may be read");
        let err = decoder
            .handle(serde_json::from_value(notification(&big)).unwrap())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(limit) && err.contains(name), "{name}: {err}");
    }
    // A small object of another vehicle in the same batch is decoded all the same.
    let mut limited = config();
    limited.options.limits.row_group_bytes = 200 * 1024;
    let decoder = Decoder::new(store.clone(), limited).unwrap();
    let event = sqs(&[("small", notification(&small)), ("big", notification(&big))]);
    let failed = failures(decoder.handle(event).await.unwrap());
    assert!(!failed.contains(&"small".to_string()), "{failed:?}");

    let mut limited = config();
    limited.options.limits.footer_bytes = 16;
    let decoder = Decoder::new(store.clone(), limited).unwrap();
    let err = decoder
        .handle(serde_json::from_value(notification(&small)).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("MAX_FOOTER_MB"), "{err}");
}

#[tokio::test]
async fn the_footer_check_and_the_metadata_share_one_read() {
    let store = MemoryStore::new("lake");
    let key = raw_object(&store, "veh-001", 100).await;
    let decoder = Decoder::new(store.clone(), config()).unwrap();
    decoder
        .handle(serde_json::from_value(notification(&key)).unwrap())
        .await
        .unwrap();
    // A small object: the footer check's GET (the 64 KB prefetch span) holds the
    // footer, the metadata and the data; before, the check cost a GET of its own.
    assert_eq!(store.faults().calls("get_range"), 1);
}
