//! [`Ledger`] in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Faults, lock};
use crate::ports::TableError;
use crate::ports::ledger::{Claim, ExistingClaim, Ledger};

#[derive(Debug, Default)]
pub struct MemoryLedger {
    claims: Mutex<HashMap<(String, u64), ExistingClaim>>,
    pub faults: Faults,
}

impl MemoryLedger {
    async fn enter(&self, operation: &'static str) -> Result<(), TableError> {
        self.faults.enter(operation).await.map_err(|message| TableError {
            table: "memory-ledger".into(),
            message,
        })
    }

    /// Puts a claim as another batch would have left it.
    pub fn insert(&self, stream: &str, seq: u64, claim: ExistingClaim) {
        lock(&self.claims).insert((stream.to_string(), seq), claim);
    }
}

impl Ledger for MemoryLedger {
    async fn claim(&self, stream: &str, seq: u64, archive_key: &str, now_ms: i64) -> Result<Claim, TableError> {
        self.enter("claim").await?;
        let mut claims = lock(&self.claims);
        let slot = claims
            .entry((stream.to_string(), seq))
            .or_insert_with(|| ExistingClaim {
                archive_key: archive_key.to_string(),
                claimed_at_ms: now_ms,
            });
        if slot.archive_key == archive_key {
            slot.claimed_at_ms = now_ms;
            Ok(Claim::Claimed)
        } else {
            Ok(Claim::Taken(slot.clone()))
        }
    }

    async fn reclaim(
        &self,
        stream: &str,
        seq: u64,
        old: &ExistingClaim,
        archive_key: &str,
        now_ms: i64,
    ) -> Result<bool, TableError> {
        self.enter("reclaim").await?;
        let mut claims = lock(&self.claims);
        let key = (stream.to_string(), seq);
        if claims.get(&key).is_some_and(|c| c != old) {
            return Ok(false);
        }
        claims.insert(
            key,
            ExistingClaim {
                archive_key: archive_key.to_string(),
                claimed_at_ms: now_ms,
            },
        );
        Ok(true)
    }

    async fn claimed(&self, stream: &str, seqs: &[u64]) -> Result<Vec<bool>, TableError> {
        self.enter("claimed").await?;
        let claims = lock(&self.claims);
        Ok(seqs
            .iter()
            .map(|seq| claims.contains_key(&(stream.to_string(), *seq)))
            .collect())
    }
}
