//! `make bench-api`: one vehicle-day of a 100 Hz signal (8.64 million points)
//! read by the local history backend (DataFusion over lake Parquet) and
//! reduced to 2,000 points with LTTB, timed over repeated runs. The day is
//! laid out as the edge would upload it: one object per sealed batch.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use canopy::domain::vehicle::VehicleId;
use canopy::format::dbc::{Database, SignalValue};
use canopy::format::lake::decoded::{DecodedWriter, DecodedWriterOptions};
use canopy::format::lake::keys::RawKey;
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_api::history::{Catalog, TimeRange, series};

use crate::latency::percentiles;

const DAY_START_US: i64 = 1_700_006_400_000_000; // 2023-11-15T00:00:00Z
const DAY_US: i64 = 86_400_000_000;

/// Writes the day as `objects` decoded objects: PackCurrent at 100 Hz and
/// PackVoltage at 10 Hz, as BMS_PackStatus carries them.
fn write_day(db: &Database, root: &Path, vehicle: &VehicleId, objects: usize) -> Result<u64> {
    let (index, message) = db
        .messages()
        .iter()
        .enumerate()
        .find(|(_, m)| m.name == "BMS_PackStatus")
        .context("BMS_PackStatus")?;
    let current = message.signal_index("PackCurrent").context("PackCurrent")? as u16;
    let voltage = message.signal_index("PackVoltage").context("PackVoltage")? as u16;
    let per_object = DAY_US / objects as i64;
    let mut level = 0.0f64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut points = 0;
    for o in 0..objects {
        let first = DAY_START_US + o as i64 * per_object;
        let key = RawKey::new(vehicle.clone(), first, o as u64).decoded_key();
        let path = root.join(&key);
        std::fs::create_dir_all(path.parent().context("key has a folder")?)?;
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut writer = DecodedWriter::new(db, file, &key, DecodedWriterOptions::default())?;
        let mut ts = first;
        let mut n = 0u64;
        while ts < first + per_object {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            level = (level + ((rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0).clamp(-400.0, 400.0);
            let mut values = vec![SignalValue {
                signal: current,
                value: (level * 10.0).round() / 10.0,
            }];
            if n.is_multiple_of(10) {
                values.push(SignalValue {
                    signal: voltage,
                    value: 380.0 - level / 100.0,
                });
            }
            writer.push(ts, index, None, &values)?;
            ts += 10_000;
            n += 1;
        }
        points += n;
        writer.finish()?;
    }
    Ok(points)
}

pub async fn run(dbc: &Path, runs: usize, layouts: &[usize]) -> Result<()> {
    let db = Database::load(dbc)?;
    let catalog = Catalog::from_database(&db);
    let entry = catalog
        .find("BMS_PackStatus", "PackCurrent")
        .context("catalog")?
        .clone();
    let vehicle = VehicleId::new("bench-001")?;
    println!(
        "one vehicle-day of BMS_PackStatus.PackCurrent at 100 Hz, DataFusion over local Parquet, LTTB to 2,000 points, {runs} runs\n"
    );
    for &objects in layouts {
        let dir = tempfile::tempdir()?;
        let written = write_day(&db, dir.path(), &vehicle, objects)?;
        let history = DataFusionHistory::local(dir.path()).await?;
        let range = TimeRange::new(DAY_START_US, DAY_START_US + DAY_US)?;
        let mut ms = Vec::with_capacity(runs);
        let mut source = 0;
        for _ in 0..runs + 1 {
            let started = Instant::now();
            let s = series(&history, &entry, &vehicle, range, 2000).await?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            source = s.source_points;
            anyhow::ensure!(s.points.len() == 2000, "got {} points", s.points.len());
        }
        ms.remove(0); // the first run also warms the OS cache
        anyhow::ensure!(source as u64 == written, "read {source} of {written} points");
        let (p50, p95, max) = percentiles(&mut ms);
        let verdict = if p95 < 300.0 { "met" } else { "MISSED" };
        println!(
            "{objects:>5} objects ({:>6} points each): p50 {p50:>6.1} ms  p95 {p95:>6.1} ms  max {max:>6.1} ms  (target p95 < 300 ms: {verdict})",
            written / objects as u64
        );
    }
    Ok(())
}
