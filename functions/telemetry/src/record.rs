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
//!   conditional write that never lets an older sample win; a vehicle is
//!   listed in the fleet's directory before its first state is written.
//! - Status messages of devices of a declared kind (a station's, marked by
//!   the device rule's `topic_kind`) take the same way, a [`Lane`] apart:
//!   validated against their kind's declaration, archived under
//!   `devices/kind=<kind>/`, claimed in the ledger as `<kind>/<id>`, their
//!   newest status in the device-state table.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use canopy::domain::device::DeviceRecord;
use canopy::domain::kind::Kinds;
use canopy::domain::rejection::Rejection;
use canopy::domain::telemetry::{ClockBounds, Telemetry};
use canopy::format::device::TOPIC_KIND;
use canopy::format::lake::keys::date_of;
use canopy::format::lake::{archive, devices};
use canopy::format::telemetry::{Message, TOPIC_VEHICLE_ID};
use canopy::ports::TableError;
use canopy::ports::device_state::DeviceStateStore;
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::ledger::{Claim, Ledger};
use canopy::ports::state::LatestStateStore;
use canopy::ports::store::ObjectStore;
use canopy::runtime::text::truncate_chars;
use futures::stream::{self, StreamExt};
use serde_json::Value;
use tracing::{info, warn};

use crate::listing::Listings;

/// One message as the queue delivers it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The queue's message id, which a retry is requested by.
    pub id: String,
    pub body: String,
}

#[derive(Debug, Clone, Copy)]
pub struct RecordOptions {
    /// A claim older than this whose object does not exist is taken over.
    pub claim_stale_after_ms: i64,
    /// Ledger and state writes in flight at once.
    pub concurrency: usize,
    /// How far a message's `ts` may be from the time IoT Core received it.
    pub clock: ClockBounds,
}

impl Default for RecordOptions {
    fn default() -> Self {
        Self {
            claim_stale_after_ms: 15 * 60 * 1000,
            concurrency: 16,
            clock: ClockBounds::default(),
        }
    }
}

/// What a batch did. `received` counts queue messages; the other counts
/// are samples (a v1 message or a device status is one), `rejected` also
/// counting messages refused whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordOutcome {
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

/// What the ingest needs of a sample: a vehicle's telemetry or a device's status.
pub trait Sample: Send + Sync {
    /// Its ledger key: the vehicle id (borrowed), or `<kind>/<id>`.
    fn stream(&self) -> Cow<'_, str>;
    fn seq(&self) -> u64;
    fn ts_us(&self) -> i64;
}

impl Sample for Telemetry {
    fn stream(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.vehicle_id.as_str())
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn ts_us(&self) -> i64 {
        Telemetry::ts_us(self)
    }
}

impl Sample for DeviceRecord {
    fn stream(&self) -> Cow<'_, str> {
        Cow::Owned(DeviceRecord::stream(self))
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn ts_us(&self) -> i64 {
        DeviceRecord::ts_us(self)
    }
}

/// Where one kind of sample is archived and its state kept.
pub trait Lane: Sync {
    type Sample: Sample;
    /// The archive object of the samples like `first` of a batch named `batch`.
    fn archive_key(&self, first: &Self::Sample, batch: &str) -> String;
    fn write(&self, samples: &[&Self::Sample], key: &str) -> Result<Vec<u8>, String>;
    /// The marker that asks the compactor to copy archive object `key`
    /// into tables read by vehicle, written before the object; none where
    /// nothing reads the lane's archive by vehicle.
    fn pending_key(&self, key: &str, now_ms: i64) -> Option<String>;
    fn put_state(&self, sample: &Self::Sample, now_ms: i64) -> impl Future<Output = Result<bool, TableError>> + Send;
}

/// Vehicles: `telemetry/date=<date>/`, the latest-state table, the fleet's directory.
struct Vehicles<'a, S, R> {
    states: &'a S,
    listings: &'a Listings<R>,
}

