//! `/signals` and `/vehicles/{id}/signals`: the DBC catalogs names are checked against.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use canopy::domain::device_id::DeviceId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{self, Identity};
use crate::app::Api;
use crate::catalogs::CatalogEntry;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::openapi::{ListErrors, ReadErrors};
use crate::params::VehiclePath;

/// The fleet's signals.
#[derive(Serialize, ToSchema)]
pub struct FleetSignals {
    pub signals: Vec<CatalogEntry>,
}

/// A vehicle's signals.
#[derive(Serialize, ToSchema)]
pub struct VehicleSignals {
    #[schema(value_type = String)]
    pub vehicle_id: DeviceId,
    pub signals: Vec<CatalogEntry>,
}

/// The fleet's signal catalog: of the DBC vehicles without their own are decoded with
#[utoipa::path(get, path = "/signals", operation_id = "listFleetSignals", responses(
    (status = 200, description = "Signals", body = FleetSignals),
    ListErrors,
))]
pub async fn fleet(State(api): State<Arc<Api>>, identity: Identity) -> Result<Json<FleetSignals>, ApiError> {
    access::scope(&api.access, &identity)?;
    let catalog = api.catalogs.fleet().await?;
    Ok(Json(FleetSignals {
        signals: catalog.entries().to_vec(),
    }))
}

/// The signal catalog of the DBC this vehicle's data is decoded with: dbc/vehicles/<id>.dbc in the lake's bucket when it exists, else the fleet's (GET /signals)
#[utoipa::path(get, path = "/vehicles/{id}/signals", operation_id = "listVehicleSignals", params(VehiclePath), responses(
    (status = 200, description = "Signals", body = VehicleSignals),
    ReadErrors,
))]
pub async fn vehicle(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(path): ApiPath<VehiclePath>,
) -> Result<Json<VehicleSignals>, ApiError> {
    let id = api.readable_vehicle(&identity, &path.id)?;
    let catalog = api.catalogs.for_vehicle(&id).await?;
    Ok(Json(VehicleSignals {
        vehicle_id: id,
        signals: catalog.entries().to_vec(),
    }))
}
