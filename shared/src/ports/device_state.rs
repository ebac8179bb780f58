//! The latest state of each device of a declared kind.

use std::future::Future;

use super::{Page, TableError};
use crate::domain::device::DeviceRecord;

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

/// One item per (kind, device id), replaced only by a newer status.
pub trait DeviceStateStore: Send + Sync {
    /// Writes `r` unless the stored status is as new or newer (by `ts`);
    /// true when written.
    fn put_if_newer(&self, r: &DeviceRecord, now_ms: i64) -> impl Future<Output = Result<bool, TableError>> + Send;

    fn get(&self, kind: &str, id: &str) -> impl Future<Output = Result<Option<DeviceState>, TableError>> + Send;

    /// A page of a kind's devices in id order, after id `after`.
    fn list(
        &self,
        kind: &str,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<DeviceState>, TableError>> + Send;
}
