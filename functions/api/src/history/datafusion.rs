//! [`History`] on DataFusion: Athena's part on the local stack. The same SQL
//! text runs over the same Parquet objects (decoded and the rollup tiers), read through the S3 endpoint (moto) or
//! from a folder laid out like the bucket. The tables are Hive-partitioned
//! listings, so a per-vehicle query lists only that vehicle's dates and
//! row-group statistics skip the other signals.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

use crate::history::devices::{device_points_sql, device_table};
use crate::history::plan::{BucketRow, Kind, Plan, Reduced, SERIES_COLUMNS, reduce, series_sql};
use crate::history::trips::{TRIP_COLUMNS, TripRow, trips_sql};
use crate::history::{FleetStat, History, HistoryError, Param, SignalRef, Sql, TimeRange, fleet_stat, fleet_stats_sql};
use canopy::domain::device_id::DeviceId;
use canopy::domain::lttb::Point;
use canopy::format::lake::archive::archive_schema;
use canopy::format::lake::decoded::decoded_schema;
use canopy::format::lake::rollup::{TIERS, rollup_schema};

fn failed(message: impl ToString) -> HistoryError {
    HistoryError::Failed {
        query_id: "(local)".into(),
        message: message.to_string(),
    }
}

#[derive(Clone)]
pub struct DataFusionHistory {
    ctx: SessionContext,
}

impl DataFusionHistory {
    /// Over a folder holding `decoded/` and `telemetry/` as the bucket does.
    pub async fn local(root: &Path) -> Result<Self, HistoryError> {
        let root = std::fs::canonicalize(root).map_err(|e| failed(format!("{}: {e}", root.display())))?;
        Self::with_base(&format!("file://{}/", root.display()), None).await
    }

    /// Over a bucket of an S3-compatible endpoint (moto on loopback), with
    /// the local stack's fixed credentials.
    pub async fn s3(endpoint: &str, bucket: &str) -> Result<Self, HistoryError> {
        let store = super::stores::local_s3(endpoint, bucket).map_err(failed)?;
        let base = format!("s3://{bucket}/");
        Self::with_base(&base, Some(Arc::new(store))).await
    }

    /// Over `store` laid out as the bucket is: a store in front of another
    /// (a latency model over local files, as `make bench-api` runs it).
    pub async fn over(store: Arc<dyn object_store::ObjectStore>) -> Result<Self, HistoryError> {
        Self::with_base("s3://lake/", Some(store)).await
    }

    async fn with_base(base: &str, store: Option<Arc<dyn object_store::ObjectStore>>) -> Result<Self, HistoryError> {
        // A chart reads dozens of small tier objects: four file groups and no
        // row-filter pushdown (whose per-file setup outweighs what it skips)
        // took a compacted day's chart from 55 to 43 ms at p95 (`make bench-api`).
        let config = SessionConfig::new()
            .with_target_partitions(4)
            .set_bool("datafusion.execution.parquet.pushdown_filters", false);
        let config = with_env_overrides(config)?;
        let ctx = SessionContext::new_with_config(config);
        if let Some(store) = store {
            let url = url::Url::parse(base).map_err(failed)?;
            ctx.register_object_store(&url, store);
        }
        let history = Self { ctx };
        history
            .register(
                "decoded",
                decoded_schema(),
                &format!("{base}decoded/"),
                &["vehicle_id", "date"],
            )
            .await?;
        for tier in TIERS {
            history
                .register(
                    tier.table,
                    rollup_schema(),
                    &format!("{base}{}", tier.prefix),
                    &["vehicle_id", "date"],
                )
                .await?;
        }
        history
            .register("telemetry", archive_schema(), &format!("{base}telemetry/"), &["date"])
            .await?;
        for kind in canopy::domain::kind::Kinds::builtin().iter() {
            let prefix = canopy::format::lake::devices::kind_prefix(&kind.name);
            history
                .register(
                    &device_table(kind),
                    canopy::format::lake::devices::schema(kind),
                    &format!("{base}{prefix}/"),
                    &["date"],
                )
                .await?;
        }
        Ok(history)
    }

    async fn register(
        &self,
        name: &str,
        schema: SchemaRef,
        url: &str,
        partitions: &[&str],
    ) -> Result<(), HistoryError> {
        let url = ListingTableUrl::parse(url).map_err(failed)?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partitions.iter().map(|p| (p.to_string(), DataType::Utf8)).collect());
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        let table = ListingTable::try_new(config).map_err(failed)?;
        self.ctx.register_table(name, Arc::new(table)).map_err(failed)?;
        Ok(())
    }

    /// Runs `sql` (with `?` placeholders) and collects its batches.
    pub async fn run(&self, sql: &Sql) -> Result<Vec<RecordBatch>, HistoryError> {
        let mut text = String::with_capacity(sql.text.len() + 8);
        let mut n = 0;
        for c in sql.text.chars() {
            if c == '?' {
                n += 1;
                text.push_str(&format!("${n}"));
            } else {
                text.push(c);
            }
        }
        let values: Vec<ScalarValue> = sql
            .params
            .iter()
            .map(|p| match p {
                Param::Str(s) => ScalarValue::Utf8(Some(s.clone())),
                Param::Int(i) => ScalarValue::Int64(Some(*i)),
            })
            .collect();
        let frame = self.ctx.sql(&text).await.map_err(failed)?;
        let frame = frame.with_param_values(values).map_err(failed)?;
        frame.collect().await.map_err(failed)
    }
}

