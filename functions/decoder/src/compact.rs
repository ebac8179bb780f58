//! Compaction of closed hours and days ([`canopy::format::lake::compact`]
//! says what is merged and why readers never see a value twice): which units
//! are due, and the object-store work of one run. Knows nothing of Lambda;
//! the `compactor` binary runs it on a schedule, the local stack on a timer.
//!
//! Bookkeeping lives in the bucket, under `compaction/`:
//! - `written/<hour|day>/<start µs>/<vehicle>`: the decoder wrote a batch of
//!   that vehicle in that hour and day, so a run visits the vehicles that
//!   wrote, not the fleet (most vehicle-hours are not driven); deleted once
//!   the unit is done;
//! - `done/<hour|day>/<start µs>`: every written vehicle's unit was compacted (or
//!   failed and is retried on its own);
//! - `late/<vehicle>/<hour start µs>`: the decoder wrote a batch of an hour
//!   already closed (a late upload, a redelivery, a redecode), so that hour
//!   (and its day, when done) is compacted again;
//! - `failed/<vehicle>/<hour|day>/<start µs>`: a unit whose compaction
//!   failed, with how often and why; each run tries it again, up to
//!   [`MAX_ATTEMPTS`], then moves it to `quarantine/…` (the `CompactionQuarantined`
//!   metric raises an alarm) and it is left as it is, readable, uncompacted;
//! - `telemetry/<archive key>/<marked µs>`: an archive object for
//!   [`crate::telemetry_index`] to copy by vehicle, in the same run;
//! - `superseded/<delete after µs>_<unit>.json`: objects a compaction copied,
//!   with the ETag each had, deleted once the grace period has passed (and
//!   only if unchanged), so queries already running still find what they listed.
//!
//! One unit failing never stops the others: it is counted and the run goes
//! on. A unit's inputs are read one at a time (twice: their copies' times,
//! then their rows), and its output goes out as it is written, in parts of
//! at most [`Compactor::part_input_bytes`] of input each, so memory stays
//! flat whatever an hour holds.

use canopy::domain::device_id::DeviceId;
use canopy::format::lake::LakeError;
use canopy::format::lake::compact::{CompactWriter, LakeObject, NewestCopies, Period, Table, Unit};
use canopy::format::lake::keys::RawKey;
use canopy::ports::store::{ObjectInfo, ObjectStore, StoreError, UploadSink};
use canopy::runtime::env;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// An hour (or day) is closed this long after it ends: the edge seals a
/// batch every minute and uploads it within seconds when online.
pub const SETTLE_US: i64 = 15 * 60 * 1_000_000;
/// How long a compacted object's inputs stay after it is written: longer than
/// any query (the API's deadline is 25 s).
pub const GRACE_US: i64 = 10 * 60 * 1_000_000;
/// How far back a run looks for closed hours and days not done (a compactor
/// that was down catches up this far; older hours stay uncompacted, which
/// only makes their reads slower).
pub const LOOKBACK_HOURS: i64 = 48;
/// Runs that try a failing unit before it is quarantined.
pub const MAX_ATTEMPTS: u32 = 3;

const WRITTEN: &str = "compaction/written/";
const DONE: &str = "compaction/done/";
const LATE: &str = "compaction/late/";
const FAILED: &str = "compaction/failed/";
const QUARANTINE: &str = "compaction/quarantine/";
const SUPERSEDED: &str = "compaction/superseded/";

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{unit}: {error}")]
    Lake { unit: String, error: LakeError },
    #[error("{key}: {problem}")]
    Bookkeeping { key: String, problem: String },
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// `(unit, table prefix, rows, inputs)` of each object written.
    pub compacted: Vec<(Unit, &'static str, u64, usize)>,
    /// Objects deleted after their grace period.
    pub deleted: usize,
    /// Superseded objects left because they changed after they were copied.
    pub kept_changed: usize,
    /// Units that failed this run, and why (each is tried again next run).
    pub failed: Vec<(Unit, String)>,
    /// Units that failed [`MAX_ATTEMPTS`] runs: left uncompacted.
    pub quarantined: Vec<Unit>,
    /// The telemetry archive copied into the tables read by vehicle.
    pub indexed: crate::telemetry_index::IndexReport,
}

