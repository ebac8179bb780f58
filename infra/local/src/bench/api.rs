//! `make bench-api`: a chart of a 100 Hz signal to 2,000 points from the local
//! history backend (DataFusion over lake Parquet), the previous engine beside
//! the new one in the same process:
//!
//! - previous: every decoded value of the range (`SELECT ts_us, value …`),
//!   then LTTB, as the API did before the rollup tiers;
//! - new: the API's plan (the coarsest rollup tier whose bucket fits,
//!   per bucket first, lowest, highest and last point, exact statistics),
//!   then LTTB.
//!
//! Days are laid out as the edge uploads them (one object per sealed batch),
//! each decoded object with its rollup tiers as the decoder writes them; and
//! as compaction leaves them (the same `compact` the compactor runs, with
//! what it copied deleted): a day at 23:xx has 23 compacted hours and the
//! current hour's batches, a past month one object a day per tier. For
//! each chart the bench also reports the bytes Athena would scan: the
//! compressed column chunks of the columns the query reads, in the row groups
//! whose statistics do not exclude the signal or the time range; and the new
//! engine again with every object read through a model of S3's latency
//! ([`S3Model`]: 25 ms to the first byte, 100 MB/s), with the S3 requests
//! one answer makes and how many of them come one after another.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use canopy::domain::device_id::DeviceId;
use canopy::domain::lttb::{Point, lttb};
use canopy::format::dbc::{Database, SignalValue};
use canopy::format::lake::compact::{BatchCopy, LakeObject, Period, Table, Unit, compact};
use canopy::format::lake::decoded::{DecodedWriter, DecodedWriterOptions, decoded_schema};
use canopy::format::lake::keys::RawKey;
use canopy::format::lake::rollup::rollup_schema;
use canopy_api::catalogs::{Catalog, CatalogEntry};
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_api::history::lake::{LakeHistory, LakeReader};
use canopy_api::history::plan::{Plan, Source, plan};
use canopy_api::history::{Param, Sql, TimeRange, series};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;

use crate::bench::latency::percentiles;
use crate::bench::s3_model::{Counts, Latency, S3Model};

pub(crate) const DAY_START_US: i64 = 1_700_006_400_000_000; // 2023-11-15T00:00:00Z
pub(crate) const DAY_US: i64 = 86_400_000_000;
const MESSAGE: &str = "BMS_PackStatus";
const SIGNAL: &str = "PackCurrent";
pub(crate) const POINTS: usize = 2000;

/// The signals of a vehicle page's eight charts: PackCurrent at 100 Hz
/// and these at 10 Hz, as the BMS sends its summaries.
const PAGE: [(&str, &str); 7] = [
    ("BMS_PackStatus", "PackVoltage"),
    ("BMS_PackStatus", "StateOfCharge"),
    ("BMS_CellVoltageSummary", "CellVoltageMax"),
    ("BMS_CellVoltageSummary", "CellVoltageMin"),
    ("BMS_TemperatureSummary", "CellTempMax"),
    ("BMS_TemperatureSummary", "CellTempMin"),
    ("BMS_Energy", "PowerLimitDischarge"),
];

/// What [`write_days`] wrote: PackCurrent's values, and each 10 Hz signal's.
#[derive(Debug, Clone, Copy)]
struct Written {
    current: u64,
    each_10hz: u64,
}

