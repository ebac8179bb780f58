//! `/fleet/stats`: per vehicle and hour of a day, from the telemetry
//! archive; `/fleet/counts`: how many vehicles are doing what, now.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use canopy::domain::standing::Counts;
use futures::future::try_join_all;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{self, Identity};
use crate::app::Api;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::history::{self, FleetStat};
use crate::openapi::{ListErrors, StatsErrors};
use crate::params::StatsDay;

/// A day's statistics.
#[derive(Serialize, ToSchema)]
pub struct FleetStats {
    /// The day, YYYY-MM-DD (UTC).
    pub date: String,
    pub stats: Vec<FleetStat>,
}

/// Per vehicle and hour: message count, min/max/avg of key BMS signals (from the telemetry archive)
#[utoipa::path(get, path = "/fleet/stats", operation_id = "getFleetStats", params(StatsDay), responses(
    (status = 200, description = "Statistics", body = FleetStats),
    StatsErrors,
))]
pub async fn stats(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiQuery(day): ApiQuery<StatsDay>,
) -> Result<Json<FleetStats>, ApiError> {
    let scope = access::scope(&api.access, &identity)?;
    let date = match day.date.as_deref() {
        Some(d) => history::parse_date(d)?,
        None => chrono::Utc::now().date_naive(),
    };
    api.admit_history(&identity).await?;
    let mut stats = api.history.fleet_stats(date).await?;
    stats.retain(|s| scope.allows(&s.vehicle_id));
    Ok(Json(FleetStats {
        date: date.to_string(),
        stats,
    }))
}

/// How many vehicles of the caller's scope are doing what. A vehicle in two
/// of the caller's vehicle groups counts in each.
#[derive(Serialize, ToSchema)]
pub struct FleetCounts {
    pub total: i64,
    pub driving: i64,
    /// Standing, with current into the pack.
    pub charging: i64,
    /// Heard, standing, not charging.
    pub parked: i64,
    /// Not heard for longer than the silence allowance (15 minutes unless configured).
    pub silent: i64,
    /// Tripped an alert rule within the last 15 minutes, whatever their status (not part of the total).
    pub alerting: i64,
}

impl From<Counts> for FleetCounts {
    fn from(c: Counts) -> Self {
        Self {
            total: c.total,
            driving: c.driving,
            charging: c.charging,
            parked: c.parked,
            silent: c.silent,
            alerting: c.alerting,
        }
    }
}

/// How many vehicles are driving, charging, parked, silent or alerting (kept as they change, not counted per request)
#[utoipa::path(get, path = "/fleet/counts", operation_id = "getFleetCounts", responses(
    (status = 200, description = "Counts", body = FleetCounts),
    ListErrors,
))]
pub async fn counts(State(api): State<Arc<Api>>, identity: Identity) -> Result<Json<FleetCounts>, ApiError> {
    let scope = access::scope(&api.access, &identity)?;
    let views = scope.views();
    let counts = try_join_all(views.iter().map(|view| api.directory.counts(view))).await?;
    Ok(Json(canopy::ports::directory::add_counts(counts).into()))
}
