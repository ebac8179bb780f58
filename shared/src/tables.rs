//! The platform's tables, as traits: each vehicle's latest state, the ledger
//! that keeps the telemetry archive free of duplicates, and the alert log with
//! its cooldowns. DynamoDB implements them ([`crate::aws::dynamodb`]).

use std::future::Future;

use serde::Serialize;

use crate::telemetry::Telemetry;
use crate::vehicle::VehicleId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table {table}: {message}")]
pub struct TableError {
    pub table: String,
    pub message: String,
}

/// A vehicle's latest telemetry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestState {
    pub telemetry: Telemetry,
    /// When IoT Core received the message (ms since the epoch), if the rule said.
    pub received_at_ms: Option<i64>,
    /// When the state table was written (ms since the epoch).
    pub updated_at_ms: i64,
}

/// One page of a listing, and where the next starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What the ledger holds for a (vehicle, seq) someone else claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingClaim {
    pub archive_key: String,
    pub claimed_at_ms: i64,
}

/// The outcome of claiming a message for an archive object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This archive object holds the message.
    Claimed,
    /// Another archive object claimed it.
    Taken(ExistingClaim),
}

pub trait TelemetryTables: Send + Sync {
    /// Writes `t` as its vehicle's latest state unless the stored state is as
    /// new or newer (by `ts`); true when written.
    fn put_latest_if_newer(
        &self,
        t: &Telemetry,
        received_at_ms: Option<i64>,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;

    fn latest(&self, vehicle: &VehicleId) -> impl Future<Output = Result<Option<LatestState>, TableError>> + Send;

    /// Vehicles' latest states, `limit` at a time, after the `after` cursor.
    fn list_latest(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page<LatestState>, TableError>> + Send;

    /// Claims (vehicle, seq) for archive object `archive_key`; claiming again
    /// for the same object succeeds, so a retried batch claims its messages again.
    fn claim(
        &self,
        vehicle: &VehicleId,
        seq: u64,
        archive_key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Claim, TableError>> + Send;

    /// Takes over a claim that went stale (its batch never wrote its object):
    /// only if it is still exactly `old`.
    fn reclaim(
        &self,
        vehicle: &VehicleId,
        seq: u64,
        old: &ExistingClaim,
        archive_key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;
}

/// An alert that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub vehicle_id: VehicleId,
    pub rule: String,
    pub severity: String,
    /// What the rule compares, with its value and threshold.
    pub measure: String,
    pub value: f64,
    pub comparison: String,
    pub threshold: f64,
    pub unit: String,
    /// The telemetry message that tripped the rule.
    pub ts: String,
    pub ts_us: i64,
    pub seq: u64,
}

impl Alert {
    /// The alert's identity: retries of the same message raise the same alert.
    pub fn id(&self) -> String {
        format!("{}#{}#{}", self.vehicle_id, self.seq, self.rule)
    }
}

pub trait AlertTables: Send + Sync {
    /// Claims the cooldown window of (vehicle, rule) for `alert`: true when
    /// the window was free (or already this alert's), so it may be sent.
    fn claim_cooldown(&self, alert: &Alert, until_us: i64) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// True when `alert` is already in the log (it was sent).
    fn recorded(&self, alert: &Alert) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// Adds `alert` to the vehicle's log, kept until `expires_at_s` (TTL).
    fn record(&self, alert: &Alert, expires_at_s: i64) -> impl Future<Output = Result<(), TableError>> + Send;

    /// A vehicle's alerts, newest first.
    fn alerts(
        &self,
        vehicle: &VehicleId,
        limit: usize,
        before_us: Option<i64>,
    ) -> impl Future<Output = Result<Vec<Alert>, TableError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {message}")]
pub struct PublishError {
    pub service: &'static str,
    pub message: String,
}

/// Notifications to people (SNS: email, SMS).
pub trait Notifier: Send + Sync {
    fn notify(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Messages to vehicles (IoT Core's data plane).
pub trait DevicePublisher: Send + Sync {
    fn publish(&self, topic: &str, payload: Vec<u8>) -> impl Future<Output = Result<(), PublishError>> + Send;
}
