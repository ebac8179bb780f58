//! `/fleet/stats`: per vehicle and hour of a day, from the telemetry archive.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{self, Identity};
use crate::app::Api;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::history::{self, FleetStat};
use crate::openapi::StatsErrors;
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
