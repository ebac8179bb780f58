//! Request quotas: how many requests a caller made in a window, counted
//! where every instance of a function sees the same count.

use std::future::Future;

use super::TableError;

pub trait QuotaCounter: Send + Sync {
    /// Counts `amount` (requests, messages) against `key` (a caller and a
    /// window) unless that would take the count past `limit`: the count
    /// including them, or `None` when they do not fit (nothing is counted
    /// then). The count is kept until `expires_at_s` (TTL), after the window
    /// has closed.
    fn take(
        &self,
        key: &str,
        amount: u32,
        limit: u32,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<Option<u32>, TableError>> + Send;
}
