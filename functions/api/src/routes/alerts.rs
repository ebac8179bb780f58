//! `/alerts` and `/vehicles/{id}/alerts`: the alert log, newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use canopy::domain::alert::Alert;
use canopy::domain::device_id::DeviceId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{self, Identity};
use crate::app::Api;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::{ListErrors, ReadErrors};
use crate::params::{AlertPage, VehiclePath, before_us, page_limit};

/// Vehicles whose logs `/alerts` reads at most, and how many at once.
const MAX_FLEET_ALERT_VEHICLES: usize = 5_000;
const ALERT_READS_AT_ONCE: usize = 16;

/// The fleet's newest alerts.
#[derive(Serialize, ToSchema)]
pub struct FleetAlerts {
    pub alerts: Vec<Alert>,
}

/// A vehicle's alerts.
#[derive(Serialize, ToSchema)]
pub struct VehicleAlerts {
    #[schema(value_type = String)]
    pub vehicle_id: DeviceId,
    pub alerts: Vec<Alert>,
}

/// The fleet's most recent alerts (vehicles in the caller's scope), newest first
///
/// Each vehicle in scope's newest `limit`, merged. One query per vehicle
/// keeps the alert log keyed by vehicle (the alerts function's writes stay
/// simple); a fleet past a few thousand vehicles wants an index by time.
#[utoipa::path(get, path = "/alerts", operation_id = "listFleetAlerts", params(AlertPage), responses(
    (status = 200, description = "Alerts", body = FleetAlerts),
    ListErrors,
))]
pub async fn fleet(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiQuery(page): ApiQuery<AlertPage>,
) -> Result<Json<FleetAlerts>, ApiError> {
    let scope = access::scope(&api.access, &identity)?;
    let limit = page_limit(page.limit)?;
    let before = before_us(page.before.as_deref())?;
    let (states, _) = api
        .states_in(&scope, None, MAX_FLEET_ALERT_VEHICLES, usize::MAX)
        .await?;
    let vehicles: Vec<DeviceId> = states.into_iter().map(|s| s.telemetry.vehicle_id).collect();
    let mut alerts = Vec::new();
    for chunk in vehicles.chunks(ALERT_READS_AT_ONCE) {
        let reads = chunk.iter().map(|v| api.alerts.alerts(v.as_str(), limit, before));
        for read in futures::future::join_all(reads).await {
            alerts.extend(read?);
        }
    }
    alerts.sort_by(|a, b| {
        (b.ts_us, b.vehicle_id.as_str(), b.rule.as_str()).cmp(&(a.ts_us, a.vehicle_id.as_str(), a.rule.as_str()))
    });
    alerts.truncate(limit);
    Ok(Json(FleetAlerts { alerts }))
}

/// A vehicle's alerts, newest first
#[utoipa::path(get, path = "/vehicles/{id}/alerts", operation_id = "listVehicleAlerts", params(VehiclePath, AlertPage), responses(
    (status = 200, description = "Alerts", body = VehicleAlerts),
    ReadErrors,
))]
pub async fn vehicle(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(path): ApiPath<VehiclePath>,
    ApiQuery(page): ApiQuery<AlertPage>,
) -> Result<Json<VehicleAlerts>, ApiError> {
    let id = api.readable_vehicle(&identity, &path.id)?;
    let limit = page_limit(page.limit)?;
    let before = before_us(page.before.as_deref())?;
    let alerts = api.alerts.alerts(id.as_str(), limit, before).await?;
    Ok(Json(VehicleAlerts { vehicle_id: id, alerts }))
}
