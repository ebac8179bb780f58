//! Measuring: one design's fleet driven through a stack and moto of its
//! own, and what it did gathered from moto's recording, the stack's
//! counters and a listing of the bucket. Apart from pricing because it is
//! the slow, stateful half: pricing is arithmetic on what this returns.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy_decoder::compact::{Compactor, GRACE_US, SETTLE_US};
use serde_json::Value;

use super::CostOptions;
use super::recording::{Call, billed_per_vehicle, classify, split_recording};
use crate::demo::{EdgeSettings, FleetOptions, run_fleet};
use crate::services::{Moto, moto_server_path};
use crate::stack::{FunctionUse, Stack, StackCounters, StackOptions};
use crate::template::Function;

/// One telemetry design to price.
#[derive(Debug, Clone, Copy)]
pub struct Design {
    pub name: &'static str,
    pub settings: EdgeSettings,
    /// The edge's `spool.seal_after_s`: a raw object per this much driving.
    pub seal_after_s: u64,
}

/// Frames a second the simulator makes (its DBC's message rates).
const SIMULATED_FRAMES_PER_S: u64 = 496;

/// The design before telemetry v2 and Basic Ingest (a v1 message a second through the
/// broker, a raw object a minute), Canopy's defaults, and the defaults with
/// the fresher history of a raw object a minute.
pub const DESIGNS: [Design; 3] = [
    Design {
        name: "v1 every 1 s, broker, raw every 60 s",
        settings: EdgeSettings {
            publish_interval_ms: 1_000,
            basic_ingest: false,
            edge_rules: false,
            seal_max_frames: None,
        },
        seal_after_s: 60,
    },
    Design {
        name: "v2 every 5 s, Basic Ingest, raw every 5 min (defaults)",
        settings: EdgeSettings {
            publish_interval_ms: 5_000,
            basic_ingest: true,
            edge_rules: true,
            seal_max_frames: None,
        },
        seal_after_s: 300,
    },
    Design {
        name: "v2 every 5 s, Basic Ingest, raw every 60 s",
        settings: EdgeSettings {
            publish_interval_ms: 5_000,
            basic_ingest: true,
            edge_rules: true,
            seal_max_frames: None,
        },
        seal_after_s: 60,
    },
];

/// What one design's run measured, for its whole fleet.
#[derive(Debug, Default, Clone)]
pub struct Measured {
    pub vehicles: usize,
    pub drive_seconds: f64,
    pub frames: f64,
    /// Billed requests by (service, action), and their SQS request count or DynamoDB units.
    pub requests: BTreeMap<(String, String), (u64, u64)>,
    /// S3 requests by (action, key prefix).
    pub s3: BTreeMap<(String, String), u64>,
    pub iot_broker_units: u64,
    pub basic_ingest_messages: u64,
    pub rules_triggered_units: u64,
    pub rule_action_units: u64,
    pub functions: BTreeMap<String, FunctionUse>,
    /// The compactor's listings, which follow the vehicle-hours it looks at
    /// (every vehicle's every hour, driven or not), and how many it looked at.
    pub compaction_lists: u64,
    pub compaction_unit_hours: f64,
    /// Bytes and objects stored at the end, by key prefix.
    pub stored: BTreeMap<String, (u64, u64)>,
}

impl Measured {
    fn add_call(&mut self, call: &Call) {
        if !billed_per_vehicle(call) {
            return;
        }
        let units = match call.service.as_str() {
            "sqs" => call.body_bytes.div_ceil(64 * 1024).max(1) as u64,
            "dynamodb" => call.capacity_units,
            _ => 1,
        };
        let entry = self
            .requests
            .entry((call.service.clone(), call.action.clone()))
            .or_default();
        entry.0 += 1;
        entry.1 += units;
        if call.service == "s3" {
            let prefix = call
                .key
                .as_deref()
                .and_then(|k| k.split_once('/'))
                .map_or("(bucket)", |(p, _)| p);
            *self.s3.entry((call.action.clone(), format!("{prefix}/"))).or_default() += 1;
        }
    }
}

