//! Per-user quota on history queries: each one may run an Athena query, so
//! a user (or a runaway script with their token) gets `per_minute` of them
//! per clock minute, counted in a table every Lambda instance shares.

use axum::http::StatusCode;

use crate::access::Identity;
use crate::error::ApiError;
use crate::ports::QuotaCounts;

const WINDOW_S: i64 = 60;

/// `HISTORY_QUERIES_PER_MINUTE` (0 turns the quota off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuota {
    pub per_minute: u32,
}

impl HistoryQuota {
    pub const DEFAULT_PER_MINUTE: u32 = 60;

    /// Counts one history request of `identity` at `now_s`; a 429 with
    /// `Retry-After` when the minute's quota is spent. A request naming
    /// several signals counts once: it is one chart.
    pub async fn admit(&self, counter: &dyn QuotaCounts, identity: &Identity, now_s: i64) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        // Without sign-in (the local stack) every caller shares one quota.
        let who = identity.0.as_ref().map_or("anonymous", |c| c.subject.as_str());
        let window = now_s.div_euclid(WINDOW_S);
        let key = format!("history#{who}#{window}");
        // Kept a window past its end, then DynamoDB's TTL removes it.
        let expires_at_s = (window + 2) * WINDOW_S;
        match counter.take(&key, 1, self.per_minute, expires_at_s).await? {
            Some(_) => Ok(()),
            None => {
                let retry_after_s = (WINDOW_S - now_s.rem_euclid(WINDOW_S)) as u64;
                Err(ApiError {
                    retry_after_s: Some(retry_after_s),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "more than {} history queries this minute; retry in {retry_after_s} s",
                            self.per_minute
                        ),
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use canopy::adapters::memory::MemoryQuotaCounter;

    use super::*;
    use crate::access::Caller;

    fn user(subject: &str) -> Identity {
        Identity(Some(Caller {
            subject: subject.into(),
            groups: Default::default(),
        }))
    }

    #[tokio::test]
    async fn each_user_has_a_quota_per_minute() {
        let counter = MemoryQuotaCounter::default();
        let quota = HistoryQuota { per_minute: 2 };
        // 1_800_000_000 s starts a minute: t is 50 s into it.
        let t = 1_800_000_050;
        quota.admit(&counter, &user("a"), t).await.unwrap();
        quota.admit(&counter, &user("a"), t).await.unwrap();
        let refused = quota.admit(&counter, &user("a"), t + 1).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after_s, Some(9));
        quota.admit(&counter, &user("b"), t).await.expect("b counts apart");
        quota.admit(&counter, &user("a"), t + 10).await.expect("a new minute");
        assert_eq!(
            counter.expiry(&format!("history#a#{}", (t + 10) / 60)),
            Some((t + 10) / 60 * 60 + 120)
        );
        let off = HistoryQuota { per_minute: 0 };
        for _ in 0..5 {
            off.admit(&counter, &user("a"), t + 10).await.unwrap();
        }
    }
}
