//! canopy-edge, the real binary, against moto and an MQTT broker: S3 going
//! away and coming back, SIGKILL in the middle of a batch, and the broker
//! restarting. Frames are checked by content (every frame exactly once),
//! telemetry by sequence number (nothing missing after dropping duplicates).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use canopy::format::candump::{BusNames, CandumpReader};
use canopy::format::frame::CanFrame;
use canopy::format::lake::raw::RawFileReader;
use canopy::ports::store::ObjectStore;
use canopy_local::services::spawn_tied_to_process;
use canopy_local::stack::Stack;
use canopy_tests::fixtures;
use canopy_tests::local::{self, SnsCapture};
use canopy_tests::mqtt::TelemetrySubscriber;
use canopy_tests::proxy::Proxy;

/// A simulated drive as a candump log: `seconds` of the EV network.
fn simulated_log(dir: &Path, seconds: u32, seed: u64) -> PathBuf {
    let status = Command::new(local::binary("canopy-edge"))
        .args([
            "simulate",
            "--dbc",
            canopy_tests::fixtures::DBC,
            "--duration",
            &seconds.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args(["--start-us", "1700000000000000", "--output"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    dir.join("sim-001.log")
}

fn log_frames(path: &Path) -> Vec<CanFrame> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    CandumpReader::new(file, "log").map(|f| f.unwrap()).collect()
}

type Key = (i64, u32, bool, Vec<u8>);

/// Frames as comparable keys, sorted: equal lists mean every frame exactly once.
fn keys(frames: &[CanFrame]) -> Vec<Key> {
    let mut keys: Vec<Key> = frames
        .iter()
        .map(|f| (f.ts_us, f.id.raw(), f.id.is_extended(), f.data().to_vec()))
        .collect();
    keys.sort();
    keys
}

async fn uploaded_frames<S: ObjectStore>(store: &S) -> Vec<CanFrame> {
    let mut frames = Vec::new();
    let mut buses = BusNames::default();
    for (key, _) in store.list("raw/").await.unwrap() {
        let body: Bytes = store.get(&key).await.unwrap().body;
        for batch in RawFileReader::from_bytes(body, &key).unwrap() {
            let batch = batch.unwrap();
            for i in 0..batch.len() {
                frames.push(batch.row(i).unwrap().to_frame(&mut buses).unwrap());
            }
        }
    }
    frames
}

struct Edge {
    config: PathBuf,
}

impl Edge {
    fn write(dir: &Path, toml: &str) -> Self {
        let config = dir.join("edge.toml");
        std::fs::write(&config, toml).unwrap();
        Self { config }
    }

    fn spawn(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.with_extension("log"))
            .unwrap();
        Command::new(local::binary("canopy-edge"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }
}

fn wait(child: &mut Child, limit: Duration, edge: &Edge) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "canopy-edge failed: {status}\n{}", edge.log());
            return;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("canopy-edge did not finish within {limit:?}\n{}", edge.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn replay_config(log: &Path, spool: &Path, speed: f64, bucket: &str, endpoint: &str) -> String {
    format!(
        r#"
vehicle_id = "sim-001"
dbc = "{dbc}"
[source]
kind = "replay"
file = "{log}"
speed = {speed}
[spool]
dir = "{spool}"
sync_interval_ms = 50
seal_after_s = 1
seal_max_frames = 20000
[upload]
enabled = true
bucket = "{bucket}"
endpoint = "{endpoint}"
retry_initial_ms = 100
retry_max_ms = 1000
"#,
        dbc = canopy_tests::fixtures::DBC,
        log = log.display(),
        spool = spool.display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_unreachable_for_a_while_then_back_every_frame_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = simulated_log(dir.path(), 60, 11);
    let store = local::bucket("edge-outage").await;
    let moto: std::net::SocketAddr = local::moto().endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(moto, false);
    let edge = Edge::write(
        dir.path(),
        &replay_config(
            &log,
            &dir.path().join("spool"),
            20.0,
            store.bucket(),
            &format!("http://{}", proxy.address),
        ),
    );
    let mut child = edge.spawn();
    // Longer than the SDK's own retries, so the uploader's backoff is what carries it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        store.list("raw/").await.unwrap().is_empty(),
        "nothing can arrive while S3 is away"
    );
    proxy.set_up(true);
    wait(&mut child, Duration::from_secs(60), &edge);

    assert!(edge.log().contains("upload failed"), "the outage was seen");
    let expected = log_frames(&log);
    let uploaded = uploaded_frames(&store).await;
    assert_eq!(uploaded.len(), expected.len());
    assert!(
        keys(&uploaded) == keys(&expected),
        "the frames in S3 differ from the log's"
    );
    assert!(
        std::fs::read_dir(dir.path().join("spool/outbox"))
            .unwrap()
            .next()
            .is_none(),
        "the outbox is empty"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_batch_and_restart_every_frame_reaches_s3_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = simulated_log(dir.path(), 90, 12);
    let store = local::bucket("edge-kill").await;
    let spool = dir.path().join("spool");
    let edge = Edge::write(
        dir.path(),
        &replay_config(&log, &spool, 30.0, store.bucket(), &local::moto().endpoint),
    );
    let mut child = edge.spawn();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let unsealed = std::fs::read_dir(spool.join("segments")).unwrap().count();
    assert!(unsealed > 0, "the kill came while a batch was open");
    let before = uploaded_frames(&store).await.len();
    let expected = log_frames(&log);
    assert!(before < expected.len(), "the kill came before the end");

    let mut child = edge.spawn();
    wait(&mut child, Duration::from_secs(60), &edge);
    assert!(edge.log().contains("resuming the replay after the last spooled frame"));
    let uploaded = uploaded_frames(&store).await;
    assert_eq!(uploaded.len(), expected.len(), "count");
    let checksum = |k: &[Key]| {
        k.iter().fold(0u64, |acc, (ts, id, ext, data)| {
            let mut h = (*ts as u64) ^ (u64::from(*id) << 1) ^ u64::from(*ext);
            for b in data {
                h = h.wrapping_mul(0x100000001B3).wrapping_add(u64::from(*b));
            }
            acc.wrapping_add(h)
        })
    };
    let (got, want) = (keys(&uploaded), keys(&expected));
    assert_eq!(checksum(&got), checksum(&want), "checksum");
    assert!(got == want, "the frames in S3 differ from the log's");
}

/// Collects telemetry from the broker, reconnecting as needed.
fn start_broker(port: u16) -> Child {
    let args = vec![
        "broker".to_string(),
        "--listen".to_string(),
        format!("127.0.0.1:{port}"),
    ];
    let child = spawn_tied_to_process(&local::binary("canopy-local"), &args).unwrap();
    canopy_local::broker::wait_listening(format!("127.0.0.1:{port}").parse().unwrap()).unwrap();
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_restarts_and_telemetry_resumes_with_nothing_missing() {
    let dir = tempfile::tempdir().unwrap();
    let log = simulated_log(dir.path(), 60, 13);
    let port = canopy_local::services::free_port().unwrap();
    let mut broker = start_broker(port);
    let subscriber = TelemetrySubscriber::start(port);
    subscriber.wait_subscribed(1);
    // The edge reaches the broker through a proxy, so the test decides when it comes back.
    let proxy = Proxy::start(format!("127.0.0.1:{port}").parse().unwrap(), true);
    let edge = Edge::write(
        dir.path(),
        &format!(
            r#"
vehicle_id = "sim-001"
dbc = "{dbc}"
[source]
kind = "replay"
file = "{log}"
speed = 10
[spool]
dir = "{spool}"
[telemetry]
enabled = true
interval_ms = 1000
[mqtt]
host = "127.0.0.1"
port = {port}
"#,
            dbc = canopy_tests::fixtures::DBC,
            log = log.display(),
            spool = dir.path().join("spool").display(),
            port = proxy.address.port(),
        ),
    );
    let mut child = edge.spawn();
    let started = Instant::now();
    while subscriber.received.lock().unwrap().len() < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no telemetry\n{}",
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.set_up(false);
    broker.kill().unwrap();
    broker.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // the edge keeps producing meanwhile
    let mut broker = start_broker(port);
    subscriber.wait_subscribed(2);
    proxy.set_up(true);
    wait(&mut child, Duration::from_secs(60), &edge);

    let received = subscriber.received.lock().unwrap().clone();
    let seqs: BTreeSet<u64> = received.iter().map(|t| t.seq).collect();
    let frames = log_frames(&log);
    let last_second = frames.last().unwrap().ts_us / 1_000_000;
    let first = *seqs.iter().next().unwrap();
    let last = *seqs.iter().last().unwrap();
    assert_eq!(last, last_second as u64 + 1, "the last interval arrived");
    assert!(first <= 1_700_000_002, "telemetry started with the log: {first}");
    assert_eq!(seqs.len() as u64, last - first + 1, "no interval is missing: {seqs:?}");
    assert!(edge.log().contains("MQTT connection lost"), "the restart was seen");
    assert!(received.iter().all(|t| t.vehicle_id.as_str() == "sim-001"));
    broker.kill().unwrap();
    broker.wait().unwrap();
}

/// A drive of `seconds` of the four telemetry messages every 100 ms, the pack
/// at 30 °C but over the threshold (65 °C) from `hot_at_s` for a second.
fn drive_with_a_hot_second(path: &Path, seconds: u32, hot_at_s: f64) {
    let db = canopy::format::dbc::Database::load(canopy_tests::fixtures::DBC).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let t0 = 1_700_000_000_000_000i64;
    for tick in 0..seconds as i64 * 10 {
        let at_s = tick as f64 / 10.0;
        let hot = (hot_at_s..hot_at_s + 1.0).contains(&at_s);
        let messages: [(&str, &[(&str, f64)]); 4] = [
            (
                "BMS_PackStatus",
                &[("StateOfCharge", 80.0), ("PackVoltage", 380.0), ("PackCurrent", 12.5)],
            ),
            (
                "BMS_CellVoltageSummary",
                &[("CellVoltageMin", 3.90), ("CellVoltageMax", 3.95)],
            ),
            (
                "BMS_TemperatureSummary",
                &[("CellTempMin", 25.0), ("CellTempMax", if hot { 65.0 } else { 30.0 })],
            ),
            ("VCU_VehicleStatus", &[("VehicleSpeed", 50.0)]),
        ];
        for (i, (name, values)) in messages.iter().enumerate() {
            let m = db.message_by_name(name).unwrap();
            let payload = m.encode_named_or_minimum(values).unwrap();
            let ts = t0 + tick * 100_000 + i as i64 * 1_000;
            canopy::format::candump::write_frame(&mut out, &fixtures::frame(ts, m, &payload)).unwrap();
        }
    }
    use std::io::Write;
    out.flush().unwrap();
}

const HOT_VEHICLES: usize = 50;

/// The edge configuration of hot vehicle `n`, replaying `log` in real time
/// into `stack`'s broker, with the stack's edge alert rules and Basic Ingest
/// as provisioned, and the publish interval at its 5 s default.
fn hot_vehicle_config(n: usize, log: &Path, spool: &Path, stack: &Stack) -> String {
    format!(
        r#"
vehicle_id = "hot-{n:03}"
dbc = "{dbc}"
[source]
kind = "replay"
file = "{log}"
speed = 1
rebase_time = true
[spool]
dir = "{spool}"
[telemetry]
enabled = true
interval_ms = 1000
publish_interval_ms = 5000
{rules}
[mqtt]
host = "127.0.0.1"
port = {port}
{basic_ingest}"#,
        dbc = canopy_tests::fixtures::DBC,
        log = log.display(),
        spool = spool.display(),
        port = stack.mqtt.port(),
        rules = canopy_local::demo::edge_alert_rules(stack),
        basic_ingest = canopy_local::demo::basic_ingest(stack),
    )
}

/// [`HOT_VEHICLES`] vehicles, ten at a time, each replaying `log`: one
/// trial each, every one of which trips its rule on the edge.
fn drive_the_hot_vehicles(stack: &Stack, dir: &Path, log: &Path) {
    const AT_ONCE: usize = 10;
    for group in 0..HOT_VEHICLES / AT_ONCE {
        let mut running = Vec::new();
        for i in 0..AT_ONCE {
            let n = group * AT_ONCE + i + 1;
            let vehicle_dir = dir.join(format!("veh-{n:03}"));
            std::fs::create_dir_all(&vehicle_dir).unwrap();
            let edge = Edge::write(
                &vehicle_dir,
                &hot_vehicle_config(n, log, &vehicle_dir.join("spool"), stack),
            );
            let child = edge.spawn();
            running.push((edge, child));
        }
        for (edge, child) in &mut running {
            wait(child, Duration::from_secs(60), edge);
            assert!(edge.log().contains("alert rule tripped on the edge"), "{}", edge.log());
        }
    }
}

/// What SNS sent once every hot vehicle's alert is in (30 s at most), and
/// what came in the interval after: (subject, body, sent at in ms).
async fn hot_alerts_sent(alerts: &SnsCapture) -> Vec<(String, String, i64)> {
    let started = Instant::now();
    let mut sent: Vec<(String, String, i64)> = Vec::new();
    while sent.iter().filter(|(_, body, _)| body.contains("hot-")).count() < HOT_VEHICLES
        && started.elapsed() < Duration::from_secs(30)
    {
        sent.extend(alerts.received_timed().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(6)).await; // the interval's regular messages, held back by the cooldown
    sent.extend(alerts.received_timed().await);
    sent
}

/// Checks `sent` holds one over-temperature alert per hot vehicle; how long
/// after its frame SNS sent each, in ms.
fn one_alert_per_hot_vehicle(sent: &[(String, String, i64)]) -> Vec<f64> {
    let mut vehicles = BTreeSet::new();
    let latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(_, body, sent_ms)| {
            let json: serde_json::Value = serde_json::from_str(&body[body.find('{').unwrap()..]).unwrap();
            // Other tests' vehicles share the topic.
            json["vehicle_id"].as_str()?.starts_with("hot-").then_some(())?;
            assert_eq!(json["rule"], "over-temperature");
            assert!(
                vehicles.insert(json["vehicle_id"].as_str().unwrap().to_string()),
                "one alert per vehicle: {json}"
            );
            Some((*sent_ms - json["ts_us"].as_i64().unwrap() / 1000) as f64)
        })
        .collect();
    assert_eq!(vehicles.len(), HOT_VEHICLES);
    latencies
}

/// A latency bound, so it runs alone (`make test` runs it after the others:
/// beside them, a shared 2-core machine measures the others' load).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a latency bound: make test runs it alone, after the other tests"]
async fn a_frame_over_the_threshold_reaches_sns_within_a_second_on_the_edges_own_decision() {
    // A moto of its own: the other tests' calls would queue before its own.
    let stack = local::own_stack().await;
    let alerts = SnsCapture::subscribe_on(&stack.sdk, &canopy_local::template::topic_arn("AlertTopic")).await;
    let rules = canopy_local::demo::edge_alert_rules(&stack);
    assert!(rules.contains("over-temperature"), "{rules}");
    // As provisioned: by Basic Ingest, a tripping message to both rules.
    let basic_ingest = canopy_local::demo::basic_ingest(&stack);
    assert!(basic_ingest.contains("[mqtt.basic_ingest]"), "{basic_ingest}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("drive.log");
    drive_with_a_hot_second(&log, 6, 3.0);
    drive_the_hot_vehicles(&stack, dir.path(), &log);

    let mut latencies = one_alert_per_hot_vehicle(&hot_alerts_sent(&alerts).await);
    let (p50, p95, max) = canopy_local::bench::latency::percentiles(&mut latencies);
    eprintln!(
        "frame over the threshold -> SNS, {HOT_VEHICLES} trials: p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms"
    );
    assert!(p95 <= 1000.0, "p95 {p95} ms");
}
