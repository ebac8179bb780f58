//! [`ObjectStore`] on Amazon S3.

use std::ops::Range;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::error_text;
use crate::ports::store::{Object, ObjectInfo, ObjectStore, StoreError};

/// One bucket of S3.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    /// A store for `bucket`. With an endpoint override (the local stack),
    /// path-style addressing: virtual-host style would need DNS for
    /// `<bucket>.127.0.0.1`.
    pub fn new(config: &aws_config::SdkConfig, bucket: &str) -> Self {
        let local = config.endpoint_url().is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(local)
            .build();
        Self {
            client: Client::from_conf(s3_config),
            bucket: bucket.to_string(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn failed<E: std::error::Error>(&self, key: &str, e: E) -> StoreError {
        StoreError::Failed {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message: error_text(&e),
        }
    }

    fn not_found(&self, key: &str) -> StoreError {
        StoreError::NotFound {
            bucket: self.bucket.clone(),
            key: key.to_string(),
        }
    }

    async fn collect(&self, key: &str, body: ByteStream) -> Result<Bytes, StoreError> {
        body.collect()
            .await
            .map(|b| b.into_bytes())
            .map_err(|e| self.failed(key, e))
    }
}

fn etag(tag: Option<&str>) -> String {
    tag.unwrap_or_default().trim_matches('"').to_string()
}

impl ObjectStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(ObjectInfo {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: etag(out.e_tag()),
            }),
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => Err(self.not_found(key)),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let tag = etag(out.e_tag());
                Ok(Object {
                    body: self.collect(key, out.body).await?,
                    etag: tag,
                })
            }
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => Err(self.not_found(key)),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(header)
            .send()
            .await
        {
            Ok(out) => self.collect(key, out.body).await,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => Err(self.not_found(key)),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    async fn put(&self, key: &str, body: Bytes, sha256: Option<String>) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        if let Some(sum) = sha256 {
            request = request
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(sum);
        }
        request.send().await.map(|_| ()).map_err(|e| self.failed(key, e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectInfo)>, StoreError> {
        let mut objects = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failed(prefix, e))?;
            objects.extend(page.contents().iter().filter_map(|o| {
                let info = ObjectInfo {
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: etag(o.e_tag()),
                };
                o.key().map(|k| (k.to_string(), info))
            }));
        }
        Ok(objects)
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut dirs = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failed(prefix, e))?;
            dirs.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
        }
        Ok(dirs)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed(key, e))
    }

    async fn create_multipart(&self, key: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = out.map_err(|e| self.failed(key, e))?;
        out.upload_id().map(str::to_string).ok_or_else(|| StoreError::Failed {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message: "CreateMultipartUpload returned no upload id".to_string(),
        })
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: i32, body: Bytes) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.failed(key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<(i32, String)>,
    ) -> Result<(), StoreError> {
        let parts = parts
            .into_iter()
            .map(|(n, tag)| CompletedPart::builder().part_number(n).e_tag(tag).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed(key, e))
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed(key, e))
    }
}
