//! The query API: DataFusion over lake Parquet written by the core library,
//! the router's validation and status codes, the OpenAPI document, and the
//! Athena backend against moto with seeded results.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use canopy::adapters::aws::dynamodb::{
    DynamoAlertLog, DynamoDeviceStateTable, DynamoDirectory, DynamoQuotaCounter, DynamoStateTable,
};
use canopy::domain::access::View;
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kinds;
use canopy::domain::lttb::Point;
use canopy::domain::telemetry::Telemetry;
use canopy::format::dbc::SignalValue;
use canopy::format::lake::compact::BatchCopy;
use canopy::format::lake::decoded::{DecodedWriter, DecodedWriterOptions};
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::state::LatestStateStore;
use canopy_api::access::AccessPolicy;
use canopy_api::history::athena::{AthenaHistory, Polling};
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_api::history::plan::{Plan, Reduced, plan, reduce};
use canopy_api::history::{FleetStat, History, HistoryError, SignalRef, Sql, TimeRange, TripRow};
use canopy_api::quota::HistoryQuota;
use canopy_api::{Api, OPENAPI, catalogs, router};
use canopy_local::resources::{alerts_table, device_state_table, fleet_index_table, quota_table, state_table};
use canopy_tests::fixtures;
use canopy_tests::local;
use canopy_tests::messages;
use chrono::NaiveDate;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::http;

const DAY1_US: i64 = 1_699_920_000_000_000; // 2023-11-14T00:00:00Z
const DAY_US: i64 = 86_400_000_000;
const MESSAGE: &str = "BMS_PackStatus";
const SIGNAL: &str = "PackCurrent";

/// A decoded lake object at `decoded/vehicle_id=<v>/date=<d>/<name>` holding `points` of MESSAGE.SIGNAL
/// and, beside them, another signal of the same message; and its rollup tiers'
/// objects, as the decoder writes them.
fn write_decoded(root: &Path, vehicle: &str, date: &str, name: &str, points: &[Point]) {
    let db = fixtures::database();
    let (index, message) = db
        .messages()
        .iter()
        .enumerate()
        .find(|(_, m)| m.name == MESSAGE)
        .unwrap();
    let signal = message.signal_index(SIGNAL).unwrap() as u16;
    let other = (0..message.signals.len() as u16).find(|&s| s != signal).unwrap();
    let partition = format!("vehicle_id={vehicle}/date={date}");
    let dir = root.join(format!("decoded/{partition}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join(name)).unwrap();
    let options = DecodedWriterOptions {
        rollups: true,
        ..DecodedWriterOptions::default()
    };
    let stem = name.trim_end_matches(".parquet");
    let mut writer = DecodedWriter::new(&db, file, name, &BatchCopy::new(stem, 1), options).unwrap();
    for p in points {
        let values = [
            SignalValue { signal, value: p.value },
            SignalValue {
                signal: other,
                value: -1.0,
            },
        ];
        writer.push(p.ts_us, index, None, &values).unwrap();
    }
    let (_, _, tiers) = writer.finish_with_rollups().unwrap();
    for tier in tiers {
        let dir = root.join(format!("{}{partition}", tier.tier.prefix));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), tier.bytes).unwrap();
    }
}

/// Mean and population standard deviation, two passes in f64, as numpy computes them.
fn exact_stats(points: &[Point]) -> (f64, f64, f64, f64) {
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.value).sum::<f64>() / n;
    let var = points.iter().map(|p| (p.value - mean).powi(2)).sum::<f64>() / n;
    let min = points.iter().map(|p| p.value).fold(f64::INFINITY, f64::min);
    let max = points.iter().map(|p| p.value).fold(f64::NEG_INFINITY, f64::max);
    (min, max, mean, var.sqrt())
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Reduces `range` to `max_points` with `history`, as a chart does.
async fn reduced<H: History>(
    history: &H,
    vehicle: &str,
    range: TimeRange,
    max_points: usize,
) -> Result<Reduced, HistoryError> {
    history
        .reduced(&veh(vehicle), &signal(), &plan(range, max_points))
        .await
}

fn wave(start_us: i64, n: usize, step_us: i64, scale: f64) -> Vec<Point> {
    (0..n)
        .map(|i| Point {
            ts_us: start_us + i as i64 * step_us,
            value: scale * ((i as f64 / 300.0).sin() * 100.0).round() / 10.0,
        })
        .collect()
}

fn signal() -> SignalRef {
    SignalRef {
        message_name: MESSAGE.into(),
        signal_name: SIGNAL.into(),
    }
}

fn veh(id: &str) -> DeviceId {
    DeviceId::new(id).unwrap()
}

/// Two days of veh-01 at 10 Hz, a day of veh-02, and corrupt objects where a
/// query of veh-01 on those two days must never look.
fn lake() -> (tempfile::TempDir, Vec<Point>, Vec<Point>) {
    let root = tempfile::tempdir().unwrap();
    let day1 = wave(DAY1_US + 3_600_000_000, 36_000, 100_000, 1.0);
    let day2 = wave(DAY1_US + DAY_US, 36_000, 100_000, 2.0);
    write_decoded(root.path(), "veh-01", "2023-11-14", "a.parquet", &day1);
    write_decoded(root.path(), "veh-01", "2023-11-15", "b.parquet", &day2);
    write_decoded(
        root.path(),
        "veh-02",
        "2023-11-14",
        "c.parquet",
        &wave(DAY1_US, 1000, 1_000_000, -1.0),
    );
    for bad in [
        "decoded/vehicle_id=veh-03/date=2023-11-14",
        "decoded/vehicle_id=veh-01/date=2023-11-20",
        "rollup_1s/vehicle_id=veh-03/date=2023-11-14",
        "rollup_1s/vehicle_id=veh-01/date=2023-11-20",
        "rollup_10s/vehicle_id=veh-01/date=2023-11-20",
        "rollup_1m/vehicle_id=veh-01/date=2023-11-20",
    ] {
        std::fs::create_dir_all(root.path().join(bad)).unwrap();
        std::fs::write(root.path().join(bad).join("bad.parquet"), b"not parquet at all").unwrap();
    }
    std::fs::create_dir_all(root.path().join("telemetry")).unwrap();
    (root, day1, day2)
}

