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

use crate::store::ObjectStore;

/// Footer bytes fetched in the first request; most footers fit.
const FOOTER_PREFETCH: usize = 64 * 1024;

/// A Parquet object of a store, for `ParquetRecordBatchStreamBuilder`.
pub struct StoreFileReader<S> {
    store: S,
    key: String,
    size: u64,
    /// Bytes fetched from the store, for the decoder's metrics.
    pub fetched: u64,
}

impl<S: ObjectStore + Clone + 'static> StoreFileReader<S> {
    pub fn new(store: S, key: &str, size: u64) -> Self {
        Self {
            store,
            key: key.to_string(),
            size,
            fetched: 0,
        }
    }
}

impl<S: ObjectStore + Clone + 'static> AsyncFileReader for StoreFileReader<S> {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            let bytes = self
                .store
                .get_range(&self.key, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))?;
            self.fetched += bytes.len() as u64;
            Ok(bytes)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            // No page index: decoding reads every row.
            let reader = ParquetMetaDataReader::new().with_prefetch_hint(Some(FOOTER_PREFETCH));
            Ok(Arc::new(reader.load_and_finish(self, size).await?))
        }
        .boxed()
    }
}
