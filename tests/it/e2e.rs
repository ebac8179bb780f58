//! The whole pipeline on the local stack, as `make demo` runs it: canopy-edge
//! agents replay simulated drives into moto and the broker; the template's
//! wiring (S3 → SQS → decoder, IoT rules → telemetry and alerts) does the
//! rest; the API answers from the lake. The simulator's logs are the ground
//! truth every assertion compares with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy::format::candump::CandumpReader;
use canopy::format::dbc::Database;
use canopy_api::history::Sql;
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_local::demo::{FleetOptions, run_fleet, vehicle_id, wait_idle};
use canopy_local::stack::{Stack, StackOptions, latest_states};
use canopy_local::template::topic_arn;
use canopy_tests::local::{self, SnsCapture};
use canopy_tests::mqtt::TelemetrySubscriber;
use serde_json::Value;

use crate::support::http;
use crate::telemetry::archive_rows;
use datafusion_arrow::*;

const VEHICLES: usize = 3;
const SECONDS: u32 = 420;
/// An hour ago, to the second: the functions refuse telemetry whose clock is
/// more than a week behind the server's, so the drive must be recent.
pub(crate) fn recent_start_us() -> i64 {
    (chrono::Utc::now().timestamp() - 3600) * 1_000_000
}

pub(crate) type Counts = BTreeMap<(String, String, String), u64>;

/// `canopy-edge simulate` of `vehicles` drives of `seconds` into `<logs>/veh-NNN.log`, with `extra` arguments.
pub(crate) fn simulate(logs: &Path, vehicles: usize, seconds: u32, start_us: i64, extra: &[&str]) {
    let status = Command::new(local::binary("canopy-edge"))
        .args(["simulate", "--prefix", "veh", "--seed", "5"])
        .args(extra)
        .args(["--vehicles", &vehicles.to_string(), "--duration", &seconds.to_string()])
        .args(["--start-us", &start_us.to_string(), "--dbc"])
        .arg(repo().join("dbc/ev_powertrain.dbc"))
        .arg("--output")
        .arg(logs)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Every signal value of every frame in the drives' logs, counted per vehicle and signal,
/// and one series (veh-002's PackCurrent) to compare the API with.
pub(crate) fn ground_truth(db: &Database, logs: &Path, vehicles: usize) -> (Counts, Vec<(i64, f64)>) {
    let mut counts = Counts::new();
    let mut series = Vec::new();
    let mut values = Vec::new();
    for i in 1..=vehicles {
        let vehicle = vehicle_id(i).to_string();
        let file = std::fs::File::open(logs.join(format!("{vehicle}.log"))).unwrap();
        for frame in CandumpReader::new(std::io::BufReader::new(file), "log") {
            let frame = frame.unwrap();
            let Some(message) = db.lookup(frame.id) else { continue };
            values.clear();
            message.decode(frame.data(), &mut values).unwrap();
            for v in &values {
                let signal = &message.signals[usize::from(v.signal)].name;
                *counts
                    .entry((vehicle.clone(), message.name.clone(), signal.clone()))
                    .or_default() += 1;
                if i == 2 && message.name == "BMS_PackStatus" && signal == "PackCurrent" {
                    series.push((frame.ts_us, v.value));
                }
            }
        }
    }
    (counts, series)
}

pub(crate) async fn lake_counts(stack: &Stack) -> Counts {
    let history = DataFusionHistory::s3(&stack.endpoint, &stack.bucket).await.unwrap();
    let sql = Sql {
        text: "SELECT vehicle_id, message, signal, count(*) FROM decoded GROUP BY 1, 2, 3".into(),
        params: vec![],
    };
    let mut counts = Counts::new();
    for batch in history.run(&sql).await.unwrap() {
        let text = |i: usize| cast(batch.column(i), &DataType::Utf8).unwrap();
        let (v, m, s) = (text(0), text(1), text(2));
        let n = cast(batch.column(3), &DataType::Int64).unwrap();
        let (v, m, s) = (v.as_string::<i32>(), m.as_string::<i32>(), s.as_string::<i32>());
        let n = n.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            counts.insert(
                (v.value(row).into(), m.value(row).into(), s.value(row).into()),
                n.value(row) as u64,
            );
        }
    }
    counts
}

