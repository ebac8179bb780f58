//! `/vehicles` and `/vehicles/{id}`: the fleet's latest states.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use canopy::ports::directory::{Listing, merge_listing};
use futures::future::try_join_all;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{self, Identity};
use crate::app::{Api, device_id};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::{ListErrors, ReadErrors, VehicleState};
use crate::params::{VehiclePage, VehiclePath, page_limit};

/// A page of vehicles.
#[derive(Serialize, ToSchema)]
pub struct VehicleList {
    pub vehicles: Vec<VehicleState>,
    /// The next page's `after`; null on the last page.
    pub next: Option<String>,
}

/// Vehicles with their latest state, in id order, paginated; searched by id prefix and status
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
    // The cursor is sealed: it names the page's last vehicle, which may be
    // one of a group this caller was in when it was given.
    let after = page.after.map(|a| api.cursors.open("after", &a)).transpose()?;
    let prefix = page.prefix.as_deref().map(|p| device_id("prefix", p)).transpose()?;
    let listing = Listing {
        prefix: prefix.as_ref().map_or("", |p| p.as_str()),
        status: page.status,
        after: after.as_deref(),
        limit: limit + 1,
    };
    let views = scope.views();
    let pages = try_join_all(views.iter().map(|view| api.directory.list(view, listing))).await?;
    let mut ids = merge_listing(pages, limit + 1);
    let more = ids.len() > limit;
    ids.truncate(limit);
    let next = if more {
        ids.last().map(|last| api.cursors.seal(last.as_str()))
    } else {
        None
    };
    // A view keeps who its group held when each vehicle was entered.
    ids.retain(|id| scope.allows(id.as_str()));
    let states = api.state.get_many(&ids).await?;
    Ok(Json(VehicleList {
        vehicles: states.iter().map(VehicleState::from).collect(),
        next,
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
