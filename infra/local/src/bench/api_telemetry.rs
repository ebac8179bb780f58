//! `make bench-api`'s trips and fleet statistics: a vehicle's month of trips
//! and a day of a 100-vehicle fleet's statistics, read by the lake reader
//! from the telemetry the compactor copies by vehicle (what the API function
//! runs), beside the SQL over the archive on DataFusion (what Athena ran),
//! raw and under the S3 model.
//!
//! The archive is laid out in objects of many samples (an hour of the
//! vehicle; a minute of the fleet), far fewer than the telemetry function
//! writes (one per queue batch, every 5 s): that flatters the SQL, which
//! reads every archive object of the range. The copy by vehicle is made by
//! the compactor's own code, in two runs, so the first run's objects are
//! still there beside their replacements, as readers find them for the
//! grace period after each run.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use canopy::adapters::memory::MemoryStore;
use canopy::domain::device_id::DeviceId;
use canopy::domain::telemetry::Telemetry;
use canopy::format::lake::archive;
use canopy::format::lake::keys::date_of;
use canopy::ports::store::ObjectStore;
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_api::history::lake::{LakeHistory, LakeReader};
use canopy_api::history::{FleetStat, TimeRange, TripRow};
use chrono::NaiveDate;

use crate::bench::api::{Case, DAY_START_US, DAY_US, MODELLED_RUNS, Modelled, time};
use crate::bench::s3_model::{Latency, S3Model};

/// Days of the month of trips.
const MONTH_DAYS: i64 = 31;
/// Vehicles of the fleet-day.
const FLEET: usize = 100;
/// Each vehicle drives two hours a day (the standard workload of docs/cost.md), at a sample a second.
const DRIVES: [i64; 2] = [7 * 3600, 17 * 3600];
const DRIVE_S: i64 = 3600;
const GAP_US: i64 = 300_000_000;

/// The two cases, timed.
pub(crate) async fn cases(runs: usize) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    let vehicle = DeviceId::new("bench-001")?;
    let dir = tempfile::tempdir()?;
    let samples = lay_out(dir.path(), std::slice::from_ref(&vehicle), MONTH_DAYS, 3600).await?;
    let month = TimeRange::new(DAY_START_US, DAY_START_US + MONTH_DAYS * DAY_US)?;
    let question = Question::Trips(vehicle, month);
    println!(
        "{MONTH_DAYS} days of trips ({samples} samples of one vehicle, 2 drives a day; the archive in objects of an hour):"
    );
    cases.push(bench(dir.path(), &format!("{MONTH_DAYS} days of trips"), &question, runs).await?);

    let dir = tempfile::tempdir()?;
    let fleet: Vec<DeviceId> = (1..=FLEET)
        .map(|i| DeviceId::new(format!("bench-{i:03}")))
        .collect::<Result<_, _>>()?;
    let samples = lay_out(dir.path(), &fleet, 1, 60).await?;
    let day = NaiveDate::from_ymd_opt(2023, 11, 15).context("a date")?;
    println!(
        "fleet statistics of a day at {FLEET} vehicles ({samples} samples; the archive in objects of a minute of the fleet):"
    );
    let name = format!("fleet statistics, 1 day, {FLEET} vehicles");
    cases.push(bench(dir.path(), &name, &Question::FleetStats(day), runs).await?);
    Ok(cases)
}

/// What a case asks.
enum Question {
    Trips(DeviceId, TimeRange),
    FleetStats(NaiveDate),
}

/// An answer of either question, compared between the engines.
#[derive(Debug)]
enum Answer {
    Trips(Vec<TripRow>),
    FleetStats(Vec<FleetStat>),
}

impl Question {
    async fn ask(&self, history: &dyn canopy_api::ports::HistoryReads) -> Result<Answer> {
        Ok(match self {
            Question::Trips(vehicle, range) => Answer::Trips(history.trips(vehicle, *range, GAP_US).await?),
            Question::FleetStats(date) => Answer::FleetStats(history.fleet_stats(*date).await?),
        })
    }
}

impl Answer {
    /// Rows and what they count, for the heading; equal to `other` but for
    /// the last bits of float sums taken in another order.
    fn check(&self, other: &Answer) -> Result<String> {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        match (self, other) {
            (Answer::Trips(a), Answer::Trips(b)) => {
                ensure!(a.len() == b.len(), "{} trips against the SQL's {}", a.len(), b.len());
                for (x, y) in a.iter().zip(b) {
                    ensure!(
                        (x.start_us, x.end_us, x.samples) == (y.start_us, y.end_us, y.samples)
                            && close(x.distance_km, y.distance_km)
                            && close(x.energy_out_kwh, y.energy_out_kwh)
                            && close(x.energy_in_kwh, y.energy_in_kwh),
                        "{x:?} against the SQL's {y:?}"
                    );
                }
                Ok(format!("{} trips", a.len()))
            }
            (Answer::FleetStats(a), Answer::FleetStats(b)) => {
                ensure!(a.len() == b.len(), "{} rows against the SQL's {}", a.len(), b.len());
                for (x, y) in a.iter().zip(b) {
                    ensure!(
                        (&x.vehicle_id, &x.hour, x.messages) == (&y.vehicle_id, &y.hour, y.messages)
                            && close(x.soc_pct_avg, y.soc_pct_avg)
                            && close(x.pack_current_a_avg, y.pack_current_a_avg),
                        "{x:?} against the SQL's {y:?}"
                    );
                }
                Ok(format!("{} vehicle-hours", a.len()))
            }
            _ => anyhow::bail!("answers of two questions"),
        }
    }
}

