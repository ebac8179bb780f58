//! [`Api`]: what every route shares (the ports it reads, who may read what,
//! the quota and the deadline), and the steps several routes take with it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kinds;

use crate::access::{self, AccessPolicy, Identity};
use crate::catalogs::Catalogs;
use crate::console::ConsoleConfig;
use crate::cursor::Cursors;
use crate::error::ApiError;
use crate::history::{self, HistoryError, InvalidQuery};
use crate::ports::{AlertReads, DeviceReads, DirectoryReads, HistoryReads, QuotaCounts, StateReads};
use crate::quota::HistoryQuota;
use crate::raw::RawReads;

/// Items of one page of a listing at most.
pub const MAX_PAGE: usize = 100;

/// What the routes share: history, the latest-state tables, the alert log,
/// the catalog names are checked against, who reads what, and the quota.
pub struct Api {
    pub history: Arc<dyn HistoryReads>,
    /// The raw lake's objects, for exports.
    pub raw: Arc<dyn RawReads>,
    pub state: Arc<dyn StateReads>,
    /// Which vehicles each view of the fleet lists.
    pub directory: Arc<dyn DirectoryReads>,
    pub alerts: Arc<dyn AlertReads>,
    /// The declared devices' latest states, and their kinds.
    pub devices: Arc<dyn DeviceReads>,
    pub kinds: Kinds,
    pub catalogs: Box<dyn Catalogs>,
    pub access: AccessPolicy,
    pub quota_counter: Arc<dyn QuotaCounts>,
    pub history_quota: HistoryQuota,
    /// What `/config.json` tells the console: sign-in and the live stream.
    pub console: ConsoleConfig,
    /// When a request's history queries are stopped and answered with a 504.
    pub history_deadline: Duration,
    /// Seals the listings' cursors.
    pub cursors: Cursors,
}

impl Api {
    /// Runs a request's history `work` under the deadline. Past it, or when
    /// a query fails (the others are then dropped), what was started is
    /// stopped; past it the answer is a 504 naming every query.
    pub(crate) async fn run_history<T>(
        &self,
        work: impl Future<Output = Result<T, HistoryError>>,
    ) -> Result<T, ApiError> {
        let (answer, ids) = history::within(self.history_deadline, work).await;
        match answer {
            Some(Ok(done)) => Ok(done),
            Some(Err(e)) => {
                self.history.cancel(&ids).await;
                Err(e.into())
            }
            None => {
                self.history.cancel(&ids).await;
                Err(ApiError::deadline(ids, self.history_deadline))
            }
        }
    }

    /// Counts one history query of `identity` against its quota (429 when spent).
    pub(crate) async fn admit_history(&self, identity: &Identity) -> Result<(), ApiError> {
        let now_s = chrono::Utc::now().timestamp();
        self.history_quota
            .admit(self.quota_counter.as_ref(), identity, now_s)
            .await
    }

    /// A vehicle id from the path, when the caller may read it.
    pub(crate) fn readable_vehicle(&self, identity: &Identity, id: &str) -> Result<DeviceId, ApiError> {
        let scope = access::scope(&self.access, identity)?;
        let id = device_id("id", id)?;
        access::check(&scope, &id)?;
        Ok(id)
    }
}

/// A device or vehicle id of the request, checked; `field` names it in the error.
pub(crate) fn device_id(field: &str, id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::new(id).map_err(|e| {
        ApiError::from(InvalidQuery {
            field: field.into(),
            problem: e.to_string(),
        })
    })
}
