//! The alert log, newest first, and the cooldown windows that keep one alert
//! per vehicle (or device) and rule per window. Both are keyed by the
//! alert's stream ([`Alert::stream`]): a vehicle id, or `<kind>/<id>`.

use std::future::Future;

use super::TableError;
use crate::domain::alert::Alert;

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

    /// A stream's alerts (a vehicle id, or a device's `<kind>/<id>`),
    /// newest first, older than `before_us` when given.
    fn alerts(
        &self,
        stream: &str,
        limit: usize,
        before_us: Option<i64>,
    ) -> impl Future<Output = Result<Vec<Alert>, TableError>> + Send;
}