/// Times the question on both engines, raw and under the S3 model, after
/// checking that they answer alike.
async fn bench(root: &Path, name: &str, question: &Question, runs: usize) -> Result<Case> {
    let sql = DataFusionHistory::local(root).await?;
    let files = object_store::local::LocalFileSystem::new_with_prefix(root)?;
    let lake = LakeHistory {
        lake: LakeReader::new(Arc::new(files)),
        rest: sql.clone(),
    };
    let shown = question.ask(&lake).await?.check(&question.ask(&sql).await?)?;
    let sql_raw = time(runs, || async { question.ask(&sql).await.map(drop) }).await?;
    let lake_raw = time(runs, || async { question.ask(&lake).await.map(drop) }).await?;
    println!("  ({shown} in each answer, equal)");
    println!(
        "  new       p50 {:>7.1} ms  p95 {:>7.1} ms   (the SQL over the archive, DataFusion)",
        sql_raw.p50, sql_raw.p95
    );
    println!(
        "  lake      p50 {:>7.1} ms  p95 {:>7.1} ms   (the copy by vehicle read whole, in parallel)",
        lake_raw.p50, lake_raw.p95
    );
    let mut modelled_runs = Vec::new();
    for through_lake in [false, true] {
        let files = object_store::local::LocalFileSystem::new_with_prefix(root)?;
        let model = Arc::new(S3Model::new(files, Latency::AWS));
        let sql = DataFusionHistory::over(model.clone()).await?;
        let history: Box<dyn canopy_api::ports::HistoryReads> = if through_lake {
            Box::new(LakeHistory {
                lake: LakeReader::new(model.clone()),
                rest: sql,
            })
        } else {
            Box::new(sql)
        };
        let started = Instant::now();
        question.ask(history.as_ref()).await?;
        let first_ms = started.elapsed().as_secs_f64() * 1000.0;
        let first = model.counts();
        let timed = time(runs.min(MODELLED_RUNS), || async {
            question.ask(history.as_ref()).await.map(drop)
        })
        .await?;
        model.reset();
        question.ask(history.as_ref()).await?;
        let m = Modelled {
            first_ms,
            first,
            timed,
            warm: model.counts(),
        };
        m.print(if through_lake { "lake" } else { "new" });
        modelled_runs.push(m);
    }
    println!();
    let (lake_m, sql_m) = (modelled_runs.pop(), modelled_runs.pop());
    Ok(Case {
        name: name.to_string(),
        target_ms: 300.0,
        lake_raw,
        sql_raw,
        lake: lake_m.context("the lake's run")?,
        sql: sql_m.context("DataFusion's run")?,
    })
}

/// A sample of `vehicle` driving, `t` seconds into a drive that started at `start_s`.
fn sample(vehicle: &DeviceId, n: usize, start_s: i64, t: i64, seq: u64) -> Telemetry {
    let phase = (t as f64 + n as f64 * 13.0) / 90.0;
    let speed = (60.0 + 40.0 * phase.sin()).max(0.0);
    let current = 0.8 * speed + 20.0 * (phase * 3.0).cos();
    Telemetry::from_measures(
        vehicle.clone(),
        chrono::DateTime::from_timestamp(start_s + t, 0).unwrap_or_default(),
        seq,
        [
            90.0 - t as f64 / 100.0,
            390.0 - 0.05 * current,
            current,
            3.6,
            3.9,
            20.0,
            30.0 + 5.0 * (phase * 0.2).sin(),
            speed,
        ],
    )
}

/// The fleet's drives over `days` from [`DAY_START_US`] as archive objects
/// of `object_s` seconds of the fleet each, then copied by vehicle by the
/// compactor's code in two runs, all written under `root`; the samples.
async fn lay_out(root: &Path, fleet: &[DeviceId], days: i64, object_s: i64) -> Result<usize> {
    let store = MemoryStore::new("bench");
    let day0_s = DAY_START_US / 1_000_000;
    let mut objects = Vec::new();
    let mut total = 0;
    for day in 0..days {
        for drive in DRIVES {
            for chunk in (0..DRIVE_S).step_by(object_s as usize) {
                let mut samples = Vec::new();
                for (n, vehicle) in fleet.iter().enumerate() {
                    let start_s = day0_s + day * 86_400 + drive;
                    for t in chunk..(chunk + object_s).min(DRIVE_S) {
                        // Seconds since the first day: a vehicle's seqs rise with its samples.
                        let seq = (start_s + t - day0_s) as u64;
                        samples.push(sample(vehicle, n, start_s, t, seq));
                    }
                }
                total += samples.len();
                objects.push(samples);
            }
        }
    }
    let halves = objects.len() / 2;
    let mut now_us = DAY_START_US + (days + 1) * DAY_US;
    for (i, samples) in objects.iter().enumerate() {
        let rows: Vec<&Telemetry> = samples.iter().collect();
        let date = date_of(samples[0].ts_us());
        let key = archive::archive_key(date, &format!("batch-{i:06}"));
        store
            .put(&archive::pending_key(&key, now_us), Vec::new().into(), None)
            .await?;
        store.put(&key, archive::write(&rows, &key)?.into(), None).await?;
        if i + 1 == halves || i + 1 == objects.len() {
            now_us += 60_000_000;
            let report = canopy_decoder::telemetry_index::index(&store, now_us).await?;
            ensure!(report.failed.is_empty(), "{report:?}");
        }
    }
    for (key, _) in store.list("").await? {
        if key.starts_with("compaction/") {
            continue;
        }
        let path = root.join(&key);
        std::fs::create_dir_all(path.parent().context("a folder")?)?;
        std::fs::write(&path, store.get(&key).await?.body)?;
    }
    std::fs::create_dir_all(root.join("decoded"))?;
    Ok(total)
}