mod datafusion_arrow {
    pub use datafusion::arrow::array::AsArray;
    pub use datafusion::arrow::compute::cast;
    pub use datafusion::arrow::datatypes::{DataType, Int64Type};
}

/// A drive of `seconds` that crosses the last UTC midnight at its middle (the
/// one before, if the last is too recent for the drive to be over).
fn start_over_midnight_us(seconds: u32) -> (i64, i64) {
    const DAY_S: i64 = 86_400;
    let now = chrono::Utc::now().timestamp();
    let mut midnight = now - now.rem_euclid(DAY_S);
    if now - midnight < i64::from(seconds) {
        midnight -= DAY_S;
    }
    ((midnight - i64::from(seconds / 2)) * 1_000_000, midnight * 1_000_000)
}

/// `GET` a signal's history between two times, as (time, value) points.
async fn api_series(stack: &Stack, vehicle: &str, signal: &str, from_us: i64, to_us: i64) -> Vec<(i64, f64)> {
    let iso = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    };
    let url = format!(
        "/vehicles/{vehicle}/signals/{signal}?from={}&to={}&max_points=10000",
        iso(from_us),
        iso(to_us)
    );
    let answer = http::get(&http::api(stack), &url).send().await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body: serde_json::Value = serde_json::from_str(&answer.text).unwrap();
    body["series"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["ts_us"].as_i64().unwrap(), p["value"].as_f64().unwrap()))
        .collect()
}

/// The repository's root.
pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The local stack of the template on the test run's moto.
async fn stack_on_the_shared_moto() -> Stack {
    Stack::start(StackOptions {
        template: repo().join("template.yaml"),
        moto_endpoint: Some(local::moto().endpoint.clone()),
        mqtt_port: 0,
        api_port: 0,
        visibility_timeout_s: None,
        functions_endpoint: None,
        batching_windows: false,
    })
    .await
    .unwrap()
}

/// The fleet of [`VEHICLES`] canopy-edge agents replaying the drives in
/// `logs` into `stack` as fast as they go; each vehicle's counters once the
/// pipeline is idle again.
async fn drive_the_fleet(stack: &Stack, logs: &Path, work: &Path, start_us: i64) -> BTreeMap<DeviceId, Value> {
    let options = FleetOptions {
        vehicles: VEHICLES,
        seconds: SECONDS,
        overheating: None,
        start_us,
        edge: local::binary("canopy-edge"),
        dbc: repo().join("dbc/ev_powertrain.dbc"),
        work: work.join("fleet"),
        replay_dir: Some(logs.to_path_buf()),
        replay_speed: 0.0,
        via: None,
        settings: Default::default(),
    };
    let counters = run_fleet(stack, &options).await.unwrap();
    wait_idle(stack, Duration::from_secs(180)).await.unwrap();
    counters
}

/// Every frame decoded exactly once: the lake's values per vehicle and
/// signal are the logs' values per vehicle and signal; and no agent dropped
/// or held back a frame or a message. The logs' veh-002 PackCurrent series.
async fn check_every_frame_decoded_once(
    stack: &Stack,
    logs: &Path,
    counters: &BTreeMap<DeviceId, Value>,
) -> Vec<(i64, f64)> {
    let db = Database::load(repo().join("dbc/ev_powertrain.dbc")).unwrap();
    let (truth, series) = ground_truth(&db, logs, VEHICLES);
    assert_eq!(lake_counts(stack).await, truth);
    for (vehicle, c) in counters {
        assert_eq!(c["frames_dropped"], 0, "{vehicle}: {c}");
        assert_eq!(c["frames_read"], c["frames_sealed"], "{vehicle}: {c}");
        assert_eq!(c["telemetry_built"], c["telemetry_published"], "{vehicle}: {c}");
    }
    series
}

