//! Compaction against the chart query: the lake as it stands after every
//! single write or delete of a compaction run is queried with the exact SQL
//! the API sends (DataFusion over the objects), and every answer equals the
//! uncompacted lake's: no value seen twice, none missed. Then a late batch
//! and a redelivered one.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use canopy::adapters::memory::MemoryStore;
use canopy::domain::device_id::DeviceId;
use canopy::format::lake::compact::{LakeObject, Period};
use canopy::format::lake::keys::RawKey;
use canopy::ports::store::{Object, ObjectInfo, ObjectStore, StoreError};
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_api::history::plan::{Reduced, plan};
use canopy_api::history::{History, SignalRef, TimeRange};
use canopy_decoder::compact::{Compactor, GRACE_US, SETTLE_US};
use canopy_decoder::event::DecoderEvent;
use canopy_decoder::object::DecoderOptions;
use canopy_decoder::{Config, Decoder};
use canopy_tests::fixtures::{self, database};
use serde_json::json;

const HOUR: i64 = 3_600_000_000;
/// 2023-11-14T00:00Z.
const DAY: i64 = 1_699_920_000_000_000;

/// A store that keeps a copy of the lake after every change made through it.
#[derive(Clone)]
struct Recorder {
    inner: MemoryStore,
    states: Arc<Mutex<Vec<BTreeMap<String, Bytes>>>>,
}

impl Recorder {
    /// The lake as last recorded.
    fn last(&self) -> BTreeMap<String, Bytes> {
        self.states.lock().unwrap().last().cloned().unwrap_or_default()
    }

    fn record(&self) {
        let lake: BTreeMap<String, Bytes> = self
            .inner
            .keys()
            .into_iter()
            .filter(|k| !k.starts_with("raw/") && LakeObject::parse(k).is_some())
            .filter_map(|k| self.inner.bytes(&k).map(|b| (k, b)))
            .collect();
        let mut states = self.states.lock().unwrap();
        if states.last() != Some(&lake) {
            states.push(lake);
        }
    }
}

impl ObjectStore for Recorder {
    fn bucket(&self) -> &str {
        self.inner.bucket()
    }
    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        self.inner.head(key).await
    }
    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.inner.get_range(key, range).await
    }
    async fn put(&self, key: &str, body: Bytes, sha256: Option<String>) -> Result<(), StoreError> {
        let result = self.inner.put(key, body, sha256).await;
        self.record();
        result
    }
    async fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectInfo)>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_dirs(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let result = self.inner.delete(key).await;
        self.record();
        result
    }
    async fn create_multipart(&self, key: &str) -> Result<String, StoreError> {
        self.inner.create_multipart(key).await
    }
    async fn upload_part(&self, key: &str, id: &str, number: i32, body: Bytes) -> Result<String, StoreError> {
        self.inner.upload_part(key, id, number, body).await
    }
    async fn complete_multipart(&self, key: &str, id: &str, parts: Vec<(i32, String)>) -> Result<(), StoreError> {
        let result = self.inner.complete_multipart(key, id, parts).await;
        self.record();
        result
    }
    async fn abort_multipart(&self, key: &str, id: &str) -> Result<(), StoreError> {
        self.inner.abort_multipart(key, id).await
    }
}

fn decoder(store: MemoryStore) -> Decoder<MemoryStore> {
    let config = Config {
        bucket: "lake".into(),
        dbc: canopy::services::dbc_cache::DbcSource {
            default_key: "dbc/ev_powertrain.dbc".into(),
            refresh: Duration::ZERO,
            options: canopy::format::dbc::LoadOptions::default(),
        },
        options: DecoderOptions::default(),
    };
    Decoder::new(store, config).unwrap()
}

/// Uploads and decodes a batch of frames from `first_us`; its raw key.
async fn decode(decoder: &Decoder<MemoryStore>, store: &MemoryStore, first_us: i64, seq: u64) -> String {
    let frames = fixtures::frames(&database(), 3_000, first_us, seq, 0);
    let key = RawKey::new(DeviceId::new("veh-1").unwrap(), frames[0].ts_us, seq).raw_key();
    store
        .put(&key, Bytes::from(fixtures::raw_file(&frames)), None)
        .await
        .unwrap();
    redeliver(decoder, &key).await;
    key
}

async fn redeliver(decoder: &Decoder<MemoryStore>, key: &str) {
    let event =
        json!({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "lake"}, "object": {"key": key}}}]});
    let event: DecoderEvent = serde_json::from_value(event).unwrap();
    decoder.handle(event).await.unwrap();
}

