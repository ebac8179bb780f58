//! [`ObjectStore`] in memory.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{Faults, lock};
use crate::ports::store::{Object, ObjectInfo, ObjectStore, StoreError};

/// A bucket in memory. Clones share the bucket (as S3 clients share S3).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Shared>,
}

/// An open multipart upload: its key and the parts received, by number.
type Upload = (String, BTreeMap<i32, Bytes>);

#[derive(Debug, Default)]
struct Shared {
    bucket: String,
    objects: Mutex<BTreeMap<String, Object>>,
    uploads: Mutex<HashMap<String, Upload>>,
    next_id: AtomicU64,
    faults: Faults,
}

impl MemoryStore {
    pub fn new(bucket: &str) -> Self {
        Self {
            inner: Arc::new(Shared {
                bucket: bucket.to_string(),
                ..Shared::default()
            }),
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The keys held, in order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.inner.objects).keys().cloned().collect()
    }

    /// The body held under `key`, if any.
    pub fn bytes(&self, key: &str) -> Option<Bytes> {
        lock(&self.inner.objects).get(key).map(|o| o.body.clone())
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        lock(&self.inner.uploads).len()
    }

    fn failed(&self, key: &str, message: String) -> StoreError {
        StoreError::Failed {
            bucket: self.inner.bucket.clone(),
            key: key.to_string(),
            message,
        }
    }

    async fn enter(&self, operation: &'static str, key: &str) -> Result<(), StoreError> {
        self.inner
            .faults
            .enter(operation)
            .await
            .map_err(|m| self.failed(key, m))
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            bucket: self.inner.bucket.clone(),
            key: key.to_string(),
        }
    }

    fn etag(&self) -> String {
        format!("\"{:016x}\"", self.inner.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

impl ObjectStore for MemoryStore {
    fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        self.enter("head", key).await?;
        let objects = lock(&self.inner.objects);
        let object = objects.get(key).ok_or_else(|| self.not_found(key))?;
        Ok(ObjectInfo {
            size: object.body.len() as u64,
            etag: object.etag.clone(),
        })
    }

    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        self.enter("get", key).await?;
        lock(&self.inner.objects)
            .get(key)
            .cloned()
            .ok_or_else(|| self.not_found(key))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.enter("get_range", key).await?;
        let objects = lock(&self.inner.objects);
        let body = &objects.get(key).ok_or_else(|| self.not_found(key))?.body;
        let end = (range.end as usize).min(body.len());
        let start = (range.start as usize).min(end);
        Ok(body.slice(start..end))
    }

    async fn put(&self, key: &str, body: Bytes, _sha256: Option<String>) -> Result<(), StoreError> {
        self.enter("put", key).await?;
        let etag = self.etag();
        lock(&self.inner.objects).insert(key.to_string(), Object { body, etag });
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectInfo)>, StoreError> {
        self.enter("list", prefix).await?;
        Ok(lock(&self.inner.objects)
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, o)| {
                (
                    k.clone(),
                    ObjectInfo {
                        size: o.body.len() as u64,
                        etag: o.etag.clone(),
                    },
                )
            })
            .collect())
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.enter("list", prefix).await?;
        let mut dirs: Vec<String> = lock(&self.inner.objects)
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                rest.find('/').map(|i| format!("{prefix}{}", &rest[..=i]))
            })
            .collect();
        dirs.dedup();
        Ok(dirs)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.enter("delete", key).await?;
        lock(&self.inner.objects).remove(key);
        Ok(())
    }

    async fn create_multipart(&self, key: &str) -> Result<String, StoreError> {
        self.enter("create_multipart", key).await?;
        let id = format!("upload-{}", self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        lock(&self.inner.uploads).insert(id.clone(), (key.to_string(), BTreeMap::new()));
        Ok(id)
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: i32, body: Bytes) -> Result<String, StoreError> {
        self.enter("upload_part", key).await?;
        let mut uploads = lock(&self.inner.uploads);
        let (_, parts) = uploads
            .get_mut(upload_id)
            .ok_or_else(|| self.failed(key, format!("no upload {upload_id}")))?;
        parts.insert(number, body);
        Ok(format!("\"part-{number}\""))
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(i32, String)>,
    ) -> Result<(), StoreError> {
        self.enter("complete_multipart", key).await?;
        let (_, held) = lock(&self.inner.uploads)
            .remove(upload_id)
            .ok_or_else(|| self.failed(key, format!("no upload {upload_id}")))?;
        let mut body = Vec::new();
        for (number, _) in &parts {
            let part = held
                .get(number)
                .ok_or_else(|| self.failed(key, format!("part {number} was never uploaded")))?;
            body.extend_from_slice(part);
        }
        let etag = self.etag();
        lock(&self.inner.objects).insert(
            key.to_string(),
            Object {
                body: body.into(),
                etag,
            },
        );
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.enter("abort_multipart", key).await?;
        lock(&self.inner.uploads).remove(upload_id);
        Ok(())
    }
}