/// Whether a batch starting at `first_ts_us`, written at `now_us`, is late:
/// its hour was closed before the write completed, so a compaction of that
/// hour may already have listed its partition without it.
pub fn is_late(first_ts_us: i64, now_us: i64) -> bool {
    Period::Hour.start_of(first_ts_us) + Period::Hour.width_us() + SETTLE_US <= now_us
}

/// Marks a batch's hour for compaction again when the batch is late. Called
/// after its objects are written, so that either the hour's compaction lists
/// the batch or this marker exists.
pub async fn mark_if_late<S: ObjectStore>(store: &S, key: &RawKey, now_us: i64) -> Result<bool, StoreError> {
    if !is_late(key.first_ts_us, now_us) {
        return Ok(false);
    }
    let marker = format!("{LATE}{}/{}", key.vehicle, Period::Hour.start_of(key.first_ts_us));
    store.put(&marker, bytes::Bytes::new(), None).await?;
    Ok(true)
}

/// The markers that `key`'s batch was written: one for its hour, one for its day.
pub fn written_keys(key: &RawKey) -> [String; 2] {
    [Period::Hour, Period::Day].map(|period| written_key(period, period.start_of(key.first_ts_us), &key.vehicle))
}

/// The marker that `vehicle` has a batch in the `period` starting at `start_us`.
pub fn written_key(period: Period, start_us: i64, vehicle: &DeviceId) -> String {
    format!("{}{vehicle}", written_prefix(period, start_us))
}

fn written_prefix(period: Period, start_us: i64) -> String {
    format!("{WRITTEN}{}/{start_us}/", period.name())
}

/// A failing unit's record under `failed/` (and `quarantine/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Failure {
    attempts: u32,
    error: String,
}

/// An object a compaction copied, as it was then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Superseded {
    Copied {
        key: String,
        etag: String,
    },
    /// A list written before ETags were kept.
    Key(String),
}

/// One compaction pass over the lake in `store`.
pub struct Compactor<S> {
    store: S,
    part_size: usize,
    /// The most input one compacted object takes; past it the unit's next
    /// inputs go to another part (256 MiB).
    pub part_input_bytes: u64,
}

impl Compactor<canopy::adapters::aws::s3::S3Store> {
    /// The compactor as deployed: `DATA_BUCKET` from `vars`, the lake on S3.
    pub fn from_env(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<Self, env::EnvError> {
        let bucket = env::required(vars, "DATA_BUCKET")?;
        Ok(Self::new(canopy::adapters::aws::s3::S3Store::new(sdk, &bucket)))
    }
}

impl<S: ObjectStore> Compactor<S> {
    pub fn new(store: S) -> Self {
        Self {
            store,
            part_size: 8 * 1024 * 1024,
            part_input_bytes: 256 * 1024 * 1024,
        }
    }

