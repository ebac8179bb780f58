//! The ledger that keeps the telemetry archive free of duplicates: which
//! archive object holds each (stream, seq), a stream being a vehicle id
//! or a device's `<kind>/<id>` ([`crate::domain::device::stream`]).

use std::future::Future;

use super::TableError;

/// What the ledger holds for a (stream, seq) someone else claimed.
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
    /// Claims (stream, seq) for archive object `archive_key`; claiming again
    /// for the same object succeeds, so a retried batch claims its messages again.
    fn claim(
        &self,
        stream: &str,
        seq: u64,
        archive_key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Claim, TableError>> + Send;

    /// Takes over a claim that went stale (its batch never wrote its object):
    /// only if it is still exactly `old`.
    fn reclaim(
        &self,
        stream: &str,
        seq: u64,
        old: &ExistingClaim,
        archive_key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// Which of `seqs` of `stream` are claimed already, in their order: a
    /// message posted again finds out it is a duplicate before it is queued.
    fn claimed(&self, stream: &str, seqs: &[u64]) -> impl Future<Output = Result<Vec<bool>, TableError>> + Send;
}
