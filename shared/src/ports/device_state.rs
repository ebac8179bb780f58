//! The latest state of each device of a declared kind, and an index of the
//! devices by when each was last heard (in [`HEARD_BUCKET_MS`] steps), so
//! that finding the ones that fell silent reads those, not the kind.
//!
//! [`HEARD_BUCKET_MS`]: crate::domain::standing::HEARD_BUCKET_MS

use std::future::Future;

use super::{Page, TableError};
use crate::domain::device::DeviceRecord;
use crate::domain::device_id::DeviceId;
use crate::domain::standing::heard_bucket;

/// A device's newest status and when it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceState {
    pub record: DeviceRecord,
    pub updated_at_ms: i64,
}

impl DeviceState {
    /// When the cloud last heard from the device: IoT Core's receive time
    /// of its newest status, or when that status was written.
    pub fn heard_at_ms(&self) -> i64 {
        self.record.received_at_ms.unwrap_or(self.updated_at_ms)
    }

    /// The step of the heard index the device belongs in.
    pub fn heard_step(&self) -> i64 {
        heard_bucket(self.heard_at_ms())
    }

    /// The state as the API answers it: the device's fields, `kind`,
    /// `received_at_ms` and `updated_at_ms`.
    pub fn to_json(&self, id_field: &str) -> serde_json::Value {
        let mut v = self.record.to_json(id_field);
        if let Some(object) = v.as_object_mut() {
            object.insert("updated_at_ms".into(), self.updated_at_ms.into());
        }
        v
    }
}

/// One item per (kind, device id), replaced only by a newer status; and the
/// heard index of each kind's devices.
pub trait DeviceStateStore: Send + Sync {
    /// Writes `r` unless the stored status is as new or newer (by `ts`),
    /// and files the device in the heard index at the step it was heard in
    /// (at most once per step); true when written.
    fn put_if_newer(&self, r: &DeviceRecord, now_ms: i64) -> impl Future<Output = Result<bool, TableError>> + Send;

    fn get(&self, kind: &str, id: &str) -> impl Future<Output = Result<Option<DeviceState>, TableError>> + Send;

    /// A page of a kind's devices in id order, after id `after`.
    fn list(
        &self,
        kind: &str,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<DeviceState>, TableError>> + Send;

    /// Up to `limit` (device, step) entries of `kind`'s heard index at a step
    /// before `before`, after the entry `after`, earliest first. Every
    /// device is there at its [`DeviceState::heard_step`]; after a write
    /// that failed halfway, a device may also be at a step it left: compare
    /// with its state, and [`DeviceStateStore::refile`] it.
    fn unheard(
        &self,
        kind: &str,
        before: i64,
        after: Option<(i64, &DeviceId)>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(DeviceId, i64)>, TableError>> + Send;

    /// Moves `id`'s entry in `kind`'s heard index from step `from` to `to`,
    /// or removes it (`None`): a device whose silence was all told, or that
    /// is no longer there.
    fn refile(
        &self,
        kind: &str,
        id: &DeviceId,
        from: i64,
        to: Option<i64>,
    ) -> impl Future<Output = Result<(), TableError>> + Send;
}
