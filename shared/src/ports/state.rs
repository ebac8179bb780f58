//! Each vehicle's latest telemetry.

use std::future::Future;

use super::{Page, TableError};
use crate::domain::device_id::DeviceId;
use crate::domain::telemetry::Telemetry;

/// A vehicle's latest telemetry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestState {
    pub telemetry: Telemetry,
    /// When the state was written (ms since the epoch).
    pub updated_at_ms: i64,
}

impl LatestState {
    /// The state as the API and the live stream send it: the message (v1)
    /// with `received_at_ms` and `updated_at_ms`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.telemetry.to_json();
        if let Some(object) = v.as_object_mut() {
            object.remove(crate::format::telemetry::RECEIVED_AT);
            object.insert("received_at_ms".into(), self.telemetry.received_at_ms.into());
            object.insert("updated_at_ms".into(), self.updated_at_ms.into());
        }
        v
    }
}

pub trait LatestStateStore: Send + Sync {
    /// Writes `t` as its vehicle's latest state unless the stored state is as
    /// new or newer (by `ts`); true when written.
    fn put_if_newer(&self, t: &Telemetry, now_ms: i64) -> impl Future<Output = Result<bool, TableError>> + Send;

    fn get(&self, vehicle: &DeviceId) -> impl Future<Output = Result<Option<LatestState>, TableError>> + Send;

    /// The states of `vehicles` that have one, in the order asked (a page
    /// of a listing: one batch read per hundred).
    fn get_many(&self, vehicles: &[DeviceId]) -> impl Future<Output = Result<Vec<LatestState>, TableError>> + Send;

    /// Vehicles' latest states in vehicle order, `limit` at a time, after the `after` cursor.
    fn list(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<LatestState>, TableError>> + Send;
}

/// One table shared by several holders (the local stack's functions, a bench).
impl<T: LatestStateStore> LatestStateStore for std::sync::Arc<T> {
    fn put_if_newer(&self, t: &Telemetry, now_ms: i64) -> impl Future<Output = Result<bool, TableError>> + Send {
        T::put_if_newer(self, t, now_ms)
    }

    fn get(&self, vehicle: &DeviceId) -> impl Future<Output = Result<Option<LatestState>, TableError>> + Send {
        T::get(self, vehicle)
    }

    fn get_many(&self, vehicles: &[DeviceId]) -> impl Future<Output = Result<Vec<LatestState>, TableError>> + Send {
        T::get_many(self, vehicles)
    }

    fn list(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<LatestState>, TableError>> + Send {
        T::list(self, limit, after)
    }
}