#[tokio::test]
async fn datafusion_answers_from_the_right_tier_and_reads_only_the_partitions_asked_for() {
    let (root, day1, day2) = lake();
    let history = DataFusionHistory::local(root.path()).await.unwrap();

    // Ten seconds: the decoded values, exact, in order.
    let from = day1[500].ts_us;
    let range = TimeRange::new(from, from + 10_000_000).unwrap();
    assert_eq!(plan(range, 1000).source.name(), "decoded");
    let answer = reduced(&history, "veh-01", range, 1000).await.unwrap();
    assert_eq!(answer.points, day1[500..600]);

    // Both days from the 1 min tier: each bucket's lowest and highest are the
    // raw data's, and the statistics are those of every raw value.
    let range = TimeRange::new(DAY1_US, DAY1_US + 2 * DAY_US).unwrap();
    let p = plan(range, 1000);
    assert_eq!(p.source.name(), "rollup_1m");
    let answer = reduced(&history, "veh-01", range, 1000).await.unwrap();
    let all: Vec<Point> = day1.iter().chain(&day2).copied().collect();
    for bucket in
        all.chunk_by(|a, b| (a.ts_us - p.range.from_us) / p.bucket_us == (b.ts_us - p.range.from_us) / p.bucket_us)
    {
        let (lo, hi, _, _) = exact_stats(bucket);
        let (start, end) = (bucket[0].ts_us, bucket[bucket.len() - 1].ts_us);
        let drawn: Vec<f64> = answer
            .points
            .iter()
            .filter(|q| (start..=end).contains(&q.ts_us))
            .map(|q| q.value)
            .collect();
        assert!(
            drawn.contains(&lo) && drawn.contains(&hi),
            "bucket at {start}: {drawn:?}"
        );
        assert!(drawn.len() <= 4);
    }
    let stats = answer.stats.unwrap();
    let (min, max, mean, stddev) = exact_stats(&all);
    assert_eq!((stats.count, stats.min, stats.max), (all.len() as u64, min, max));
    assert!(
        close(stats.mean, mean) && close(stats.stddev, stddev),
        "{stats:?} vs {mean} {stddev}"
    );

    // A quarter hour of veh-02 at one value a second: the 1 s tier, point for point.
    let range = TimeRange::new(DAY1_US, DAY1_US + 1000 * 1_000_000).unwrap();
    assert_eq!(plan(range, 1000).source.name(), "rollup_1s");
    let answer = reduced(&history, "veh-02", range, 1000).await.unwrap();
    assert_eq!(answer.points, wave(DAY1_US, 1000, 1_000_000, -1.0));

    // Touching the corrupt objects fails: pruning is what kept the queries above clean.
    let later = TimeRange::new(DAY1_US + 6 * DAY_US, DAY1_US + 7 * DAY_US).unwrap();
    let err = reduced(&history, "veh-01", later, 1000).await.unwrap_err();
    assert!(matches!(err, HistoryError::Failed { .. }), "{err:?}");
    let nothing = reduced(&history, "veh-09", range, 1000).await.unwrap();
    assert!(nothing.points.is_empty() && nothing.stats.is_none());
}

