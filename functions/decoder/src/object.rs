//! Decoding one raw lake object into its decoded object, knowing nothing of
//! Lambda: streaming row group by row group through ranged reads, and out
//! through a multipart upload, so memory holds about one row group and one part.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use parquet::arrow::async_reader::{ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder};

use crate::ranged_reader::StoreFileReader;
use canopy::format::dbc::{Database, LoadError};
use canopy::format::lake::LakeError;
use canopy::format::lake::compact::BatchCopy;
use canopy::format::lake::decoded::{DecodedWriter, DecodedWriterOptions, OutOfRange};
use canopy::format::lake::keys::{KeyError, RawKey};
use canopy::format::lake::raw::{RawBatch, check_schema, unreadable};
use canopy::format::lake::rollup::{RollupFile, TIERS};
use canopy::format::lake::transcode::{DecodeStats, FrameDecoder};
use canopy::ports::store::{ObjectStore, StoreError, UploadSink};

/// Why an object could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeObjectError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("DBC {key}: {error}")]
    Dbc { key: String, error: LoadError },
    #[error("s3://{bucket}/{key} not decoded: {problem}")]
    Limit {
        bucket: String,
        key: String,
        problem: String,
    },
}

/// What decoding one object did.
#[derive(Debug, Clone)]
pub struct DecodeOutcome {
    pub raw_key: String,
    pub decoded_key: String,
    /// The rollup tiers' objects, finest first.
    pub rollup_keys: Vec<String>,
    /// Bytes of the rollup tiers' objects (beside `bytes_out`, the decoded object's).
    pub rollup_bytes: u64,
    pub dbc: String,
    pub stats: DecodeStats,
    pub rows: u64,
    /// Values outside their signal's DBC range (stored, and flagged in the lake), per signal.
    pub out_of_range: Vec<OutOfRange>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// How the decoder writes.
#[derive(Debug, Clone, Copy)]
pub struct DecoderOptions {
    pub writer: DecodedWriterOptions,
    /// Multipart part size; memory holds about one part.
    pub part_size: usize,
    /// Rows per record batch read from the raw object.
    pub batch_rows: usize,
    pub limits: Limits,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        Self {
            writer: DecodedWriterOptions::default(),
            part_size: 8 * 1024 * 1024,
            batch_rows: 8192,
            limits: Limits::default(),
        }
    }
}

/// What one raw object may make the decoder hold or read, checked from its
/// size and metadata before any data is read: a vehicle uploads the objects,
/// so it must not set the decoder's memory and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MAX_OBJECT_MB`: the object's size.
    pub object_bytes: u64,
    /// `MAX_FOOTER_MB`: the Parquet footer, read whole.
    pub footer_bytes: u64,
    /// `MAX_ROW_GROUP_MB`: one row group uncompressed (what a decode holds at once).
    pub row_group_bytes: u64,
    /// `MAX_DECOMPRESSED_MB`: all row groups uncompressed (what a decode reads; a
    /// compression bomb is large here and small on disk).
    pub decompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MB: u64 = 1024 * 1024;
        // The edge seals 60 s batches of ~5 MB; a day offline in one object is ~7 GB raw.
        Self {
            object_bytes: 8 * 1024 * MB,
            footer_bytes: 16 * MB,
            row_group_bytes: 256 * MB,
            decompressed_bytes: 32 * 1024 * MB,
        }
    }
}

impl Limits {
    fn check_object(&self, size: u64) -> Result<(), String> {
        if size > self.object_bytes {
            return Err(format!(
                "the object is {size} bytes, above the limit of {} (MAX_OBJECT_MB)",
                self.object_bytes
            ));
        }
        Ok(())
    }

    fn check_row_groups(&self, metadata: &parquet::file::metadata::ParquetMetaData) -> Result<(), String> {
        let mut total: u64 = 0;
        for (i, group) in metadata.row_groups().iter().enumerate() {
            let bytes = u64::try_from(group.total_byte_size()).unwrap_or(u64::MAX);
            if bytes > self.row_group_bytes {
                return Err(format!(
                    "row group {i} is {bytes} bytes uncompressed, above the limit of {} (MAX_ROW_GROUP_MB)",
                    self.row_group_bytes
                ));
            }
            total = total.saturating_add(bytes);
        }
        if total > self.decompressed_bytes {
            return Err(format!(
                "its row groups are {total} bytes uncompressed, above the limit of {} (MAX_DECOMPRESSED_MB)",
                self.decompressed_bytes
            ));
        }
        Ok(())
    }
}

