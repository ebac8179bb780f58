//! moto's request recording, read as billed calls: which service and
//! action each request was, and what it costs in requests or capacity
//! units. Apart because it is parsing: it knows moto's format and AWS's
//! request shapes, and nothing of the stack.

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::Value;

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
pub(super) fn billed_per_vehicle(call: &Call) -> bool {
    let free = match call.service.as_str() {
        "dynamodb" => ["GetRecords", "DescribeStream", "GetShardIterator", "ListStreams"].as_slice(),
        "sqs" => ["ReceiveMessage", "GetQueueAttributes", "GetQueueUrl"].as_slice(),
        _ => [].as_slice(),
    };
    !free.contains(&call.action.as_str())
}
