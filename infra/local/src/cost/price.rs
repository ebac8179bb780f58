//! Pricing: what one design's run measured, scaled to a vehicle-month of
//! the workload and priced part by part, a function per part of the bill
//! (each line says what drove its dollars, so the report can be checked).

use std::collections::BTreeMap;

use super::measure::Measured;
use super::{Prices, Workload};

/// A priced part of the bill, per vehicle-month.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub part: &'static str,
    pub driver: String,
    pub dollars: f64,
}

const MILLION: f64 = 1e6;

/// How the fleet's run scales to a vehicle-month.
struct Scale {
    /// Requests and messages follow the driving time.
    by_time: f64,
    /// Bytes and the decoder's time follow the frames.
    by_frames: f64,
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
    let scale = Scale {
        by_time: workload.drive_seconds() / m.drive_seconds.max(1.0),
        by_frames: workload.frames() / m.frames.max(1.0),
    };
    vec![
        iot_core(m, prices, workload, &scale),
        sqs(m, prices, &scale),
        dynamodb(m, prices, &scale),
        s3_requests(m, prices, workload, &scale),
        s3_storage(m, prices, workload, &scale, raw_cold_after_days),
        lambda(m, prices, memory_gb, &scale),
        sns_and_the_rest(m, prices, &scale),
        history_queries(prices, workload, memory_gb),
    ]
}

impl Measured {
    /// The requests and units of `service`'s actions that `filter` takes.
    fn requests(&self, service: &str, filter: &dyn Fn(&str) -> bool) -> (u64, u64) {
        self.requests
            .iter()
            .filter(|((s, a), _)| s == service && filter(a))
            .fold((0, 0), |(n, u), (_, (cn, cu))| (n + cn, u + cu))
    }
}

fn iot_core(m: &Measured, prices: &Prices, workload: &Workload, scale: &Scale) -> Line {
    let by_time = scale.by_time;
    let broker = m.iot_broker_units as f64 * by_time;
    let triggered = m.rules_triggered_units as f64 * by_time;
    let actions = m.rule_action_units as f64 * by_time;
    let minutes = workload.drive_seconds() / 60.0;
    Line {
        part: "IoT Core",
        driver: format!(
            "{broker:.0} broker messages (5 KB units), {:.0} by Basic Ingest; {triggered:.0} rules triggered, {actions:.0} actions; {minutes:.0} connected minutes",
            m.basic_ingest_messages as f64 * by_time
        ),
        dollars: broker / MILLION * prices.iot.messaging_per_million
            + triggered / MILLION * prices.iot.rules_triggered_per_million
            + actions / MILLION * prices.iot.actions_per_million
            + minutes / MILLION * prices.iot.connectivity_per_million_minutes,
    }
}

fn sqs(m: &Measured, prices: &Prices, scale: &Scale) -> Line {
    // S3 delivers each notified object to SQS: a send moto makes inside itself.
    let notified =
        m.s3.get(&("PutObject".to_string(), "raw/".to_string()))
            .copied()
            .unwrap_or(0)
            + m.s3
                .get(&("CompleteMultipartUpload".to_string(), "raw/".to_string()))
                .copied()
                .unwrap_or(0);
    let (_, sqs_units) = m.requests("sqs", &|_| true);
    let deletes = m.requests("sqs", &|a| a.starts_with("DeleteMessage")).0;
    let sqs = (sqs_units + notified + deletes) as f64 * scale.by_time;
    Line {
        part: "SQS",
        driver: format!("{sqs:.0} requests (sends, deletes, S3 notifications, and a receive per delivered batch)"),
        dollars: sqs / MILLION * prices.sqs.requests_per_million,
    }
}

fn dynamodb(m: &Measured, prices: &Prices, scale: &Scale) -> Line {
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
    let wru = m.requests("dynamodb", &writes).1 as f64 * scale.by_time;
    let rru = m.requests("dynamodb", &|a| !writes(a)).1 as f64 * scale.by_time;
    Line {
        part: "DynamoDB",
        driver: format!("{wru:.0} write units, {rru:.0} read units (on demand)"),
        dollars: wru / MILLION * prices.dynamodb.write_units_per_million
            + rru / MILLION * prices.dynamodb.read_units_per_million,
    }
}