/// Writes `days` days from the first as `per_day` objects a day, each with
/// its rollup tiers: PackCurrent at 100 Hz and PackVoltage at 10 Hz, as
/// BMS_PackStatus carries them; with `page`, every signal of [`PAGE`] at 10 Hz.
fn write_days(
    db: &Database,
    root: &Path,
    vehicle: &DeviceId,
    days: i64,
    per_day: usize,
    page: bool,
) -> Result<Written> {
    let find = |name: &str| {
        db.messages()
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == name)
            .with_context(|| name.to_string())
    };
    let (index, message) = find(MESSAGE)?;
    let current = message.signal_index(SIGNAL).context(SIGNAL)? as u16;
    // Each 10 Hz message, with the signals it carries.
    let mut slow: Vec<(usize, Vec<u16>)> = Vec::new();
    for (m, s) in PAGE.iter().take(if page { PAGE.len() } else { 1 }) {
        let (i, message) = find(m)?;
        let signal = message.signal_index(s).with_context(|| format!("{m}.{s}"))? as u16;
        match slow.iter_mut().find(|(at, _)| *at == i) {
            Some((_, signals)) => signals.push(signal),
            None => slow.push((i, vec![signal])),
        }
    }
    let per_object = DAY_US / per_day as i64;
    let mut level = 0.0f64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut written = Written {
        current: 0,
        each_10hz: 0,
    };
    let options = DecodedWriterOptions {
        rollups: true,
        ..DecodedWriterOptions::default()
    };
    for o in 0..days * per_day as i64 {
        let first = DAY_START_US + o * per_object;
        let raw = RawKey::new(vehicle.clone(), first, o as u64);
        let key = raw.decoded_key();
        let path = root.join(&key);
        std::fs::create_dir_all(path.parent().context("key has a folder")?)?;
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut writer = DecodedWriter::new(db, file, &key, &BatchCopy::new(&raw.stem(), 1), options)?;
        let mut ts = first;
        let mut n = 0u64;
        while ts < first + per_object {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            level = (level + ((rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0).clamp(-400.0, 400.0);
            let value = (level * 10.0).round() / 10.0;
            if n.is_multiple_of(10) {
                // PackVoltage goes with PackCurrent, in one frame.
                for (k, (at, signals)) in slow.iter().enumerate() {
                    let mut values: Vec<SignalValue> = (signals.iter().enumerate())
                        .map(|(j, &signal)| SignalValue {
                            signal,
                            value: 380.0 - level / 100.0 + (k * 3 + j) as f64,
                        })
                        .collect();
                    if *at == index {
                        values.insert(0, SignalValue { signal: current, value });
                    }
                    writer.push(ts, *at, None, &values)?;
                }
                written.each_10hz += 1;
            } else {
                writer.push(ts, index, None, &[SignalValue { signal: current, value }])?;
            }
            ts += 10_000;
            n += 1;
        }
        written.current += n;
        let (_, _, tiers) = writer.finish_with_rollups()?;
        for tier in tiers {
            let path = root.join(raw.rollup_key(&tier.tier));
            std::fs::create_dir_all(path.parent().context("key has a folder")?)?;
            std::fs::write(path, tier.bytes)?;
        }
    }
    Ok(written)
}

/// The previous engine: every value of the range, then LTTB.
async fn previous(history: &DataFusionHistory, vehicle: &DeviceId, range: TimeRange) -> Result<(usize, Vec<Point>)> {
    let (first, last) = range.dates();
    let sql = Sql {
        text: "SELECT ts_us, value FROM decoded WHERE vehicle_id = ? AND \"date\" BETWEEN ? AND ? \
               AND message = ? AND signal = ? AND ts_us >= ? AND ts_us < ? ORDER BY ts_us"
            .into(),
        params: vec![
            Param::Str(vehicle.to_string()),
            Param::Str(first.format("%Y-%m-%d").to_string()),
            Param::Str(last.format("%Y-%m-%d").to_string()),
            Param::Str(MESSAGE.into()),
            Param::Str(SIGNAL.into()),
            Param::Int(range.from_us),
            Param::Int(range.to_us),
        ],
    };
    let mut points = Vec::new();
    for batch in history.run(&sql).await? {
        let ts = batch.column(0).as_primitive::<Int64Type>();
        let values = batch.column(1).as_primitive::<Float64Type>();
        points.extend(
            ts.values()
                .iter()
                .zip(values.values().iter())
                .map(|(&ts_us, &value)| Point { ts_us, value }),
        );
    }
    Ok((points.len(), lttb(&points, POINTS)))
}

/// Bytes Athena would scan for `plan`: in each object of the partitions the
/// query names, the compressed chunks of the columns it reads, in every row
/// group whose min/max statistics do not rule the signal or range out.
fn scanned_bytes(root: &Path, vehicle: &DeviceId, plan: &Plan) -> Result<u64> {
    let prefix = plan.source.prefix();
    // What the query reads: every column of its source but the unit (and
    // the decoded object's source address).
    let schema = match plan.source {
        Source::Decoded => decoded_schema(),
        Source::Tier(_) => rollup_schema(),
    };
    let unread = ["unit", "source_address"];
    let columns: Vec<&str> = (schema.fields().iter())
        .map(|f| f.name().as_str())
        .filter(|name| !unread.contains(name))
        .collect();
    let (first, last) = plan.range.dates();
    let mut total = 0u64;
    let mut day = first;
    while day <= last {
        let dir: PathBuf = root.join(format!("{prefix}vehicle_id={vehicle}/date={}", day.format("%Y-%m-%d")));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let reader = SerializedFileReader::new(std::fs::File::open(entry.path())?)?;
            for group in reader.metadata().row_groups() {
                let may_hold = group.columns().iter().all(|c| {
                    let name = c.column_descr().name();
                    match (name, c.statistics()) {
                        ("message", Some(Statistics::ByteArray(s))) => within_bytes(s, MESSAGE),
                        ("signal", Some(Statistics::ByteArray(s))) => within_bytes(s, SIGNAL),
                        ("ts_us", Some(Statistics::Int64(s))) => match (s.min_opt(), s.max_opt()) {
                            (Some(&lo), Some(&hi)) => hi >= plan.range.from_us && lo < plan.range.to_us,
                            _ => true,
                        },
                        _ => true,
                    }
                });
                if may_hold {
                    total += group
                        .columns()
                        .iter()
                        .filter(|c| columns.contains(&c.column_descr().name()))
                        .map(|c| c.compressed_size() as u64)
                        .sum::<u64>();
                }
            }
        }
        day = day.succ_opt().context("a next day")?;
    }
    Ok(total)
}