#[tokio::test]
async fn fleet_stats_come_from_the_telemetry_archive() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("decoded")).unwrap();
    let messages: Vec<Telemetry> = (0..120)
        .map(|i| {
            let vehicle = if i % 2 == 0 { "veh-01" } else { "veh-02" };
            let sample = messages::telemetry(vehicle, i as u64, 1_699_920_000 + i * 60);
            let fields = json!({"soc_pct": 50.0 + i as f64 / 10.0, "pack_current_a": i as f64,
                "cell_temp_max_c": 30.0 + (i % 7) as f64, "speed_kph": 10.0});
            Telemetry::from_json(&messages::with(sample, fields)).unwrap()
        })
        .collect();
    write_archive(root.path(), "2023-11-14", &messages);
    let history = DataFusionHistory::local(root.path()).await.unwrap();
    let stats: Vec<FleetStat> = history
        .fleet_stats(NaiveDate::from_ymd_opt(2023, 11, 14).unwrap())
        .await
        .unwrap();
    // Two vehicles, two hours (60 messages an hour, alternating vehicles).
    assert_eq!(stats.len(), 4);
    assert_eq!(stats[0].vehicle_id, "veh-01");
    assert_eq!(stats[0].hour, "2023-11-14T00:00:00+00:00");
    assert_eq!(stats[0].messages, 30);
    assert_eq!(stats[0].pack_current_a_min, 0.0);
    assert_eq!(stats[0].pack_current_a_max, 58.0);
    assert_eq!(stats[3].vehicle_id, "veh-02");
    assert_eq!(stats[3].pack_current_a_max, 119.0);
    assert!(
        history
            .fleet_stats(NaiveDate::from_ymd_opt(2023, 11, 15).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A telemetry message of `vehicle` at `ts_s` with the measures a trip integrates.
fn sample(vehicle: &str, seq: i64, ts_s: i64, speed_kph: f64, current_a: f64, soc_pct: f64, temp_c: f64) -> Telemetry {
    let fields = json!({"soc_pct": soc_pct, "pack_voltage_v": 400.0, "pack_current_a": current_a,
        "cell_temp_max_c": temp_c, "speed_kph": speed_kph});
    Telemetry::from_json(&messages::with(messages::telemetry(vehicle, seq as u64, ts_s), fields)).unwrap()
}

/// `messages` as the telemetry archive's object of `date` under `root`.
fn write_archive(root: &Path, date: &str, messages: &[Telemetry]) {
    let dir = root.join(format!("telemetry/date={date}"));
    std::fs::create_dir_all(&dir).unwrap();
    let rows: Vec<&Telemetry> = messages.iter().collect();
    std::fs::write(
        dir.join("batch.parquet"),
        canopy::format::lake::archive::write(&rows, "batch").unwrap(),
    )
    .unwrap();
}

/// The SQL of each fenced `sql` block of `docs/athena-queries.md`.
fn analysts_queries() -> Vec<String> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/athena-queries.md")).unwrap();
    page.split("```sql\n")
        .skip(1)
        .map(|block| {
            block
                .split("```")
                .next()
                .unwrap()
                .trim()
                .trim_end_matches(';')
                .to_string()
        })
        .collect()
}

/// The queries the analysts' page shows for Athena run on DataFusion, as
/// written but for the database, the vehicle and the day: they stay in the
/// SQL both engines speak, and each finds what it asks for.
#[tokio::test]
async fn the_analysts_queries_run_on_datafusion() {
    let (root, _, _) = lake();
    let messages: Vec<Telemetry> = (0..60)
        .map(|i| {
            let sample = messages::telemetry("veh-01", i as u64, 1_699_920_000 + i * 60);
            let fields = json!({"soc_pct": 80.0 - i as f64 / 10.0, "pack_current_a": i as f64,
                "cell_temp_max_c": 30.0 + (i % 7) as f64, "speed_kph": 50.0});
            Telemetry::from_json(&messages::with(sample, fields)).unwrap()
        })
        .collect();
    write_archive(root.path(), "2023-11-14", &messages);
    let history = DataFusionHistory::local(root.path()).await.unwrap();
    let queries = analysts_queries();
    assert!(queries.len() >= 5, "the page's queries: {queries:?}");
    for query in queries {
        let text = query
            .replace("canopy_canopy.", "")
            .replace("'veh-001'", "'veh-01'")
            .replace("'2026-11-23'", "'2023-11-14'");
        let rows: usize = history
            .run(&Sql {
                text,
                params: Vec::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("{query}\n{e}"))
            .iter()
            .map(|b| b.num_rows())
            .sum();
        // The lake holds what each asks for (its second signal, at -1, is out of range).
        assert!(rows > 0, "no rows of {query}");
    }
}

/// 2023-11-14T23:30:00Z, when both vehicles of [`two_drives`] set off.
const DRIVES_T0: i64 = 1_700_004_600;

/// veh-01 drives twice, by hand:
/// - 23:30:00-23:40:00 at 36 km/h drawing 400 V x 50 A, with a 2 min stop
///   (no messages 23:33:20-23:35:20): 6 km, 20 kW x 600 s = 3.333 kWh out;
/// - 23:55:00-00:00:00 accelerating evenly from 0 to 120 km/h while
///   regenerating 400 V x -100 A: 5 km, 40 kW x 300 s = 3.333 kWh in. It
///   ends on the next day's partition.
///
/// veh-02 drives at the same times, faster; it is not veh-01's. The archive
/// of both, and the two days around the drives.
async fn two_drives() -> (tempfile::TempDir, DataFusionHistory, TimeRange) {
    let t0 = DRIVES_T0;
    let mut day1 = Vec::new();
    let mut day2 = Vec::new();
    for i in (0..=600).filter(|i| !(201..320).contains(i)) {
        day1.push(sample(
            "veh-01",
            i,
            t0 + i,
            36.0,
            50.0,
            80.0 - i as f64 / 100.0,
            30.0 + (i % 5) as f64,
        ));
        day1.push(sample("veh-02", i, t0 + i, 99.0, 10.0, 50.0, 44.0));
    }
    for i in 0..=300 {
        let m = sample(
            "veh-01",
            1_000 + i,
            t0 + 1_500 + i,
            120.0 * i as f64 / 300.0,
            -100.0,
            74.0 + i as f64 / 100.0,
            33.0,
        );
        if m.ts_us() < 1_700_006_400_000_000 {
            day1.push(m)
        } else {
            day2.push(m)
        }
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("decoded")).unwrap();
    write_archive(root.path(), "2023-11-14", &day1);
    write_archive(root.path(), "2023-11-15", &day2);
    let history = DataFusionHistory::local(root.path()).await.unwrap();
    let days = TimeRange::new(1_699_920_000_000_000, 1_700_092_800_000_000).unwrap();
    (root, history, days)
}

#[tokio::test]
async fn trips_are_split_by_gaps_and_integrated_from_the_telemetry_archive() {
    let (_root, history, days) = two_drives().await;
    let t0 = DRIVES_T0;
    let trips = history.trips(&veh("veh-01"), days, 300_000_000).await.unwrap();
    assert_eq!(trips.len(), 2, "{trips:#?}");
    let (a, b) = (trips[0], trips[1]);
    assert_eq!(
        (a.start_us, a.end_us, a.samples),
        (t0 * 1_000_000, (t0 + 600) * 1_000_000, 482)
    );
    assert!(close(a.distance_km, 6.0), "{}", a.distance_km);
    assert!(
        close(a.energy_out_kwh, 20_000.0 * 600.0 / 3.6e6),
        "{}",
        a.energy_out_kwh
    );
    assert_eq!(
        (a.energy_in_kwh, a.soc_start_pct, a.soc_end_pct, a.cell_temp_max_c),
        (0.0, 80.0, 74.0, 34.0)
    );
    assert_eq!(
        (b.start_us, b.end_us, b.samples),
        ((t0 + 1_500) * 1_000_000, (t0 + 1_800) * 1_000_000, 301)
    );
    assert!(close(b.distance_km, 5.0), "{}", b.distance_km);
    assert!(close(b.energy_in_kwh, 40_000.0 * 300.0 / 3.6e6), "{}", b.energy_in_kwh);
    assert_eq!((b.energy_out_kwh, b.soc_start_pct, b.soc_end_pct), (0.0, 74.0, 77.0));
}

#[tokio::test]
async fn a_gap_of_a_minute_splits_a_drive_at_its_stop() {
    let (_root, history, days) = two_drives().await;
    let split = history.trips(&veh("veh-01"), days, 60_000_000).await.unwrap();
    assert_eq!(split.len(), 3);
    // The stop's 120 s count in neither half.
    assert!(close(split[0].distance_km + split[1].distance_km, 6.0 * 480.0 / 600.0));
}

#[tokio::test]
async fn a_range_that_cuts_a_trip_integrates_only_its_part() {
    let (_root, history, days) = two_drives().await;
    // From 23:35:20, the first drive is its last 280 s.
    let cut = TimeRange::new((DRIVES_T0 + 320) * 1_000_000, days.to_us).unwrap();
    let trips = history.trips(&veh("veh-01"), cut, 300_000_000).await.unwrap();
    assert_eq!(trips[0].start_us, (DRIVES_T0 + 320) * 1_000_000);
    assert!(close(trips[0].distance_km, 36.0 * 280.0 / 3600.0));
}

#[tokio::test]
async fn a_vehicle_that_did_not_drive_has_no_trips() {
    let (_root, history, days) = two_drives().await;
    assert!(
        history
            .trips(&veh("veh-03"), days, 300_000_000)
            .await
            .unwrap()
            .is_empty()
    );
}

/// DataFusion, counting the queries that reach it.
struct Counting {
    inner: DataFusionHistory,
    queries: AtomicUsize,
}

impl History for Counting {
    async fn reduced(&self, vehicle: &DeviceId, signal: &SignalRef, plan: &Plan) -> Result<Reduced, HistoryError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.inner.reduced(vehicle, signal, plan).await
    }
    async fn fleet_stats(&self, date: NaiveDate) -> Result<Vec<FleetStat>, HistoryError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.inner.fleet_stats(date).await
    }
    async fn trips(&self, vehicle: &DeviceId, range: TimeRange, gap_us: i64) -> Result<Vec<TripRow>, HistoryError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.inner.trips(vehicle, range, gap_us).await
    }
    async fn device_points(
        &self,
        kind: &canopy::domain::kind::Kind,
        id: &DeviceId,
        field: &str,
        range: TimeRange,
    ) -> Result<Vec<canopy::domain::lttb::Point>, HistoryError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.inner.device_points(kind, id, field, range).await
    }
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 26).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The router over [`lake`] (its history counted) and DynamoDB tables on
/// moto, veh-01's latest state in them; the lake is gone with it.
struct Routed {
    app: axum::Router,
    history: Arc<Counting>,
    day1: Vec<Point>,
    _lake: tempfile::TempDir,
}

