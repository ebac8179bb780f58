//! The telemetry function's work, knowing nothing of Lambda: a batch of
//! messages from the IoT rule's queue in; the archive, the latest state and
//! the list of messages to retry out.
//!
//! - Invalid messages are rejected with their reason: counted, logged, never
//!   stored, and not retried (they would fail again).
//! - The archive holds every valid message exactly once. A batch writes one
//!   object per date, named after the batch, so a retried batch rewrites its
//!   own object. Across batches a ledger (one conditional write per message)
//!   decides which object holds a (vehicle, seq): a duplicate finds it claimed
//!   by an object that exists and is skipped; a claim whose object never
//!   appeared (its batch failed) is taken over once stale; a claim still in
//!   flight sends the message back to the queue for later.
//! - The latest state gets the newest message per vehicle of the batch, by a
//!   conditional write that never lets an older message win.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use futures::stream::{self, StreamExt};
use serde_json::Value;
use tracing::{info, warn};

use crate::lake::archive;
use crate::lake::keys::date_of;
use crate::store::ObjectStore;
use crate::tables::{Claim, TelemetryTables};
use crate::telemetry::Telemetry;
use crate::text::truncate_chars;

/// One message as the queue delivers it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The queue's message id, which a retry is requested by.
    pub id: String,
    pub body: String,
}

#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// A claim older than this whose object does not exist is taken over.
    pub claim_stale_after_ms: i64,
    /// Ledger writes in flight at once.
    pub concurrency: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            claim_stale_after_ms: 15 * 60 * 1000,
            concurrency: 16,
        }
    }
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Queue message ids to retry.
    pub failed: Vec<String>,
    pub received: u64,
    pub valid: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub archived: u64,
    pub archive_objects: Vec<String>,
    pub state_written: u64,
    /// Newest messages of the batch that were older than the stored state.
    pub state_stale: u64,
}

struct Valid {
    id: String,
    telemetry: Telemetry,
    received_at_ms: Option<i64>,
}

/// Parses and validates one message; the IoT rule adds `received_at` (ms).
pub fn parse(body: &str) -> Result<(Telemetry, Option<i64>), String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("message is not JSON: {e}"))?;
    let telemetry = Telemetry::from_json(&value).map_err(|r| r.reason)?;
    let received_at = value.get("received_at").and_then(Value::as_i64);
    Ok((telemetry, received_at))
}

