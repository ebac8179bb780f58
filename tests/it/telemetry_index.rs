//! Trips and fleet statistics read by the API function from the telemetry
//! the compactor copies by vehicle equal the SQL's over the archive itself,
//! on moto's S3: through runs that merge new batches into dates already
//! copied, a batch copied twice (a run that died before deleting its
//! markers), an archive object written again, and a marker whose object has
//! not come yet.

use canopy::domain::device_id::DeviceId;
use canopy::domain::telemetry::Telemetry;
use canopy::format::lake::archive;
use canopy::format::lake::keys::date_of;
use canopy::ports::store::ObjectStore;
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_api::history::lake::LakeReader;
use canopy_api::history::{FleetStat, TimeRange, TripRow};
use canopy_decoder::telemetry_index::{IndexReport, index};
use canopy_tests::local;
use chrono::NaiveDate;

const DAY1_S: i64 = 1_699_920_000; // 2023-11-14T00:00:00Z
const VEHICLES: usize = 4;

/// A vehicle's samples every 5 s over two days: three drives a day (the
/// last of the first day runs past midnight), with speed, current and
/// temperature that change every sample, and a stop in one drive longer
/// than a minute but shorter than five.
fn drives(vehicle: usize) -> Vec<Telemetry> {
    let id = DeviceId::new(format!("veh-{vehicle:02}")).unwrap();
    let mut out = Vec::new();
    let mut seq = 0u64;
    let starts = [
        6 * 3600,
        12 * 3600 + 17,
        23 * 3600 + 40 * 60,
        86_400 + 9 * 3600,
        86_400 + 18 * 3600,
    ];
    for (d, start) in starts.into_iter().enumerate() {
        for i in 0..300i64 {
            if d == 1 && (100..120).contains(&i) {
                continue; // a 100 s stop
            }
            let t = DAY1_S + start + vehicle as i64 * 7 + i * 5;
            let phase = (i as f64 + vehicle as f64) / 17.0;
            seq += 1;
            out.push(Telemetry::from_measures(
                id.clone(),
                chrono::DateTime::from_timestamp(t, 0).unwrap(),
                seq,
                [
                    90.0 - i as f64 * 0.05 - d as f64,
                    380.0 + 10.0 * phase.cos(),
                    60.0 * phase.sin() + vehicle as f64,
                    3.6,
                    3.9,
                    20.0,
                    30.0 + 5.0 * (phase * 0.3).sin(),
                    80.0 + 30.0 * phase.cos(),
                ],
            ));
        }
    }
    out
}

/// The fleet's samples as the telemetry function archives them: batches of
/// about 50 messages in arrival order, one object per batch and date, each
/// sorted by vehicle and time; their keys and samples.
fn batches() -> Vec<(String, Vec<Telemetry>)> {
    let mut all: Vec<Telemetry> = (0..VEHICLES).flat_map(drives).collect();
    all.sort_by_key(|t| (t.ts_us(), t.vehicle_id.to_string()));
    let mut out = Vec::new();
    for (n, chunk) in all.chunks(50).enumerate() {
        let mut by_date: std::collections::BTreeMap<NaiveDate, Vec<Telemetry>> = Default::default();
        for t in chunk {
            by_date.entry(date_of(t.ts_us())).or_default().push(t.clone());
        }
        for (date, mut samples) in by_date {
            samples.sort_by_key(|t| (t.vehicle_id.to_string(), t.ts_us(), t.seq));
            out.push((archive::archive_key(date, &format!("batch-{n:05}")), samples));
        }
    }
    out
}

