//! The decoder's work, knowing nothing of Lambda: a raw object of the lake in,
//! its decoded object out, streaming row group by row group, with the DBC of
//! the object's vehicle from the bucket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use crate::dbc::{Database, LoadError};
use crate::lake::LakeError;
use crate::lake::decode::{DecodeStats, FrameDecoder};
use crate::lake::decoded::{DecodedWriter, DecodedWriterOptions};
use crate::lake::keys::{DBC_PREFIX, KeyError, RawKey};
use crate::lake::raw::{RawBatch, check_schema};
use crate::lake::remote::StoreFileReader;
use crate::store::{ObjectStore, StoreError, UploadSink};
use crate::vehicle::VehicleId;

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
}

/// What decoding one object did.
#[derive(Debug, Clone)]
pub struct DecodeOutcome {
    pub raw_key: String,
    pub decoded_key: String,
    pub dbc: String,
    pub stats: DecodeStats,
    pub rows: u64,
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
}

impl Default for DecoderOptions {
    fn default() -> Self {
        Self {
            writer: DecodedWriterOptions::default(),
            part_size: 8 * 1024 * 1024,
            batch_rows: 8192,
        }
    }
}

/// Decodes the raw object `raw_key` (URL-decoded) into its decoded object.
/// The output key follows from the input key, so doing it twice writes the
/// same object twice.
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
    let source: Arc<str> = Arc::from(format!("s3://{}/{raw_key}", store.bucket()));
    let parquet_error = |e: parquet::errors::ParquetError| LakeError::Parquet {
        source_name: source.to_string(),
        error: e.to_string(),
    };

    let reader = StoreFileReader::new(store.clone(), raw_key, info.size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(parquet_error)?;
    check_schema(builder.schema(), &source)?;
    let mut batches = builder
        .with_batch_size(options.batch_rows)
        .build()
        .map_err(parquet_error)?;

    let mut writer = DecodedWriter::new(db, Vec::new(), &decoded_key, options.writer)?;
    let mut sink = UploadSink::new(store, &decoded_key, options.part_size);
    let mut decoder = FrameDecoder::new(db);
    let mut next_row = 0u64;
    let result: Result<(), DecodeObjectError> = async {
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(parquet_error)?;
            let raw = RawBatch::try_new(&batch, next_row, &source)?;
            next_row += raw.len() as u64;
            decoder.decode_batch(&raw, &mut writer)?;
            sink.write(writer.sink_mut()).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        sink.abort().await;
        return Err(e);
    }
    let (mut rest, file) = writer.finish()?;
    sink.write(&mut rest).await?;
    let bytes_out = sink.finish().await?;
    Ok(DecodeOutcome {
        raw_key: raw_key.to_string(),
        decoded_key,
        dbc: dbc_name.to_string(),
        stats: decoder.stats,
        rows: file.rows,
        bytes_in: info.size,
        bytes_out,
    })
}

/// The DBC that applies to each vehicle: `dbc/vehicles/<vehicle id>.dbc` when
/// the bucket has one, else the default key, else the DBC compiled into the
/// binary. Compiled databases are kept across invocations and fetched again
/// when their ETag changes (checked at most every `refresh`).
pub struct DbcCache<S> {
    store: S,
    default_key: String,
    fallback: (String, Arc<Database>),
    refresh: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone)]
enum Cached {
    Present { etag: String, db: Arc<Database> },
    Missing,
}

#[derive(Clone)]
struct Entry {
    cached: Cached,
    checked: Instant,
}

impl<S: ObjectStore> DbcCache<S> {
    pub fn new(store: S, default_key: &str, fallback: (String, Arc<Database>), refresh: Duration) -> Self {
        Self {
            store,
            default_key: default_key.to_string(),
            fallback,
            refresh,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key of a vehicle's own DBC.
    pub fn vehicle_key(vehicle: &VehicleId) -> String {
        format!("{DBC_PREFIX}vehicles/{vehicle}.dbc")
    }

    /// The DBC for `vehicle` and the name it goes by (its key, or `built-in:<name>`).
    pub async fn for_vehicle(&self, vehicle: &VehicleId) -> Result<(String, Arc<Database>), DecodeObjectError> {
        for key in [Self::vehicle_key(vehicle), self.default_key.clone()] {
            if let Some(db) = self.lookup(&key).await? {
                return Ok((key, db));
            }
        }
        Ok(self.fallback.clone())
    }

    async fn lookup(&self, key: &str) -> Result<Option<Arc<Database>>, DecodeObjectError> {
        let known = self.entries.lock().map_err(|_| poisoned(key))?.get(key).cloned();
        if let Some(entry) = &known
            && entry.checked.elapsed() < self.refresh
        {
            return Ok(match &entry.cached {
                Cached::Present { db, .. } => Some(db.clone()),
                Cached::Missing => None,
            });
        }
        let cached = match self.store.exists(key).await? {
            None => Cached::Missing,
            Some(info) => match known.map(|e| e.cached) {
                Some(Cached::Present { etag, db }) if etag == info.etag => Cached::Present { etag, db },
                _ => {
                    let object = self.store.get(key).await?;
                    let name = format!("s3://{}/{key}", self.store.bucket());
                    let db = Database::from_bytes(&object.body, &name).map_err(|error| DecodeObjectError::Dbc {
                        key: key.to_string(),
                        error,
                    })?;
                    Cached::Present {
                        etag: object.etag,
                        db: Arc::new(db),
                    }
                }
            },
        };
        let result = match &cached {
            Cached::Present { db, .. } => Some(db.clone()),
            Cached::Missing => None,
        };
        self.entries.lock().map_err(|_| poisoned(key))?.insert(
            key.to_string(),
            Entry {
                cached,
                checked: Instant::now(),
            },
        );
        Ok(result)
    }
}

fn poisoned(key: &str) -> DecodeObjectError {
    DecodeObjectError::Store(StoreError::Failed {
        bucket: String::new(),
        key: key.to_string(),
        message: "DBC cache lock poisoned".to_string(),
    })
}
