//! `/vehicles/{id}/trips`: a vehicle's trips, each with the alerts raised on the way.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use canopy::domain::alert::Alert;
use canopy::domain::device_id::DeviceId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::Identity;
use crate::app::{Api, MAX_PAGE};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::history::TimeRange;
use crate::history::trips::{self, Trip};
use crate::openapi::HistoryErrors;
use crate::params::{TripRange, VehiclePath, range};
use crate::ports::AlertReads;

/// Pages of the alert log read for one range at most (cooldowns keep alerts
/// sparse: one per rule per window).
const MAX_ALERT_PAGES: usize = 10;

/// A vehicle's trips in a range.
#[derive(Serialize, ToSchema)]
pub struct Trips {
    #[schema(value_type = String)]
    pub vehicle_id: DeviceId,
    pub from_us: i64,
    pub to_us: i64,
    /// The gap that split them, in seconds.
    pub gap_s: i64,
    /// Oldest first.
    pub trips: Vec<Trip>,
}

/// A vehicle's trips: contiguous periods of telemetry, split by gaps
#[utoipa::path(get, path = "/vehicles/{id}/trips", operation_id = "listTrips", params(VehiclePath, TripRange), responses(
    (status = 200, description = "Trips, oldest first", body = Trips),
    HistoryErrors,
))]
pub async fn vehicle(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(path): ApiPath<VehiclePath>,
    ApiQuery(asked): ApiQuery<TripRange>,
) -> Result<Json<Trips>, ApiError> {
    let id = api.readable_vehicle(&identity, &path.id)?;
    let range = range(asked.from.as_deref(), asked.to.as_deref())?;
    let gap_us = trips::gap_us(asked.gap_s)?;
    api.admit_history(&identity).await?;
    let (rows, alerts) = if range.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let rows = api.run_history(api.history.trips(&id, range, gap_us)).await?;
        (rows, alerts_in(api.alerts.as_ref(), &id, range).await?)
    };
    Ok(Json(Trips {
        vehicle_id: id,
        from_us: range.from_us,
        to_us: range.to_us,
        gap_s: gap_us / 1_000_000,
        trips: trips::trips(&rows, &alerts),
    }))
}

/// A vehicle's alerts in `range`, newest first, up to [`MAX_ALERT_PAGES`] pages.
async fn alerts_in(log: &dyn AlertReads, vehicle: &DeviceId, range: TimeRange) -> Result<Vec<Alert>, ApiError> {
    let mut found: Vec<Alert> = Vec::new();
    let mut before = Some(range.to_us);
    for _ in 0..MAX_ALERT_PAGES {
        let page = log.alerts(vehicle.as_str(), MAX_PAGE, before).await?;
        let full = page.len() == MAX_PAGE;
        let oldest = page.last().map(|a| a.ts_us);
        let new: Vec<_> = page
            .into_iter()
            .filter(|a| !found.iter().any(|f| f.ts_us == a.ts_us && f.rule == a.rule))
            .collect();
        if new.is_empty() {
            break;
        }
        found.extend(new);
        match oldest {
            // The next page starts at the oldest time again (one past it, as
            // `before` is exclusive), for alerts of other rules at that time.
            Some(oldest) if full && oldest >= range.from_us => before = Some(oldest + 1),
            _ => break,
        }
    }
    found.retain(|a| a.ts_us >= range.from_us);
    Ok(found)
}