/// The API's history of a signal is the log's, value for value: a minute
/// into the drive, and the first minute of the new day.
async fn check_the_api_charts_the_logs(stack: &Stack, series: &[(i64, f64)], start_us: i64, midnight_us: i64) {
    for (from_us, to_us) in [
        (start_us + 30_000_000, start_us + 90_000_000),
        (midnight_us, midnight_us + 60_000_000),
    ] {
        let expected: Vec<(i64, f64)> = series
            .iter()
            .copied()
            .filter(|(t, _)| (from_us..to_us).contains(t))
            .collect();
        assert!(expected.len() > 100, "{}", expected.len());
        let got = api_series(stack, "veh-002", "BMS_PackStatus/PackCurrent", from_us, to_us).await;
        assert_eq!(got, expected, "{from_us}..{to_us}");
    }
}

/// Basic Ingest: the telemetry went to the rules, not through the broker
/// to its subscribers; every sample was archived exactly once; and each
/// vehicle's latest state is its last sample.
async fn check_telemetry_archived_once(
    stack: &Stack,
    subscriber: &TelemetrySubscriber,
    counters: &BTreeMap<DeviceId, Value>,
) {
    assert!(
        subscriber.received.lock().unwrap().is_empty(),
        "a subscriber saw Basic Ingest messages"
    );
    let archived = archive_rows(&S3Store::new(&stack.sdk, &stack.bucket), "telemetry/").await;
    let unique: BTreeSet<&(String, i64)> = archived.iter().collect();
    assert_eq!(unique.len(), archived.len(), "a sample archived twice");

    let states = latest_states(stack).await.unwrap();
    assert_eq!(states.len(), VEHICLES);
    for state in &states {
        let vehicle = state.telemetry.vehicle_id.as_str();
        let seqs: Vec<i64> = archived.iter().filter(|(v, _)| v == vehicle).map(|(_, s)| *s).collect();
        let c = &counters[&state.telemetry.vehicle_id];
        assert_eq!(
            Some(seqs.len() as u64),
            c["telemetry_published"].as_u64(),
            "{vehicle}: {c}"
        );
        assert_eq!(
            seqs.iter().max().copied(),
            Some(state.telemetry.seq as i64),
            "{vehicle}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_fleet_goes_through_the_whole_pipeline_exactly_once() {
    canopy_tests::local::log_warnings();
    // Over midnight: the edge seals the drive as one segment, and the values
    // after midnight must still be found by a query of the new day only.
    let (start_us, midnight_us) = start_over_midnight_us(SECONDS);
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    let overheat = [
        "--overheat-vehicle",
        "1",
        "--overheat-module",
        "3",
        "--overheat-after",
        "30",
    ];
    simulate(&logs, VEHICLES, SECONDS, start_us, &overheat);

    let stack = stack_on_the_shared_moto().await;
    let alerts = SnsCapture::subscribe(&topic_arn("AlertTopic")).await;
    let subscriber = TelemetrySubscriber::start(stack.mqtt.port());
    subscriber.wait_subscribed(1);
    let counters = drive_the_fleet(&stack, &logs, work.path(), start_us).await;

    let series = check_every_frame_decoded_once(&stack, &logs, &counters).await;
    check_the_api_charts_the_logs(&stack, &series, start_us, midnight_us).await;
    // One vehicle overheats: exactly one alert, for it; the others none.
    let sent = alerts.received().await;
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(
        sent[0].0.contains("veh-001") && sent[0].0.contains("temperature"),
        "{}",
        sent[0].0
    );
    check_telemetry_archived_once(&stack, &subscriber, &counters).await;
}