async fn routed() -> Routed {
    let (root, day1, _) = lake();
    let dynamodb = local::dynamodb().await;
    let state = DynamoStateTable::new(dynamodb.clone(), &local::table(state_table, "api-state").await);
    let fields = json!({"soc_pct": 71.5, "pack_current_a": 12.0, "speed_kph": 88.0});
    // 2023-11-15T00:59:59Z
    let latest =
        Telemetry::from_json(&messages::with(messages::telemetry("veh-01", 7, 1_700_009_999), fields)).unwrap();
    let latest = Telemetry {
        received_at_ms: Some(1),
        ..latest
    };
    let index = local::table(fleet_index_table, "api-index").await;
    let directory = DynamoDirectory::new(dynamodb.clone(), &index);
    let standing = canopy::domain::standing::Standing::of(&latest);
    directory
        .enter(&latest.vehicle_id, &[View::All], standing)
        .await
        .unwrap();
    state.put_if_newer(&latest, 2).await.unwrap();
    let history = Arc::new(Counting {
        inner: DataFusionHistory::local(root.path()).await.unwrap(),
        queries: AtomicUsize::new(0),
    });
    let api = Arc::new(Api {
        history: history.clone(),
        raw: Arc::new(canopy_api::raw::MemoryRaw::default()),
        state: Arc::new(state),
        directory: Arc::new(directory),
        alerts: Arc::new(DynamoAlertLog::new(
            dynamodb.clone(),
            &local::table(alerts_table, "api-alerts").await,
            &index,
        )),
        devices: Arc::new(DynamoDeviceStateTable::new(
            dynamodb.clone(),
            &local::table(device_state_table, "api-devices").await,
        )),
        kinds: Kinds::builtin(),
        catalogs: Box::new(Arc::new(catalogs::built_in().unwrap())),
        access: AccessPolicy::default(),
        quota_counter: Arc::new(DynamoQuotaCounter::new(
            dynamodb,
            &local::table(quota_table, "api-quota").await,
        )),
        history_quota: HistoryQuota { per_minute: 1_000 },
        console: Default::default(),
        history_deadline: std::time::Duration::from_secs(25),
        cursors: canopy_api::cursor::Cursors::ephemeral(),
    });
    Routed {
        app: router(api),
        history,
        day1,
        _lake: root,
    }
}

