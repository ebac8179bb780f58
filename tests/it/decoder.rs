//! The decoder Lambda's handler against moto: objects in S3, events as
//! S3 and SQS deliver them.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_array::StringArray;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use bytes::Bytes;
use canopy::domain::device_id::DeviceId;
use canopy::format::dbc::Database;
use canopy::format::lake::decoded::DecodedWriterOptions;
use canopy::format::lake::keys::{DECODED_PREFIX, RawKey};
use canopy::ports::store::ObjectStore;
use canopy_decoder::event::{DecoderEvent, S3Notification};
use canopy_decoder::object::{DecoderOptions, decode_object};
use canopy_decoder::{Config, Decoder, HandlerError};
use canopy_tests::fixtures::{self, database};
use canopy_tests::local;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

type Row = (String, String, i64, f64, String);

fn config(bucket: &str) -> Config {
    Config {
        bucket: bucket.to_string(),
        dbc: canopy::services::dbc_cache::DbcSource {
            default_key: "dbc/ev_powertrain.dbc".into(),
            refresh: Duration::ZERO,
            options: canopy::format::dbc::LoadOptions::default(),
        },
        options: DecoderOptions::default(),
    }
}

fn s3_event(bucket: &str, key: &str) -> Value {
    // Keys arrive URL-encoded, and moto leaves out userIdentity and requestParameters.
    let encoded = key.replace('=', "%3D");
    json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": encoded, "size": 1}}}]})
}

/// Invokes `decoder` with `event` as Lambda would hand it over; its answer as JSON.
async fn handle<S>(decoder: &Decoder<S>, event: Value) -> Result<Value, HandlerError>
where
    S: canopy::ports::store::ObjectStore + Clone + Unpin + 'static,
{
    let event: DecoderEvent = serde_json::from_value(event).expect("a decoder event");
    decoder
        .handle(event)
        .await
        .map(|r| serde_json::to_value(r).expect("a JSON answer"))
}

fn sqs_message(id: &str, body: &Value) -> Value {
    json!({"messageId": id, "receiptHandle": "h", "body": body.to_string(), "eventSource": "aws:sqs", "attributes": {}})
}

fn raw_key(vehicle: &str, seq: u64) -> String {
    RawKey::new(DeviceId::new(vehicle).unwrap(), 1_700_000_000_000_000, seq).raw_key()
}

/// Every row of a decoded object: (message, signal, ts_us, value, unit).
fn read_decoded(bytes: Bytes) -> Vec<Row> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let strings = |name: &str| -> Vec<String> {
            let dict = batch.column_by_name(name).unwrap().as_dictionary::<Int32Type>();
            let values: &StringArray = dict.values().as_string();
            dict.keys()
                .iter()
                .map(|k| values.value(k.unwrap() as usize).to_string())
                .collect()
        };
        let (messages, signals, units) = (strings("message"), strings("signal"), strings("unit"));
        let ts = batch.column_by_name("ts_us").unwrap().as_primitive::<Int64Type>();
        let values = batch.column_by_name("value").unwrap().as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            rows.push((
                messages[i].clone(),
                signals[i].clone(),
                ts.value(i),
                values.value(i),
                units[i].clone(),
            ));
        }
    }
    rows
}

/// What the core codec makes of the same frames, sorted as the lake sorts.
fn expected_rows(db: &Database, frames: &[canopy::format::frame::CanFrame]) -> Vec<Row> {
    let mut values = Vec::new();
    let mut rows = Vec::new();
    for f in frames {
        let Some(m) = db.lookup(f.id) else { continue };
        if m.decode(f.data(), &mut values).is_ok() {
            for v in &values {
                let s = &m.signals[usize::from(v.signal)];
                rows.push((m.name.clone(), s.name.clone(), f.ts_us, v.value, s.unit.clone()));
            }
        }
    }
    rows.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    rows
}