/// The template's memory per function (GB), for GB-seconds.
pub fn function_memory_gb(stack: &Stack) -> Result<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(&stack.template_path)?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let default = doc["Globals"]["Function"]["MemorySize"].as_f64().unwrap_or(128.0);
    let mut out = BTreeMap::new();
    for f in &stack.template.functions {
        let spec = &doc["Resources"][f.logical_id.as_str()]["Properties"]["MemorySize"];
        let mb = if spec.is_null() {
            default
        } else {
            stack.template.resolve(spec).parse().unwrap_or(default)
        };
        out.insert(f.logical_id.clone(), mb / 1024.0);
    }
    Ok(out)
}

/// Runs `design` for a fleet through a stack and moto of its own; what it measured.
pub async fn measure(options: &CostOptions, design: &Design) -> Result<(Measured, BTreeMap<String, f64>, f64)> {
    let work = tempfile::tempdir()?;
    let moto = Moto::start_in(&moto_server_path(), Some(work.path()))?;
    let stack = Stack::start(StackOptions {
        template: options.template.clone(),
        moto_endpoint: Some(moto.endpoint.clone()),
        mqtt_port: 0,
        api_port: 0,
        visibility_timeout_s: None,
        functions_endpoint: None,
        batching_windows: true,
    })
    .await?;
    let compactor_fn = stack
        .template
        .functions
        .iter()
        .find(|f| f.binary == "compactor")
        .context("the template has no compactor")?;
    let compactor = Compactor::from_env(&compactor_fn.environment, &stack.sdk)?;
    // As in a running stack, the hours before now are done already.
    let now_us = chrono::Utc::now().timestamp_micros();
    compactor.run(now_us).await?;
    let status = moto.request("POST", "/moto-api/recorder/start-recording")?;
    if status != 200 {
        bail!("moto's recorder did not start: HTTP {status}");
    }
    let (counters, start_us) = drive(options, design, &stack, work.path(), now_us).await?;
    let recording = work.path().join("moto_recording");
    let driven = std::fs::metadata(&recording).map_or(0, |m| m.len() as usize);
    let schedule = Schedule::after(start_us, now_us);
    schedule.run(&stack, &compactor, compactor_fn).await?;
    moto.request("POST", "/moto-api/recorder/stop-recording")?;

    let mut m = Measured {
        vehicles: options.vehicles,
        drive_seconds: (options.vehicles as u64 * u64::from(options.seconds)) as f64,
        frames: counters.values().filter_map(|c| c["frames_read"].as_u64()).sum::<u64>() as f64,
        ..Measured::default()
    };
    let recording = std::fs::read_to_string(&recording).context("moto's recording")?;
    m.compaction_unit_hours = schedule.unit_hours(options.vehicles);
    m.add_recording(&recording, driven)?;
    m.add_counters(&stack.counters);
    m.add_stored(&stack).await?;
    let memory = function_memory_gb(&stack)?;
    let cold_after: f64 = stack
        .template
        .parameters
        .get("RawColdAfterDays")
        .and_then(|d| d.parse().ok())
        .unwrap_or(f64::INFINITY);
    Ok((m, memory, cold_after))
}

/// Drives the fleet and waits for the pipeline to settle; each vehicle's
/// counters, and when the drive started (µs).
async fn drive(
    options: &CostOptions,
    design: &Design,
    stack: &Stack,
    work: &Path,
    now_us: i64,
) -> Result<(BTreeMap<DeviceId, Value>, i64)> {
    // The drive ends a minute ago, so its batches arrive on time as a
    // vehicle's do (a past drive would make every batch a late one).
    let now_s = now_us / 1_000_000;
    let start_us = (now_s - i64::from(options.seconds) - 60) * 1_000_000;
    let fleet = FleetOptions {
        vehicles: options.vehicles,
        seconds: options.seconds,
        overheating: None,
        start_us,
        edge: options.edge.clone(),
        dbc: options.dbc.clone(),
        work: work.join("fleet"),
        replay_dir: None,
        replay_speed: 0.0,
        via: None,
        settings: EdgeSettings {
            // A raw object per seal_after_s of driving, as a vehicle makes,
            // from a simulation that runs faster than real time.
            seal_max_frames: Some(SIMULATED_FRAMES_PER_S * design.seal_after_s),
            ..design.settings
        },
    };
    let counters = run_fleet(stack, &fleet).await?;
    settle(stack, Duration::from_secs(600)).await?;
    Ok((counters, start_us))
}

