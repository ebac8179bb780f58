//! The device keys HTTP ingest authenticates with, kept by key id.

use std::future::Future;

use super::{Page, TableError};
use crate::domain::device_key::DeviceKey;

pub trait KeyStore: Send + Sync {
    /// Stores a new key; false when its key id is taken already (the caller
    /// makes another: ids are random, and an existing key is never replaced).
    fn create(&self, key: &DeviceKey) -> impl Future<Output = Result<bool, TableError>> + Send;

    fn get(&self, key_id: &str) -> impl Future<Output = Result<Option<DeviceKey>, TableError>> + Send;

    /// Every key, `limit` at a time, from after the `after` cursor of the page before.
    fn list(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<DeviceKey>, TableError>> + Send;

    /// Marks a key revoked at `now_ms`; false when there is no such key. A
    /// key revoked already keeps the time it was first revoked.
    fn revoke(&self, key_id: &str, now_ms: i64) -> impl Future<Output = Result<bool, TableError>> + Send;
}