async fn decoded_keys<S: ObjectStore>(store: &S) -> Vec<String> {
    store
        .list(DECODED_PREFIX)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

#[tokio::test]
async fn a_raw_object_decodes_to_exactly_the_codecs_values_and_pyarrow_reads_it() {
    let store = local::bucket("decoder-values").await;
    let db = database();
    let frames = fixtures::frames(&db, 3000, 1_700_000_000_000_000, 1, 50);
    let key = raw_key("sim-001", 1);
    store
        .put(&key, Bytes::from(fixtures::raw_file(&frames)), None)
        .await
        .unwrap();

    let decoder = Decoder::new(store.clone(), config(store.bucket())).unwrap();
    let response = handle(&decoder, s3_event(store.bucket(), &key)).await.unwrap();
    assert_eq!(response, json!({"decoded": 1}));

    let decoded_key = RawKey::parse(&key).unwrap().decoded_key();
    let object = store.get(&decoded_key).await.unwrap();
    let rows = read_decoded(object.body.clone());
    let expected = expected_rows(&db, &frames);
    assert!(expected.len() > 10_000);
    assert_eq!(rows, expected);

    // pyarrow reads what the Lambda wrote, with the documented types.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decoded.parquet");
    std::fs::write(&path, &object.body).unwrap();
    let python = canopy_local::services::python_path();
    let script = "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); \
                  print(t.num_rows, [str(f.type) for f in t.schema])";
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let dict = "dictionary<values=string, indices=int32, ordered=0>";
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "{} ['int64', '{dict}', '{dict}', 'double', '{dict}', 'int32', '{dict}', 'int64', 'bool']",
            expected.len()
        )
    );
}

#[tokio::test]
async fn the_same_notification_twice_leaves_one_object_with_the_same_rows() {
    let store = local::bucket("decoder-idempotent").await;
    let db = database();
    let key = raw_key("sim-002", 7);
    store
        .put(
            &key,
            Bytes::from(fixtures::raw_file(&fixtures::frames(
                &db,
                500,
                1_700_000_000_000_000,
                2,
                0,
            ))),
            None,
        )
        .await
        .unwrap();
    let decoder = Decoder::new(store.clone(), config(store.bucket())).unwrap();
    let event = s3_event(store.bucket(), &key);
    handle(&decoder, event.clone()).await.unwrap();
    let first = store
        .get(&RawKey::parse(&key).unwrap().decoded_key())
        .await
        .unwrap()
        .body;
    handle(&decoder, event).await.unwrap();
    let keys = decoded_keys(&store).await;
    assert_eq!(keys, [RawKey::parse(&key).unwrap().decoded_key()]);
    // A newer copy of the batch (its written_us), with the same rows.
    let second = store.get(&keys[0]).await.unwrap().body;
    assert_eq!(read_decoded(second), read_decoded(first));
}

#[tokio::test]
async fn a_corrupt_object_fails_only_its_own_message_in_a_batch() {
    let store = local::bucket("decoder-batch").await;
    let db = database();
    let good = [raw_key("sim-003", 1), raw_key("sim-003", 2)];
    for (i, key) in good.iter().enumerate() {
        let frames = fixtures::frames(&db, 300, 1_700_000_000_000_000 + i as i64 * 1_000_000, i as u64, 0);
        store
            .put(key, Bytes::from(fixtures::raw_file(&frames)), None)
            .await
            .unwrap();
    }
    let corrupt = raw_key("sim-003", 3);
    store
        .put(&corrupt, Bytes::from_static(b"PAR1 this is not a parquet file"), None)
        .await
        .unwrap();
    let missing_key = raw_key("sim-003", 4); // never uploaded
    // Two objects found by `make fuzz`, each of which must fail alone, not take
    // the process and the batch's other objects with it: a file the parquet
    // crate panics on, and a 2 kB footer of lists that declare billions of
    // elements (refused before the parquet crate spends seconds on it).
    let (panics, endless) = (raw_key("sim-003", 5), raw_key("sim-003", 6));
    for (key, bytes) in [
        (
            &panics,
            &include_bytes!("../../shared/src/format/lake/testdata/raw-bit-width-panic.parquet")[..],
        ),
        (
            &endless,
            &include_bytes!("../../shared/src/format/lake/testdata/raw-footer-endless-lists.parquet")[..],
        ),
    ] {
        store.put(key, Bytes::from_static(bytes), None).await.unwrap();
    }

    let batch = json!({"Records": [
        sqs_message("m-good-1", &s3_event(store.bucket(), &good[0])),
        sqs_message("m-panics", &s3_event(store.bucket(), &panics)),
        sqs_message("m-endless", &s3_event(store.bucket(), &endless)),
        sqs_message("m-corrupt", &s3_event(store.bucket(), &corrupt)),
        sqs_message("m-test-event", &json!({"Service": "Amazon S3", "Event": "s3:TestEvent"})),
        sqs_message("m-good-2", &s3_event(store.bucket(), &good[1])),
        sqs_message("m-missing", &s3_event(store.bucket(), &missing_key)),
        sqs_message("m-not-json", &json!("{")),
    ]});
    let decoder = Decoder::new(store.clone(), config(store.bucket())).unwrap();
    let response = handle(&decoder, batch).await.unwrap();
    let failed: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        ["m-panics", "m-endless", "m-corrupt", "m-missing", "m-not-json"]
    );
    let mut want: Vec<String> = good.iter().map(|k| RawKey::parse(k).unwrap().decoded_key()).collect();
    want.sort();
    assert_eq!(decoded_keys(&store).await, want);
}