/// The schedule's runs once the drive's day has closed, as the compactor
/// would make them then: its hours and its day merged, then what they
/// superseded deleted after the grace period — the lake as it stays.
struct Schedule {
    /// When the drive's day has closed and settled (µs).
    closed_us: i64,
    now_us: i64,
}

const HOUR_US: i64 = 3_600 * 1_000_000;

impl Schedule {
    fn after(start_us: i64, now_us: i64) -> Self {
        let day_us = 86_400 * 1_000_000;
        let closed_us = (start_us / day_us + 1) * day_us + SETTLE_US + HOUR_US;
        Self { closed_us, now_us }
    }

    /// Every vehicle's every hour is a unit the compactor lists, driven or not.
    fn unit_hours(&self, vehicles: usize) -> f64 {
        let newest_due = |at_us: i64| (at_us - SETTLE_US) / HOUR_US * HOUR_US - HOUR_US;
        ((newest_due(self.closed_us) - newest_due(self.now_us)) / HOUR_US) as f64 * vehicles as f64
    }

    async fn run(&self, stack: &Stack, compactor: &Compactor<S3Store>, compactor_fn: &Function) -> Result<()> {
        for at_us in [self.closed_us, self.closed_us + GRACE_US + 60 * 1_000_000] {
            let started = Instant::now();
            compactor.run(at_us).await?;
            stack.counters.invoked(&compactor_fn.logical_id, started.elapsed());
        }
        Ok(())
    }
}

impl Measured {
    /// The billed calls of moto's recording: the fleet's, and after the
    /// drive the compactor's, whose listings are counted apart.
    fn add_recording(&mut self, recording: &str, driven: usize) -> Result<()> {
        let (fleet, compaction) = split_recording(recording, driven)?;
        for call in fleet.iter().filter_map(classify) {
            self.add_call(&call);
        }
        for call in compaction.iter().filter_map(classify) {
            if call.action == "ListObjects" {
                self.compaction_lists += 1;
            } else {
                self.add_call(&call);
            }
        }
        Ok(())
    }

    /// What the stack counted that moto does not see.
    fn add_counters(&mut self, c: &StackCounters) {
        self.iot_broker_units = c.broker_units.load(Ordering::Relaxed);
        self.basic_ingest_messages = c.basic_ingest_messages.load(Ordering::Relaxed);
        self.rules_triggered_units = c.rules_triggered_units.load(Ordering::Relaxed);
        self.rule_action_units = c.rule_action_units.load(Ordering::Relaxed);
        self.functions = c.functions.lock().map(|f| f.clone()).unwrap_or_default();
    }

    /// The bytes and objects the bucket holds, by key prefix.
    async fn add_stored(&mut self, stack: &Stack) -> Result<()> {
        let store = S3Store::new(&stack.sdk, &stack.bucket);
        for (key, info) in canopy::ports::store::ObjectStore::list(&store, "").await? {
            let prefix = key.split_once('/').map_or("(bucket)", |(p, _)| p);
            let entry = self.stored.entry(format!("{prefix}/")).or_default();
            entry.0 += info.size;
            entry.1 += 1;
        }
        Ok(())
    }
}

/// Waits until the queues are empty and no function has run for two seconds
/// (without listing the bucket, which would be counted).
async fn settle(stack: &Stack, limit: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last = u64::MAX;
    let mut calm = 0;
    while calm < 4 {
        if started.elapsed() > limit {
            bail!("the pipeline did not settle within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let invocations = stack.counters.invocations.load(Ordering::Relaxed);
        if invocations == last && stack.queued().await? == 0 {
            calm += 1;
        } else {
            calm = 0;
        }
        last = invocations;
    }
    Ok(())
}