impl<S: LatestStateStore, R: VehicleDirectory> Lane for Vehicles<'_, S, R> {
    type Sample = Telemetry;
    fn archive_key(&self, first: &Telemetry, batch: &str) -> String {
        archive::archive_key(date_of(first.ts_us()), batch)
    }
    fn write(&self, samples: &[&Telemetry], key: &str) -> Result<Vec<u8>, String> {
        archive::write(samples, key).map_err(|e| e.to_string())
    }
    fn pending_key(&self, key: &str, now_ms: i64) -> Option<String> {
        Some(archive::pending_key(key, now_ms.saturating_mul(1000)))
    }
    /// Listed before its state is written: a vehicle with a state is in the directory.
    async fn put_state(&self, t: &Telemetry, now_ms: i64) -> Result<bool, TableError> {
        self.listings.observe(t).await?;
        self.states.put_if_newer(t, now_ms).await
    }
}

/// Devices of the declared kinds: `devices/kind=<kind>/date=<date>/`, the device-state table.
struct Devices<'a, D> {
    states: &'a D,
    kinds: &'a Kinds,
}

impl<D: DeviceStateStore> Lane for Devices<'_, D> {
    type Sample = DeviceRecord;
    fn archive_key(&self, first: &DeviceRecord, batch: &str) -> String {
        devices::archive_key(&first.kind, date_of(first.ts_us()), batch)
    }
    fn write(&self, samples: &[&DeviceRecord], key: &str) -> Result<Vec<u8>, String> {
        // A unit's samples share their kind: the archive key holds it.
        let kind = samples
            .first()
            .and_then(|r| self.kinds.get(&r.kind))
            .ok_or_else(|| format!("{key}: no declared kind"))?;
        devices::write(kind, samples, key).map_err(|e| e.to_string())
    }
    fn pending_key(&self, _: &str, _: i64) -> Option<String> {
        None
    }
    fn put_state(&self, r: &DeviceRecord, now_ms: i64) -> impl Future<Output = Result<bool, TableError>> + Send {
        self.states.put_if_newer(r, now_ms)
    }
}

/// A unit of the ledger: a message's valid samples of one UTC date (in seq
/// order, never empty), and the queue message that brought them.
struct Unit<T> {
    id: String,
    samples: Vec<T>,
}

impl<T: Sample> Unit<T> {
    /// The unit's first sample: its stream, date and ledger seq.
    fn first(&self) -> &T {
        &self.samples[0]
    }

    /// Adds `sample` of message `id` to the last unit when it is the same
    /// message's on the same date, else starts a unit.
    fn push(units: &mut Vec<Self>, id: &str, sample: T) {
        match units.last_mut() {
            Some(unit) if unit.id == id && date_of(unit.first().ts_us()) == date_of(sample.ts_us()) => {
                unit.samples.push(sample)
            }
            _ => units.push(Unit {
                id: id.to_string(),
                samples: vec![sample],
            }),
        }
    }
}

