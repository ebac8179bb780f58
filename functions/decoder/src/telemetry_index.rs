//! The telemetry archive copied into the tables the API reads trips and
//! fleet statistics from: each vehicle's samples per date
//! ([`by_vehicle`]) and per vehicle-hour aggregates of each date
//! ([`fleet_hourly`]). Part of each compactor run.
//!
//! The telemetry function writes one archive object per batch of its queue,
//! every vehicle of the batch in it, and before each a marker under
//! [`archive::PENDING_PREFIX`]. A run lists the markers (not the archive:
//! a day of a large fleet is a million objects), reads their objects, and
//! for every vehicle-date they touch writes that date's object again whole:
//! the rows its current objects hold, each batch from its newest copy, with
//! the batches read this run in place of any earlier copy of them. From the
//! merged rows it computes the vehicle-date's hours and writes each touched
//! date's fleet object again the same way. Only then are the markers
//! deleted; the objects the run replaced go after the compactor's grace
//! period, so a reader that listed them still finds them.
//!
//! Exactly once, under retries and crashes: a batch read twice (a run that
//! died before deleting its markers, an archive object rewritten and marked
//! again) replaces its own earlier copy, never adds to it. Work is
//! proportional to what was written: one LIST, GETs and a PUT per vehicle-date
//! touched, one per date for the fleet.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use canopy::format::lake::LakeError;
use canopy::format::lake::archive::{self, Sample};
use canopy::format::lake::keys::date_of;
use canopy::format::lake::{by_vehicle, fleet_hourly};
use canopy::ports::store::ObjectStore;
use chrono::NaiveDate;
use futures::stream::{self, StreamExt};
use tracing::{info, warn};

use crate::compact::{CompactError, supersede};

/// Markers one run takes: at 10,000 vehicles publishing every 5 s in
/// batches of 100, about 6,000 are written between two runs.
pub const MARKERS_PER_RUN: usize = 20_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// A marker whose archive object is still missing this long after it was
/// written is dropped: its batch failed for good (the queue retries a
/// batch within minutes, and marks it again).
pub const MISSING_AFTER_US: i64 = 60 * 60 * 1_000_000;

/// What one run's indexing did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// Archive objects copied.
    pub archive_objects: usize,
    /// Samples they held.
    pub samples: u64,
    /// Vehicle-dates written again.
    pub vehicle_days: usize,
    /// Dates whose fleet object was written again.
    pub fleet_days: usize,
    /// Markers whose object does not exist yet (left for the next run).
    pub waiting: usize,
    /// Markers dropped: their object never came.
    pub dropped: usize,
    /// What failed, and why; its markers stay for the next run.
    pub failed: Vec<(String, String)>,
}

/// A vehicle's date.
type VehicleDay = (Arc<str>, NaiveDate);

