//! S3 as a Lambda function in the same region sees it, in front of any
//! [`ObjectStore`]: each request waits a first byte (25 ms) and then its
//! bytes at 100 MB/s, so a figure timed over it stands for what a user in
//! AWS waits, not for loopback. It also counts the requests, and how many
//! of them had to wait for one another ([`Counts::in_sequence`]): a
//! request is one deeper than the deepest that had ended when it started,
//! so requests in parallel count once, a footer read before its pages twice,
//! and a pipeline of reads as deep as its longest chain.
//!
//! A model, not a measurement of S3: it leaves out throttling, retries and
//! the spread of first-byte times.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};

/// The delays of the model.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Until the first byte of any request.
    pub first_byte: Duration,
    /// Bytes a second once it flows.
    pub bytes_per_s: u64,
}

impl Latency {
    /// S3 Standard from Lambda in the same region, at its typical first byte.
    pub const AWS: Latency = Latency {
        first_byte: Duration::from_millis(25),
        bytes_per_s: 100_000_000,
    };

    pub(crate) fn transfer(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 / self.bytes_per_s.max(1) as f64)
    }
}

/// What a [`S3Model`] saw since it was made or last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// GETs (a range read, a footer, a whole object) and HEADs.
    pub gets: u64,
    /// LIST requests.
    pub lists: u64,
    /// The longest chain of requests each started after the one before ended.
    pub in_sequence: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    gets: AtomicU64,
    lists: AtomicU64,
    /// The deepest chain among the requests that have ended.
    ended_depth: AtomicU64,
    bytes: AtomicU64,
}

/// One request in flight, from its start to its last byte, and how deep
/// in a chain of requests it is.
struct InFlight {
    counters: Arc<Counters>,
    depth: u64,
}

impl InFlight {
    fn start(counters: &Arc<Counters>) -> Self {
        Self {
            counters: counters.clone(),
            depth: counters.ended_depth.load(Ordering::SeqCst) + 1,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counters.ended_depth.fetch_max(self.depth, Ordering::SeqCst);
    }
}

/// `inner` behind the model's delays, counted.
#[derive(Debug)]
pub struct S3Model<T> {
    inner: T,
    latency: Latency,
    counters: Arc<Counters>,
}

impl<T> S3Model<T> {
    pub fn new(inner: T, latency: Latency) -> Self {
        Self {
            inner,
            latency,
            counters: Arc::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            gets: c.gets.load(Ordering::SeqCst),
            lists: c.lists.load(Ordering::SeqCst),
            in_sequence: c.ended_depth.load(Ordering::SeqCst),
            bytes: c.bytes.load(Ordering::SeqCst),
        }
    }

    pub fn reset(&self) {
        let c = &self.counters;
        for counter in [&c.gets, &c.lists, &c.ended_depth, &c.bytes] {
            counter.store(0, Ordering::SeqCst);
        }
    }
}

impl<T: fmt::Display> fmt::Display for S3Model<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3Model({})", self.inner)
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for S3Model<T> {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    /// A GET or HEAD: the first byte, then the bytes of its range, read
    /// whole before it answers (the engines read what they ask for).
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let _request = InFlight::start(&self.counters);
        self.counters.gets.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.latency.first_byte).await;
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if head {
            return Ok(result);
        }
        let (meta, range, attributes) = (result.meta.clone(), result.range.clone(), result.attributes.clone());
        let bytes = result.bytes().await?;
        self.counters.bytes.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        tokio::time::sleep(self.latency.transfer(bytes.len() as u64)).await;
        Ok(GetResult {
            payload: object_store::GetResultPayload::Stream(futures::stream::once(async { Ok(bytes) }).boxed()),
            meta,
            range,
            attributes,
        })
    }

    /// Each range its own request, at once: S3 answers one range a GET.
    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let reads = ranges.iter().map(|range| async move {
            let options = GetOptions {
                range: Some(range.clone().into()),
                ..GetOptions::default()
            };
            self.get_opts(location, options).await?.bytes().await
        });
        futures::future::try_join_all(reads).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    /// A LIST: the first byte per page of 1,000 keys.
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (counters, latency) = (self.counters.clone(), self.latency);
        let listing = self.inner.list(prefix);
        futures::stream::once(async move {
            let request = InFlight::start(&counters);
            counters.lists.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(latency.first_byte).await;
            let entries: Vec<Result<ObjectMeta>> = listing.collect().await;
            let pages = entries.len().div_ceil(1000).max(1) as u32;
            tokio::time::sleep(latency.first_byte * (pages - 1)).await;
            drop(request);
            futures::stream::iter(entries)
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let _request = InFlight::start(&self.counters);
        self.counters.lists.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.latency.first_byte).await;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn requests_wait_their_first_byte_and_bytes_and_parallel_ones_count_once_in_sequence() {
        let model = S3Model::new(
            InMemory::new(),
            Latency {
                first_byte: Duration::from_millis(20),
                bytes_per_s: 1_000_000,
            },
        );
        let (a, b) = (Path::from("a"), Path::from("b"));
        model.put(&a, PutPayload::from(vec![0u8; 10_000])).await.unwrap();
        model.put(&b, PutPayload::from(vec![1u8; 10])).await.unwrap();
        let started = Instant::now();
        let read = model.get(&a).await.unwrap().bytes().await.unwrap();
        let took = started.elapsed();
        assert_eq!(read.len(), 10_000);
        assert!(
            took >= Duration::from_millis(30),
            "20 ms first byte + 10 ms of bytes: {took:?}"
        );
        let both = futures::future::join(model.get_range(&a, 0..10), model.get_range(&b, 0..10)).await;
        assert!(both.0.is_ok() && both.1.is_ok());
        let ranges = model.get_ranges(&a, &[0..10, 100..110, 5_000..5_010]).await.unwrap();
        assert_eq!(ranges.len(), 3);
        let listed: Vec<_> = model.list(None).collect().await;
        assert_eq!(listed.len(), 2);
        assert_eq!(
            model.counts(),
            Counts {
                gets: 6,
                lists: 1,
                in_sequence: 4,
                bytes: 10_050,
            },
            "one read, two at once, three ranges at once, a list: four in sequence"
        );
    }
}
