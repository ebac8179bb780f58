//! Ingesting a batch of telemetry, knowing nothing of Lambda: a batch of
//! messages from the IoT rule's queue in; the archive, the latest state and
//! the list of messages to retry out.
//!
//! - Messages are v1 (one sample) or v2 (several). Invalid messages and
//!   invalid samples are rejected with their reason: counted, logged, never
//!   stored, and not retried (they would fail again).
//! - The archive holds every valid sample exactly once. A batch writes one
//!   object per date, named after the batch, so a retried batch rewrites its
//!   own object. Across batches a ledger decides which object holds what,
//!   with one conditional write per *unit*: a message's samples of one UTC
//!   date (a v1 message is one unit; a v2 message one, or two over midnight),
//!   keyed by (vehicle, its first sample's seq). A duplicate finds its unit
//!   claimed by an object that exists and is skipped; a claim whose object
//!   never appeared (its batch failed) is taken over once stale; a claim
//!   still in flight sends the message back to the queue for later.
//! - Why a claim per unit is still exactly once per sample: a vehicle's seqs
//!   are its samples' own and never reused, and an edge builds each message
//!   once and resends it whole (MQTT redelivery, an HTTP retry, an SQS
//!   redelivery), so two units of one vehicle either are the same samples
//!   (a duplicate) or share none. One write per unit instead of per sample is
//!   what makes v2 cheap: a 5-sample message costs one ledger write, not five.
//! - The latest state gets the newest sample per vehicle of the batch, by a
//!   conditional write that never lets an older sample win.

use std::collections::{BTreeMap, HashMap, HashSet};

use canopy::format::lake::archive;
use canopy::format::lake::keys::date_of;
use canopy::format::telemetry::{ClockBounds, Message, Telemetry};
use canopy::ports::ledger::{Claim, Ledger};
use canopy::ports::state::LatestStateStore;
use canopy::ports::store::ObjectStore;
use canopy::runtime::text::truncate_chars;
use chrono::NaiveDate;
use futures::stream::{self, StreamExt};
use tracing::{info, warn};

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
    /// Ledger and state writes in flight at once.
    pub concurrency: usize,
    /// How far a message's `ts` may be from the time IoT Core received it.
    pub clock: ClockBounds,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            claim_stale_after_ms: 15 * 60 * 1000,
            concurrency: 16,
            clock: ClockBounds::default(),
        }
    }
}

/// What a batch did. `received` counts queue messages; the other counts
/// are samples (a v1 message is one), `rejected` also counting messages
/// refused whole.
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

/// A unit of the ledger: a message's valid samples of one UTC date (in seq
/// order, never empty), and the queue message that brought them.
struct Unit {
    id: String,
    samples: Vec<Telemetry>,
}

impl Unit {
    /// The unit's first sample: its vehicle, date and ledger seq.
    fn first(&self) -> &Telemetry {
        &self.samples[0]
    }
}

