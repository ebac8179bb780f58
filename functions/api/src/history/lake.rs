//! A chart's question answered by reading the lake's objects directly from
//! the object store (S3 in AWS, moto's S3 or a folder locally), with no
//! query engine between: the answer [`super::plan::series_sql`] gives, computed
//! in the function.
//!
//! Why: over S3's latency an engine that reads each column chunk of each
//! object as its own request waits for hundreds of them (`make bench-api`,
//! docs/history-engine.md). The tier objects a chart reads are small (a
//! vehicle-day of the 10 s tier is about 1 MB), so this reader lists each
//! date's partition (one request per date, all at once) and reads each
//! object whole (one GET each, all at once): two rounds of requests, at any
//! number of objects. An object read once is kept by the instance under its
//! ETag, decoded, so the next chart of it (the console's next poll, the
//! page's other charts) reads only the listings and decodes nothing.
//!
//! The answer is the SQL's, row for row: the rows of the vehicle, signal
//! and range; each batch from its newest copy (compaction may have copied
//! it); per output bucket the rows of its first, last, lowest and highest
//! points; the range's statistics merged with Chan's formula.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use bytes::Bytes;
use chrono::NaiveDate;
use futures::TryStreamExt;
use futures::future::{BoxFuture, FutureExt, Shared, try_join_all};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kind;
use canopy::domain::lttb::Point;
use canopy::format::lake::rollup::Agg;

use super::plan::{BucketRow, Plan, Reduced, Source, reduce};
use super::{FleetStat, History, HistoryError, SignalRef, TimeRange, TripRow};

pub(super) fn failed(message: impl ToString) -> HistoryError {
    HistoryError::Failed {
        query_id: "(lake)".into(),
        message: message.to_string(),
    }
}

/// Reads charts from the lake's objects in `store` (laid out as the bucket
/// is), keeping the objects it read for the next answers of this instance.
#[derive(Clone)]
pub struct LakeReader {
    store: Arc<dyn ObjectStore>,
    kept: Arc<Mutex<Kept>>,
}

/// Bytes of decoded objects an instance keeps (of the API function's 512 MB).
const KEPT_BYTES: usize = 64 * 1024 * 1024;

/// Objects read, decoded, by key and ETag: an object of the lake never
/// changes under its ETag (a rewrite, by a retried upload or compaction, is
/// another ETag), so a listing that shows the same ETag lets the next chart
/// skip the GET and the decoding.
#[derive(Default)]
struct Kept {
    objects: HashMap<(Path, String), Object>,
    /// Reads under way: charts asked at once (a page's) wait for the same GET.
    reading: HashMap<(Path, String), Reading>,
    /// Oldest first, to let go of when over [`KEPT_BYTES`].
    order: std::collections::VecDeque<(Path, String)>,
    bytes: usize,
}

impl Kept {
    fn get(&self, key: &(Path, String)) -> Option<Object> {
        self.objects.get(key).cloned()
    }

    fn keep(&mut self, key: (Path, String), object: Object) {
        let size = object.bytes;
        if size > KEPT_BYTES / 4 || self.objects.contains_key(&key) {
            return;
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.objects.insert(key, object);
        while self.bytes > KEPT_BYTES {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(gone) = self.objects.remove(&oldest) {
                self.bytes -= gone.bytes;
            }
        }
    }
}

/// An object of the lake as read: its record batches, and their size in memory.
#[derive(Debug)]
pub(super) struct Decoded {
    pub(super) batches: Vec<RecordBatch>,
    bytes: usize,
}

pub(super) type Object = Arc<Decoded>;

/// An object's bytes, decoded.
fn decode(body: Bytes) -> Result<Object, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(body)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    Ok(Arc::new(Decoded { batches, bytes }))
}

/// A GET (and its decoding) under way, for everyone who waits for that object.
type Reading = Shared<BoxFuture<'static, Result<Object, String>>>;

/// One rollup row (a decoded value is a row of one), and which copy of which batch it is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    ts_us: i64,
    agg: Agg,
    /// The batch, interned per answer; `None` for objects from before batches were named.
    batch: Option<usize>,
    /// When this copy was written; 0 where the object does not say.
    written_us: i64,
}