#[tokio::test]
async fn the_router_answers_health_states_alerts_and_signals() {
    let Routed { app, _lake, .. } = routed().await;
    assert_eq!(
        call(&app, "GET", "/health", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (status, body) = call(&app, "GET", "/vehicles/veh-01", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["seq"].clone(), body["soc_pct"].clone()), (json!(7), json!(71.5)));
    let (status, body) = call(&app, "GET", "/vehicles", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["vehicles"][0]["vehicle_id"], "veh-01");
    let (status, body) = call(&app, "GET", "/vehicles/veh-77", None).await;
    assert_eq!(
        (status, body["error"]["status"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    let (status, body) = call(&app, "GET", "/vehicles/veh-01/alerts", None).await;
    assert_eq!((status, body["alerts"].clone()), (StatusCode::OK, json!([])));
    let (_, body) = call(&app, "GET", "/signals", None).await;
    assert!(
        body["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["signal"] == SIGNAL && s["unit"] == "A")
    );
}

#[tokio::test]
async fn the_router_charts_history_exact_for_a_short_range_and_downsampled_for_a_long_one() {
    let Routed {
        app,
        history,
        day1,
        _lake,
    } = routed().await;
    let uri = format!("/vehicles/veh-01/signals/{MESSAGE}/{SIGNAL}?from=2023-11-14T01:00:00Z&to=2023-11-14T01:00:01Z");
    let (status, body) = call(&app, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let points = body["series"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 10);
    assert_eq!(points[3]["value"], json!(day1[3].value));
    let uri = format!(
        "/vehicles/veh-01/signals/{MESSAGE}/{SIGNAL}?from=2023-11-14T00:00:00Z&to=2023-11-16T00:00:00Z&max_points=500"
    );
    let (_, body) = call(&app, "GET", &uri, None).await;
    // Two hours of data in 6 min buckets of the 1 min tier: 20 buckets, at most 4 points each.
    let drawn = body["series"]["points"].as_array().unwrap().len();
    assert!((40..=80).contains(&drawn), "{drawn}");
    assert_eq!(body["series"]["downsampled"], true);
    assert_eq!(
        body["series"]["stats"]["count"], 72_000,
        "statistics of every value, not of the points drawn"
    );
    assert_eq!(body["series"]["stats"]["source"], "rollup_1m");
    let query = json!({"signals": [{"message_name": MESSAGE, "signal_name": SIGNAL}],
        "start_time": "2023-11-14T00:00:00Z", "end_time": "2023-11-15T00:00:00Z", "max_points": 100});
    let (status, body) = call(&app, "POST", "/vehicles/veh-01/query", Some(query)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An hour of data in 15 min buckets: 4 buckets, their first, lowest, highest and last points.
    let drawn = body["series"][0]["points"].as_array().unwrap().len();
    assert!((8..=16).contains(&drawn), "{drawn}");
    assert_eq!(body["series"][0]["stats"]["count"], 36_000);
    let (status, body) = call(&app, "GET", "/fleet/stats?date=2023-11-14", None).await;
    assert_eq!((status, body["stats"].clone()), (StatusCode::OK, json!([])));
    assert_eq!(history.queries.load(Ordering::SeqCst), 4);
}

/// A history route's URI: vehicle `id`, message `m`, signal `s`, query `q`.
fn history_uri(id: &str, m: &str, s: &str, q: &str) -> String {
    format!("/vehicles/{id}/signals/{m}/{s}?{q}")
}

/// Requests with one bad input each, and the field a 400 names for it.
fn bad_requests() -> Vec<(&'static str, String, Option<Value>, &'static str)> {
    vec![
        (
            "GET",
            history_uri("veh-01'%20OR%20'1'='1", MESSAGE, SIGNAL, ""),
            None,
            "id",
        ),
        (
            "GET",
            history_uri("veh-01", MESSAGE, "PackCurrent;DROP", ""),
            None,
            "signal",
        ),
        ("GET", history_uri("veh-01", "No-pe", SIGNAL, ""), None, "message"),
        (
            "GET",
            history_uri("veh-01", MESSAGE, SIGNAL, "from=yesterday"),
            None,
            "from",
        ),
        (
            "GET",
            history_uri("veh-01", MESSAGE, SIGNAL, "max_points=1000000"),
            None,
            "max_points",
        ),
        (
            "GET",
            history_uri("veh-01", MESSAGE, SIGNAL, "max_points=-3"),
            None,
            "max_points",
        ),
        ("GET", "/fleet/stats?date=2023-11-14';--".to_string(), None, "date"),
        ("GET", "/vehicles?limit=100000".to_string(), None, "limit"),
        (
            "POST",
            "/vehicles/veh-01/query".to_string(),
            Some(json!({"signals": []})),
            "signals",
        ),
        (
            "POST",
            "/vehicles/veh-01/query".to_string(),
            Some(json!({"signals": [{"message_name": "", "signal_name": "y"}]})),
            "message",
        ),
        (
            "POST",
            "/vehicles/veh-01/query".to_string(),
            Some(json!({"sql": "SELECT 1"})),
            "body",
        ),
    ]
}

#[tokio::test]
async fn bad_input_is_refused_naming_its_field_and_runs_no_query() {
    let Routed {
        app, history, _lake, ..
    } = routed().await;
    for (method, uri, body, field) in bad_requests() {
        let (status, answer) = call(&app, method, &uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{uri}: {answer}");
    }
    // A message or signal the catalog lacks is a resource that does not exist.
    for (method, uri, body) in [
        ("GET", history_uri("veh-01", "Nope", SIGNAL, ""), None),
        ("GET", history_uri("veh-01", MESSAGE, "Nope", ""), None),
        (
            "POST",
            "/vehicles/veh-01/query".to_string(),
            Some(json!({"signals": [{"message_name": "x", "signal_name": "y"}]})),
        ),
    ] {
        let (status, answer) = call(&app, method, &uri, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {answer}");
        assert_eq!(answer["error"]["field"], "signal", "{uri}: {answer}");
    }
    assert_eq!(history.queries.load(Ordering::SeqCst), 0, "bad input ran a query");
    let (status, _) = call(&app, "GET", "/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Every (method, path) the OpenAPI document lists, sorted.
fn documented(doc: &Value) -> Vec<(String, String)> {
    let mut documented = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    documented
}

/// The ingest function's router on the memory adapters.
fn ingest_router() -> axum::Router {
    let ingest = canopy_ingest::service::HttpIngest::new(
        canopy::adapters::memory::MemoryKeyStore::default(),
        canopy::adapters::memory::MemoryQueue::default(),
        canopy::adapters::memory::MemoryLedger::default(),
        canopy::adapters::memory::MemoryQuotaCounter::default(),
        canopy_ingest::service::AlertRoute {
            publisher: canopy::adapters::memory::MemoryDevicePublisher::default(),
            rule_name: "AlertsTopicRule".into(),
            rules: canopy::domain::alert::vehicle_rules(),
        },
        canopy_ingest::service::IngestOptions::default(),
    );
    canopy_ingest::router::router(std::sync::Arc::new(ingest))
}

#[tokio::test]
async fn the_openapi_document_is_served_and_every_route_it_lists_is_answered() {
    let Routed { app, _lake, .. } = routed().await;
    // Served as generated (and as written to openapi.json, which the api
    // crate's own test holds to the code).
    let (status, served) = call(&app, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    assert!(doc["paths"]["/stations/{id}/history/{field}"].is_object());
    // Served by the local stack (no sign-in): the same, without the security requirement.
    assert!(doc["security"].is_array() && served.get("security").is_none());
    assert_eq!(served["paths"], doc["paths"]);
    assert_eq!(served["components"], doc["components"]);
    let documented = documented(&doc);
    // The document is the API Gateway's: the ingest function's route is on it too.
    let app = app.merge(ingest_router());
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "veh-01")
            .replace("{field}", "batteries_available")
            .replace("{message}", MESSAGE)
            .replace("{signal}", SIGNAL);
        let body = (method == "POST").then(|| json!({"signals": [{"message_name": MESSAGE, "signal_name": SIGNAL}]}));
        let (status, answer) = call(&app, method, &concrete, body).await;
        let fallback = status == StatusCode::NOT_FOUND
            && answer["error"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("no such route");
        assert!(
            !fallback && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status}"
        );
    }
    // The ingest function's route is documented and answered too.
    for (method, path) in canopy_ingest::router::ROUTES {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not documented"
        );
    }
}

/// The columns of a chart query's answer (`series_sql`).
fn series_columns() -> [&'static str; 18] {
    canopy_api::history::plan::SERIES_COLUMNS.map(|(name, _)| name)
}

/// What moto's Athena answers the next query with: `rows`, as text.
async fn seed_athena(rows: &[&[&str]]) {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| json!({"Data": r.iter().map(|v| json!({"VarCharValue": v})).collect::<Vec<_>>()}))
        .collect();
    let columns = series_columns();
    let info: Vec<Value> = columns.iter().map(|c| json!({"Name": c, "Type": "varchar"})).collect();
    let body = json!({"region": "us-east-1", "results": [{"rows": rows, "column_info": info}]});
    let answer = http::post(&local::moto().endpoint, "/moto-api/static/athena/query-results")
        .json(&body)
        .send()
        .await;
    assert_eq!(answer.status, 201);
}

/// moto's queries QUEUED and RUNNING for `manual_times` polls each, or
/// finishing at once (`None`).
async fn athena_transition(manual_times: Option<u32>) {
    let (path, body) = match manual_times {
        Some(times) => (
            "/moto-api/state-manager/set-transition",
            json!({"model_name": "athena::execution", "transition": {"progression": "manual", "times": times}}),
        ),
        None => (
            "/moto-api/state-manager/unset-transition",
            json!({"model_name": "athena::execution"}),
        ),
    };
    let status = http::post(&local::moto().endpoint, path)
        .json(&body)
        .send()
        .await
        .status;
    assert!(status < 300, "{path}: {status}");
}

/// The Athena backend on a workgroup of its own, polling fast.
async fn athena_history(sdk: &aws_config::SdkConfig, athena: &aws_sdk_athena::Client) -> (AthenaHistory, String) {
    let workgroup = local::unique("wg");
    athena.create_work_group().name(&workgroup).send().await.unwrap();
    let history = AthenaHistory::new(sdk, &workgroup, "canopy_lake")
        .with_output("s3://results/")
        .with_polling(Polling {
            first: Duration::from_millis(10),
            max: Duration::from_millis(40),
            deadline: Duration::from_secs(5),
        });
    (history, workgroup)
}

/// Polled through QUEUED and RUNNING; header row dropped; flagged rows become points.
async fn check_polls_and_parses(history: &AthenaHistory, chart: &Plan) {
    athena_transition(Some(2)).await;
    seed_athena(&[
        &series_columns(),
        &[
            "1", "1", "2", "1", "100", "1.5", "900", "2.5", "400", "-3.0", "800", "7.25", "20", "-3.0", "7.25", "2.0",
            "10.0", "4",
        ],
        &[
            "1", "1", "1", "1", "1000", "2.0", "1900", "2.0", "1000", "2.0", "1900", "2.0", "20", "-3.0", "7.25",
            "2.0", "10.0", "4",
        ],
        &[
            "2", "3", "1", "2", "1200", "9.0", "1300", "9.0", "1250", "1.0", "1200", "9.0", "20", "-3.0", "7.25",
            "2.0", "10.0", "4",
        ],
    ])
    .await;
    let answer = history.reduced(&veh("veh-01"), &signal(), chart).await.unwrap();
    let pairs: Vec<(i64, f64)> = answer.points.iter().map(|p| (p.ts_us, p.value)).collect();
    assert_eq!(
        pairs,
        [
            (100, 1.5),
            (800, 7.25),
            (900, 2.5),
            (1000, 2.0),
            (1250, 1.0),
            (1900, 2.0)
        ]
    );
    let stats = answer.stats.unwrap();
    assert_eq!((stats.count, stats.min, stats.max, stats.mean), (20, -3.0, 7.25, 2.0));
    assert!(close(stats.stddev, 0.5f64.sqrt()));
    assert_eq!(stats.out_of_range, 4);
}

/// What reached Athena: the text with placeholders, the values as quoted
/// literals, the lake's database. The text and the parameters.
async fn check_what_reached_athena(athena: &aws_sdk_athena::Client, workgroup: &str) -> (String, Vec<String>) {
    let ids = athena
        .list_query_executions()
        .work_group(workgroup)
        .send()
        .await
        .unwrap();
    let id = ids.query_execution_ids()[0].clone();
    let execution = athena
        .get_query_execution()
        .query_execution_id(&id)
        .send()
        .await
        .unwrap();
    let execution = execution.query_execution().unwrap();
    let text = execution.query().unwrap();
    assert!(
        text.contains("FROM rollup_10s WHERE vehicle_id = ? AND \"date\" BETWEEN ? AND ?"),
        "{text}"
    );
    assert!(!text.contains("veh-01"));
    let from = DAY1_US + 3_600_000_000;
    let expected: Vec<String> = vec![
        "'veh-01'".into(),
        "'2023-11-14'".into(),
        "'2023-11-14'".into(),
        format!("'{MESSAGE}'"),
        format!("'{SIGNAL}'"),
        from.to_string(),
        (from + 3_600_000_000).to_string(),
        from.to_string(),
        "10000000".into(),
    ];
    assert_eq!(execution.execution_parameters(), expected);
    assert_eq!(
        execution.query_execution_context().unwrap().database(),
        Some("canopy_lake")
    );
    (text.to_string(), execution.execution_parameters().to_vec())
}

/// That exact text and those parameters, as Athena pastes them, run on a SQL
/// engine (DataFusion) over the decoder's objects: the local backend's answer.
async fn check_the_text_runs_as_the_local_backend(text: &str, parameters: &[String], chart: &Plan) {
    let (root, day1, _) = lake();
    let local = DataFusionHistory::local(root.path()).await.unwrap();
    let pasted = canopy_api::history::athena::as_athena_runs_it(text, parameters);
    let batches = local
        .run(&Sql {
            text: pasted,
            params: vec![],
        })
        .await
        .unwrap();
    let rows = canopy_api::history::datafusion::bucket_rows(&batches).unwrap();
    let athenas = reduce(chart, &rows);
    let locals = local.reduced(&veh("veh-01"), &signal(), chart).await.unwrap();
    assert!(athenas.points == locals.points, "the same points");
    let (a, l) = (athenas.stats.unwrap(), locals.stats.unwrap());
    // Sums may add in another order across partitions: equal to the last few bits.
    assert_eq!((a.count, a.min, a.max), (l.count, l.min, l.max));
    assert!(close(a.mean, l.mean) && close(a.stddev, l.stddev), "{a:?} {l:?}");
    assert_eq!(a.count, 36_000);
    let (_, _, mean, stddev) = exact_stats(&day1);
    assert!(close(a.mean, mean) && close(a.stddev, stddev), "{a:?}: {mean} {stddev}");
}

/// Unparseable results are a failure, not garbage points.
async fn check_unparseable_results_fail(history: &AthenaHistory, chart: &Plan) {
    athena_transition(None).await;
    seed_athena(&[&[
        "1", "1", "1", "1", "x", "1", "2", "y", "3", "z", "4", "w", "1", "1", "1", "1", "0",
    ]])
    .await;
    let err = history.reduced(&veh("veh-01"), &signal(), chart).await.unwrap_err();
    assert!(
        matches!(&err, HistoryError::Failed { message, .. } if message.contains("not a number")),
        "{err:?}"
    );
}

/// A query that never finishes: cancelled at the deadline, reported with its id, answered 504.
async fn check_a_query_past_its_deadline_is_cancelled(
    history: &AthenaHistory,
    athena: &aws_sdk_athena::Client,
    chart: &Plan,
) {
    athena_transition(Some(1_000_000)).await;
    let slow = history.clone().with_polling(Polling {
        first: Duration::from_millis(10),
        max: Duration::from_millis(50),
        deadline: Duration::from_millis(400),
    });
    let err = slow.reduced(&veh("veh-01"), &signal(), chart).await.unwrap_err();
    let HistoryError::Timeout { query_id, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(query_state(athena, query_id).await, "CANCELLED");
    let app = athena_app(slow, Duration::from_secs(25)).await;
    let uri = format!("/vehicles/veh-01/signals/{MESSAGE}/{SIGNAL}?from=2023-11-14T00:00:00Z&to=2023-11-14T01:00:00Z");
    let (status, body) = call(&app, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body["error"]["query_id"].as_str().is_some_and(|id| !id.is_empty()));
}

/// Several signals run at once under the request's deadline, shorter than
/// each query's own: at it, every query is stopped and named. (Queries
/// still never finish, as [`check_a_query_past_its_deadline_is_cancelled`]
/// left moto.)
async fn check_a_requests_deadline_stops_and_names_every_query(
    history: &AthenaHistory,
    athena: &aws_sdk_athena::Client,
) {
    let app = athena_app(history.clone(), Duration::from_millis(500)).await;
    let query = json!({"signals": [{"message_name": MESSAGE, "signal_name": SIGNAL},
        {"message_name": MESSAGE, "signal_name": "PackVoltage"}],
        "start_time": "2023-11-14T00:00:00Z", "end_time": "2023-11-14T01:00:00Z"});
    let (status, body) = call(&app, "POST", "/vehicles/veh-01/query", Some(query)).await;
    athena_transition(None).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let ids = body["error"]["query_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2, "{body}");
    for id in ids {
        assert_eq!(query_state(athena, id.as_str().unwrap()).await, "CANCELLED", "{id}");
    }
}

/// The only test that uses Athena: moto's result queue and state manager are
/// global, so its steps run in turn in one test rather than in tests of their own.
#[tokio::test]
async fn athena_backend_sends_parameters_polls_parses_and_times_out() {
    let sdk = local::sdk().await;
    let athena = aws_sdk_athena::Client::new(&sdk);
    let (history, workgroup) = athena_history(&sdk, &athena).await;
    // An hour of the lake's veh-01 at 360 points: the 10 s tier, 10 s buckets.
    let range = TimeRange::new(DAY1_US + 3_600_000_000, DAY1_US + 7_200_000_000).unwrap();
    let chart = plan(range, 360);

    check_polls_and_parses(&history, &chart).await;
    let (text, parameters) = check_what_reached_athena(&athena, &workgroup).await;
    check_the_text_runs_as_the_local_backend(&text, &parameters, &chart).await;
    check_unparseable_results_fail(&history, &chart).await;
    check_a_query_past_its_deadline_is_cancelled(&history, &athena, &chart).await;
    check_a_requests_deadline_stops_and_names_every_query(&history, &athena).await;
}

/// The state Athena (moto) reports for a query.
async fn query_state(athena: &aws_sdk_athena::Client, id: &str) -> String {
    let execution = athena
        .get_query_execution()
        .query_execution_id(id)
        .send()
        .await
        .unwrap();
    let status = execution.query_execution().and_then(|q| q.status());
    status
        .and_then(|s| s.state())
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

/// The router over `history` (Athena on moto) and DynamoDB tables on moto.
async fn athena_app(history: AthenaHistory, history_deadline: Duration) -> axum::Router {
    let dynamodb = local::dynamodb().await;
    let index = local::table(fleet_index_table, "api-index").await;
    router(Arc::new(Api {
        history: Arc::new(history),
        raw: Arc::new(canopy_api::raw::MemoryRaw::default()),
        state: Arc::new(DynamoStateTable::new(
            dynamodb.clone(),
            &local::table(state_table, "api-state").await,
        )),
        directory: Arc::new(DynamoDirectory::new(dynamodb.clone(), &index)),
        alerts: Arc::new(DynamoAlertLog::new(
            dynamodb.clone(),
            &local::table(alerts_table, "api-alerts").await,
            &index,
        )),
        devices: Arc::new(DynamoDeviceStateTable::new(
            dynamodb.clone(),
            &local::table(device_state_table, "api-devices").await,
        )),
        kinds: Kinds::builtin(),
        catalogs: Box::new(Arc::new(catalogs::built_in().unwrap())),
        access: AccessPolicy::default(),
        quota_counter: Arc::new(DynamoQuotaCounter::new(
            dynamodb,
            &local::table(quota_table, "api-quota").await,
        )),
        history_quota: HistoryQuota { per_minute: 1_000 },
        console: Default::default(),
        history_deadline,
        cursors: canopy_api::cursor::Cursors::ephemeral(),
    }))
}