/// DataFusion's own variables (`DATAFUSION_EXECUTION_TARGET_PARTITIONS` for
/// `datafusion.execution.target_partitions`, and so on) over these defaults,
/// to tune the local backend or a bench without a build.
fn with_env_overrides(mut config: SessionConfig) -> Result<SessionConfig, HistoryError> {
    let keys: Vec<String> = config.options().entries().into_iter().map(|e| e.key).collect();
    for key in keys {
        if let Ok(value) = std::env::var(key.to_uppercase().replace('.', "_")) {
            config
                .options_mut()
                .set(&key, &value)
                .map_err(|e| failed(format!("{key}: {e}")))?;
        }
    }
    Ok(config)
}

fn column(batch: &RecordBatch, i: usize, to: &DataType) -> Result<Arc<dyn Array>, HistoryError> {
    cast(batch.column(i), to).map_err(failed)
}

/// An answer's rows from DataFusion's batches: `row` builds one from its
/// cells, read as `kinds` lists the columns.
fn typed_rows<T>(
    batches: &[RecordBatch],
    kinds: &[(&str, Kind)],
    row: impl Fn(
        &dyn Fn(usize) -> Result<i64, HistoryError>,
        &dyn Fn(usize) -> Result<f64, HistoryError>,
    ) -> Result<T, HistoryError>,
) -> Result<Vec<T>, HistoryError> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<Arc<dyn Array>> = kinds
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| match kind {
                Kind::Int => column(batch, i, &DataType::Int64),
                Kind::Float => column(batch, i, &DataType::Float64),
            })
            .collect::<Result<_, _>>()?;
        for r in 0..batch.num_rows() {
            let int = |i: usize| Ok(columns[i].as_primitive::<Int64Type>().value(r));
            let float = |i: usize| Ok(columns[i].as_primitive::<Float64Type>().value(r));
            rows.push(row(&int, &float)?);
        }
    }
    Ok(rows)
}

/// A [`series_sql`] answer's rows, from DataFusion's batches.
pub fn bucket_rows(batches: &[RecordBatch]) -> Result<Vec<BucketRow>, HistoryError> {
    typed_rows(batches, &SERIES_COLUMNS, |int, float| BucketRow::from_cells(int, float))
}

impl History for DataFusionHistory {
    async fn reduced(&self, vehicle: &DeviceId, signal: &SignalRef, plan: &Plan) -> Result<Reduced, HistoryError> {
        let batches = self.run(&series_sql(plan, vehicle, signal)).await?;
        Ok(reduce(plan, &bucket_rows(&batches)?))
    }

    async fn fleet_stats(&self, date: NaiveDate) -> Result<Vec<FleetStat>, HistoryError> {
        let batches = self.run(&fleet_stats_sql("telemetry", date)).await?;
        let mut stats = Vec::new();
        for batch in &batches {
            let vehicles = column(batch, 0, &DataType::Utf8)?;
            let vehicles = vehicles.as_string::<i32>();
            let hours = column(batch, 1, &DataType::Int64)?;
            let counts = column(batch, 2, &DataType::Int64)?;
            let measures: Vec<Arc<dyn Array>> = (3..13)
                .map(|i| column(batch, i, &DataType::Float64))
                .collect::<Result<_, _>>()?;
            for row in 0..batch.num_rows() {
                let mut v = [0.0; 10];
                for (slot, m) in v.iter_mut().zip(&measures) {
                    *slot = m.as_primitive::<Float64Type>().value(row);
                }
                stats.push(fleet_stat(
                    vehicles.value(row).to_string(),
                    hours.as_primitive::<Int64Type>().value(row),
                    counts.as_primitive::<Int64Type>().value(row) as u64,
                    v,
                ));
            }
        }
        Ok(stats)
    }

    async fn trips(&self, vehicle: &DeviceId, range: TimeRange, gap_us: i64) -> Result<Vec<TripRow>, HistoryError> {
        let batches = self.run(&trips_sql("telemetry", vehicle, range, gap_us)).await?;
        typed_rows(&batches, &TRIP_COLUMNS, |int, float| TripRow::from_cells(int, float))
    }

    async fn device_points(
        &self,
        kind: &canopy::domain::kind::Kind,
        id: &DeviceId,
        field: &str,
        range: TimeRange,
    ) -> Result<Vec<Point>, HistoryError> {
        let batches = self.run(&device_points_sql(kind, field, id, range)).await?;
        let columns = [("ts_us", Kind::Int), ("value", Kind::Float)];
        typed_rows(&batches, &columns, |int, float| {
            Ok(Point {
                ts_us: int(0)?,
                value: float(1)?,
            })
        })
    }
}
