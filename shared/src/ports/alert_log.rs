//! The alert log, newest first, and the cooldown windows that keep one alert
//! per vehicle and rule per window.

use std::future::Future;

use super::TableError;
use crate::domain::alert::Alert;
use crate::domain::vehicle::VehicleId;

pub trait AlertLog: Send + Sync {
    /// Claims the cooldown window of (vehicle, rule) for `alert` until
    /// `until_us`: true when the window was free (it ended at or before
    /// `now_us`, the server's time) or is already this alert's, so it may be sent.
    fn claim_cooldown(
        &self,
        alert: &Alert,
        now_us: i64,
        until_us: i64,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// True when `alert` is already in the log (it was sent).
    fn recorded(&self, alert: &Alert) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// Adds `alert` to the vehicle's log, kept until `expires_at_s` (TTL).
    fn record(&self, alert: &Alert, expires_at_s: i64) -> impl Future<Output = Result<(), TableError>> + Send;

    /// A vehicle's alerts, newest first, older than `before_us` when given.
    fn alerts(
        &self,
        vehicle: &VehicleId,
        limit: usize,
        before_us: Option<i64>,
    ) -> impl Future<Output = Result<Vec<Alert>, TableError>> + Send;
}