/// The chart answers of a lake, one per plan: every value (decoded), and
/// each tier.
async fn answers(lake: &BTreeMap<String, Bytes>) -> Vec<Reduced> {
    let dir = tempfile::tempdir().unwrap();
    for (key, body) in lake {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let history = DataFusionHistory::local(dir.path()).await.unwrap();
    let signal = SignalRef {
        message_name: "BMS_PackStatus".into(),
        signal_name: "PackVoltage".into(),
    };
    let day = TimeRange {
        from_us: DAY,
        to_us: DAY + 24 * HOUR,
    };
    let two_hours = TimeRange {
        from_us: DAY + 5 * HOUR,
        to_us: DAY + 7 * HOUR,
    };
    let mut out = Vec::new();
    for (range, points) in [
        (two_hours, 100_000),
        (two_hours, 7_000),
        (day, 2_000),
        (day, 1_000),
        (day, 100),
    ] {
        let plan = plan(range, points);
        out.push(
            history
                .reduced(&DeviceId::new("veh-1").unwrap(), &signal, &plan)
                .await
                .unwrap(),
        );
    }
    out
}

fn same(got: &[Reduced], want: &[Reduced], state: usize) {
    for (g, w) in got.iter().zip(want) {
        let (gs, ws) = (g.stats.unwrap(), w.stats.unwrap());
        assert_eq!(gs.source, ws.source);
        assert_eq!(g.points, w.points, "state {state}: {} points", gs.source);
        assert_eq!(
            (gs.count, gs.min, gs.max),
            (ws.count, ws.min, ws.max),
            "state {state}: {}",
            gs.source
        );
        assert!((gs.mean - ws.mean).abs() <= 1e-12 * ws.mean.abs(), "state {state}");
        assert!((gs.stddev - ws.stddev).abs() <= 1e-9 * ws.stddev.abs(), "state {state}");
    }
}

/// Objects of a table's partition, by kind.
fn objects(store: &MemoryStore, prefix: &str) -> Vec<LakeObject> {
    store
        .keys()
        .iter()
        .filter(|k| k.starts_with(&format!("{prefix}vehicle_id=veh-1/")))
        .filter_map(|k| LakeObject::parse(k))
        .collect()
}

/// Checks every state recorded since `from` against `want`; returns how many.
async fn every_state_answers(recorder: &Recorder, from: usize, want: &[Reduced]) -> usize {
    let states = recorder.states.lock().unwrap().clone();
    for (i, state) in states.iter().enumerate().skip(from) {
        same(&answers(state).await, want, i);
    }
    states.len()
}

/// The platform's DBC in `store`, and batches decoded in three hours of
/// [`DAY`], two of them in one hour; the decoder, and the batches' raw keys.
async fn seed_a_day(store: &MemoryStore) -> (Decoder<MemoryStore>, Vec<String>) {
    store
        .put(
            "dbc/ev_powertrain.dbc",
            Bytes::from(std::fs::read(fixtures::DBC).unwrap()),
            None,
        )
        .await
        .unwrap();
    let decoder = decoder(store.clone());
    let starts = [
        5 * HOUR + 10_000_000,
        5 * HOUR + 1_800_000_000,
        6 * HOUR + 60_000_000,
        23 * HOUR,
    ];
    let mut raw_keys = Vec::new();
    for (seq, start) in starts.iter().enumerate() {
        raw_keys.push(decode(&decoder, store, DAY + start, seq as u64).await);
    }
    (decoder, raw_keys)
}

/// Checks the lake holds one decoded object per hour and one of the day per tier.
fn check_compacted(store: &MemoryStore) {
    assert_eq!(objects(store, "decoded/").len(), 3, "one object per hour");
    assert!(
        objects(store, "rollup_10s/").iter().all(|o| matches!(
            o,
            LakeObject::Compacted {
                period: Period::Day,
                ..
            }
        )),
        "one object for the day: {:?}",
        objects(store, "rollup_10s/")
    );
    assert_eq!(objects(store, "rollup_10s/").len(), 1);
}

/// Runs `compactor` at `at` and at the grace period after it, then checks
/// every state the lake went through from the `from`th answers `want`.
async fn compact_twice_answering(
    compactor: &Compactor<Recorder>,
    recorder: &Recorder,
    at: i64,
    from: usize,
    want: &[Reduced],
) {
    compactor.run(at).await.unwrap();
    compactor.run(at + GRACE_US).await.unwrap();
    every_state_answers(recorder, from, want).await;
}

#[tokio::test]
async fn queries_see_every_value_once_while_hours_and_days_are_compacted() {
    let store = MemoryStore::new("lake");
    let (decoder, raw_keys) = seed_a_day(&store).await;
    let recorder = Recorder {
        inner: store.clone(),
        states: Arc::default(),
    };
    recorder.record();
    let want = answers(&recorder.last()).await;
    assert!(want.iter().all(|r| r.stats.unwrap().count > 100), "the data is charted");

    // The day and its hours are closed: hours, then the day, compacted; then
    // after the grace period what they copied is deleted.
    let now = DAY + 24 * HOUR + SETTLE_US;
    let compactor = Compactor::new(recorder.clone());
    let report = compactor.run(now).await.unwrap();
    assert!(report.compacted.len() >= 3 * 5 + 3, "{:?}", report.compacted);
    assert_eq!(report.deleted, 0, "nothing deleted before the grace period");
    let report = compactor.run(now + GRACE_US).await.unwrap();
    assert!(report.deleted > 0);
    let states = every_state_answers(&recorder, 1, &want).await;
    assert!(states > 20, "{states} states");
    check_compacted(&store);

    // A late batch of a compacted hour is read at once, beside the hour, and
    // marks the hour; the next run compacts the hour and the day again.
    decode(&decoder, &store, DAY + 5 * HOUR + 2_400_000_000, 10).await;
    assert!(store.keys().iter().any(|k| k.starts_with("compaction/late/veh-1/")));
    recorder.record();
    let with_late = answers(&recorder.last()).await;
    assert!(with_late[0].stats.unwrap().count > want[0].stats.unwrap().count);
    let from = recorder.states.lock().unwrap().len();
    compact_twice_answering(&compactor, &recorder, now + 2 * GRACE_US, from, &with_late).await;
    check_compacted(&store);
    assert!(!store.keys().iter().any(|k| k.starts_with("compaction/late/")));

    // A redelivered event rewrites a batch: newer than its compacted copy,
    // it is read instead of it, and compacted again; nothing changes.
    redeliver(&decoder, &raw_keys[0]).await;
    recorder.record();
    let from = recorder.states.lock().unwrap().len() - 1;
    compact_twice_answering(&compactor, &recorder, now + 4 * GRACE_US, from, &with_late).await;
    check_compacted(&store);
}