/// Copies the archive objects marked since the last run, as of `now_us`.
pub async fn index<S: ObjectStore>(store: &S, now_us: i64) -> Result<IndexReport, CompactError> {
    let mut report = IndexReport::default();
    let mut markers: Vec<(String, String, i64)> = Vec::new();
    for (marker, _) in store.list(archive::PENDING_PREFIX).await? {
        match archive::pending_of(&marker) {
            Some((key, marked_us)) => markers.push((marker, key, marked_us)),
            None => {
                warn!(%marker, "not a telemetry marker; deleted");
                store.delete(&marker).await?;
            }
        }
        if markers.len() == MARKERS_PER_RUN {
            break;
        }
    }
    if markers.is_empty() {
        return Ok(report);
    }

    // The marked objects, read at once.
    let read: Vec<_> = stream::iter(markers)
        .map(|(marker, key, marked_us)| async move {
            let object = match store.get(&key).await {
                Ok(object) => archive::read(object.body, &key).map(Some).map_err(|e| e.to_string()),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            (marker, key, marked_us, object)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut new: BTreeMap<VehicleDay, Vec<(Arc<str>, Sample)>> = BTreeMap::new();
    // Each marker to delete once what it touched is written; none for a marker to keep.
    let mut done: Vec<(String, BTreeSet<VehicleDay>)> = Vec::new();
    for (marker, key, marked_us, object) in read {
        match object {
            Ok(Some(samples)) => {
                let batch: Arc<str> = Arc::from(archive::batch_of(&key));
                let mut touched = BTreeSet::new();
                report.archive_objects += 1;
                report.samples += samples.len() as u64;
                for (vehicle, sample) in samples {
                    let unit = (vehicle, date_of(sample.ts_us));
                    touched.insert(unit.clone());
                    new.entry(unit).or_default().push((batch.clone(), sample));
                }
                done.push((marker, touched));
            }
            Ok(None) if marked_us < now_us - MISSING_AFTER_US => {
                warn!(%marker, "its archive object never came; the marker is dropped");
                report.dropped += 1;
                done.push((marker, BTreeSet::new()));
            }
            Ok(None) => report.waiting += 1,
            Err(error) => {
                warn!(%key, %error, "archive object not read; it is tried again next run");
                report.failed.push((key, error));
            }
        }
    }

    // Each vehicle-date merged and written, at once.
    let merged: Vec<_> = stream::iter(new)
        .map(|((vehicle, date), rows)| async move {
            let merged = merge_vehicle_day(store, &vehicle, date, rows, now_us).await;
            ((vehicle, date), merged)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut superseded = Vec::new();
    let mut failed: BTreeSet<VehicleDay> = BTreeSet::new();
    let mut hours: BTreeMap<NaiveDate, HashMap<Arc<str>, Vec<fleet_hourly::Hour>>> = BTreeMap::new();
    for ((vehicle, date), merged) in merged {
        match merged {
            Ok((its_hours, replaced)) => {
                report.vehicle_days += 1;
                superseded.extend(replaced);
                hours.entry(date).or_default().insert(vehicle, its_hours);
            }
            Err(error) => {
                warn!(%vehicle, %date, %error, "a vehicle's date was not indexed; it is tried again next run");
                report.failed.push((by_vehicle::partition(&vehicle, date), error));
                failed.insert((vehicle, date));
            }
        }
    }
    for (date, by_vehicle) in hours {
        let vehicles: Vec<Arc<str>> = by_vehicle.keys().cloned().collect();
        match merge_fleet_day(store, date, by_vehicle, now_us).await {
            Ok(replaced) => {
                report.fleet_days += 1;
                superseded.extend(replaced);
            }
            Err(error) => {
                warn!(%date, %error, "a date's fleet statistics were not indexed; tried again next run");
                report.failed.push((fleet_hourly::partition(date), error));
                failed.extend(vehicles.into_iter().map(|v| (v, date)));
            }
        }
    }
    supersede(store, now_us, "telemetry_index", superseded).await?;
    for (marker, touched) in done {
        if touched.is_disjoint(&failed) {
            store.delete(&marker).await?;
        }
    }
    info!(
        archive_objects = report.archive_objects,
        vehicle_days = report.vehicle_days,
        fleet_days = report.fleet_days,
        waiting = report.waiting,
        failed = report.failed.len(),
        "telemetry indexed"
    );
    Ok(report)
}

/// A vehicle-date's object written again with `new` in it: its hours, and
/// the objects it replaces (with their ETags).
async fn merge_vehicle_day<S: ObjectStore>(
    store: &S,
    vehicle: &Arc<str>,
    date: NaiveDate,
    new: Vec<(Arc<str>, Sample)>,
    now_us: i64,
) -> Result<(Vec<fleet_hourly::Hour>, Vec<(String, String)>), String> {
    let (rows, present) = read_listed(store, &by_vehicle::partition(vehicle, date), by_vehicle::read).await?;
    let written_us = rows.iter().map(|r| r.written_us + 1).fold(now_us, i64::max);
    let arriving: BTreeSet<&Arc<str>> = new.iter().map(|(batch, _)| batch).collect();
    let mut merged: Vec<(Arc<str>, Sample)> = by_vehicle::newest_copies(rows)
        .into_iter()
        .filter(|r| !arriving.contains(&r.batch))
        .map(|r| (r.batch, r.sample))
        .collect();
    merged.extend(new);
    merged.sort_by_key(|(_, s)| (s.ts_us, s.seq));
    let key = by_vehicle::key(vehicle, date, written_us);
    let body = by_vehicle::write(&key, &merged, written_us).map_err(|e| e.to_string())?;
    store.put(&key, body.into(), None).await.map_err(|e| e.to_string())?;
    let hours = fleet_hourly::hours(vehicle, merged.iter().map(|(_, s)| s), written_us);
    Ok((hours, present))
}

/// A date's fleet object written again with each vehicle of `by_vehicle`
/// holding the hours given (and no other): the objects it replaces.
async fn merge_fleet_day<S: ObjectStore>(
    store: &S,
    date: NaiveDate,
    by_vehicle: HashMap<Arc<str>, Vec<fleet_hourly::Hour>>,
    now_us: i64,
) -> Result<Vec<(String, String)>, String> {
    let (rows, present) = read_listed(store, &fleet_hourly::partition(date), fleet_hourly::read).await?;
    let written_us = rows.iter().map(|h| h.written_us + 1).fold(now_us, i64::max);
    let mut hours: Vec<fleet_hourly::Hour> = fleet_hourly::newest(rows)
        .into_iter()
        .filter(|h| !by_vehicle.contains_key(&h.vehicle))
        .collect();
    hours.extend(by_vehicle.into_values().flatten());
    hours.sort_by(|a, b| (&a.vehicle, a.hour_us).cmp(&(&b.vehicle, b.hour_us)));
    let key = fleet_hourly::key(date, written_us);
    let body = fleet_hourly::write(&key, &hours, written_us).map_err(|e| e.to_string())?;
    store.put(&key, body.into(), None).await.map_err(|e| e.to_string())?;
    Ok(present)
}

/// The rows of every object under `prefix`, each read with `read`, and the
/// objects read with their ETags.
async fn read_listed<S: ObjectStore, T>(
    store: &S,
    prefix: &str,
    read: impl Fn(bytes::Bytes, &str) -> Result<Vec<T>, LakeError>,
) -> Result<(Vec<T>, Vec<(String, String)>), String> {
    let listed = store.list(prefix).await.map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut present = Vec::new();
    for (key, info) in listed {
        match store.get(&key).await {
            Ok(object) => rows.extend(read(object.body, &key).map_err(|e| e.to_string())?),
            // Deleted after its grace period since the listing: a newer copy is listed.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.to_string()),
        }
        present.push((key, info.etag));
    }
    Ok((rows, present))
}