fn s3_requests(m: &Measured, prices: &Prices, workload: &Workload, scale: &Scale) -> Line {
    let by_time = scale.by_time;
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
    Line {
        part: "S3 requests",
        driver: format!(
            "{write_n:.0} PUT/COPY/POST/LIST, {read_n:.0} GET/HEAD ({}; the compactor's listings {listings:.0})",
            busiest.join(", ")
        ),
        dollars: write_n / 1e3 * prices.s3.write_requests_per_thousand
            + read_n / 1e3 * prices.s3.read_requests_per_thousand,
    }
}

/// Storage: a month's data accrues evenly over the month, so the month
/// pays for half of it; raw moves to Glacier IR after raw_cold_after_days
/// (one transition request per object).
fn s3_storage(m: &Measured, prices: &Prices, workload: &Workload, scale: &Scale, raw_cold_after_days: f64) -> Line {
    let (by_time, by_frames) = (scale.by_time, scale.by_frames);
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
    Line {
        part: "S3 storage",
        driver: format!(
            "the month's {:.2} GB ({raw_gb:.2} raw, {lake_gb:.2} decoded + tiers, {telemetry_gb:.3} telemetry archive), half a month on average; {raw_objects:.0} raw objects to Glacier IR",
            raw_gb + lake_gb + telemetry_gb
        ),
        dollars: (lake_gb + telemetry_gb) * 0.5 * prices.s3.standard_gb_month + raw_first_month + transitions,
    }
}

fn lambda(m: &Measured, prices: &Prices, memory_gb: &BTreeMap<String, f64>, scale: &Scale) -> Line {
    let mut gb_s = 0.0;
    let mut invocations = 0.0;
    let mut parts = Vec::new();
    for (function, used) in &m.functions {
        // The decoder's time follows the frames; the others' the messages.
        let scale_of = if function.contains("Decoder") {
            scale.by_frames
        } else {
            scale.by_time
        };
        let memory = memory_gb.get(function).copied().unwrap_or(0.125);
        let f_gb_s = used.billed_ms as f64 / 1e3 * memory * scale_of;
        gb_s += f_gb_s;
        invocations += used.invocations as f64 * scale.by_time;
        parts.push(format!("{function} {f_gb_s:.1}"));
    }
    Line {
        part: "Lambda",
        driver: format!("{invocations:.0} invocations, {gb_s:.1} GB-s ({})", parts.join(", ")),
        dollars: gb_s * prices.lambda.gb_second + invocations / MILLION * prices.lambda.requests_per_million,
    }
}

fn sns_and_the_rest(m: &Measured, prices: &Prices, scale: &Scale) -> Line {
    let sns = m.requests("sns", &|a| a == "Publish").0 as f64 * scale.by_time;
    let priced = ["iot", "sqs", "dynamodb", "s3", "sns"];
    let unpriced: Vec<String> = m
        .requests
        .iter()
        .filter(|((s, a), _)| !priced.contains(&s.as_str()) || s == "sns" && a != "Publish")
        .map(|((s, a), (n, _))| format!("{s} {a} {n}"))
        .collect();
    Line {
        part: "SNS and the rest",
        driver: format!(
            "{sns:.0} alert publishes; not priced: {}",
            if unpriced.is_empty() {
                "nothing else called".to_string()
            } else {
                unpriced.join(", ")
            }
        ),
        dollars: sns / MILLION * prices.sns.requests_per_million,
    }
}

/// Not run here (the local API reads with DataFusion, not Athena): each
/// query priced at Athena's minimum scan and a second of the API function.
fn history_queries(prices: &Prices, workload: &Workload, memory_gb: &BTreeMap<String, f64>) -> Line {
    let q = workload.history_queries;
    let api_gb = memory_gb.get("ApiFunction").copied().unwrap_or(0.5);
    Line {
        part: "history queries",
        driver: format!(
            "{q:.0} queries at Athena's 10 MB minimum, API Gateway, 1 s of the API function each (priced, not run)"
        ),
        dollars: q * prices.athena.minimum_bytes_per_query / 1e12 * prices.athena.per_tb_scanned
            + q / MILLION * prices.api_gateway.http_requests_per_million
            + q * api_gb * prices.lambda.gb_second
            + q / MILLION * prices.lambda.requests_per_million,
    }
}