/// How much of a layout compaction has merged.
#[derive(Clone, Copy, PartialEq)]
enum Compaction {
    None,
    /// Every hour but the last of each day (a day seen at 23:xx).
    HoursButTheLast,
    /// Every hour, then every day.
    Days,
}

/// Compacts the tiers' objects in `root` as the compactor would, and deletes
/// what it copied (as after the grace period); the objects the layout then has.
fn compact_tiers(root: &Path, vehicle: &DeviceId, days: i64, how: Compaction) -> Result<usize> {
    compact_tiers_keeping(root, vehicle, days, how, false)
}

/// [`compact_tiers`], keeping what it copied when `keep` (as within the
/// grace period: each batch then has two copies in the lake).
fn compact_tiers_keeping(root: &Path, vehicle: &DeviceId, days: i64, how: Compaction, keep: bool) -> Result<usize> {
    let mut units = Vec::new();
    for day in 0..days {
        let start = DAY_START_US + day * DAY_US;
        let hours = if how == Compaction::HoursButTheLast { 23 } else { 24 };
        units.extend((0..hours).map(|h| (Period::Hour, start + h * Period::Hour.width_us())));
        if how == Compaction::Days {
            units.push((Period::Day, start));
        }
    }
    for (period, start_us) in units {
        let unit = Unit {
            vehicle: vehicle.clone(),
            period,
            start_us,
        };
        for table in Table::all().filter(|t| t != &Table::Decoded && t.periods().contains(&period)) {
            let dir = root.join(unit.partition(table));
            let mut inputs = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                let name = path.to_string_lossy().into_owned();
                if LakeObject::parse(&name).is_some_and(|o| unit.covers(&o)) {
                    inputs.push((name, bytes::Bytes::from(std::fs::read(&path)?)));
                }
            }
            let (out, done) = compact(table, &inputs, Vec::new())?;
            for (path, _) in inputs.iter().filter(|_| !keep) {
                std::fs::remove_file(path)?;
            }
            std::fs::write(root.join(unit.compacted_key(table, done.written_us, 0)), out)?;
        }
    }
    let ten_s = root.join(format!("rollup_10s/vehicle_id={vehicle}"));
    let mut objects = 0;
    for day in std::fs::read_dir(ten_s)? {
        objects += std::fs::read_dir(day?.path())?.count();
    }
    Ok(objects)
}

