//! [`QuotaCounter`] in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Faults, lock};
use crate::ports::TableError;
use crate::ports::quota::QuotaCounter;

#[derive(Debug, Default)]
pub struct MemoryQuotaCounter {
    /// key → (count, expires at s).
    counts: Mutex<HashMap<String, (u32, i64)>>,
    pub faults: Faults,
}

impl MemoryQuotaCounter {
    /// When the count of `key` expires (s since the epoch), if there is one.
    pub fn expiry(&self, key: &str) -> Option<i64> {
        lock(&self.counts).get(key).map(|(_, at)| *at)
    }
}

impl QuotaCounter for MemoryQuotaCounter {
    async fn take(&self, key: &str, amount: u32, limit: u32, expires_at_s: i64) -> Result<Option<u32>, TableError> {
        self.faults.enter("take").await.map_err(|message| TableError {
            table: "memory-quota".into(),
            message,
        })?;
        let mut counts = lock(&self.counts);
        let slot = counts.entry(key.to_string()).or_insert((0, expires_at_s));
        if slot.0.checked_add(amount).is_none_or(|after| after > limit) {
            return Ok(None);
        }
        *slot = (slot.0 + amount, expires_at_s);
        Ok(Some(slot.0))
    }
}