    /// Deletes what earlier runs superseded, then compacts each vehicle
    /// written in every closed unit not done yet, every hour marked late and
    /// every unit that failed before, as of `now_us`. A unit that fails is
    /// recorded and the run goes on; only the bookkeeping failing fails the run.
    pub async fn run(&self, now_us: i64) -> Result<RunReport, CompactError> {
        let mut report = RunReport::default();
        self.purge(now_us, &mut report).await?;
        let done: Vec<String> = self.store.list(DONE).await?.into_iter().map(|(k, _)| k).collect();
        for (period, start_us) in due(now_us, &done) {
            let written = self.store.list(&written_prefix(period, start_us)).await?;
            for (key, _) in &written {
                let vehicle = key.rsplit('/').next().and_then(|id| DeviceId::new(id).ok());
                let Some(vehicle) = vehicle else {
                    return Err(CompactError::Bookkeeping {
                        key: key.clone(),
                        problem: "not compaction/written/<hour|day>/<start µs>/<vehicle>".into(),
                    });
                };
                let unit = Unit {
                    vehicle,
                    period,
                    start_us,
                };
                self.attempt(&unit, now_us, &mut report).await?;
            }
            self.store
                .put(&done_key(period, start_us), bytes::Bytes::new(), None)
                .await?;
            // A batch written since the listing is late: its own marker brings it.
            for (key, _) in written {
                self.store.delete(&key).await?;
            }
        }
        for (key, _) in self.store.list(LATE).await? {
            let Some(hour) = late_unit(&key) else {
                return Err(CompactError::Bookkeeping {
                    key,
                    problem: "not compaction/late/<vehicle>/<hour start µs>".into(),
                });
            };
            // Deleted first: a batch written while this runs marks the hour again.
            // Its written markers go too: its hour was done (it is late), and
            // its day is compacted here when it is closed.
            self.store.delete(&key).await?;
            self.store
                .delete(&written_key(Period::Hour, hour.start_us, &hour.vehicle))
                .await?;
            let day = Unit {
                period: Period::Day,
                start_us: Period::Day.start_of(hour.start_us),
                vehicle: hour.vehicle.clone(),
            };
            if self.attempt(&hour, now_us, &mut report).await? && is_closed(Period::Day, day.start_us, now_us) {
                self.store
                    .delete(&written_key(Period::Day, day.start_us, &day.vehicle))
                    .await?;
                self.attempt(&day, now_us, &mut report).await?;
            }
        }
        for (key, _) in self.store.list(FAILED).await? {
            let Some(unit) = unit_of(FAILED, &key) else {
                return Err(CompactError::Bookkeeping {
                    key,
                    problem: "not compaction/failed/<vehicle>/<hour|day>/<start µs>".into(),
                });
            };
            if report.failed.iter().any(|(u, _)| *u == unit) {
                continue; // failed this run already
            }
            self.attempt(&unit, now_us, &mut report).await?;
        }
        // Done markers older than the lookback are never asked for again.
        for key in done {
            if done_start(&key).is_some_and(|start| start < now_us - (LOOKBACK_HOURS + 24) * Period::Hour.width_us()) {
                self.store.delete(&key).await?;
            }
        }
        report.indexed = crate::telemetry_index::index(&self.store, now_us).await?;
        Ok(report)
    }

    /// Compacts `unit`, recording a failure instead of returning it; whether it succeeded.
    async fn attempt(&self, unit: &Unit, now_us: i64, report: &mut RunReport) -> Result<bool, CompactError> {
        let marker = unit_key(FAILED, unit);
        match self.compact_unit(unit, now_us, report).await {
            Ok(()) => {
                if self.store.exists(&marker).await?.is_some() {
                    self.store.delete(&marker).await?;
                }
                Ok(true)
            }
            Err(e) => {
                let error = e.to_string();
                warn!(unit = %unit.describe(), %error, "compaction of a unit failed; the others go on");
                let before = match self.store.get(&marker).await {
                    Ok(object) => serde_json::from_slice::<Failure>(&object.body).map_or(0, |f| f.attempts),
                    Err(e) if e.is_not_found() => 0,
                    Err(e) => return Err(e.into()),
                };
                let failure = Failure {
                    attempts: before + 1,
                    error: error.clone(),
                };
                let body = serde_json::to_vec(&failure).map_err(|e| CompactError::Bookkeeping {
                    key: marker.clone(),
                    problem: e.to_string(),
                })?;
                if failure.attempts >= MAX_ATTEMPTS {
                    tracing::error!(unit = %unit.describe(), %error, attempts = failure.attempts, "compaction quarantined: the unit stays uncompacted");
                    self.store.put(&unit_key(QUARANTINE, unit), body.into(), None).await?;
                    self.store.delete(&marker).await?;
                    report.quarantined.push(unit.clone());
                } else {
                    self.store.put(&marker, body.into(), None).await?;
                }
                report.failed.push((unit.clone(), error));
                Ok(false)
            }
        }
    }

