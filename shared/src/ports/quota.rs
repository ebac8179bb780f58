//! Request quotas: how many requests a caller made in a window, counted
//! where every instance of a function sees the same count.

use std::future::Future;

use super::TableError;

pub trait QuotaCounter: Send + Sync {
    /// Counts one request against `key` (a caller and a window) unless
    /// `limit` requests are counted already: the count including this one,
    /// or `None` when the quota is spent. The count is kept until
    /// `expires_at_s` (TTL), after the window has closed.
    fn take(
        &self,
        key: &str,
        limit: u32,
        expires_at_s: i64,
    ) -> impl Future<Output = Result<Option<u32>, TableError>> + Send;
}
