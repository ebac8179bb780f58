//! `make cost`: the standard workload of a vehicle-month priced from what
//! the local stack measured doing it. A few simulated vehicles drive through
//! a stack of their own, once per telemetry design; moto's request recorder
//! logs every AWS request (the edges', the functions', IoT Core's rule
//! actions, Lambda's queue pollers), the stack counts what moto does not see
//! (messages, rules, invocations and their durations), and a listing of the
//! bucket gives the bytes stored. Everything is scaled to the workload —
//! requests and messages by driving time, bytes and the decoder's time by
//! frames — and priced at `infra/prices.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::demo::{EdgeSettings, FleetOptions, run_fleet};
use crate::services::{Moto, moto_server_path};
use crate::stack::{FunctionUse, Stack, StackOptions};

/// The standard workload the cost model prices, per vehicle and month.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub drive_hours_per_day: f64,
    pub days: f64,
    pub frames_per_second: f64,
    pub history_queries: f64,
}

impl Workload {
    pub const STANDARD: Workload = Workload {
        drive_hours_per_day: 2.0,
        days: 30.0,
        frames_per_second: 2_000.0,
        history_queries: 50.0,
    };

    /// The standard fleet: the same vehicles driving 8 hours a day.
    pub const FLEET_8H: Workload = Workload {
        drive_hours_per_day: 8.0,
        ..Workload::STANDARD
    };

    fn drive_seconds(&self) -> f64 {
        self.drive_hours_per_day * 3_600.0 * self.days
    }

