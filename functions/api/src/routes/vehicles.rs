//! `/vehicles` and `/vehicles/{id}`: the fleet's latest states.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{self, Identity};
use crate::app::Api;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::{ListErrors, ReadErrors, VehicleState};
use crate::params::{VehiclePage, VehiclePath, page_limit};

/// Table pages read for one answer at most: a caller in a small group of a
/// large fleet gets a short page and a `next` rather than a slow answer.
const MAX_PAGES_PER_LISTING: usize = 10;

/// A page of vehicles.
#[derive(Serialize, ToSchema)]
pub struct VehicleList {
    pub vehicles: Vec<VehicleState>,
    /// The next page's `after`; null on the last page.
    pub next: Option<String>,
}

/// Vehicles with their latest state, paginated
#[utoipa::path(get, path = "/vehicles", operation_id = "listVehicles", params(VehiclePage), responses(
    (status = 200, description = "A page", body = VehicleList),
    ListErrors,
))]
pub async fn list(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiQuery(page): ApiQuery<VehiclePage>,
) -> Result<Json<VehicleList>, ApiError> {
    let scope = access::scope(&api.access, &identity)?;
    let limit = page_limit(page.limit)?;
    // The cursor is sealed: where the table's scan stopped may be another
    // group's vehicle, which this caller may not learn of.
    let after = page.after.map(|a| api.cursors.open("after", &a)).transpose()?;
    let (states, after) = api.states_in(&scope, after, limit, MAX_PAGES_PER_LISTING).await?;
    Ok(Json(VehicleList {
        vehicles: states.iter().map(VehicleState::from).collect(),
        next: after.map(|position| api.cursors.seal(&position)),
    }))
}

/// A vehicle's latest state
#[utoipa::path(get, path = "/vehicles/{id}", operation_id = "getVehicle", params(VehiclePath), responses(
    (status = 200, description = "Latest state", body = VehicleState),
    ReadErrors,
))]
pub async fn one(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(path): ApiPath<VehiclePath>,
) -> Result<Json<VehicleState>, ApiError> {
    let id = api.readable_vehicle(&identity, &path.id)?;
    match api.state.get(&id).await? {
        Some(state) => Ok(Json(VehicleState::from(&state))),
        None => Err(access::no_vehicle(&id)),
    }
}