/// The frames of `raw` lie on the date `key` names, as the edge writes them
/// (one object per UTC date): a frame of another day would land in the
/// wrong partition, where no query of its day finds it.
fn check_date(raw: &RawBatch, key: &RawKey) -> Result<(), String> {
    let Some((first, last)) = raw.ts_range() else {
        return Ok(());
    };
    let day_start = key
        .date
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or_default();
    let day_end = day_start + 86_400_000_000;
    for ts in [first, last] {
        if !(day_start..day_end).contains(&ts) {
            let at = chrono::DateTime::from_timestamp_micros(ts).map_or_else(
                || ts.to_string(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            );
            return Err(format!(
                "a frame at {at} lies outside the date {} its key names (one object per UTC date)",
                key.date
            ));
        }
    }
    Ok(())
}

/// Decodes the raw object `raw_key` (URL-decoded) into its decoded object
/// and its rollup tiers' objects. The output keys follow from the input key,
/// so doing it twice writes the same objects twice.
pub async fn decode_object<S: ObjectStore + Clone + Unpin + 'static>(
    store: &S,
    db: &Database,
    dbc_name: &str,
    raw_key: &str,
    options: DecoderOptions,
) -> Result<DecodeOutcome, DecodeObjectError> {
    let key = RawKey::parse(raw_key)?;
    let decoded_key = key.decoded_key();
    let info = store.head(raw_key).await?;
    let source = Source {
        name: Arc::from(format!("s3://{}/{raw_key}", store.bucket())),
        bucket: store.bucket(),
        key: raw_key,
    };
    options.limits.check_object(info.size).map_err(|p| source.limit(p))?;
    let mut batches = open_raw(store, &source, info.size, &options).await?;

    let writer_options = DecodedWriterOptions {
        rollups: true,
        ..options.writer
    };
    let copy = BatchCopy::new(&key.stem(), chrono::Utc::now().timestamp_micros());
    let mut writer = DecodedWriter::new(db, Vec::new(), &decoded_key, &copy, writer_options)?;
    let rollup_keys: Vec<String> = TIERS.iter().map(|t| key.rollup_key(t)).collect();
    let mut uploads = Uploads::new(store, &decoded_key, &rollup_keys, options.part_size);
    let mut decoder = FrameDecoder::new(db);
    let streamed = stream(&mut batches, &key, &source, &mut decoder, &mut writer, &mut uploads).await;
    decoder.finish();
    let (rest, file, rollups) = match streamed.and_then(|()| Ok(writer.finish_with_rollups()?)) {
        Ok(done) => done,
        Err(e) => {
            uploads.abort().await;
            return Err(e);
        }
    };
    let (bytes_out, rollup_bytes) = uploads.finish(rest, rollups).await?;
    Ok(DecodeOutcome {
        raw_key: raw_key.to_string(),
        decoded_key,
        rollup_keys,
        rollup_bytes,
        dbc: dbc_name.to_string(),
        stats: decoder.stats,
        rows: file.rows,
        out_of_range: file.out_of_range,
        bytes_in: info.size,
        bytes_out,
    })
}

/// The raw object being decoded, as its errors name it.
struct Source<'a> {
    /// `s3://<bucket>/<key>`.
    name: Arc<str>,
    bucket: &'a str,
    key: &'a str,
}

impl Source<'_> {
    fn parquet_error(&self, e: parquet::errors::ParquetError) -> LakeError {
        LakeError::Parquet {
            source_name: self.name.to_string(),
            error: e.to_string(),
        }
    }

    /// The Parquet reader panics on some malformed files (see `contain_panics`):
    /// that is this object's error, not the end of the batch's other objects.
    fn panicked(&self, panic: Box<dyn std::any::Any + Send>) -> LakeError {
        unreadable(&self.name, panic)
    }

    fn limit(&self, problem: String) -> DecodeObjectError {
        DecodeObjectError::Limit {
            bucket: self.bucket.to_string(),
            key: self.key.to_string(),
            problem,
        }
    }
}