    /// Merges the unit's objects in each table that compacts its period.
    pub async fn compact_unit(&self, unit: &Unit, now_us: i64, report: &mut RunReport) -> Result<(), CompactError> {
        let mut superseded: Vec<(String, String)> = Vec::new();
        for table in Table::all().filter(|t| t.periods().contains(&unit.period)) {
            let inputs: Vec<(String, ObjectInfo, LakeObject)> = self
                .store
                .list(&unit.partition(table))
                .await?
                .into_iter()
                .filter_map(|(key, info)| LakeObject::parse(&key).map(|o| (key, info, o)))
                .filter(|(_, _, o)| unit.covers(o))
                .collect();
            // One compaction's parts and nothing else: done.
            let already = match inputs.first() {
                Some((_, _, LakeObject::Compacted { period, written_us, .. })) if *period == unit.period => {
                    let written = *written_us;
                    inputs.iter().all(|(_, _, o)| {
                        matches!(o, LakeObject::Compacted { period, written_us, .. } if *period == unit.period && *written_us == written)
                    })
                }
                _ => false,
            };
            // The decoder writes a batch's tiers beside its decoded object, so
            // an hour without decoded objects has no tier objects to merge
            // either: most vehicle-hours are not driven, and this saves their
            // tiers' listings. (A tier object left by a decoder that died
            // between the two writes is merged when its redelivery, late,
            // marks the hour again; until then readers read it as it is.)
            if inputs.is_empty() && table == Table::Decoded && unit.period == Period::Hour {
                break;
            }
            if inputs.is_empty() || already {
                continue;
            }
            let written = self.compact_table(unit, table, &inputs, report).await?;
            superseded.extend(
                inputs
                    .into_iter()
                    .filter(|(key, _, _)| !written.contains(key))
                    .map(|(key, info, _)| (key, info.etag)),
            );
        }
        let name = format!("{}_{}_{}", unit.vehicle, unit.period.name(), unit.start_us);
        supersede(&self.store, now_us, &name, superseded).await
    }

