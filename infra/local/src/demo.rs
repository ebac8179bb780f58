//! `make demo`: a simulated fleet through the whole local stack — canopy-edge
//! processes (the real agent, simulator source) upload raw Parquet to the
//! bucket and publish telemetry to the broker; the stack's wiring does the
//! rest — and a summary a person can read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use canopy::domain::alert::Alert;
use canopy::domain::device_id::DeviceId;
use canopy::domain::telemetry::Telemetry;
use canopy::ports::state::LatestState;
use canopy::ports::store::ObjectStore;
use serde_json::Value;

use crate::stack::{Stack, StackCounters, alerts_of, device_state_table, latest_states};

#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub vehicles: usize,
    /// Simulated seconds per vehicle.
    pub seconds: u32,
    /// The vehicle (1-based) whose module 3 overheats, if any.
    pub overheating: Option<usize>,
    /// Start of simulated time (µs since the epoch).
    pub start_us: i64,
    pub edge: PathBuf,
    pub dbc: PathBuf,
    pub work: PathBuf,
    /// Replay `<dir>/veh-NNN.log` (from `canopy-edge simulate --prefix veh`)
    /// instead of simulating in the agent: the logs are then the ground truth.
    pub replay_dir: Option<PathBuf>,
    /// The replay's speed: 0 as fast as possible, 10 ten times real time.
    pub replay_speed: f64,
    /// Where the agents reach S3 and the broker, when not the stack's own
    /// addresses (proxies a test takes down).
    pub via: Option<Via>,
    pub settings: EdgeSettings,
}

/// How the fleet's edges seal and send.
#[derive(Debug, Clone, Copy)]
pub struct EdgeSettings {
    /// 1000: a v1 message a sample; more: v2 messages.
    pub publish_interval_ms: u64,
    /// By Basic Ingest straight to the rules, or through the broker.
    pub basic_ingest: bool,
    /// The edges decide the alert rules themselves.
    pub edge_rules: bool,
    /// Seal a raw object every this many frames as well as every minute (a
    /// simulation faster than real time makes its minutes' worth this way).
    pub seal_max_frames: Option<u64>,
}

