//! The ledger that keeps the telemetry archive free of duplicates: which
//! archive object holds each (vehicle, seq).

use std::future::Future;

use super::TableError;
use crate::domain::vehicle::VehicleId;

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

pub trait Ledger: Send + Sync {
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

    /// Which of `seqs` of `vehicle` are claimed already, in their order: a
    /// message posted again finds out it is a duplicate before it is queued.
    fn claimed(&self, vehicle: &VehicleId, seqs: &[u64]) -> impl Future<Output = Result<Vec<bool>, TableError>> + Send;
}
