//! Reading lake files straight from an [`ObjectStore`] with ranged reads: the
//! footer first, then one row group's column chunks at a time, so a reader
//! holds a row group, never the file.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use canopy::ports::store::ObjectStore;

/// Footer bytes fetched in the first request; most footers fit.
const FOOTER_PREFETCH: usize = 64 * 1024;
/// Column chunks are read through a window of this size: a reader asks for
/// each column chunk of each row group, and one large GET instead of dozens
/// of small ones is what S3 (and its latency) favour.
pub const READ_WINDOW: u64 = 16 * 1024 * 1024;

/// A Parquet object of a store, for `ParquetRecordBatchStreamBuilder`.
pub struct StoreFileReader<S> {
    store: S,
    key: String,
    size: u64,
    /// The last window read: its start and bytes.
    window: Option<(u64, Bytes)>,
    /// Bytes fetched from the store, for the decoder's metrics.
    pub fetched: u64,
    /// GET requests made.
    pub requests: u64,
    /// The largest footer read: a bigger one is refused before it is fetched.
    max_footer: u64,
}

impl<S: ObjectStore + Clone + 'static> StoreFileReader<S> {
    pub fn new(store: S, key: &str, size: u64) -> Self {
        Self {
            store,
            key: key.to_string(),
            size,
            window: None,
            fetched: 0,
            requests: 0,
            max_footer: u64::MAX,
        }
    }

    pub fn with_max_footer(mut self, bytes: u64) -> Self {
        self.max_footer = bytes;
        self
    }

    /// `range` from the window, fetching a new window from `range.start` when it is not there.
    async fn read(&mut self, range: Range<u64>) -> Result<Bytes, canopy::ports::store::StoreError> {
        if let Some((start, bytes)) = &self.window
            && range.start >= *start
            && range.end <= start + bytes.len() as u64
        {
            return Ok(bytes.slice((range.start - start) as usize..(range.end - start) as usize));
        }
        let end = range.end.max(range.start + READ_WINDOW).min(self.size).max(range.end);
        let bytes = self.store.get_range(&self.key, range.start..end).await?;
        self.fetched += bytes.len() as u64;
        self.requests += 1;
        let wanted = bytes.slice(0..((range.end - range.start) as usize).min(bytes.len()));
        self.window = Some((range.start, bytes));
        Ok(wanted)
    }
}

impl<S: ObjectStore + Clone + 'static> AsyncFileReader for StoreFileReader<S> {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.read(range).await.map_err(|e| ParquetError::External(Box::new(e))) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            if size >= 8 {
                // The footer's length is the four bytes before the closing "PAR1". Reading
                // the prefetch span here leaves it in the window, where the metadata
                // reader below finds it: one GET serves both.
                let tail = self
                    .read(size.saturating_sub(FOOTER_PREFETCH as u64)..size)
                    .await
                    .map_err(|e| ParquetError::External(Box::new(e)))?;
                // A store that answers short (the object replaced since its HEAD) is an error, not a panic.
                let Some(at) = tail.len().checked_sub(8) else {
                    return Err(ParquetError::EOF(format!(
                        "{} bytes where the footer should be",
                        tail.len()
                    )));
                };
                let footer = u64::from(u32::from_le_bytes([tail[at], tail[at + 1], tail[at + 2], tail[at + 3]]));
                if footer > self.max_footer {
                    return Err(ParquetError::General(format!(
                        "its footer is {footer} bytes, above the limit of {} (MAX_FOOTER_MB)",
                        self.max_footer
                    )));
                }
                // A footer the metadata reader would spend unbounded work on is refused first.
                if let Some(start) = (size - 8).checked_sub(footer) {
                    let bytes = self
                        .read(start..size - 8)
                        .await
                        .map_err(|e| ParquetError::External(Box::new(e)))?;
                    canopy::format::lake::footer::check(&bytes).map_err(ParquetError::General)?;
                }
            }
            // No page index: decoding reads every row.
            let reader = ParquetMetaDataReader::new().with_prefetch_hint(Some(FOOTER_PREFETCH));
            Ok(Arc::new(reader.load_and_finish(self, size).await?))
        }
        .boxed()
    }
}