impl Default for EdgeSettings {
    /// As provisioning sets a vehicle up.
    fn default() -> Self {
        Self {
            publish_interval_ms: 5_000,
            basic_ingest: true,
            edge_rules: true,
            seal_max_frames: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Via {
    pub upload_endpoint: String,
    pub mqtt_port: u16,
}

pub fn vehicle_id(i: usize) -> DeviceId {
    DeviceId::new(format!("veh-{i:03}")).unwrap_or_else(|_| unreachable!("a fixed pattern"))
}

/// The agent's configuration for simulated vehicle `i`.
pub fn edge_config(stack: &Stack, options: &FleetOptions, i: usize) -> String {
    let overheat = if options.overheating == Some(i) {
        "overheat_module = 3\noverheat_after_s = 120\n"
    } else {
        ""
    };
    let source = match &options.replay_dir {
        Some(dir) => format!(
            "kind = \"replay\"\nfile = \"{}\"\nspeed = {}\n",
            dir.join(format!("{}.log", vehicle_id(i))).display(),
            options.replay_speed
        ),
        None => format!(
            "kind = \"simulator\"\nseed = {i}\nduration_s = {}\nspeed = 0\nstart_us = {}\n{overheat}",
            options.seconds, options.start_us
        ),
    };
    format!(
        r#"vehicle_id = "{vehicle}"
dbc = "{dbc}"

[source]
{source}
[spool]
dir = "{spool}"
seal_after_s = 60
{seal_max_frames}
[upload]
enabled = true
bucket = "{bucket}"
endpoint = "{endpoint}"
retry_initial_ms = 100
retry_max_ms = 2000

[telemetry]
enabled = true
interval_ms = 1000
publish_interval_ms = {publish_interval_ms}
{rules}
[mqtt]
host = "127.0.0.1"
port = {port}
{basic_ingest}"#,
        vehicle = vehicle_id(i),
        dbc = options.dbc.display(),
        spool = options.work.join(format!("spool-{i}")).display(),
        bucket = stack.bucket,
        endpoint = options.via.as_ref().map_or(&stack.endpoint, |v| &v.upload_endpoint),
        port = options.via.as_ref().map_or(stack.mqtt.port(), |v| v.mqtt_port),
        publish_interval_ms = options.settings.publish_interval_ms,
        seal_max_frames = options
            .settings
            .seal_max_frames
            .map_or(String::new(), |n| format!("seal_max_frames = {n}\n")),
        rules = if options.settings.edge_rules {
            edge_alert_rules(stack)
        } else {
            String::new()
        },
        basic_ingest = if options.settings.basic_ingest {
            basic_ingest(stack)
        } else {
            String::new()
        },
    )
}

/// The `[mqtt.basic_ingest]` of the stack's rules, as provisioning writes it from the outputs.
pub fn basic_ingest(stack: &Stack) -> String {
    let outputs = &stack.template.outputs;
    match (outputs.get("TelemetryRuleName"), outputs.get("AlertsRuleName")) {
        (Some(telemetry), Some(alerts)) => {
            format!("\n[mqtt.basic_ingest]\ntelemetry_rule = {telemetry:?}\nalerts_rule = {alerts:?}\n")
        }
        _ => String::new(),
    }
}

/// The alerts function's rules (from its environment in the template), as
/// the edge's `[[telemetry.alert_rules]]`: the vehicle decides what the
/// cloud would, and sends a tripping sample at once.
pub fn edge_alert_rules(stack: &Stack) -> String {
    let Some(f) = stack.template.functions.iter().find(|f| f.binary == "alerts") else {
        return String::new();
    };
    let Ok(config) = canopy_alerts::Config::from_vars(&f.environment) else {
        return String::new(); // the stack refuses to start on it anyway
    };
    config
        .rules
        .iter()
        .map(|r| {
            format!(
                "[[telemetry.alert_rules]]\nname = {:?}\nmeasure = {:?}\ncomparison = {:?}\nthreshold = {:?}\nseverity = {:?}\ncooldown = {}\n",
                r.name,
                r.measure.name(),
                r.comparison.symbol(),
                r.threshold,
                r.severity.as_str(),
                r.cooldown.as_secs()
            )
        })
        .collect()
}

/// Runs one canopy-edge per vehicle to the end of its simulation; their
/// final counters, by vehicle.
pub async fn run_fleet(stack: &Stack, options: &FleetOptions) -> Result<BTreeMap<DeviceId, Value>> {
    std::fs::create_dir_all(&options.work)?;
    let mut children = Vec::new();
    for i in 1..=options.vehicles {
        let config = options.work.join(format!("edge-{i}.toml"));
        std::fs::write(&config, edge_config(stack, options, i))?;
        let log = std::fs::File::create(options.work.join(format!("edge-{i}.log")))?;
        let child = tokio::process::Command::new(&options.edge)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", options.edge.display()))?;
        children.push((vehicle_id(i), child, options.work.join(format!("edge-{i}.log"))));
    }
    final_counters(children).await
}

/// Waits for each edge (device id, its process, its log); the counters each
/// printed last, by device, or the log's end of the first that failed.
async fn final_counters<K: Ord + std::fmt::Display>(
    children: Vec<(K, tokio::process::Child, PathBuf)>,
) -> Result<BTreeMap<K, Value>> {
    let mut counters = BTreeMap::new();
    for (device, child, log) in children {
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "canopy-edge for {device} failed ({}):\n{}",
                output.status,
                tail(&log, 3000)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().last().unwrap_or("{}");
        counters.insert(device, serde_json::from_str(last).unwrap_or(Value::Null));
    }
    Ok(counters)
}

/// The demo's stations, (id, slots): the last, small and busy, runs out
/// of charged batteries.
pub const DEMO_STATIONS: [(&str, usize); 3] = [("st-001", 8), ("st-002", 6), ("st-003", 2)];

/// A station edge's configuration on the local stack's broker.
pub fn station_config(stack: &Stack, id: &str, slots: usize, seed: u64, publish_interval_s: u64) -> String {
    format!(
        "station_id = \"{id}\"\nslots = {slots}\npublish_interval_s = {publish_interval_s}\nseed = {seed}\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"{id}\"\n",
        port = stack.mqtt.port()
    )
}

/// Runs `canopy-edge station` for each of `stations` for `seconds`, the
/// model `time_scale` times faster than the clock; their final counters.
pub async fn run_stations(
    stack: &Stack,
    edge: &Path,
    work: &Path,
    stations: &[(&str, usize)],
    seconds: u64,
    time_scale: f64,
) -> Result<BTreeMap<String, Value>> {
    std::fs::create_dir_all(work)?;
    let mut children = Vec::new();
    for (i, (id, slots)) in stations.iter().enumerate() {
        let config = work.join(format!("{id}.toml"));
        std::fs::write(&config, station_config(stack, id, *slots, i as u64 + 1, 2))?;
        let log_path = work.join(format!("{id}.log"));
        let child = tokio::process::Command::new(edge)
            .args(["station", "--config"])
            .arg(&config)
            .args([
                "--duration-s",
                &seconds.to_string(),
                "--time-scale",
                &time_scale.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", edge.display()))?;
        children.push((id.to_string(), child, log_path));
    }
    final_counters(children).await
}

/// The stations' latest states and alerts, as the API would list them.
pub async fn station_summary(stack: &Stack, counters: &BTreeMap<String, Value>) -> Result<String> {
    use canopy::ports::device_state::DeviceStateStore;
    let page = device_state_table(stack).list("station", 100, None).await?;
    let mut out = String::from("\nStations (kinds/station.toml):\n");
    out.push_str("  station  charged  charging  faulted  swaps today  published  temperature  grid\n");
    for s in &page.items {
        let v = s.record.to_json("station_id");
        let published = counters
            .get(s.record.id.as_str())
            .and_then(|c| c["acknowledged"].as_u64())
            .unwrap_or(0);
        out.push_str(&format!(
            "  {:<7}  {:>3}/{:<3}  {:>8}  {:>7}  {:>11}  {:>9}  {:>8.1} °C  {:>6.1} kW\n",
            s.record.id,
            v["batteries_available"],
            v["slots"],
            v["charging"],
            v["faulted"],
            v["swaps_today"],
            published,
            v["temperature_c"].as_f64().unwrap_or(f64::NAN),
            v["grid_power_kw"].as_f64().unwrap_or(f64::NAN),
        ));
    }
    let mut alerts = Vec::new();
    for s in &page.items {
        alerts.extend(alerts_of(stack, &s.record.stream()).await?);
    }
    out.push_str(&format!("Station alerts through SNS: {}\n", alerts.len()));
    for a in &alerts {
        out.push_str(&alert_line(a));
    }
    let api = format!("http://{}", stack.api);
    let first = page
        .items
        .first()
        .map_or("st-001".to_string(), |s| s.record.id.to_string());
    out.push_str(&format!(
        "  curl -s {api}/stations | jq '.stations[] | {{station_id, batteries_available, slots}}'\n\
         \x20 curl -s {api}/stations/{first}/alerts | jq\n\
         \x20 curl -s '{api}/stations/{first}/history/batteries_available?max_points=100' | jq .stats\n"
    ));
    Ok(out.replace("+00:00", "Z"))
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    &s[start..]
}

/// Waits until every raw object has its decoded twin, every queue is empty
/// and no asynchronous invocation runs (twice in a row, half a second apart).
///
/// How long that takes depends on the machine: moto's queues answer in time
/// that grows with their depth, so a backlog drains far slower on a loaded
/// machine than in AWS. What would be a defect is work that stops: this
/// fails when nothing moves (no object written, no message taken or added,
/// no invocation) for `stall`, naming what is still pending.
pub async fn wait_idle(stack: &Stack, stall: Duration) -> Result<()> {
    let store = canopy::adapters::aws::s3::S3Store::new(&stack.sdk, &stack.bucket);
    let mut last_move = Instant::now();
    let mut last = None;
    let mut calm = 0;
    while calm < 2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let raw = store.list("raw/").await?.len();
        let decoded = store.list("decoded/").await?.len();
        let queued = stack.queued_by_queue().await?;
        let invocations = stack.counters.invocations.load(std::sync::atomic::Ordering::Relaxed);
        let in_flight = stack.counters.async_in_flight.load(std::sync::atomic::Ordering::SeqCst);
        if raw == decoded && queued.values().all(|n| *n == 0) && in_flight == 0 {
            calm += 1;
        } else {
            calm = 0;
        }
        let now = Some((raw, decoded, queued.clone(), invocations));
        if now != last {
            last = now;
            last_move = Instant::now();
        } else if last_move.elapsed() > stall {
            let busy: BTreeMap<&String, &u64> = queued.iter().filter(|(_, n)| **n > 0).collect();
            bail!(
                "the pipeline stalled: nothing moved for {stall:?} with {raw} raw objects against {decoded} decoded and messages queued or in flight: {busy:?}; {:?}",
                stack.counters
            );
        }
    }
    Ok(())
}

/// The telemetry archive copied by vehicle now, as the compactor's next
/// run would (within five minutes), so the drive's trips and fleet
/// statistics are there when the demo says it is up.
pub async fn index_telemetry(stack: &Stack) -> Result<()> {
    let store = canopy::adapters::aws::s3::S3Store::new(&stack.sdk, &stack.bucket);
    let report = canopy_decoder::telemetry_index::index(&store, chrono::Utc::now().timestamp_micros()).await?;
    anyhow::ensure!(
        report.failed.is_empty() && report.waiting == 0,
        "the telemetry archive was not all copied by vehicle: {report:?}"
    );
    Ok(())
}

/// Rows of every object under `prefix`, per vehicle (from the Parquet footers).
pub async fn rows_per_vehicle(stack: &Stack, prefix: &str) -> Result<BTreeMap<String, (usize, u64)>> {
    let store = canopy::adapters::aws::s3::S3Store::new(&stack.sdk, &stack.bucket);
    let mut out: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for (key, _) in store.list(prefix).await? {
        let object = store.get(&key).await?;
        let reader =
            parquet::file::reader::SerializedFileReader::new(object.body).with_context(|| format!("reading {key}"))?;
        let rows = parquet::file::reader::FileReader::metadata(&reader)
            .file_metadata()
            .num_rows() as u64;
        let vehicle = key
            .split('/')
            .find_map(|part| part.strip_prefix("vehicle_id="))
            .unwrap_or("?")
            .to_string();
        let entry = out.entry(vehicle).or_default();
        entry.0 += 1;
        entry.1 += rows;
    }
    Ok(out)
}

/// One alert as the summaries list it.
fn alert_line(a: &Alert) -> String {
    format!(
        "  [{}] {} {}: {} = {:.1} {} (threshold {} {}) at {}\n",
        a.severity,
        a.vehicle_id,
        a.rule,
        a.measure.name(),
        a.value,
        a.unit(),
        a.comparison.symbol(),
        a.threshold,
        a.ts
    )
}

/// The summary `make demo` prints.
pub async fn summary(stack: &Stack, counters: &BTreeMap<DeviceId, Value>) -> Result<String> {
    let states = latest_states(stack).await?;
    let mut out = String::from("\nCanopy local stack: the fleet's run\n\n");
    out.push_str(&vehicle_table(stack, counters, &states).await?);
    out.push_str(&wiring_line(&stack.counters));
    let mut alerts = Vec::new();
    for vehicle in counters.keys() {
        alerts.extend(alerts_of(stack, vehicle.as_str()).await?);
    }
    out.push_str(&format!("\nAlerts sent through SNS: {}\n", alerts.len()));
    for a in &alerts {
        out.push_str(&alert_line(a));
    }
    out.push_str(&api_examples(stack, counters, &states));
    Ok(out.replace("+00:00", "Z"))
}

/// Per vehicle: frames captured and uploaded, objects, values decoded, telemetry, latest state.
async fn vehicle_table(stack: &Stack, counters: &BTreeMap<DeviceId, Value>, states: &[LatestState]) -> Result<String> {
    let raw = rows_per_vehicle(stack, "raw/").await?;
    let decoded = rows_per_vehicle(stack, "decoded/").await?;
    let mut out = format!(
        "{:<9} {:>10} {:>10} {:>9} {:>12} {:>9}  {}\n",
        "vehicle", "captured", "uploaded", "objects", "values", "telemetry", "latest state"
    );
    for (vehicle, c) in counters {
        let (objects, uploaded) = raw.get(vehicle.as_str()).copied().unwrap_or_default();
        let (_, values) = decoded.get(vehicle.as_str()).copied().unwrap_or_default();
        let state = states
            .iter()
            .find(|s| &s.telemetry.vehicle_id == vehicle)
            .map_or_else(|| "none".to_string(), |s| state_line(&s.telemetry));
        out.push_str(&format!(
            "{:<9} {:>10} {:>10} {:>9} {:>12} {:>9}  {}\n",
            vehicle.as_str(),
            c["frames_read"].as_u64().unwrap_or(0),
            uploaded,
            objects,
            values,
            c["telemetry_published"].as_u64().unwrap_or(0),
            state
        ));
    }
    Ok(out)
}

fn state_line(t: &Telemetry) -> String {
    format!(
        "seq {} at {}: SoC {:.1} %, {:.1} V, {:.1} A, cells {:.1}..{:.1} °C, {:.0} km/h",
        t.seq,
        t.ts.format("%H:%M:%S"),
        t.soc_pct,
        t.pack_voltage_v,
        t.pack_current_a,
        t.cell_temp_min_c,
        t.cell_temp_max_c,
        t.speed_kph
    )
}

fn wiring_line(c: &StackCounters) -> String {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    format!(
        "\nWiring: {} MQTT messages through the IoT rules ({} matches), {} function invocations \
         ({} failed, {} records returned to their queue)\n",
        n(&c.mqtt_messages),
        n(&c.rule_matches),
        n(&c.invocations),
        n(&c.failed_invocations),
        n(&c.records_retried)
    )
}

/// curl commands for every route, on the run's first vehicle and its last 15 minutes.
fn api_examples(stack: &Stack, counters: &BTreeMap<DeviceId, Value>, states: &[LatestState]) -> String {
    let api = format!("http://{}", stack.api);
    let first = counters.keys().next().map_or("veh-001".to_string(), |v| v.to_string());
    let day = states
        .first()
        .map(|s| s.telemetry.ts.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let (from, to) = states
        .first()
        .map(|s| {
            let end = s.telemetry.ts + chrono::Duration::seconds(1);
            ((end - chrono::Duration::minutes(15)).to_rfc3339(), end.to_rfc3339())
        })
        .unwrap_or_default();
    format!(
        "\nTry the API (DataFusion over the local lake):\n\
         \x20 curl -s {api}/vehicles | jq\n\
         \x20 curl -s {api}/vehicles/{first} | jq\n\
         \x20 curl -s {api}/vehicles/{first}/alerts | jq\n\
         \x20 curl -s {api}/signals | jq '.signals | length'\n\
         \x20 curl -s '{api}/vehicles/{first}/signals/BMS_PackStatus/PackCurrent?from={from}&to={to}&max_points=200' | jq '.series.points | length'\n\
         \x20 curl -s '{api}/fleet/stats?date={day}' | jq '.stats[0]'\n\
         \x20 curl -s {api}/openapi.json | jq '.paths | keys'\n"
    )
}

/// The DBC and canopy-edge beside this binary (target/<profile>/).
pub fn edge_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let edge = dir.join("canopy-edge");
    if !edge.exists() {
        bail!(
            "{} is missing: build it with `cargo build -p canopy-edge`",
            edge.display()
        );
    }
    Ok(edge)
}