    fn frames(&self) -> f64 {
        self.drive_seconds() * self.frames_per_second
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Prices {
    pub region: String,
    pub checked: String,
    pub iot: IotPrices,
    pub sqs: SqsPrices,
    pub sns: SnsPrices,
    pub dynamodb: DynamoPrices,
    pub s3: S3Prices,
    pub lambda: LambdaPrices,
    pub athena: AthenaPrices,
    pub api_gateway: ApiGatewayPrices,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IotPrices {
    pub messaging_per_million: f64,
    pub connectivity_per_million_minutes: f64,
    pub rules_triggered_per_million: f64,
    pub actions_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct SqsPrices {
    pub requests_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct SnsPrices {
    pub requests_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct DynamoPrices {
    pub write_units_per_million: f64,
    pub read_units_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct S3Prices {
    pub write_requests_per_thousand: f64,
    pub read_requests_per_thousand: f64,
    pub standard_gb_month: f64,
    pub glacier_ir_gb_month: f64,
    pub glacier_ir_transitions_per_thousand: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct LambdaPrices {
    pub gb_second: f64,
    pub requests_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct AthenaPrices {
    pub per_tb_scanned: f64,
    pub minimum_bytes_per_query: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct ApiGatewayPrices {
    pub http_requests_per_million: f64,
}

impl Prices {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }
}

/// moto's recording, one JSON object per request (moto's threads may put
/// two on a line), split into the requests that began before byte `driven`
/// (the file's length when the drive ended) and those after. A request in
/// flight then straddles `driven` (a large PUT is written in pieces), so the
/// file cannot simply be cut there: it is the fleet's.
pub fn split_recording(recording: &str, driven: usize) -> Result<(Vec<Value>, Vec<Value>)> {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut entries = serde_json::Deserializer::from_str(recording).into_iter::<Value>();
    let mut next = 0;
    while let Some(entry) = entries.next() {
        let entry = entry.context("moto's recording")?;
        let rest = &recording[next..];
        let began = next + (rest.len() - rest.trim_start().len());
        next = entries.byte_offset();
        if began < driven {
            before.push(entry)
        } else {
            after.push(entry)
        }
    }
    Ok((before, after))
}

/// One AWS request from moto's recording, as billed.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The SigV4 signing name: `s3`, `sqs`, `dynamodb`, `sns`, ...
    pub service: String,
    pub action: String,
    /// An S3 request's object key, if it names one.
    pub key: Option<String>,
    /// The request body's size (SQS bills each 64 KB of it as a request).
    pub body_bytes: usize,
    /// DynamoDB write or read units the request costs (estimated from its size).
    pub capacity_units: u64,
}

/// One line of moto's recording (`{"headers", "method", "url", "body", "body_encoded"}`).
pub fn classify(entry: &Value) -> Option<Call> {
    let header = |name: &str| {
        entry["headers"]
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    let service = header("Authorization")?
        .split("Credential=")
        .nth(1)?
        .split(',')
        .next()?
        .split('/')
        .nth(3)?
        .to_string();
    let method = entry["method"].as_str().unwrap_or_default();
    let url = entry["url"].as_str().unwrap_or_default();
    let body = entry["body"].as_str().unwrap_or_default();
    let decoded = || -> Vec<u8> {
        if entry["body_encoded"].as_bool() == Some(true) {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_default()
        } else {
            body.as_bytes().to_vec()
        }
    };
    if service == "s3" {
        let (action, key) = s3_action(method, url, header("x-amz-copy-source").is_some());
        return Some(Call {
            service,
            action,
            key,
            body_bytes: 0, // S3 bills requests, not their size
            capacity_units: 0,
        });
    }
    let body = decoded();
    let action = match header("X-Amz-Target") {
        Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
        None => form_value(&body, "Action").unwrap_or_default(),
    };
    let capacity_units = if service == "dynamodb" {
        dynamodb_units(&action, &body)
    } else {
        0
    };
    Some(Call {
        service,
        action,
        key: None,
        body_bytes: body.len(),
        capacity_units,
    })
}

/// An S3 request's action and object key (path-style URLs, as the local stack's clients send).
fn s3_action(method: &str, url: &str, copy: bool) -> (String, Option<String>) {
    let path_and_query = url.splitn(4, '/').nth(3).unwrap_or_default();
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let key = path.split_once('/').map(|(_, k)| k).filter(|k| !k.is_empty());
    let has = |name: &str| {
        query
            .split('&')
            .any(|q| q == name || q.starts_with(&format!("{name}=")))
    };
    let action = match (method, key.is_some()) {
        ("PUT", true) if has("uploadId") => "UploadPart",
        ("PUT", true) if copy => "CopyObject",
        ("PUT", true) => "PutObject",
        ("PUT", false) => "PutBucketConfiguration",
        ("POST", _) if has("delete") => "DeleteObjects",
        ("POST", _) if has("uploads") => "CreateMultipartUpload",
        ("POST", _) if has("uploadId") => "CompleteMultipartUpload",
        ("POST", _) => "PostObject",
        ("GET", false) => "ListObjects",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("HEAD", false) => "HeadBucket",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", _) => "DeleteObject",
        _ => "Other",
    };
    (action.to_string(), key.map(str::to_string))
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
}

/// Write units of a write (1 KB each, a transaction's twice), read units of a
/// read (4 KB each): the request's own size stands in for the item's, which
/// overstates a little (names and expressions ride along).
fn dynamodb_units(action: &str, body: &[u8]) -> u64 {
    let kb = |bytes: usize, unit: usize| (bytes.div_ceil(unit)).max(1) as u64;
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let items = |field: &str| -> Vec<Value> {
        match &json[field] {
            Value::Object(tables) => tables.values().filter_map(Value::as_array).flatten().cloned().collect(),
            Value::Array(items) => items.clone(),
            _ => Vec::new(),
        }
    };
    match action {
        "PutItem" | "UpdateItem" | "DeleteItem" => kb(body.len(), 1024),
        "BatchWriteItem" => items("RequestItems")
            .iter()
            .map(|i| kb(i.to_string().len(), 1024))
            .sum(),
        "TransactWriteItems" => items("TransactItems")
            .iter()
            .map(|i| 2 * kb(i.to_string().len(), 1024))
            .sum(),
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems" => kb(body.len(), 4096),
        _ => 0,
    }
}

/// What Lambda's queue pollers, IoT Core and the harness itself do that is not
/// billed per vehicle, or not billed at all: Lambda reads DynamoDB streams for
/// free; the pollers' receives are billed below as one per delivered batch
/// (the local poller's empty polls are a fixed cost of each queue, not a
/// vehicle's); queue attributes are the harness waiting for the queues.
fn billed_per_vehicle(call: &Call) -> bool {
    let free = match call.service.as_str() {
        "dynamodb" => ["GetRecords", "DescribeStream", "GetShardIterator", "ListStreams"].as_slice(),
        "sqs" => ["ReceiveMessage", "GetQueueAttributes", "GetQueueUrl"].as_slice(),
        _ => [].as_slice(),
    };
    !free.contains(&call.action.as_str())
}

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

/// A priced part of the bill, per vehicle-month.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub part: &'static str,
    pub driver: String,
    pub dollars: f64,
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

/// The bill of one design, per vehicle-month, from what its run measured.
pub fn price(
    m: &Measured,
    prices: &Prices,
    workload: &Workload,
    memory_gb: &BTreeMap<String, f64>,
    raw_cold_after_days: f64,
) -> Vec<Line> {
    // Per vehicle-month, from the fleet's run: by driving time, or by frames.
    let by_time = workload.drive_seconds() / m.drive_seconds.max(1.0);
    let by_frames = workload.frames() / m.frames.max(1.0);
    let million = 1e6;
    let requests = |service: &str, filter: &dyn Fn(&str) -> bool| -> (u64, u64) {
        m.requests
            .iter()
            .filter(|((s, a), _)| s == service && filter(a))
            .fold((0, 0), |(n, u), (_, (cn, cu))| (n + cn, u + cu))
    };
    let mut lines = Vec::new();

    let broker = m.iot_broker_units as f64 * by_time;
    let triggered = m.rules_triggered_units as f64 * by_time;
    let actions = m.rule_action_units as f64 * by_time;
    let minutes = workload.drive_seconds() / 60.0;
    lines.push(Line {
        part: "IoT Core",
        driver: format!(
            "{broker:.0} broker messages (5 KB units), {:.0} by Basic Ingest; {triggered:.0} rules triggered, {actions:.0} actions; {minutes:.0} connected minutes",
            m.basic_ingest_messages as f64 * by_time
        ),
        dollars: broker / million * prices.iot.messaging_per_million
            + triggered / million * prices.iot.rules_triggered_per_million
            + actions / million * prices.iot.actions_per_million
            + minutes / million * prices.iot.connectivity_per_million_minutes,
    });

    // S3 delivers each notified object to SQS: a send moto makes inside itself.
    let notified =
        m.s3.get(&("PutObject".to_string(), "raw/".to_string()))
            .copied()
            .unwrap_or(0)
            + m.s3
                .get(&("CompleteMultipartUpload".to_string(), "raw/".to_string()))
                .copied()
                .unwrap_or(0);
    let (_, sqs_units) = requests("sqs", &|_| true);
    let deletes = requests("sqs", &|a| a.starts_with("DeleteMessage")).0;
    let sqs = (sqs_units + notified + deletes) as f64 * by_time;
    lines.push(Line {
        part: "SQS",
        driver: format!("{sqs:.0} requests (sends, deletes, S3 notifications, and a receive per delivered batch)"),
        dollars: sqs / million * prices.sqs.requests_per_million,
    });

    let writes = |a: &str| {
        [
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactWriteItems",
        ]
        .contains(&a)
    };
    let wru = requests("dynamodb", &writes).1 as f64 * by_time;
    let rru = requests("dynamodb", &|a| !writes(a)).1 as f64 * by_time;
    lines.push(Line {
        part: "DynamoDB",
        driver: format!("{wru:.0} write units, {rru:.0} read units (on demand)"),
        dollars: wru / million * prices.dynamodb.write_units_per_million
            + rru / million * prices.dynamodb.read_units_per_million,
    });

    let s3_writes = [
        "PutObject",
        "CopyObject",
        "UploadPart",
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
        "ListObjects",
        "DeleteObjects",
        "PostObject",
        "PutBucketConfiguration",
    ];
    let (mut write_n, mut read_n) = (0.0, 0.0);
    for ((action, _), n) in &m.s3 {
        if s3_writes.contains(&action.as_str()) {
            write_n += *n as f64 * by_time;
        } else if !action.starts_with("Delete") && action != "AbortMultipartUpload" {
            read_n += *n as f64 * by_time;
        }
    }
    let listings = m.compaction_lists as f64 / m.compaction_unit_hours.max(1.0) * workload.days * 24.0;
    write_n += listings;
    let busiest: Vec<String> = {
        let mut by: Vec<(&(String, String), &u64)> = m.s3.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1));
        by.iter()
            .filter(|((a, _), _)| !a.starts_with("Delete"))
            .take(4)
            .map(|((a, p), n)| format!("{a} {p} {:.0}", **n as f64 * by_time))
            .collect()
    };
    lines.push(Line {
        part: "S3 requests",
        driver: format!(
            "{write_n:.0} PUT/COPY/POST/LIST, {read_n:.0} GET/HEAD ({}; the compactor's listings {listings:.0})",
            busiest.join(", ")
        ),
        dollars: write_n / 1e3 * prices.s3.write_requests_per_thousand
            + read_n / 1e3 * prices.s3.read_requests_per_thousand,
    });

    // Storage: a month's data accrues evenly over the month, so the month
    // pays for half of it; raw moves to Glacier IR after raw_cold_after_days
    // (one transition request per object).
    let gb = |prefix: &str, scale: f64| m.stored.get(prefix).map_or(0.0, |(b, _)| *b as f64) * scale / 1e9;
    let raw_gb = gb("raw/", by_frames);
    let telemetry_gb = gb("telemetry/", by_time);
    let lake_gb: f64 = m
        .stored
        .keys()
        .filter(|p| *p != "raw/" && *p != "telemetry/")
        .map(|p| gb(p, by_frames))
        .sum();
    let raw_objects = m.stored.get("raw/").map_or(0.0, |(_, n)| *n as f64) * by_time;
    // Of a GB made at an even rate over a month of T days and kept past it,
    // the month holds c - c²/2T days of it in Standard and (T - c)²/2T cold:
    // half a month in all, split as below.
    let month_days = workload.days;
    let cold_share = ((month_days - raw_cold_after_days).max(0.0) / month_days).powi(2);
    let raw_first_month = raw_gb
        * (0.5 * prices.s3.standard_gb_month * (1.0 - cold_share) + 0.5 * prices.s3.glacier_ir_gb_month * cold_share);
    let transitions = if raw_cold_after_days < month_days {
        raw_objects / 1e3 * prices.s3.glacier_ir_transitions_per_thousand
    } else {
        0.0
    };
    lines.push(Line {
        part: "S3 storage",
        driver: format!(
            "the month's {:.2} GB ({raw_gb:.2} raw, {lake_gb:.2} decoded + tiers, {telemetry_gb:.3} telemetry archive), half a month on average; {raw_objects:.0} raw objects to Glacier IR",
            raw_gb + lake_gb + telemetry_gb
        ),
        dollars: (lake_gb + telemetry_gb) * 0.5 * prices.s3.standard_gb_month + raw_first_month + transitions,
    });

    let mut gb_s = 0.0;
    let mut invocations = 0.0;
    let mut parts = Vec::new();
    for (function, used) in &m.functions {
        // The decoder's time follows the frames; the others' the messages.
        let scale = if function.contains("Decoder") {
            by_frames
        } else {
            by_time
        };
        let memory = memory_gb.get(function).copied().unwrap_or(0.125);
        let f_gb_s = used.billed_ms as f64 / 1e3 * memory * scale;
        gb_s += f_gb_s;
        invocations += used.invocations as f64 * by_time;
        parts.push(format!("{function} {f_gb_s:.1}"));
    }
    lines.push(Line {
        part: "Lambda",
        driver: format!("{invocations:.0} invocations, {gb_s:.1} GB-s ({})", parts.join(", ")),
        dollars: gb_s * prices.lambda.gb_second + invocations / million * prices.lambda.requests_per_million,
    });

    let sns = requests("sns", &|a| a == "Publish").0 as f64 * by_time;
    let priced = ["iot", "sqs", "dynamodb", "s3", "sns"];
    let unpriced: Vec<String> = m
        .requests
        .iter()
        .filter(|((s, a), _)| !priced.contains(&s.as_str()) || s == "sns" && a != "Publish")
        .map(|((s, a), (n, _))| format!("{s} {a} {n}"))
        .collect();
    lines.push(Line {
        part: "SNS and the rest",
        driver: format!(
            "{sns:.0} alert publishes; not priced: {}",
            if unpriced.is_empty() {
                "nothing else called".to_string()
            } else {
                unpriced.join(", ")
            }
        ),
        dollars: sns / million * prices.sns.requests_per_million,
    });

    // Not run here (the local API reads with DataFusion, not Athena): each
    // query priced at Athena's minimum scan and a second of the API function.
    let q = workload.history_queries;
    let api_gb = memory_gb.get("ApiFunction").copied().unwrap_or(0.5);
    lines.push(Line {
        part: "history queries",
        driver: format!(
            "{q:.0} queries at Athena's 10 MB minimum, API Gateway, 1 s of the API function each (priced, not run)"
        ),
        dollars: q * prices.athena.minimum_bytes_per_query / 1e12 * prices.athena.per_tb_scanned
            + q / million * prices.api_gateway.http_requests_per_million
            + q * api_gb * prices.lambda.gb_second
            + q / million * prices.lambda.requests_per_million,
    });
    lines
}

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

#[derive(Debug, Clone)]
pub struct CostOptions {
    pub template: PathBuf,
    pub prices: PathBuf,
    pub edge: PathBuf,
    pub dbc: PathBuf,
    pub vehicles: usize,
    pub seconds: u32,
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
    let compactor = canopy_decoder::compact::Compactor::from_env(&compactor_fn.environment, &stack.sdk)?;
    // As in a running stack, the hours before now are done already.
    let now_us = chrono::Utc::now().timestamp_micros();
    compactor.run(now_us).await?;
    let status = moto.request("POST", "/moto-api/recorder/start-recording")?;
    if status != 200 {
        bail!("moto's recorder did not start: HTTP {status}");
    }
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
        work: work.path().join("fleet"),
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
    let counters = run_fleet(&stack, &fleet).await?;
    settle(&stack, Duration::from_secs(600)).await?;
    let recording = work.path().join("moto_recording");
    let driven = std::fs::metadata(&recording).map_or(0, |m| m.len() as usize);
    // The schedule's runs once the drive's day has closed, as the compactor
    // would make them then: its hours and its day merged, then what they
    // superseded deleted after the grace period — the lake as it stays.
    let (hour_us, day_us) = (3_600 * 1_000_000, 86_400 * 1_000_000);
    let closed_us = (start_us / day_us + 1) * day_us + canopy_decoder::compact::SETTLE_US + hour_us;
    // Every vehicle's every hour is a unit the compactor lists, driven or not.
    let newest_due = |at_us: i64| (at_us - canopy_decoder::compact::SETTLE_US) / hour_us * hour_us - hour_us;
    let unit_hours = ((newest_due(closed_us) - newest_due(now_us)) / hour_us) as f64 * options.vehicles as f64;
    for at_us in [
        closed_us,
        closed_us + canopy_decoder::compact::GRACE_US + 60 * 1_000_000,
    ] {
        let started = Instant::now();
        compactor.run(at_us).await?;
        stack.counters.invoked(&compactor_fn.logical_id, started.elapsed());
    }
    moto.request("POST", "/moto-api/recorder/stop-recording")?;

    let mut m = Measured {
        vehicles: options.vehicles,
        drive_seconds: (options.vehicles as u64 * u64::from(options.seconds)) as f64,
        frames: counters.values().filter_map(|c| c["frames_read"].as_u64()).sum::<u64>() as f64,
        ..Measured::default()
    };
    let recording = std::fs::read_to_string(&recording).context("moto's recording")?;
    m.compaction_unit_hours = unit_hours;
    let (fleet, compaction) = split_recording(&recording, driven)?;
    for call in fleet.iter().filter_map(classify) {
        m.add_call(&call);
    }
    for call in compaction.iter().filter_map(classify) {
        if call.action == "ListObjects" {
            m.compaction_lists += 1;
        } else {
            m.add_call(&call);
        }
    }
    let c = &stack.counters;
    m.iot_broker_units = c.broker_units.load(Ordering::Relaxed);
    m.basic_ingest_messages = c.basic_ingest_messages.load(Ordering::Relaxed);
    m.rules_triggered_units = c.rules_triggered_units.load(Ordering::Relaxed);
    m.rule_action_units = c.rule_action_units.load(Ordering::Relaxed);
    m.functions = c.functions.lock().map(|f| f.clone()).unwrap_or_default();
    let store = canopy::adapters::aws::s3::S3Store::new(&stack.sdk, &stack.bucket);
    for (key, info) in canopy::ports::store::ObjectStore::list(&store, "").await? {
        let prefix = key.split_once('/').map_or("(bucket)", |(p, _)| p);
        let entry = m.stored.entry(format!("{prefix}/")).or_default();
        entry.0 += info.size;
        entry.1 += 1;
    }
    let memory = function_memory_gb(&stack)?;
    let cold_after: f64 = stack
        .template
        .parameters
        .get("RawColdAfterDays")
        .and_then(|d| d.parse().ok())
        .unwrap_or(f64::INFINITY);
    Ok((m, memory, cold_after))
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

/// The report: each part per vehicle-month for every design, side by side.
pub fn report(prices: &Prices, workload: &Workload, bills: &[(Design, Measured, Vec<Line>)]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Per vehicle-month: {} h a day for {} days, telemetry at 1 Hz, {} CAN frames/s while driving ({:.0} M frames), {} history queries; {} list prices checked {} (infra/prices.toml).",
        workload.drive_hours_per_day,
        workload.days,
        workload.frames_per_second,
        workload.frames() / 1e6,
        workload.history_queries,
        prices.region,
        prices.checked
    );
    if let Some((_, m, _)) = bills.first() {
        let _ = writeln!(
            out,
            "Measured: {} simulated vehicles × {} s each ({:.0} frames), scaled by driving time (requests, messages) and by frames (bytes, the decoder's time){}.",
            m.vehicles,
            m.drive_seconds / m.vehicles.max(1) as f64,
            m.frames,
            if cfg!(debug_assertions) {
                "; a debug build, so Lambda durations are an upper bound"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out);
    let header: Vec<&str> = bills.iter().map(|(d, ..)| d.name).collect();
    let _ = writeln!(out, "| part | {} |", header.join(" | "));
    let _ = writeln!(out, "| --- |{}", " ---: |".repeat(bills.len()));
    let parts: Vec<&'static str> = bills
        .first()
        .map(|(_, _, l)| l.iter().map(|l| l.part).collect())
        .unwrap_or_default();
    for (i, part) in parts.iter().enumerate() {
        let cells: Vec<String> = bills.iter().map(|(_, _, l)| format!("${:.4}", l[i].dollars)).collect();
        let _ = writeln!(out, "| {part} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = bills
        .iter()
        .map(|(_, _, l)| format!("**${:.3}**", l.iter().map(|l| l.dollars).sum::<f64>()))
        .collect();
    let _ = writeln!(out, "| **per vehicle-month** | {} |", totals.join(" | "));
    for (design, m, lines) in bills {
        let _ = writeln!(out, "\n{}:", design.name);
        for l in lines {
            let _ = writeln!(out, "- {}: ${:.4} — {}", l.part, l.dollars, l.driver);
        }
        let stored: Vec<String> = m
            .stored
            .iter()
            .map(|(p, (bytes, n))| format!("{p} {n} objects, {:.2} B/frame", *bytes as f64 / m.frames.max(1.0)))
            .collect();
        let _ = writeln!(out, "- measured, stored: {}", stored.join("; "));
        let s3: Vec<String> = m.s3.iter().map(|((a, p), n)| format!("{a} {p} {n}")).collect();
        let _ = writeln!(out, "- measured, S3 requests: {}", s3.join(", "));
    }
    out
}

/// `canopy-local cost`: every design measured once, then priced and
/// reported for the standard workload and for the 8 h/day fleet.
pub async fn run(options: &CostOptions) -> Result<String> {
    let prices = Prices::load(&options.prices)?;
    let mut measured = Vec::new();
    for design in DESIGNS {
        eprintln!(
            "measuring: {} ({} vehicles × {} s)...",
            design.name, options.vehicles, options.seconds
        );
        measured.push((design, measure(options, &design).await?));
    }
    let mut out = String::new();
    for (title, workload) in [
        ("The standard workload", Workload::STANDARD),
        ("The standard fleet, 8 h a day", Workload::FLEET_8H),
    ] {
        let bills: Vec<(Design, Measured, Vec<Line>)> = measured
            .iter()
            .map(|(design, (m, memory, cold_after))| {
                (*design, m.clone(), price(m, &prices, &workload, memory, *cold_after))
            })
            .collect();
        out.push_str(&format!("## {title}\n\n{}\n", report(&prices, &workload, &bills)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_written_across_the_drives_end_is_the_fleets() {
        let recording = "{\"a\":1}\n{\"b\":\"a long body\"}{\"c\":3}\n{\"d\":4}\n";
        let inside_b = recording.find("long").unwrap();
        let (fleet, after) = split_recording(recording, inside_b).unwrap();
        assert_eq!(fleet, [json!({"a": 1}), json!({"b": "a long body"})]);
        assert_eq!(after, [json!({"c": 3}), json!({"d": 4})]);
        let at_d = recording.find("{\"d\"").unwrap();
        let (fleet, after) = split_recording(recording, at_d - 1).unwrap();
        assert_eq!(
            (fleet.len(), after),
            (3, vec![json!({"d": 4})]),
            "the newline before d is not d"
        );
        assert!(split_recording("{\"a\":", 0).is_err(), "a truncated file is an error");
    }
    use serde_json::json;

    fn entry(headers: Value, method: &str, url: &str, body: &str) -> Value {
        json!({"headers": headers, "method": method, "url": url, "body": body, "body_encoded": false})
    }

    fn signed(service: &str) -> Value {
        json!({"Authorization": format!("AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0")})
    }

    #[test]
    fn each_request_is_named_by_its_service_and_action() {
        let mut headers = signed("dynamodb");
        headers["X-Amz-Target"] = json!("DynamoDB_20120810.PutItem");
        let put = classify(&entry(headers, "POST", "http://127.0.0.1:5000/", &"x".repeat(1500))).unwrap();
        assert_eq!(
            (put.service.as_str(), put.action.as_str(), put.capacity_units),
            ("dynamodb", "PutItem", 2)
        );
        let mut headers = signed("sqs");
        headers["x-amz-target"] = json!("AmazonSQS.SendMessage");
        let send = classify(&entry(headers, "POST", "http://127.0.0.1:5000/", "{}")).unwrap();
        assert_eq!((send.service.as_str(), send.action.as_str()), ("sqs", "SendMessage"));
        let publish = classify(&entry(
            signed("sns"),
            "POST",
            "http://127.0.0.1:5000/",
            "Action=Publish&TopicArn=x",
        ))
        .unwrap();
        assert_eq!(publish.action, "Publish");
        let s3 = |method: &str, url: &str| classify(&entry(signed("s3"), method, url, "")).unwrap();
        let put = s3(
            "PUT",
            "http://127.0.0.1:5000/data/raw/vehicle_id=v/date=2026-12-02/a.parquet?x-id=PutObject",
        );
        assert_eq!(
            (put.action.as_str(), put.key.as_deref()),
            ("PutObject", Some("raw/vehicle_id=v/date=2026-12-02/a.parquet"))
        );
        assert_eq!(
            s3("GET", "http://127.0.0.1:5000/data?list-type=2&prefix=raw%2F").action,
            "ListObjects"
        );
        assert_eq!(s3("POST", "http://127.0.0.1:5000/data?delete").action, "DeleteObjects");
        assert_eq!(
            s3("PUT", "http://127.0.0.1:5000/data/raw/a?partNumber=1&uploadId=u").action,
            "UploadPart"
        );
        assert!(
            classify(&entry(json!({}), "GET", "http://127.0.0.1:5000/moto-api/", "")).is_none(),
            "unsigned: not AWS"
        );
    }

    #[test]
    fn a_bill_scales_what_the_fleet_did_to_a_vehicle_month() {
        let prices: Prices = toml::from_str(include_str!("../../prices.toml")).unwrap();
        let mut m = Measured {
            vehicles: 1,
            drive_seconds: 600.0,
            frames: 1_200_000.0,
            iot_broker_units: 600,
            ..Measured::default()
        };
        m.stored.insert("raw/".into(), (6_000_000, 10));
        let lines = price(&m, &prices, &Workload::STANDARD, &BTreeMap::new(), 7.0);
        let iot = lines.iter().find(|l| l.part == "IoT Core").unwrap();
        // 216,000 messages a month at $1/M, and 3,600 connected minutes at $0.08/M.
        assert!((iot.dollars - (0.216 + 0.000288)).abs() < 1e-9, "{iot:?}");
        let storage = lines.iter().find(|l| l.part == "S3 storage").unwrap();
        // 432 M frames at 5 B each: 2.16 GB of raw, and 3,600 objects moved cold.
        assert!(storage.driver.contains("2.16 raw"), "{storage:?}");
        let cold = (23.0f64 / 30.0).powi(2);
        let want = 2.16 * (0.5 * 0.023 * (1.0 - cold) + 0.5 * 0.004 * cold) + 3.6 * 0.02;
        assert!((storage.dollars - want).abs() < 1e-9, "{storage:?} vs {want}");
    }
}