fn within_bytes(s: &parquet::file::statistics::ValueStatistics<parquet::data_type::ByteArray>, v: &str) -> bool {
    match (s.min_opt(), s.max_opt()) {
        (Some(lo), Some(hi)) => lo.data() <= v.as_bytes() && v.as_bytes() <= hi.data(),
        _ => true,
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

pub(crate) struct Timed {
    pub(crate) p50: f64,
    pub(crate) p95: f64,
}

pub(crate) async fn time<F, Fut>(runs: usize, mut f: F) -> Result<Timed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut ms = Vec::with_capacity(runs + 1);
    for _ in 0..runs + 1 {
        let started = Instant::now();
        f().await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.remove(0); // the first run also warms the OS cache
    let (p50, p95, _) = percentiles(&mut ms);
    Ok(Timed { p50, p95 })
}

/// `layouts`: objects per day for the one-day charts; `month_days`: days of
/// the month chart (0 to skip it); `cold`: how to time the API function's
/// first chart after a cold start (none to skip it).
pub async fn run(
    dbc: &Path,
    runs: usize,
    layouts: &[usize],
    month_days: i64,
    cold: Option<&crate::bench::api_cold::ColdStart<'_>>,
) -> Result<()> {
    let db = Database::load(dbc)?;
    let catalog = Catalog::from_database(&db);
    let vehicle = DeviceId::new("bench-001")?;
    println!(
        "{MESSAGE}.{SIGNAL} at 100 Hz to {POINTS} points, DataFusion over local Parquet, {runs} runs; \
         previous engine (every value, then LTTB) beside the new (rollup tier, per-bucket M4 and statistics in SQL, then LTTB)\n"
    );
    let mut cases = Vec::new();
    for chart in charts(layouts, month_days) {
        cases.push(bench_chart(&db, &catalog, &vehicle, runs, chart).await?);
    }
    cases.extend(crate::bench::api_telemetry::cases(runs).await?);
    let cold = match cold {
        Some(cold) => Some(cold.measure(&db, &vehicle).await?),
        None => None,
    };
    println!("{}", summary(&cases, cold.as_ref()));
    Ok(())
}

/// One chart to time: a range of days from the first, laid out in objects
/// a day, and compacted or not; the vehicle page's eight charts at once, or PackCurrent's alone.
struct Chart {
    name: String,
    days: i64,
    per_day: usize,
    compaction: Compaction,
    page: bool,
}

/// A day in each of `layouts`, the most objects again with its hours
/// compacted (alone, and the vehicle page's eight charts), and a month
/// before and after compaction.
fn charts(layouts: &[usize], month_days: i64) -> Vec<Chart> {
    let chart = |name: String, days: i64, per_day: usize, compaction: Compaction| Chart {
        name,
        days,
        per_day,
        compaction,
        page: false,
    };
    let mut charts: Vec<Chart> = layouts
        .iter()
        .map(|&o| chart(format!("1 day, {o} objects"), 1, o, Compaction::None))
        .collect();
    if let Some(&most) = layouts.iter().max() {
        let name = format!("1 day, {most} objects, 23 hours compacted");
        charts.push(Chart {
            page: true,
            ..chart(
                format!("8 charts at once, {name}"),
                1,
                most,
                Compaction::HoursButTheLast,
            )
        });
        charts.push(chart(name, 1, most, Compaction::HoursButTheLast));
    }
    if month_days > 0 {
        charts.push(chart(
            format!("{month_days} days, 24 objects a day"),
            month_days,
            24,
            Compaction::None,
        ));
        charts.push(chart(
            format!("{month_days} days, 24 objects a day, days compacted"),
            month_days,
            24,
            Compaction::Days,
        ));
    }
    charts
}

/// The signals one answer charts, each with the values it has in the range.
type Asked = Vec<(CatalogEntry, u64)>;

/// Every signal of `asked` charted at once, as the console asks for a page,
/// each answer checked: every point asked for, statistics of every value written.
async fn answer(
    history: &dyn canopy_api::ports::HistoryReads,
    asked: &Asked,
    vehicle: &DeviceId,
    range: TimeRange,
) -> Result<()> {
    let answers = futures::future::try_join_all(
        asked
            .iter()
            .map(|(entry, _)| series(history, entry, vehicle, range, POINTS)),
    )
    .await?;
    for (s, (entry, written)) in answers.iter().zip(asked) {
        check(s, *written).with_context(|| format!("{}.{}", entry.message, entry.signal))?;
    }
    Ok(())
}

/// What a chart's timing gave, for the summary.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) target_ms: f64,
    pub(crate) lake_raw: Timed,
    pub(crate) sql_raw: Timed,
    pub(crate) lake: Modelled,
    pub(crate) sql: Modelled,
}

/// Lays out a chart's days, times each engine on the files and under the
/// S3 model (and on a day the previous engine), and prints how they did.
async fn bench_chart(db: &Database, catalog: &Catalog, vehicle: &DeviceId, runs: usize, chart: Chart) -> Result<Case> {
    let days = chart.days;
    let dir = tempfile::tempdir()?;
    let (written, laid_out) = lay_out(db, dir.path(), vehicle, &chart)?;
    let entry = |m: &str, s: &str| {
        catalog
            .find(m, s)
            .with_context(|| format!("{m}.{s} in the catalog"))
            .cloned()
    };
    let mut asked: Asked = vec![(entry(MESSAGE, SIGNAL)?, written.current)];
    if chart.page {
        for (m, s) in PAGE {
            asked.push((entry(m, s)?, written.each_10hz));
        }
    }
    let history = DataFusionHistory::local(dir.path()).await?;
    let range = TimeRange::new(DAY_START_US, DAY_START_US + days * DAY_US)?;
    let planned = plan(range, POINTS);

    let new = time(runs, || answer(&history, &asked, vehicle, range)).await?;
    let scanned_new = scanned_bytes(dir.path(), vehicle, &planned)?;
    let decoded_plan = Plan {
        source: Source::Decoded,
        range,
        bucket_us: planned.bucket_us,
    };
    let scanned_previous = scanned_bytes(dir.path(), vehicle, &decoded_plan)?;
    println!(
        "{} ({} values of {SIGNAL}, {laid_out}), source {}:",
        chart.name,
        written.current,
        planned.source.name()
    );
    // The previous engine holds every value: a month of 100 Hz is 268 M points, so it runs on a day only.
    if days == 1 && !chart.page {
        let old = time(runs, || async {
            let (read, points) = previous(&history, vehicle, range).await?;
            anyhow::ensure!(read as u64 == written.current && points.len() == POINTS, "read {read}");
            Ok(())
        })
        .await?;
        println!(
            "  previous  p50 {:>7.1} ms  p95 {:>7.1} ms   Athena would scan {:>7.2} MB",
            old.p50,
            old.p95,
            mb(scanned_previous)
        );
        println!(
            "  new       p50 {:>7.1} ms  p95 {:>7.1} ms   Athena would scan {:>7.2} MB   ({:.1}x faster at p95, {:.0}x fewer bytes)",
            new.p50,
            new.p95,
            mb(scanned_new),
            old.p95 / new.p95,
            scanned_previous as f64 / scanned_new.max(1) as f64
        );
    } else {
        println!(
            "  new       p50 {:>7.1} ms  p95 {:>7.1} ms   Athena would scan {:>7.2} MB a chart   (the decoded values: {:.0} MB)",
            new.p50,
            new.p95,
            mb(scanned_new),
            mb(scanned_previous)
        );
    }
    let files = object_store::local::LocalFileSystem::new_with_prefix(dir.path())?;
    let lake = LakeHistory {
        lake: LakeReader::new(Arc::new(files)),
        rest: history.clone(),
    };
    let lake_raw = time(runs, || answer(&lake, &asked, vehicle, range)).await?;
    println!(
        "  lake      p50 {:>7.1} ms  p95 {:>7.1} ms   (the objects read whole, in parallel)",
        lake_raw.p50, lake_raw.p95
    );
    let mut modelled_runs = Vec::new();
    for engine in [Engine::DataFusion, Engine::Lake] {
        let m = modelled(dir.path(), engine, &asked, vehicle, range, runs).await?;
        m.print(engine.name());
        modelled_runs.push(m);
    }
    println!();
    let (lake_m, sql_m) = (modelled_runs.pop(), modelled_runs.pop());
    Ok(Case {
        target_ms: target_ms(&chart),
        name: chart.name,
        lake_raw,
        sql_raw: new,
        lake: lake_m.context("the lake's run")?,
        sql: sql_m.context("DataFusion's run")?,
    })
}

/// The p95 a chart should be answered within under the S3 model.
fn target_ms(chart: &Chart) -> f64 {
    match (chart.page, chart.days) {
        (true, _) => 400.0,
        (false, 1) => 150.0,
        _ => 300.0,
    }
}

pub(crate) fn requests(c: &Counts) -> String {
    format!(
        "{} S3 requests in sequence ({} GET, {} LIST, {:.2} MB)",
        c.in_sequence,
        c.gets,
        c.lists,
        mb(c.bytes)
    )
}

/// The closing lines: for each case its p95 under the S3 model against its
/// target with the S3 round trips in sequence, then without the model
/// (the engines' own speed on local files), DataFusion beside the lake
/// reader; and the first chart after a cold start.
fn summary(cases: &[Case], cold: Option<&crate::bench::api_cold::ColdAnswer>) -> String {
    let verdict = |ms: f64, target: f64| if ms < target { "met" } else { "MISSED" };
    let mut out = String::from(
        "Summary (the lake reader: what the API function runs; \"S3 model\": every read waits as from Lambda in AWS; \
         \"raw\": local files, no model):\n",
    );
    for c in cases {
        out.push_str(&format!(
            "{}: S3 model p95 {:.1} ms, {} (an instance's first answer {:.1} ms, {}); target < {:.0} ms: {}\n",
            c.name,
            c.lake.timed.p95,
            round_trips(c.lake.warm.in_sequence),
            c.lake.first_ms,
            round_trips(c.lake.first.in_sequence),
            c.target_ms,
            verdict(c.lake.timed.p95, c.target_ms)
        ));
        out.push_str(&format!(
            "{}: raw p95 {:.1} ms; DataFusion: raw p95 {:.1} ms, S3 model p95 {:.1} ms, {} ({:.1}x the lake reader's)\n",
            c.name,
            c.lake_raw.p95,
            c.sql_raw.p95,
            c.sql.timed.p95,
            round_trips(c.sql.warm.in_sequence),
            c.sql.timed.p95 / c.lake.timed.p95.max(f64::MIN_POSITIVE)
        ));
    }
    if let Some(cold) = cold {
        out.push_str(&cold.line(verdict(cold.total_ms(), crate::bench::api_cold::TARGET_MS)));
        out.push('\n');
    }
    out
}

/// `n` sequential S3 round trips, in words.
fn round_trips(n: u64) -> String {
    format!("{n} sequential S3 round trip{}", if n == 1 { "" } else { "s" })
}

/// Runs of a chart under the S3 model, at most: each waits out its requests.
pub(crate) const MODELLED_RUNS: usize = 10;

/// A chart under the S3 model: an instance's first answer (nothing read
/// before), then the next ones, and the requests of each kind of answer.
pub(crate) struct Modelled {
    pub(crate) first_ms: f64,
    pub(crate) first: Counts,
    pub(crate) timed: Timed,
    pub(crate) warm: Counts,
}

impl Modelled {
    /// Its two lines: an instance's first answer, then the warm ones.
    pub(crate) fn print(&self, engine: &str) {
        println!(
            "  {engine:<9} S3 model  first {:>7.1} ms                   {}",
            self.first_ms,
            requests(&self.first)
        );
        println!(
            "  {engine:<9} S3 model  p50 {:>7.1} ms  p95 {:>7.1} ms   {}",
            self.timed.p50,
            self.timed.p95,
            requests(&self.warm)
        );
    }
}

/// What answers a chart from the lake's objects.
#[derive(Debug, Clone, Copy)]
enum Engine {
    /// The SQL on DataFusion, over the object store.
    DataFusion,
    /// [`LakeReader`]: the objects read whole, the answer computed in the function.
    Lake,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::DataFusion => "new",
            Engine::Lake => "lake",
        }
    }
}

