//! Object storage as the platform uses it: whole objects, byte ranges, and
//! multipart uploads. S3 implements it (`adapters::aws::s3`), and so does memory (`adapters::memory`).

use std::future::Future;
use std::ops::Range;

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound { bucket: String, key: String },
    #[error("s3://{bucket}/{key}: {message}")]
    Failed {
        bucket: String,
        key: String,
        message: String,
    },
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// What `head` tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: String,
}

/// A whole object and its entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Bytes,
    pub etag: String,
}

/// A bucket (or anything like it), addressed by key.
pub trait ObjectStore: Send + Sync {
    /// The bucket's name, for messages.
    fn bucket(&self) -> &str;

    fn head(&self, key: &str) -> impl Future<Output = Result<ObjectInfo, StoreError>> + Send;

    fn get(&self, key: &str) -> impl Future<Output = Result<Object, StoreError>> + Send;

    fn get_range(&self, key: &str, range: Range<u64>) -> impl Future<Output = Result<Bytes, StoreError>> + Send;

    /// Stores `body` under `key`; `sha256` (base64) makes the store verify it.
    fn put(
        &self,
        key: &str,
        body: Bytes,
        sha256: Option<String>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every object whose key starts with `prefix`, with its size and ETag.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<(String, ObjectInfo)>, StoreError>> + Send;

    /// The "folders" right under `prefix` (which ends in `/`): each distinct
    /// `prefix<segment>/` of the keys below it, as S3 lists with a delimiter,
    /// so a caller need not list every object to learn the partitions.
    fn list_dirs(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts a multipart upload; returns its id.
    fn create_multipart(&self, key: &str) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Uploads part `number` (from 1); returns its entity tag.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(i32, String)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn abort_multipart(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether `key` exists, asked by listing its own prefix: S3 answers a
    /// HEAD of a missing key with 403 unless the caller may list the whole
    /// bucket, and a prefix-scoped list permission is all the functions get.
    fn exists(&self, key: &str) -> impl Future<Output = Result<Option<ObjectInfo>, StoreError>> + Send {
        async move {
            Ok(self
                .list(key)
                .await?
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, info)| info))
        }
    }
}

/// S3's smallest part (all but the last).
pub const MIN_PART: usize = 5 * 1024 * 1024;

/// Uploads a stream of bytes as one object: a single PUT when it stays small,
/// a multipart upload of `part_size` parts otherwise, so memory holds at most
/// about one part whatever the object's size.
pub struct UploadSink<'s, S: ObjectStore> {
    store: &'s S,
    key: String,
    part_size: usize,
    buffer: Vec<u8>,
    upload: Option<(String, Vec<(i32, String)>)>,
    pub bytes: u64,
}

impl<'s, S: ObjectStore> UploadSink<'s, S> {
    pub fn new(store: &'s S, key: &str, part_size: usize) -> Self {
        Self {
            store,
            key: key.to_string(),
            part_size: part_size.max(MIN_PART),
            buffer: Vec::new(),
            upload: None,
            bytes: 0,
        }
    }

    /// Takes bytes; uploads a part once a full one is held.
    pub async fn write(&mut self, data: &mut Vec<u8>) -> Result<(), StoreError> {
        self.bytes += data.len() as u64;
        self.buffer.append(data);
        while self.buffer.len() >= self.part_size {
            let rest = self.buffer.split_off(self.part_size);
            let part = std::mem::replace(&mut self.buffer, rest);
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Vec<u8>) -> Result<(), StoreError> {
        if self.upload.is_none() {
            let id = self.store.create_multipart(&self.key).await?;
            self.upload = Some((id, Vec::new()));
        }
        let Some((id, parts)) = &mut self.upload else {
            unreachable!("set above")
        };
        let number = parts.len() as i32 + 1;
        match self.store.upload_part(&self.key, id, number, Bytes::from(part)).await {
            Ok(etag) => {
                parts.push((number, etag));
                Ok(())
            }
            Err(e) => {
                let _ = self.store.abort_multipart(&self.key, id).await;
                self.upload = None;
                Err(e)
            }
        }
    }

    /// Sends what is left and makes the object visible.
    pub async fn finish(mut self) -> Result<u64, StoreError> {
        let rest = std::mem::take(&mut self.buffer);
        match self.upload.take() {
            None => self.store.put(&self.key, Bytes::from(rest), None).await?,
            Some(upload) => {
                self.upload = Some(upload);
                if !rest.is_empty() {
                    self.send_part(rest).await?;
                }
                let Some((id, parts)) = self.upload.take() else {
                    unreachable!("set above")
                };
                if let Err(e) = self.store.complete_multipart(&self.key, &id, parts).await {
                    let _ = self.store.abort_multipart(&self.key, &id).await;
                    return Err(e);
                }
            }
        }
        Ok(self.bytes)
    }

    /// Gives up: an unfinished multipart upload is aborted so it costs nothing.
    pub async fn abort(mut self) {
        if let Some((id, _)) = self.upload.take() {
            let _ = self.store.abort_multipart(&self.key, &id).await;
        }
    }
}