/// A name for a set of queue messages: the same messages, the same name.
fn batch_name(ids: &[&str]) -> String {
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    // FNV-1a, 128 bits from two lanes: collisions would need ~2^64 batches.
    let (mut a, mut b) = (0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4u64);
    for id in sorted {
        for byte in id.bytes().chain(std::iter::once(0)) {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            b = (b ^ u64::from(byte.rotate_left(3))).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("batch-{a:016x}{b:016x}")
}

pub async fn process<T: TelemetryTables, S: ObjectStore>(
    tables: &T,
    store: &S,
    batch: &[Incoming],
    now_ms: i64,
    options: IngestOptions,
) -> IngestOutcome {
    let mut outcome = IngestOutcome {
        received: batch.len() as u64,
        ..Default::default()
    };
    let mut valid: Vec<Valid> = Vec::new();
    for message in batch {
        match parse(&message.body) {
            Ok((telemetry, received_at_ms)) => valid.push(Valid {
                id: message.id.clone(),
                telemetry,
                received_at_ms,
            }),
            Err(reason) => {
                outcome.rejected += 1;
                warn!(message_id = %message.id, %reason, body = %truncate_chars(&message.body, 300), "telemetry rejected");
            }
        }
    }
    outcome.valid = valid.len() as u64;

    // One copy of each (vehicle, seq) goes on; the others are duplicates already.
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    let mut unique: Vec<usize> = Vec::new();
    for (i, v) in valid.iter().enumerate() {
        if seen.insert((v.telemetry.vehicle_id.to_string(), v.telemetry.seq)) {
            unique.push(i);
        } else {
            outcome.duplicates += 1;
        }
    }

    // Archive objects: one per date, named after the batch's messages.
    let mut by_date: BTreeMap<NaiveDate, Vec<usize>> = BTreeMap::new();
    for &i in &unique {
        by_date.entry(date_of(valid[i].telemetry.ts_us())).or_default().push(i);
    }
    let mut failed: Vec<String> = Vec::new();
    for (date, members) in by_date {
        let ids: Vec<&str> = members.iter().map(|&i| valid[i].id.as_str()).collect();
        let key = archive::archive_key(date, &batch_name(&ids));
        let claims: Vec<(usize, Result<bool, String>)> = stream::iter(members.iter().copied())
            .map(|i| {
                let key = key.clone();
                let v = &valid[i];
                async move { (i, claim(tables, store, v, &key, now_ms, options).await) }
            })
            .buffered(options.concurrency.max(1))
            .collect()
            .await;
        let mut rows: Vec<usize> = Vec::new();
        for (i, claimed) in claims {
            match claimed {
                Ok(true) => rows.push(i),
                Ok(false) => outcome.duplicates += 1,
                Err(reason) => {
                    warn!(message_id = %valid[i].id, %reason, "not archived now; the queue will bring it back");
                    failed.push(valid[i].id.clone());
                }
            }
        }
        if rows.is_empty() {
            continue;
        }
        rows.sort_by_key(|&i| {
            (
                valid[i].telemetry.vehicle_id.clone(),
                valid[i].telemetry.ts_us(),
                valid[i].telemetry.seq,
            )
        });
        let messages: Vec<(&Telemetry, Option<i64>)> = rows
            .iter()
            .map(|&i| (&valid[i].telemetry, valid[i].received_at_ms))
            .collect();
        let written = match archive::write(&messages, &key) {
            Ok(bytes) => store.put(&key, bytes.into(), None).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match written {
            Ok(()) => {
                outcome.archived += rows.len() as u64;
                outcome.archive_objects.push(key);
            }
            Err(reason) => {
                warn!(%key, %reason, messages = rows.len(), "archive object not written; its messages go back to the queue");
                failed.extend(rows.iter().map(|&i| valid[i].id.clone()));
            }
        }
    }

    // Latest state: the newest valid message of each vehicle (duplicates too:
    // a retry must still be able to update the state).
    let mut newest: HashMap<&str, usize> = HashMap::new();
    for (i, v) in valid.iter().enumerate() {
        let entry = newest.entry(v.telemetry.vehicle_id.as_str()).or_insert(i);
        let current = &valid[*entry].telemetry;
        if (v.telemetry.ts, v.telemetry.seq) > (current.ts, current.seq) {
            *entry = i;
        }
    }
    let valid_ref = &valid;
    let writes: Vec<(usize, Result<bool, String>)> = stream::iter(newest.into_values())
        .map(|i| async move {
            let v = &valid_ref[i];
            (
                i,
                tables
                    .put_latest_if_newer(&v.telemetry, v.received_at_ms, now_ms)
                    .await
                    .map_err(|e| e.to_string()),
            )
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    for (i, written) in writes {
        match written {
            Ok(true) => outcome.state_written += 1,
            Ok(false) => outcome.state_stale += 1,
            Err(reason) => {
                let vehicle = &valid[i].telemetry.vehicle_id;
                warn!(%vehicle, %reason, "latest state not written; the vehicle's messages go back to the queue");
                failed.extend(
                    valid
                        .iter()
                        .filter(|v| &v.telemetry.vehicle_id == vehicle)
                        .map(|v| v.id.clone()),
                );
            }
        }
    }

    failed.sort();
    failed.dedup();
    outcome.failed = failed;
    info!(
        received = outcome.received,
        rejected = outcome.rejected,
        duplicates = outcome.duplicates,
        archived = outcome.archived,
        state_written = outcome.state_written,
        failed = outcome.failed.len(),
        "telemetry batch"
    );
    outcome
}

/// True when the message belongs in `key`; false when another object holds it.
async fn claim<T: TelemetryTables, S: ObjectStore>(
    tables: &T,
    store: &S,
    v: &Valid,
    key: &str,
    now_ms: i64,
    options: IngestOptions,
) -> Result<bool, String> {
    let (vehicle, seq) = (&v.telemetry.vehicle_id, v.telemetry.seq);
    match tables
        .claim(vehicle, seq, key, now_ms)
        .await
        .map_err(|e| e.to_string())?
    {
        Claim::Claimed => Ok(true),
        Claim::Taken(existing) => match store.exists(&existing.archive_key).await {
            Ok(Some(_)) => Ok(false), // archived by another batch: a duplicate
            Err(e) => Err(e.to_string()),
            Ok(None) if existing.claimed_at_ms < now_ms - options.claim_stale_after_ms => {
                // Its batch failed before writing; this one takes the message.
                if tables
                    .reclaim(vehicle, seq, &existing, key, now_ms)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Ok(true)
                } else {
                    Err("claimed by another batch at the same moment".to_string())
                }
            }
            Ok(None) => Err(format!("claimed by a batch still in flight ({})", existing.archive_key)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_names_depend_on_the_set_of_messages_only() {
        assert_eq!(batch_name(&["a", "b"]), batch_name(&["b", "a"]));
        assert_ne!(batch_name(&["a", "b"]), batch_name(&["a", "c"]));
        assert_ne!(batch_name(&["ab"]), batch_name(&["a", "b"]));
    }

    #[test]
    fn parse_keeps_the_rules_receive_time() {
        let body = r#"{"v":1,"vehicle_id":"v1","ts":"2023-11-14T22:13:20Z","seq":1,"soc_pct":1,"pack_voltage_v":1,
            "pack_current_a":1,"cell_voltage_min_v":1,"cell_voltage_max_v":1,"cell_temp_min_c":1,"cell_temp_max_c":1,
            "speed_kph":1,"received_at":1700000000123}"#;
        let (t, received) = parse(body).unwrap();
        assert_eq!(received, Some(1_700_000_000_123));
        assert_eq!(t.seq, 1);
        assert!(parse("{}").unwrap_err().contains("missing field v"));
    }
}