/// A chart's answer checked: every point asked for, statistics of every value written.
fn check(s: &canopy_api::history::Series, written: u64) -> Result<()> {
    anyhow::ensure!(
        s.points.len() == POINTS && s.stats.map(|s| s.count) == Some(written),
        "got {} points, statistics of {:?} values (wrote {written})",
        s.points.len(),
        s.stats.map(|s| s.count)
    );
    Ok(())
}

/// The same chart with every read of the lake's objects through
/// [`S3Model`]: what a function in AWS would wait for it, first and once warm.
async fn modelled(
    root: &Path,
    engine: Engine,
    asked: &Asked,
    vehicle: &DeviceId,
    range: TimeRange,
    runs: usize,
) -> Result<Modelled> {
    let files = object_store::local::LocalFileSystem::new_with_prefix(root)?;
    let model = Arc::new(S3Model::new(files, Latency::AWS));
    let sql = DataFusionHistory::over(model.clone()).await?;
    let history: Box<dyn canopy_api::ports::HistoryReads> = match engine {
        Engine::DataFusion => Box::new(sql),
        Engine::Lake => Box::new(LakeHistory {
            lake: LakeReader::new(model.clone()),
            rest: sql,
        }),
    };
    let chart = || answer(history.as_ref(), asked, vehicle, range);
    let started = Instant::now();
    chart().await?;
    let first_ms = started.elapsed().as_secs_f64() * 1000.0;
    let first = model.counts();
    let timed = time(runs.min(MODELLED_RUNS), chart).await?;
    model.reset();
    chart().await?;
    Ok(Modelled {
        first_ms,
        first,
        timed,
        warm: model.counts(),
    })
}