impl LakeReader {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            kept: Arc::default(),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An object, decoded: kept from an earlier answer under the same ETag,
    /// or read once for every answer that asks for it meanwhile (and kept).
    pub(super) async fn object(&self, meta: &ObjectMeta) -> Result<Object, HistoryError> {
        let read = {
            let (store, path) = (self.store.clone(), meta.location.clone());
            async move {
                let body = async { store.get(&path).await?.bytes().await }
                    .await
                    .map_err(|e| e.to_string())?;
                decode(body).map_err(|e| format!("{path}: {e}"))
            }
        };
        let Some(tag) = meta.e_tag.clone() else {
            return read.await.map_err(failed);
        };
        let key = (meta.location.clone(), tag);
        let reading = {
            let mut kept = self.kept();
            if let Some(object) = kept.get(&key) {
                return Ok(object);
            }
            (kept.reading.entry(key.clone()))
                .or_insert_with(|| read.boxed().shared())
                .clone()
        };
        let object = reading.await;
        let mut kept = self.kept();
        kept.reading.remove(&key);
        let object = object.map_err(failed)?;
        kept.keep(key, object.clone());
        Ok(object)
    }

    /// Over the lake's `bucket` as deployed: the function's region and
    /// credentials from its environment, as the AWS SDK finds them.
    pub fn from_env(bucket: &str) -> Result<Self, HistoryError> {
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(failed)?;
        Ok(Self::new(Arc::new(store)))
    }

    /// Over `bucket` of an S3-compatible endpoint (moto on loopback), with
    /// the local stack's fixed credentials.
    pub fn at_endpoint(endpoint: &str, bucket: &str) -> Result<Self, HistoryError> {
        let store = super::stores::local_s3(endpoint, bucket).map_err(failed)?;
        Ok(Self::new(Arc::new(store)))
    }

    /// The rows [`plan::series_sql`](super::plan::series_sql) reduces, reduced as it does.
    pub async fn reduced(&self, vehicle: &DeviceId, signal: &SignalRef, plan: &Plan) -> Result<Reduced, HistoryError> {
        let objects = self.objects(plan, vehicle).await?;
        let decoded = try_join_all(objects.iter().map(|meta| self.object(meta))).await?;
        let mut batches = Batches::default();
        let mut rows = Vec::new();
        for (meta, object) in objects.iter().zip(decoded) {
            read_rows(plan, signal, &object.batches, &mut batches, &mut rows)
                .map_err(|e| failed(format!("{}: {e}", meta.location)))?;
        }
        Ok(reduce(plan, &bucket_rows(plan, newest_copies(rows))))
    }

    /// The objects of the plan's source for `vehicle` on each date the range
    /// touches: one listing per date, all at once.
    async fn objects(&self, plan: &Plan, vehicle: &DeviceId) -> Result<Vec<ObjectMeta>, HistoryError> {
        let (first, last) = plan.range.dates();
        let dates: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
        let prefixes: Vec<String> = dates
            .iter()
            .map(|date| {
                format!(
                    "{}vehicle_id={vehicle}/date={}",
                    plan.source.prefix(),
                    date.format("%Y-%m-%d")
                )
            })
            .collect();
        self.listed(&prefixes).await
    }

    /// The Parquet objects under each of `prefixes`: one listing each, all at once.
    pub(super) async fn listed(&self, prefixes: &[String]) -> Result<Vec<ObjectMeta>, HistoryError> {
        let listings = try_join_all(prefixes.iter().map(|prefix| {
            let prefix = Path::from(prefix.as_str());
            async move {
                let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(failed)?;
                Ok::<_, HistoryError>(listed)
            }
        }))
        .await?;
        Ok(listings
            .into_iter()
            .flatten()
            .filter(|meta| meta.location.as_ref().ends_with(".parquet"))
            .collect())
    }
}