/// One batch on its way through: what it did so far, and the queue message ids to retry.
struct Run {
    now_ms: i64,
    outcome: RecordOutcome,
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

/// The ingest service over its five ports and the kinds it knows.
pub struct Recorder<S, D, L, O, R> {
    pub state: S,
    pub listings: Listings<R>,
    pub devices: D,
    pub ledger: L,
    pub store: O,
    pub kinds: Kinds,
    pub options: RecordOptions,
}

impl<S: LatestStateStore, D: DeviceStateStore, L: Ledger, O: ObjectStore, R: VehicleDirectory> Recorder<S, D, L, O, R> {
    /// Ingests one batch: validate, archive each new message once, update the
    /// latest state; the outcome names the messages to retry.
    pub async fn process(&self, batch: &[Incoming], now_ms: i64) -> RecordOutcome {
        let mut run = Run {
            now_ms,
            outcome: RecordOutcome {
                received: batch.len() as u64,
                ..Default::default()
            },
            failed: Vec::new(),
        };
        let (vehicles, devices) = validate(batch, &self.kinds, self.options.clock, &mut run);
        let lane = Vehicles {
            states: &self.state,
            listings: &self.listings,
        };
        self.lane(&mut run, &lane, vehicles).await;
        let lane = Devices {
            states: &self.devices,
            kinds: &self.kinds,
        };
        self.lane(&mut run, &lane, devices).await;
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

    async fn lane<A: Lane>(&self, run: &mut Run, lane: &A, units: Vec<Unit<A::Sample>>) {
        if units.is_empty() {
            return;
        }
        let unique = first_of_each(run, &units);
        self.archive(run, lane, &units, &unique).await;
        self.update_state(run, lane, &units).await;
    }

    /// Writes one archive object per partition (date, and kind for
    /// devices), named after the batch's messages, holding the messages
    /// the ledger gives it.
    async fn archive<A: Lane>(&self, run: &mut Run, lane: &A, units: &[Unit<A::Sample>], unique: &[usize]) {
        // The key of an unnamed batch stands for the partition.
        let mut by_partition: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in unique {
            by_partition
                .entry(lane.archive_key(units[i].first(), ""))
                .or_default()
                .push(i);
        }
        for members in by_partition.into_values() {
            let ids: Vec<&str> = members.iter().map(|&i| units[i].id.as_str()).collect();
            let key = lane.archive_key(units[members[0]].first(), &batch_name(&ids));
            let claimed = self.claim_all(run, units, &members, &key).await;
            if claimed.is_empty() {
                continue;
            }
            let mut messages: Vec<&A::Sample> = claimed.iter().flat_map(|&i| &units[i].samples).collect();
            messages.sort_by_cached_key(|&t| (t.stream(), t.ts_us(), t.seq()));
            // The marker first: an object without one would never be copied,
            // while a marker without its object (a failed PUT, retried) waits for it.
            let written = match lane.write(&messages, &key) {
                Ok(bytes) => {
                    let marked = match lane.pending_key(&key, run.now_ms) {
                        Some(marker) => self.store.put(&marker, Vec::new().into(), None).await,
                        None => Ok(()),
                    };
                    match marked {
                        Ok(()) => self.store.put(&key, bytes.into(), None).await,
                        Err(e) => Err(e),
                    }
                    .map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => {
                    run.outcome.archived += messages.len() as u64;
                    run.outcome.archive_objects.push(key);
                }
                Err(reason) => {
                    warn!(%key, %reason, samples = messages.len(), "archive object not written; its messages go back to the queue");
                    run.failed.extend(claimed.iter().map(|&i| units[i].id.clone()));
                }
            }
        }
    }

    /// Claims units `members` for archive object `key`; the ones it holds.
    async fn claim_all<T: Sample>(&self, run: &mut Run, units: &[Unit<T>], members: &[usize], key: &str) -> Vec<usize> {
        let now_ms = run.now_ms;
        let claims: Vec<(usize, Result<bool, String>)> = stream::iter(members.iter().copied())
            .map(|i| async move { (i, self.claim(units[i].first(), key, now_ms).await) })
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut rows = Vec::new();
        for (i, claimed) in claims {
            match claimed {
                Ok(true) => rows.push(i),
                Ok(false) => run.outcome.duplicates += units[i].samples.len() as u64,
                Err(reason) => {
                    warn!(message_id = %units[i].id, %reason, "not archived now; the queue will bring it back");
                    run.failed.push(units[i].id.clone());
                }
            }
        }
        rows
    }

    /// True when the unit starting at `t` belongs in `key`; false when another object holds it.
    async fn claim<T: Sample>(&self, t: &T, key: &str, now_ms: i64) -> Result<bool, String> {
        // Owned: a borrow held across the awaits below makes the future not
        // general enough for tokio::spawn.
        let (stream, seq) = (t.stream().into_owned(), t.seq());
        let existing = match self
            .ledger
            .claim(&stream, seq, key, now_ms)
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
                    .reclaim(&stream, seq, &existing, key, now_ms)
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

    /// Writes the newest valid sample of each stream (duplicates too: a
    /// retry must still be able to update the state).
    async fn update_state<A: Lane>(&self, run: &mut Run, lane: &A, units: &[Unit<A::Sample>]) {
        // (unit, sample) of each stream's newest sample.
        let mut newest: HashMap<Cow<'_, str>, (usize, usize)> = HashMap::new();
        for (u, unit) in units.iter().enumerate() {
            for (i, t) in unit.samples.iter().enumerate() {
                let entry = newest.entry(t.stream()).or_insert((u, i));
                let current = &units[entry.0].samples[entry.1];
                if (t.ts_us(), t.seq()) > (current.ts_us(), current.seq()) {
                    *entry = (u, i);
                }
            }
        }
        let now_ms = run.now_ms;
        // Owned for the same reason as in `claim`: one string per stream.
        let newest: Vec<(String, (usize, usize))> = newest.into_iter().map(|(s, at)| (s.into_owned(), at)).collect();
        let writes: Vec<(String, Result<bool, String>)> = stream::iter(newest)
            .map(|(stream, (u, i))| async move {
                let written = lane.put_state(&units[u].samples[i], now_ms).await;
                (stream, written.map_err(|e| e.to_string()))
            })
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        for (stream, written) in writes {
            match written {
                Ok(true) => run.outcome.state_written += 1,
                Ok(false) => run.outcome.state_stale += 1,
                Err(reason) => {
                    warn!(%stream, %reason, "latest state not written; the stream's messages go back to the queue");
                    let ids = units.iter().filter(|v| v.first().stream() == stream);
                    run.failed.extend(ids.map(|v| v.id.clone()).collect::<Vec<_>>());
                }
            }
        }
    }
}

/// Keeps the valid samples, as units of vehicles and of devices; the
/// others are counted and logged, never retried (they would fail again).
fn validate(
    batch: &[Incoming],
    kinds: &Kinds,
    clock: ClockBounds,
    run: &mut Run,
) -> (Vec<Unit<Telemetry>>, Vec<Unit<DeviceRecord>>) {
    let (mut vehicles, mut devices) = (Vec::new(), Vec::new());
    let refuse = |run: &mut Run, message: &Incoming, rejection: &Rejection| {
        run.outcome.rejected += 1;
        warn!(message_id = %message.id, reason = %rejection, body = %truncate_chars(&message.body, 300), "telemetry rejected");
    };
    for message in batch {
        let value: Value = match serde_json::from_str(&message.body) {
            Ok(value) => value,
            Err(e) => {
                refuse(
                    run,
                    message,
                    &Rejection {
                        reason: format!("message is not JSON: {e}"),
                        field: None,
                    },
                );
                continue;
            }
        };
        // The device rule's fields, and not the vehicle rule's: no payload
        // brings either itself (the rules and HTTP ingest refuse them).
        if value.get(TOPIC_KIND).is_some() && value.get(TOPIC_VEHICLE_ID).is_none() {
            match DeviceRecord::from_json(kinds, &value).and_then(|r| r.check_clock(clock, run.now_ms).map(|()| r)) {
                Ok(record) => {
                    run.outcome.valid += 1;
                    Unit::push(&mut devices, &message.id, record);
                }
                Err(rejection) => refuse(run, message, &rejection),
            }
            continue;
        }
        let parsed = match Message::from_json(&value) {
            Ok(parsed) => parsed,
            Err(rejection) => {
                refuse(run, message, &rejection);
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
            Unit::push(&mut vehicles, &message.id, t);
        }
    }
    (vehicles, devices)
}

/// Indexes of the first copy of each unit (stream, first seq); the others
/// are duplicates already.
fn first_of_each<T: Sample>(run: &mut Run, units: &[Unit<T>]) -> Vec<usize> {
    let mut seen: HashSet<(Cow<'_, str>, u64)> = HashSet::new();
    let mut unique = Vec::new();
    for (i, u) in units.iter().enumerate() {
        if seen.insert((u.first().stream(), u.first().seq())) {
            unique.push(i);
        } else {
            run.outcome.duplicates += u.samples.len() as u64;
        }
    }
    unique
}

#[cfg(test)]
#[path = "record_tests.rs"]
pub(crate) mod tests;