/// An archive object and its marker, as the telemetry function writes them.
async fn archive_object(store: &impl ObjectStore, key: &str, samples: &[Telemetry], marked_us: i64) {
    let rows: Vec<&Telemetry> = samples.iter().collect();
    store
        .put(&archive::pending_key(key, marked_us), Vec::new().into(), None)
        .await
        .unwrap();
    store
        .put(key, archive::write(&rows, key).unwrap().into(), None)
        .await
        .unwrap();
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same_trips(lake: &[TripRow], sql: &[TripRow]) -> Result<(), String> {
    if lake.len() != sql.len() {
        return Err(format!("{} trips against the SQL's {}", lake.len(), sql.len()));
    }
    for (i, (a, b)) in lake.iter().zip(sql).enumerate() {
        let exact = (a.start_us, a.end_us, a.samples) == (b.start_us, b.end_us, b.samples);
        let floats = [
            (a.distance_km, b.distance_km),
            (a.energy_out_kwh, b.energy_out_kwh),
            (a.energy_in_kwh, b.energy_in_kwh),
            (a.soc_start_pct, b.soc_start_pct),
            (a.soc_end_pct, b.soc_end_pct),
            (a.cell_temp_max_c, b.cell_temp_max_c),
        ];
        if !exact || !floats.iter().all(|&(x, y)| close(x, y)) {
            return Err(format!("trip {i}: {a:?} against the SQL's {b:?}"));
        }
    }
    Ok(())
}

fn same_stats(lake: &[FleetStat], sql: &[FleetStat]) -> Result<(), String> {
    if lake.len() != sql.len() {
        return Err(format!("{} rows against the SQL's {}", lake.len(), sql.len()));
    }
    for (a, b) in lake.iter().zip(sql) {
        let floats = [
            (a.soc_pct_min, b.soc_pct_min),
            (a.soc_pct_max, b.soc_pct_max),
            (a.soc_pct_avg, b.soc_pct_avg),
            (a.cell_temp_max_c_max, b.cell_temp_max_c_max),
            (a.cell_temp_max_c_avg, b.cell_temp_max_c_avg),
            (a.pack_current_a_min, b.pack_current_a_min),
            (a.pack_current_a_max, b.pack_current_a_max),
            (a.pack_current_a_avg, b.pack_current_a_avg),
            (a.speed_kph_max, b.speed_kph_max),
            (a.speed_kph_avg, b.speed_kph_avg),
        ];
        if (&a.vehicle_id, &a.hour, a.messages) != (&b.vehicle_id, &b.hour, b.messages)
            || !floats.iter().all(|&(x, y)| close(x, y))
        {
            return Err(format!("{a:?} against the SQL's {b:?}"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn trips_and_fleet_statistics_from_the_copy_by_vehicle_are_the_archives_sql() {
    let store = local::bucket("index").await;
    let endpoint = &local::moto().endpoint;
    let batches = batches();
    let now = |minutes: i64| (DAY1_S + 3 * 86_400 + minutes * 60) * 1_000_000;
    let (first, rest) = batches.split_at(batches.len() / 2);

    // A run over the first half.
    for (key, samples) in first {
        archive_object(&store, key, samples, now(0)).await;
    }
    let report = index(&store, now(1)).await.unwrap();
    assert_eq!(
        (report.archive_objects, report.fleet_days, report.failed.len()),
        (first.len(), 1, 0),
        "{report:?}"
    );

    // The rest, with a batch of the first half marked again (its run died
    // before deleting its marker) and one archive object written again.
    for (key, samples) in rest {
        archive_object(&store, key, samples, now(5)).await;
    }
    archive_object(&store, &first[3].0, &first[3].1, now(5)).await;
    store
        .put(&archive::pending_key(&first[7].0, now(5)), Vec::new().into(), None)
        .await
        .unwrap();
    // A marker whose object is still on its way.
    let missing = archive::archive_key(NaiveDate::from_ymd_opt(2023, 11, 15).unwrap(), "batch-late");
    store
        .put(&archive::pending_key(&missing, now(5)), Vec::new().into(), None)
        .await
        .unwrap();
    let report = index(&store, now(6)).await.unwrap();
    assert_eq!(
        report,
        IndexReport {
            archive_objects: rest.len() + 2,
            samples: report.samples,
            vehicle_days: VEHICLES * 2,
            fleet_days: 2,
            waiting: 1,
            dropped: 0,
            failed: Vec::new(),
        }
    );
    let samples: usize = batches.iter().map(|(_, s)| s.len()).sum();
    let copied: usize = rest.iter().chain([&first[3], &first[7]]).map(|(_, s)| s.len()).sum();
    assert_eq!(report.samples, copied as u64);
    let pending = store.list(archive::PENDING_PREFIX).await.unwrap();
    assert_eq!(
        pending.len(),
        1,
        "only the missing object's marker is left: {pending:?}"
    );
    // The replaced copies wait out the grace period: readers see two objects of a date.
    let day1_objects = store
        .list(&canopy::format::lake::by_vehicle::partition(
            "veh-00",
            NaiveDate::from_ymd_opt(2023, 11, 14).unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(day1_objects.len(), 2, "{day1_objects:?}");

    let lake = LakeReader::at_endpoint(endpoint, store.bucket()).unwrap();
    let sql = DataFusionHistory::s3(endpoint, store.bucket()).await.unwrap();
    let two_days = TimeRange::new(DAY1_S * 1_000_000, (DAY1_S + 2 * 86_400) * 1_000_000).unwrap();
    // From inside the second drive to inside the fourth.
    let cut = TimeRange::new(
        (DAY1_S + 12 * 3600 + 600) * 1_000_000,
        (DAY1_S + 86_400 + 9 * 3600 + 700) * 1_000_000,
    )
    .unwrap();
    let mut trips = 0;
    for v in 0..VEHICLES {
        let vehicle = DeviceId::new(format!("veh-{v:02}")).unwrap();
        for (range, gap_s) in [(two_days, 300), (two_days, 60), (cut, 300)] {
            let from_lake = lake.trips(&vehicle, range, gap_s * 1_000_000).await.unwrap();
            let from_sql = canopy_api::history::History::trips(&sql, &vehicle, range, gap_s * 1_000_000)
                .await
                .unwrap();
            same_trips(&from_lake, &from_sql).unwrap_or_else(|e| panic!("{vehicle}, gap {gap_s} s: {e}"));
            trips += from_lake.len();
        }
    }
    // 5 drives, 6 with the stop split at 60 s, 3 in the cut range; each vehicle.
    assert_eq!(trips, VEHICLES * (5 + 6 + 3));
    let mut messages = 0;
    for day in [14, 15, 16] {
        let date = NaiveDate::from_ymd_opt(2023, 11, day).unwrap();
        let from_lake = lake.fleet_stats(date).await.unwrap();
        let from_sql = canopy_api::history::History::fleet_stats(&sql, date).await.unwrap();
        same_stats(&from_lake, &from_sql).unwrap_or_else(|e| panic!("{date}: {e}"));
        assert_eq!(from_lake.is_empty(), day == 16);
        messages += from_lake.iter().map(|s| s.messages).sum::<u64>();
    }
    assert_eq!(messages, samples as u64, "every sample once, whatever was copied twice");
}