#[tokio::test]
async fn unknown_ids_and_short_frames_are_counted_not_fatal() {
    let store = local::bucket("decoder-unknown").await;
    let db = database();
    let mut frames = fixtures::frames(&db, 1000, 1_700_000_000_000_000, 3, 10);
    // Two frames cut shorter than the DBC length.
    for f in frames.iter_mut().filter(|f| f.data().len() == 8).take(2) {
        *f = fixtures::truncated(f, 3);
    }
    let key = raw_key("sim-004", 1);
    store
        .put(&key, Bytes::from(fixtures::raw_file(&frames)), None)
        .await
        .unwrap();
    let outcome = decode_object(&store, &db, "test", &key, DecoderOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.stats.frames, 1000);
    assert_eq!(outcome.stats.unknown_ids, 100);
    assert_eq!(outcome.stats.short_frames, 2);
    assert_eq!(outcome.stats.decoded_frames, 898);
    assert_eq!(outcome.stats.unknown_id_counts.values().sum::<u64>(), 100);
}

#[tokio::test]
async fn a_vehicles_own_dbc_in_the_bucket_is_used_and_refreshed_when_it_changes() {
    let store = local::bucket("decoder-dbc").await;
    let db = database();
    let frames = fixtures::frames(&db, 400, 1_700_000_000_000_000, 4, 0);
    let key = raw_key("sim-005", 1);
    store
        .put(&key, Bytes::from(fixtures::raw_file(&frames)), None)
        .await
        .unwrap();
    let own_key = "dbc/vehicles/sim-005.dbc";
    let text = std::fs::read_to_string(fixtures::DBC).unwrap();
    let decoder = Decoder::new(store.clone(), config(store.bucket())).unwrap();
    let decoded_key = RawKey::parse(&key).unwrap().decoded_key();
    let messages = |rows: Vec<Row>| rows.into_iter().map(|r| r.0).collect::<std::collections::BTreeSet<_>>();

    // No DBC in the bucket: the built-in one.
    handle(&decoder, s3_event(store.bucket(), &key)).await.unwrap();
    assert!(messages(read_decoded(store.get(&decoded_key).await.unwrap().body)).contains("BMS_PackStatus"));

    for name in ["PackStatusV2", "PackStatusV3"] {
        let renamed = text.replace("BMS_PackStatus", name);
        store.put(own_key, Bytes::from(renamed), None).await.unwrap();
        handle(&decoder, s3_event(store.bucket(), &key)).await.unwrap();
        let seen = messages(read_decoded(store.get(&decoded_key).await.unwrap().body));
        assert!(
            seen.contains(name) && !seen.contains("BMS_PackStatus"),
            "{name}: {seen:?}"
        );
    }

    // A DBC that does not compile fails the object rather than decoding with another.
    store
        .put(
            own_key,
            Bytes::from_static(b"BO_ 1 Broken: 8 X\n SG_ A : 0|8@1+ (1,0) [0|0] \"\" X\nthis line is not DBC\n"),
            None,
        )
        .await
        .unwrap();
    let response = handle(&decoder, s3_event(store.bucket(), &key)).await;
    assert!(response.unwrap_err().to_string().contains("dbc/vehicles/sim-005.dbc"));
}