/// The raw lake's objects, read whole and not kept (an export reads each once).
impl crate::raw::RawReads for LakeReader {
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, HistoryError>> {
        Box::pin(async move {
            let prefix = Path::from(prefix);
            let listed: Vec<ObjectMeta> = self.store.list(Some(&prefix)).try_collect().await.map_err(failed)?;
            Ok(listed.into_iter().map(|meta| meta.location.to_string()).collect())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, HistoryError>> {
        Box::pin(async move {
            let path = Path::from(key);
            let object = self.store.get(&path).await.map_err(failed)?;
            object.bytes().await.map_err(|e| failed(format!("{key}: {e}")))
        })
    }
}

/// A [`History`] whose charts, trips and fleet statistics come from the
/// lake's objects ([`LakeReader`]) and whose other question (devices'
/// fields) goes to `rest`, the engine that answered it before.
#[derive(Clone)]
pub struct LakeHistory<H> {
    pub lake: LakeReader,
    pub rest: H,
}

impl<H: History> History for LakeHistory<H> {
    fn reduced(
        &self,
        vehicle: &DeviceId,
        signal: &SignalRef,
        plan: &Plan,
    ) -> impl Future<Output = Result<Reduced, HistoryError>> + Send {
        self.lake.reduced(vehicle, signal, plan)
    }

    fn fleet_stats(&self, date: NaiveDate) -> impl Future<Output = Result<Vec<FleetStat>, HistoryError>> + Send {
        self.lake.fleet_stats(date)
    }

    fn trips(
        &self,
        vehicle: &DeviceId,
        range: TimeRange,
        gap_us: i64,
    ) -> impl Future<Output = Result<Vec<TripRow>, HistoryError>> + Send {
        self.lake.trips(vehicle, range, gap_us)
    }

    fn device_points(
        &self,
        kind: &Kind,
        id: &DeviceId,
        field: &str,
        range: TimeRange,
    ) -> impl Future<Output = Result<Vec<Point>, HistoryError>> + Send {
        self.rest.device_points(kind, id, field, range)
    }

    fn cancel(&self, query_ids: &[String]) -> impl Future<Output = ()> + Send {
        self.rest.cancel(query_ids)
    }
}

/// Batch names seen in one answer, numbered.
#[derive(Default)]
struct Batches(HashMap<String, usize>);

impl Batches {
    fn id(&mut self, name: &str) -> usize {
        let next = self.0.len();
        *self.0.entry(name.to_string()).or_insert(next)
    }
}

/// The rows of one object that belong to the answer: its signal's, in the plan's range.
fn read_rows(
    plan: &Plan,
    signal: &SignalRef,
    object: &[RecordBatch],
    batches: &mut Batches,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    for batch in object {
        let columns = Columns::of(batch, plan.source)?;
        let message = matching(&columns.message, &signal.message_name);
        let name = matching(&columns.signal, &signal.signal_name);
        for i in 0..batch.num_rows() {
            let ts_us = columns.int("ts_us", i)?;
            if !message(i) || !name(i) || ts_us < plan.range.from_us || ts_us >= plan.range.to_us {
                continue;
            }
            let mut row = columns.row(i, ts_us)?;
            row.batch = columns.batch(i).map(|b| batches.id(b));
            rows.push(row);
        }
    }
    Ok(())
}

/// A dictionary column's rows equal to `value`, by key (the lake writes
/// `message`, `signal` and `batch` as dictionaries).
fn matching(column: &ArrayRef, value: &str) -> impl Fn(usize) -> bool {
    let (keys, wanted): (Vec<Option<i32>>, Vec<bool>) = match column.as_dictionary_opt::<Int32Type>() {
        Some(dict) => {
            let values = dict.values().as_string::<i32>();
            (
                dict.keys().iter().collect(),
                (0..values.len())
                    .map(|k| values.is_valid(k) && values.value(k) == value)
                    .collect(),
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    move |i| {
        keys.get(i)
            .copied()
            .flatten()
            .and_then(|k| wanted.get(usize::try_from(k).ok()?).copied())
            .unwrap_or(false)
    }
}

/// One record batch's columns, by what the source calls them.
struct Columns<'a> {
    batch: &'a RecordBatch,
    source: Source,
    message: ArrayRef,
    signal: ArrayRef,
}

impl<'a> Columns<'a> {
    fn of(batch: &'a RecordBatch, source: Source) -> Result<Self, String> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| format!("no column {name}"))
        };
        Ok(Self {
            batch,
            source,
            message: column("message")?,
            signal: column("signal")?,
        })
    }

    fn int(&self, name: &str, i: usize) -> Result<i64, String> {
        self.int_opt(name, i)?.ok_or_else(|| format!("{name} is null"))
    }

    /// Null, or a column the object predates, reads as none.
    fn int_opt(&self, name: &str, i: usize) -> Result<Option<i64>, String> {
        let Some(column) = self.batch.column_by_name(name) else {
            return Ok(None);
        };
        let ints = column
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| format!("{name} is not a 64-bit integer"))?;
        Ok(ints.is_valid(i).then(|| ints.value(i)))
    }

    fn float(&self, name: &str, i: usize) -> Result<f64, String> {
        let column = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column {name}"))?;
        let floats = column
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| format!("{name} is not a double"))?;
        Ok(floats.value(i))
    }

    fn batch(&self, i: usize) -> Option<&'a str> {
        let dict = self.batch.column_by_name("batch")?.as_dictionary_opt::<Int32Type>()?;
        if !dict.is_valid(i) {
            return None;
        }
        let key = usize::try_from(dict.keys().value(i)).ok()?;
        Some(dict.values().as_string_opt::<i32>()?.value(key))
    }

    /// Row `i` as a rollup row (a decoded value: a bucket of one).
    fn row(&self, i: usize, ts_us: i64) -> Result<Row, String> {
        let count = |n: i64| u64::try_from(n).map_err(|_| format!("a count of {n}"));
        let agg = match self.source {
            Source::Decoded => {
                let out = self
                    .batch
                    .column_by_name("out_of_range")
                    .and_then(|c| c.as_boolean_opt().map(|b| b.is_valid(i) && b.value(i)))
                    .unwrap_or(false);
                Agg {
                    n_out_of_range: u64::from(out),
                    ..Agg::of(ts_us, self.float("value", i)?)
                }
            }
            Source::Tier(_) => Agg {
                n: count(self.int("n", i)?)?,
                v_min: self.float("v_min", i)?,
                t_min: self.int("t_min", i)?,
                v_max: self.float("v_max", i)?,
                t_max: self.int("t_max", i)?,
                t_first: self.int("t_first", i)?,
                v_first: self.float("v_first", i)?,
                t_last: self.int("t_last", i)?,
                v_last: self.float("v_last", i)?,
                v_sum: self.float("v_sum", i)?,
                v_m2: self.float("v_m2", i)?,
                n_out_of_range: count(self.int_opt("n_out_of_range", i)?.unwrap_or(0))?,
            },
        };
        Ok(Row {
            ts_us,
            agg,
            batch: None,
            written_us: self.int_opt("written_us", i)?.unwrap_or(0),
        })
    }
}

/// Each batch's rows from its newest copy only.
fn newest_copies(mut rows: Vec<Row>) -> Vec<Row> {
    let mut newest: HashMap<Option<usize>, i64> = HashMap::new();
    for row in &rows {
        let n = newest.entry(row.batch).or_insert(row.written_us);
        *n = (*n).max(row.written_us);
    }
    rows.retain(|row| newest.get(&row.batch) == Some(&row.written_us));
    rows
}

/// The rows holding each output bucket's first, last, lowest and highest
/// point, flagged, with the statistics of every row: the SQL's answer.
fn bucket_rows(plan: &Plan, rows: Vec<Row>) -> Vec<BucketRow> {
    if rows.is_empty() {
        return Vec::new();
    }
    let n_all: u64 = rows.iter().map(|r| r.agg.n).sum();
    let mean_all = rows.iter().map(|r| r.agg.v_sum).sum::<f64>() / n_all as f64;
    let m2_all: f64 = rows
        .iter()
        .map(|r| {
            let d = r.agg.v_sum / r.agg.n as f64 - mean_all;
            r.agg.v_m2 + r.agg.n as f64 * d * d
        })
        .sum();
    let min_all = rows.iter().map(|r| r.agg.v_min).fold(f64::INFINITY, f64::min);
    let max_all = rows.iter().map(|r| r.agg.v_max).fold(f64::NEG_INFINITY, f64::max);
    let oor_all: u64 = rows.iter().map(|r| r.agg.n_out_of_range).sum();

    let mut buckets: std::collections::BTreeMap<i64, Vec<&Agg>> = std::collections::BTreeMap::new();
    for row in &rows {
        buckets
            .entry((row.ts_us - plan.range.from_us) / plan.bucket_us)
            .or_default()
            .push(&row.agg);
    }
    let mut out = Vec::new();
    for members in buckets.values() {
        let pick = |better: &dyn Fn(&Agg, &Agg) -> bool| -> usize {
            (1..members.len()).fold(0, |best, i| if better(members[i], members[best]) { i } else { best })
        };
        let first = pick(&|a, b| a.t_first < b.t_first);
        let last = pick(&|a, b| a.t_last > b.t_last);
        let min = pick(&|a, b| (a.v_min, a.t_min) < (b.v_min, b.t_min));
        let max = pick(&|a, b| a.v_max > b.v_max || (a.v_max == b.v_max && a.t_max < b.t_max));
        let mut chosen = vec![first, last, min, max];
        chosen.sort_unstable();
        chosen.dedup();
        for i in chosen {
            let r = members[i];
            let point = |ts_us, value| Point { ts_us, value };
            out.push(BucketRow {
                is: [i == first, i == last, i == min, i == max],
                first: point(r.t_first, r.v_first),
                last: point(r.t_last, r.v_last),
                min: point(r.t_min, r.v_min),
                max: point(r.t_max, r.v_max),
                n_all,
                min_all,
                max_all,
                mean_all,
                m2_all,
                oor_all,
            });
        }
    }
    out
}