/// A day as compaction leaves it at 23:xx (1,440 objects, 23 hours
/// compacted) in `root`, for charts timed elsewhere; what it is.
pub(crate) fn lay_out_day(db: &Database, root: &Path, vehicle: &DeviceId) -> Result<String> {
    let chart = Chart {
        name: "1 day, 1440 objects, 23 hours compacted".into(),
        days: 1,
        per_day: 1440,
        compaction: Compaction::HoursButTheLast,
        page: false,
    };
    lay_out(db, root, vehicle, &chart)?;
    Ok(chart.name)
}

/// Writes the chart's days in `root` as the edge and decoder would, and
/// compacts them as it asks; the values written, and how it went (for the
/// chart's heading).
fn lay_out(db: &Database, root: &Path, vehicle: &DeviceId, chart: &Chart) -> Result<(Written, String)> {
    let started = Instant::now();
    let written = write_days(db, root, vehicle, chart.days, chart.per_day, chart.page)?;
    let wrote_s = started.elapsed().as_secs_f64();
    let compacted = match chart.compaction {
        Compaction::None => String::new(),
        _ => {
            let started = Instant::now();
            let objects = compact_tiers(root, vehicle, chart.days, chart.compaction)?;
            format!(
                "; tiers compacted in {:.1} s, {objects} objects of the 10 s tier left",
                started.elapsed().as_secs_f64()
            )
        }
    };
    Ok((written, format!("written with tiers in {wrote_s:.1} s{compacted}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use canopy_api::history::{History, SignalRef};

    /// The lake reader answers as the SQL does on DataFusion, over a day laid
    /// out in hourly batches with most hours compacted and their batches'
    /// first copies still there: the same points, the same statistics (sums
    /// to the last bits of their order).
    #[tokio::test]
    async fn the_lake_reader_answers_as_the_sql_does() {
        let db = Database::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../dbc/ev_powertrain.dbc"
        )))
        .expect("the DBC");
        let dir = tempfile::tempdir().expect("a folder");
        let vehicle = DeviceId::new("bench-001").expect("id");
        write_days(&db, dir.path(), &vehicle, 1, 24, false).expect("a day");
        compact_tiers_keeping(dir.path(), &vehicle, 1, Compaction::HoursButTheLast, true).expect("compacted");
        let sql = DataFusionHistory::local(dir.path()).await.expect("DataFusion");
        let files = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("the folder");
        let counted = Arc::new(S3Model::new(
            files,
            Latency {
                first_byte: std::time::Duration::ZERO,
                bytes_per_s: u64::MAX,
            },
        ));
        let lake = LakeReader::new(counted.clone());
        let signal = SignalRef {
            message_name: MESSAGE.into(),
            signal_name: SIGNAL.into(),
        };
        let hour = 3_600_000_000;
        let ranges = [
            (
                DAY_START_US + 3 * hour + 1_234_567,
                DAY_START_US + 3 * hour + 600_000_000,
                2_000,
            ),
            (DAY_START_US + 5 * hour, DAY_START_US + 6 * hour + 7, 2_000),
            (DAY_START_US, DAY_START_US + DAY_US, 2_000),
            (DAY_START_US + 22 * hour, DAY_START_US + DAY_US + hour, 500),
            (DAY_START_US - DAY_US, DAY_START_US - hour, 2_000),
        ];
        let mut sources = Vec::new();
        for (from_us, to_us, points) in ranges {
            let planned = plan(TimeRange::new(from_us, to_us).expect("range"), points);
            sources.push(planned.source.name());
            let expected = sql.reduced(&vehicle, &signal, &planned).await.expect("SQL");
            let got = lake.reduced(&vehicle, &signal, &planned).await.expect("lake");
            assert_eq!(
                expected.stats.is_some(),
                from_us >= DAY_START_US,
                "only the day has values"
            );
            assert_eq!(got.points, expected.points, "{}: points", planned.source.name());
            match (got.stats, expected.stats) {
                (Some(g), Some(e)) => {
                    assert_eq!(
                        (g.count, g.min, g.max, g.out_of_range),
                        (e.count, e.min, e.max, e.out_of_range)
                    );
                    assert_eq!((g.from_us, g.to_us, g.source), (e.from_us, e.to_us, e.source));
                    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
                    assert!(
                        close(g.mean, e.mean) && close(g.stddev, e.stddev),
                        "{g:?} against {e:?}"
                    );
                }
                (g, e) => assert_eq!(g, e, "an empty range has no statistics"),
            }
        }
        assert_eq!(
            sources,
            ["decoded", "rollup_1s", "rollup_10s", "rollup_10s", "rollup_10s"]
        );

        // The objects read are kept under their ETags: the same chart again
        // reads the listing only, until an object is written again.
        let day = plan(
            TimeRange::new(DAY_START_US, DAY_START_US + DAY_US).expect("range"),
            2_000,
        );
        counted.reset();
        let again = lake.reduced(&vehicle, &signal, &day).await.expect("lake");
        assert_eq!((counted.counts().gets, counted.counts().lists), (0, 1));
        let tier = dir
            .path()
            .join(format!("rollup_10s/vehicle_id={vehicle}/date=2023-11-15"));
        let last = std::fs::read_dir(&tier)
            .expect("the tier")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .max()
            .expect("an object");
        let bytes = std::fs::read(&last).expect("read");
        std::fs::remove_file(&last).expect("remove");
        std::fs::write(&last, bytes).expect("written again");
        counted.reset();
        let rewritten = lake.reduced(&vehicle, &signal, &day).await.expect("lake");
        assert_eq!(counted.counts().gets, 1, "the object written again, and it alone");
        assert_eq!(rewritten, again);

        // A page's charts asked at once of a new instance read each object once.
        let fresh = LakeReader::new(counted.clone());
        counted.reset();
        let page = futures::future::join_all((0..8).map(|_| fresh.reduced(&vehicle, &signal, &day))).await;
        let objects = std::fs::read_dir(&tier).expect("the tier").count() as u64;
        assert_eq!((counted.counts().gets, counted.counts().lists), (objects, 8));
        assert!(page.into_iter().all(|answer| answer.expect("lake") == again));
    }
}