#[tokio::test]
async fn a_large_object_goes_up_in_parts_and_memory_holds_a_window() {
    let store = local::bucket("decoder-large").await;
    let db = database();
    let frames = fixtures::frames(&db, 400_000, 1_700_000_000_000_000, 5, 0);
    let key = raw_key("sim-006", 1);
    store
        .put(&key, Bytes::from(fixtures::raw_file(&frames)), None)
        .await
        .unwrap();
    let options = DecoderOptions {
        part_size: 5 * 1024 * 1024,
        writer: DecodedWriterOptions {
            sort_window_rows: 200_000,
            ..DecodedWriterOptions::default()
        },
        ..DecoderOptions::default()
    };
    let outcome = decode_object(&store, &db, "test", &key, options).await.unwrap();
    assert!(
        outcome.bytes_out > 5 * 1024 * 1024,
        "{} bytes is one part",
        outcome.bytes_out
    );
    let head = store.head(&outcome.decoded_key).await.unwrap();
    assert_eq!(head.size, outcome.bytes_out);
    assert!(
        head.etag.contains('-'),
        "a multipart ETag ends in -<parts>: {}",
        head.etag
    );
    let rows = read_decoded(store.get(&outcome.decoded_key).await.unwrap().body);
    assert_eq!(rows.len() as u64, outcome.rows);
    // The tiers beside it count every value once, whatever the windows.
    assert_eq!(outcome.rollup_keys.len(), canopy::format::lake::rollup::TIERS.len());
    for key in &outcome.rollup_keys {
        let body = store.get(key).await.unwrap().body;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
            .unwrap()
            .build()
            .unwrap();
        let mut values = 0i64;
        for batch in reader {
            let batch = batch.unwrap();
            let n = batch.column_by_name("n").unwrap();
            let n = n.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
            values += n.values().iter().sum::<i64>();
        }
        assert_eq!(values as u64, outcome.rows, "{key}");
    }
    assert_eq!(outcome.rows, outcome.stats.values);
    // The file is a few sorted windows of about 200,000 values: order breaks
    // only where one window ends and the next begins.
    let breaks = rows
        .windows(2)
        .filter(|w| (&w[0].0, &w[0].1, w[0].2) > (&w[1].0, &w[1].1, w[1].2))
        .count();
    let windows = rows.len().div_ceil(200_000);
    assert!(windows > 1 && breaks < windows, "{breaks} breaks in {windows} windows");
    let per_signal: BTreeMap<(String, String), usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry((r.0.clone(), r.1.clone())).or_default() += 1;
        m
    });
    let expected: BTreeMap<(String, String), usize> =
        expected_rows(&db, &frames).iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry((r.0.clone(), r.1.clone())).or_default() += 1;
            m
        });
    assert_eq!(per_signal, expected);
}

#[tokio::test]
async fn the_sample_events_parse() {
    for file in ["s3-put.json", "sqs-s3.json"] {
        let path = format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR"));
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let records = event["Records"].as_array().unwrap();
        let notification: Value = match records[0]["eventSource"].as_str() {
            Some("aws:sqs") => serde_json::from_str(records[0]["body"].as_str().unwrap()).unwrap(),
            _ => event.clone(),
        };
        let objects = serde_json::from_value::<S3Notification>(notification)
            .unwrap()
            .objects()
            .unwrap();
        assert_eq!(
            objects[0].key,
            "raw/vehicle_id=sim-001/date=2023-11-14/sim-001_1700000000000000_000001.parquet"
        );
    }
}