/// One batch on its way through: its valid units, what it did so far, and
/// the queue message ids to retry.
struct Run {
    valid: Vec<Unit>,
    now_ms: i64,
    outcome: IngestOutcome,
    failed: Vec<String>,
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

/// The ingest service over its three ports.
pub struct Ingest<S, L, O> {
    pub state: S,
    pub ledger: L,
    pub store: O,
    pub options: IngestOptions,
}

impl<S: LatestStateStore, L: Ledger, O: ObjectStore> Ingest<S, L, O> {
    /// Ingests one batch: validate, archive each new message once, update the
    /// latest state; the outcome names the messages to retry.
    pub async fn process(&self, batch: &[Incoming], now_ms: i64) -> IngestOutcome {
        let mut run = Run {
            valid: Vec::new(),
            now_ms,
            outcome: IngestOutcome {
                received: batch.len() as u64,
                ..Default::default()
            },
            failed: Vec::new(),
        };
        validate(batch, self.options.clock, &mut run);
        let unique = first_of_each(&mut run);
        self.archive(&mut run, &unique).await;
        self.update_state(&mut run).await;
        let mut outcome = run.outcome;
        outcome.failed = run.failed;
        outcome.failed.sort();
        outcome.failed.dedup();
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

    /// Writes one archive object per date, named after the batch's messages,
    /// holding the messages the ledger gives it.
    async fn archive(&self, run: &mut Run, unique: &[usize]) {
        let mut by_date: BTreeMap<NaiveDate, Vec<usize>> = BTreeMap::new();
        for &i in unique {
            by_date
                .entry(date_of(run.valid[i].first().ts_us()))
                .or_default()
                .push(i);
        }
        for (date, members) in by_date {
            let ids: Vec<&str> = members.iter().map(|&i| run.valid[i].id.as_str()).collect();
            let key = archive::archive_key(date, &batch_name(&ids));
            let units = self.claim_all(run, &members, &key).await;
            if units.is_empty() {
                continue;
            }
            let mut messages: Vec<&Telemetry> = units.iter().flat_map(|&i| &run.valid[i].samples).collect();
            messages.sort_by_key(|t| (t.vehicle_id.clone(), t.ts_us(), t.seq));
            let written = match archive::write(&messages, &key) {
                Ok(bytes) => self
                    .store
                    .put(&key, bytes.into(), None)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match written {
                Ok(()) => {
                    run.outcome.archived += messages.len() as u64;
                    run.outcome.archive_objects.push(key);
                }
                Err(reason) => {
                    warn!(%key, %reason, samples = messages.len(), "archive object not written; its messages go back to the queue");
                    run.failed.extend(units.iter().map(|&i| run.valid[i].id.clone()));
                }
            }
        }
    }

    /// Claims units `members` for archive object `key`; the ones it holds.
    async fn claim_all(&self, run: &mut Run, members: &[usize], key: &str) -> Vec<usize> {
        let (valid, now_ms) = (&run.valid, run.now_ms);
        let claims: Vec<(usize, Result<bool, String>)> = stream::iter(members.iter().copied())
            .map(|i| async move { (i, self.claim(valid[i].first(), key, now_ms).await) })
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut rows = Vec::new();
        for (i, claimed) in claims {
            match claimed {
                Ok(true) => rows.push(i),
                Ok(false) => run.outcome.duplicates += run.valid[i].samples.len() as u64,
                Err(reason) => {
                    warn!(message_id = %run.valid[i].id, %reason, "not archived now; the queue will bring it back");
                    run.failed.push(run.valid[i].id.clone());
                }
            }
        }
        rows
    }

    /// True when the unit starting at `t` belongs in `key`; false when another object holds it.
    async fn claim(&self, t: &Telemetry, key: &str, now_ms: i64) -> Result<bool, String> {
        let (vehicle, seq) = (&t.vehicle_id, t.seq);
        let existing = match self
            .ledger
            .claim(vehicle, seq, key, now_ms)
            .await
            .map_err(|e| e.to_string())?
        {
            Claim::Claimed => return Ok(true),
            Claim::Taken(existing) => existing,
        };
        match self.store.exists(&existing.archive_key).await {
            Ok(Some(_)) => Ok(false), // archived by another batch: a duplicate
            Err(e) => Err(e.to_string()),
            Ok(None) if existing.claimed_at_ms < now_ms - self.options.claim_stale_after_ms => {
                // Its batch failed before writing; this one takes the message.
                let taken = self
                    .ledger
                    .reclaim(vehicle, seq, &existing, key, now_ms)
                    .await
                    .map_err(|e| e.to_string())?;
                if taken {
                    Ok(true)
                } else {
                    Err("claimed by another batch at the same moment".to_string())
                }
            }
            Ok(None) => Err(format!("claimed by a batch still in flight ({})", existing.archive_key)),
        }
    }

    /// Writes the newest valid sample of each vehicle (duplicates too: a
    /// retry must still be able to update the state).
    async fn update_state(&self, run: &mut Run) {
        let valid = &run.valid;
        // (unit, sample) of each vehicle's newest sample.
        let mut newest: HashMap<&str, (usize, usize)> = HashMap::new();
        for (u, unit) in valid.iter().enumerate() {
            for (i, t) in unit.samples.iter().enumerate() {
                let entry = newest.entry(t.vehicle_id.as_str()).or_insert((u, i));
                let current = &valid[entry.0].samples[entry.1];
                if (t.ts, t.seq) > (current.ts, current.seq) {
                    *entry = (u, i);
                }
            }
        }
        let now_ms = run.now_ms;
        let writes: Vec<((usize, usize), Result<bool, String>)> = stream::iter(newest.into_values())
            .map(|(u, i)| async move {
                let written = self.state.put_if_newer(&valid[u].samples[i], now_ms).await;
                ((u, i), written.map_err(|e| e.to_string()))
            })
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        for ((u, _), written) in writes {
            match written {
                Ok(true) => run.outcome.state_written += 1,
                Ok(false) => run.outcome.state_stale += 1,
                Err(reason) => {
                    let vehicle = &run.valid[u].first().vehicle_id;
                    warn!(%vehicle, %reason, "latest state not written; the vehicle's messages go back to the queue");
                    let ids = run.valid.iter().filter(|v| &v.first().vehicle_id == vehicle);
                    run.failed.extend(ids.map(|v| v.id.clone()).collect::<Vec<_>>());
                }
            }
        }
    }
}

/// Keeps the valid samples, as units; the others are counted and logged,
/// never retried (they would fail again).
fn validate(batch: &[Incoming], clock: ClockBounds, run: &mut Run) {
    for message in batch {
        let parsed = match Message::parse(&message.body) {
            Ok(parsed) => parsed,
            Err(rejection) => {
                run.outcome.rejected += 1;
                warn!(message_id = %message.id, reason = %rejection, body = %truncate_chars(&message.body, 300), "telemetry rejected");
                continue;
            }
        };
        let Message { samples, rejected } = parsed.within_clock(clock, run.now_ms);
        for rejection in &rejected {
            warn!(message_id = %message.id, reason = %rejection, "telemetry sample rejected");
        }
        run.outcome.rejected += rejected.len() as u64;
        run.outcome.valid += samples.len() as u64;
        // Samples rise in seq; a message over midnight is a unit per date.
        for t in samples {
            match run.valid.last_mut() {
                Some(unit) if unit.id == message.id && date_of(unit.first().ts_us()) == date_of(t.ts_us()) => {
                    unit.samples.push(t)
                }
                _ => run.valid.push(Unit {
                    id: message.id.clone(),
                    samples: vec![t],
                }),
            }
        }
    }
}

/// Indexes of the first copy of each unit (vehicle, first seq); the others
/// are duplicates already.
fn first_of_each(run: &mut Run) -> Vec<usize> {
    let mut seen: HashSet<(&str, u64)> = HashSet::new();
    let mut unique = Vec::new();
    for (i, u) in run.valid.iter().enumerate() {
        if seen.insert((u.first().vehicle_id.as_str(), u.first().seq)) {
            unique.push(i);
        } else {
            run.outcome.duplicates += u.samples.len() as u64;
        }
    }
    unique
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;