/// The raw object's record batches, read through ranged reads once its
/// footer, row groups and schema pass the limits and the raw schema.
async fn open_raw<S: ObjectStore + Clone + Unpin + 'static>(
    store: &S,
    source: &Source<'_>,
    size: u64,
    options: &DecoderOptions,
) -> Result<ParquetRecordBatchStream<StoreFileReader<S>>, DecodeObjectError> {
    let reader = StoreFileReader::new(store.clone(), source.key, size).with_max_footer(options.limits.footer_bytes);
    let builder = AssertUnwindSafe(ParquetRecordBatchStreamBuilder::new(reader))
        .catch_unwind()
        .await
        .map_err(|panic| source.panicked(panic))?
        .map_err(|e| source.parquet_error(e))?;
    (options.limits)
        .check_row_groups(builder.metadata())
        .map_err(|p| source.limit(p))?;
    check_schema(builder.schema(), &source.name)?;
    let batches = builder
        .with_batch_size(options.batch_rows)
        .build()
        .map_err(|e| source.parquet_error(e))?;
    Ok(batches)
}

/// Decodes the raw batches into the writer, batch by batch, and streams what
/// it has written out to the uploads.
async fn stream<S: ObjectStore + Clone + Unpin + 'static>(
    batches: &mut ParquetRecordBatchStream<StoreFileReader<S>>,
    key: &RawKey,
    source: &Source<'_>,
    decoder: &mut FrameDecoder<'_>,
    writer: &mut DecodedWriter<Vec<u8>>,
    uploads: &mut Uploads<'_, S>,
) -> Result<(), DecodeObjectError> {
    let mut next_row = 0u64;
    while let Some(batch) = AssertUnwindSafe(batches.next())
        .catch_unwind()
        .await
        .map_err(|panic| source.panicked(panic))?
    {
        let batch = batch.map_err(|e| source.parquet_error(e))?;
        let raw = RawBatch::try_new(&batch, next_row, &source.name)?;
        check_date(&raw, key).map_err(|p| source.limit(p))?;
        next_row += raw.len() as u64;
        decoder.decode_batch(&raw, writer)?;
        uploads.decoded.write(writer.sink_mut()).await?;
        for ((_, bytes), tier) in writer.rollup_sinks_mut().zip(&mut uploads.tiers) {
            tier.write(bytes).await?;
        }
    }
    Ok(())
}

/// The multipart uploads of the decoded object and of each tier's: each
/// streams out as it is written, so memory holds about one sort window of any.
struct Uploads<'s, S: ObjectStore> {
    decoded: UploadSink<'s, S>,
    /// By tier, finest first.
    tiers: Vec<UploadSink<'s, S>>,
}

impl<'s, S: ObjectStore> Uploads<'s, S> {
    fn new(store: &'s S, decoded_key: &str, rollup_keys: &[String], part_size: usize) -> Self {
        Self {
            decoded: UploadSink::new(store, decoded_key, part_size),
            tiers: (rollup_keys.iter())
                .map(|k| UploadSink::new(store, k, part_size))
                .collect(),
        }
    }

    async fn abort(self) {
        self.decoded.abort().await;
        for tier in self.tiers {
            tier.abort().await;
        }
    }

    /// Writes the rest of each object and completes its upload; the decoded
    /// object's bytes and the tiers' together.
    async fn finish(mut self, mut rest: Vec<u8>, rollups: Vec<RollupFile>) -> Result<(u64, u64), StoreError> {
        self.decoded.write(&mut rest).await?;
        let bytes_out = self.decoded.finish().await?;
        // After the decoded object: a reader that finds a tier's object finds its source too.
        let mut rollup_bytes = 0;
        for (mut rollup, mut tier) in rollups.into_iter().zip(self.tiers) {
            tier.write(&mut rollup.bytes).await?;
            rollup_bytes += tier.finish().await?;
        }
        Ok((bytes_out, rollup_bytes))
    }
}