    /// One table of `unit`: the copies' times from each input, then the rows,
    /// one input at a time, into parts of at most `part_input_bytes` of
    /// input; the keys written.
    async fn compact_table(
        &self,
        unit: &Unit,
        table: Table,
        inputs: &[(String, ObjectInfo, LakeObject)],
        report: &mut RunReport,
    ) -> Result<Vec<String>, CompactError> {
        let lake = |error| CompactError::Lake {
            unit: unit.describe(),
            error,
        };
        let mut newest = NewestCopies::default();
        let mut present = Vec::with_capacity(inputs.len());
        for (key, info, _) in inputs {
            match self.store.get(key).await {
                Ok(object) => {
                    newest.scan(key, &object.body).map_err(lake)?;
                    present.push((key.as_str(), info.size));
                }
                // Deleted by an earlier run's purge after this listing: a
                // newer copy of its batches is among the inputs.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        if present.is_empty() {
            return Ok(Vec::new());
        }
        let mut written = Vec::new();
        let mut rest = present.as_slice();
        let mut part = 0u32;
        while !rest.is_empty() {
            // At least one input per part, then as many as fit.
            let mut taken = 1;
            let mut bytes = rest[0].1;
            while taken < rest.len() && bytes + rest[taken].1 <= self.part_input_bytes {
                bytes += rest[taken].1;
                taken += 1;
            }
            let (these, after) = rest.split_at(taken);
            rest = after;
            let key = unit.compacted_key(table, newest.written_us(), part);
            let mut writer = CompactWriter::new(table, &newest, Vec::new()).map_err(lake)?;
            let mut sink = UploadSink::new(&self.store, &key, self.part_size);
            let outcome: Result<(), CompactError> = async {
                for (input, _) in these {
                    let object = match self.store.get(input).await {
                        Ok(object) => object,
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => return Err(e.into()),
                    };
                    writer.add(&newest, input, &object.body).map_err(lake)?;
                    sink.write(writer.sink_mut()).await?;
                }
                Ok(())
            }
            .await;
            let finished = outcome.and_then(|()| writer.finish(newest.batches()).map_err(lake));
            let (mut tail, compacted) = match finished {
                Ok(done) => done,
                Err(e) => {
                    sink.abort().await;
                    return Err(e);
                }
            };
            sink.write(&mut tail).await?;
            sink.finish().await?;
            info!(unit = %unit.describe(), table = table.prefix(), part, rows = compacted.rows, inputs = these.len(), key, "compacted");
            report
                .compacted
                .push((unit.clone(), table.prefix(), compacted.rows, these.len()));
            written.push(key);
            part += 1;
        }
        Ok(written)
    }

    /// Deletes the objects of superseded lists whose grace period is over,
    /// each only if it is still the copy that was compacted (same ETag): one
    /// decoded again since (a DBC fix) stays, and is compacted in its turn.
    async fn purge(&self, now_us: i64, report: &mut RunReport) -> Result<(), CompactError> {
        for (key, _) in self.store.list(SUPERSEDED).await? {
            let after = key
                .strip_prefix(SUPERSEDED)
                .and_then(|rest| rest.split('_').next())
                .and_then(|t| t.parse::<i64>().ok());
            let Some(after) = after else {
                return Err(CompactError::Bookkeeping {
                    key,
                    problem: "not compaction/superseded/<delete after µs>_….json".into(),
                });
            };
            if after > now_us {
                continue;
            }
            let list = self.store.get(&key).await?;
            let entries: Vec<Superseded> =
                serde_json::from_slice(&list.body).map_err(|e| CompactError::Bookkeeping {
                    key: key.clone(),
                    problem: e.to_string(),
                })?;
            for entry in &entries {
                let old = match entry {
                    Superseded::Copied { key, etag } => match self.store.exists(key).await? {
                        None => continue,
                        Some(now) if now.etag != *etag => {
                            report.kept_changed += 1;
                            continue;
                        }
                        Some(_) => key,
                    },
                    Superseded::Key(key) => key,
                };
                match self.store.delete(old).await {
                    Ok(()) => report.deleted += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.store.delete(&key).await?;
        }
        Ok(())
    }
}

/// Objects replaced at `now_us` by copies of them, each `(key, ETag)`, to be
/// deleted by a run after the grace period (only if unchanged); `name` tells
/// the list apart from others written at the same moment.
pub(crate) async fn supersede<S: ObjectStore>(
    store: &S,
    now_us: i64,
    name: &str,
    objects: Vec<(String, String)>,
) -> Result<(), CompactError> {
    if objects.is_empty() {
        return Ok(());
    }
    let entries: Vec<Superseded> = objects
        .into_iter()
        .map(|(key, etag)| Superseded::Copied { key, etag })
        .collect();
    let key = format!("{SUPERSEDED}{}_{name}.json", now_us + GRACE_US);
    let body = serde_json::to_vec(&entries).map_err(|e| CompactError::Bookkeeping {
        key: key.clone(),
        problem: e.to_string(),
    })?;
    store.put(&key, body.into(), None).await?;
    Ok(())
}

fn is_closed(period: Period, start_us: i64, now_us: i64) -> bool {
    start_us + period.width_us() + SETTLE_US <= now_us
}

fn done_key(period: Period, start_us: i64) -> String {
    format!("{DONE}{}/{start_us}", period.name())
}

fn done_start(key: &str) -> Option<i64> {
    key.rsplit('/').next()?.parse().ok()
}

/// Closed hours and days within the lookback without a done marker, oldest
/// first, hours before the day that holds them.
fn due(now_us: i64, done: &[String]) -> Vec<(Period, i64)> {
    let hour = Period::Hour.width_us();
    let mut due = Vec::new();
    let newest = Period::Hour.start_of(now_us - SETTLE_US) - hour;
    for back in (0..LOOKBACK_HOURS).rev() {
        let start = newest - back * hour;
        if !done.contains(&done_key(Period::Hour, start)) {
            due.push((Period::Hour, start));
        }
        let day = Period::Day.start_of(start);
        if start + hour == day + Period::Day.width_us()
            && is_closed(Period::Day, day, now_us)
            && !done.contains(&done_key(Period::Day, day))
        {
            due.push((Period::Day, day));
        }
    }
    due
}

/// `<prefix><vehicle>/<hour|day>/<start µs>`: a unit's marker.
fn unit_key(prefix: &str, unit: &Unit) -> String {
    format!("{prefix}{}/{}/{}", unit.vehicle, unit.period.name(), unit.start_us)
}

fn unit_of(prefix: &str, key: &str) -> Option<Unit> {
    let mut parts = key.strip_prefix(prefix)?.split('/');
    let (Some(vehicle), Some(period), Some(start), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(Unit {
        vehicle: DeviceId::new(vehicle).ok()?,
        period: match period {
            "hour" => Period::Hour,
            "day" => Period::Day,
            _ => return None,
        },
        start_us: start.parse().ok()?,
    })
}

fn late_unit(key: &str) -> Option<Unit> {
    let mut parts = key.strip_prefix(LATE)?.split('/');
    let (Some(vehicle), Some(start), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    Some(Unit {
        vehicle: DeviceId::new(vehicle).ok()?,
        period: Period::Hour,
        start_us: start.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;
    const DAY0: i64 = 1_764_201_600_000_000; // 2025-11-27T00:00Z

    #[test]
    fn an_hour_is_due_once_settled_and_a_day_after_its_last_hour() {
        let now = DAY0 + 10 * H + SETTLE_US;
        let due_now = due(now, &[]);
        assert_eq!(
            due_now.last(),
            Some(&(Period::Hour, DAY0 + 9 * H)),
            "9:00 closed at 10:15"
        );
        assert_eq!(due_now.len() as i64, LOOKBACK_HOURS + 2, "and two closed days");
        assert!(due_now.contains(&(Period::Day, DAY0 - 24 * H)));
        assert!(!due(now - 1, &[]).contains(&(Period::Hour, DAY0 + 9 * H)));
        let done: Vec<String> = due_now.iter().map(|&(p, s)| done_key(p, s)).collect();
        assert_eq!(due(now, &done), []);
        assert!(is_late(DAY0 + 9 * H, now));
        assert!(!is_late(DAY0 + 9 * H, now - 1));
    }

    #[test]
    fn failure_markers_name_a_unit() {
        let unit = Unit {
            vehicle: DeviceId::new("veh-001").unwrap(),
            period: Period::Day,
            start_us: 24 * H,
        };
        let key = unit_key(FAILED, &unit);
        assert_eq!(key, "compaction/failed/veh-001/day/86400000000");
        assert_eq!(unit_of(FAILED, &key), Some(unit));
        assert_eq!(unit_of(FAILED, "compaction/failed/veh-001/week/1"), None);
        assert_eq!(unit_of(FAILED, "compaction/failed/veh-001/hour"), None);
    }

    #[test]
    fn late_markers_name_a_vehicle_hour() {
        let unit = late_unit("compaction/late/veh-001/7200000000").unwrap();
        assert_eq!((unit.vehicle.as_str(), unit.start_us), ("veh-001", 2 * H));
        assert_eq!(late_unit("compaction/late/veh-001/x"), None);
        assert_eq!(late_unit("compaction/late/veh-001/1/2"), None);
    }
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod store_tests;
