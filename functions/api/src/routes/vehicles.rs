//! `/vehicles` and `/vehicles/{id}`: the fleet's latest states.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use canopy::domain::access::View;
use canopy::domain::device_id::DeviceId;
use canopy::domain::standing::Order;
use canopy::ports::directory::{Listing, Ranking, merge_listing, merge_ranked};
use futures::future::try_join_all;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{self, Identity};
use crate::app::{Api, device_id};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::history::invalid;
use crate::openapi::{ListErrors, ReadErrors, VehicleState};
use crate::params::{VehiclePage, VehiclePath, page_limit};

/// A page of vehicles.
#[derive(Serialize, ToSchema)]
pub struct VehicleList {
    pub vehicles: Vec<VehicleState>,
    /// The next page's `after`; null on the last page.
    pub next: Option<String>,
}

/// Vehicles with their latest state, in id order or sorted, paginated; searched by id prefix and status
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
    let views = scope.views();
    let (mut ids, next) = match page.sort.as_deref() {
        None => by_id(&api, &views, &page, limit).await?,
        Some(sort) => sorted(&api, &views, &page, sort, limit).await?,
    };
    // A view keeps who its group held when each vehicle was entered.
    ids.retain(|id| scope.allows(id.as_str()));
    let states = api.state.get_many(&ids).await?;
    Ok(Json(VehicleList {
        vehicles: states.iter().map(VehicleState::from).collect(),
        next,
    }))
}

/// A page of `views` in id order, and the next page's cursor.
async fn by_id(
    api: &Api,
    views: &[View],
    page: &VehiclePage,
    limit: usize,
) -> Result<(Vec<DeviceId>, Option<String>), ApiError> {
    // The cursor is sealed: it names the page's last vehicle, which may be
    // one of a group this caller was in when it was given.
    let after = page
        .after
        .as_deref()
        .map(|a| api.cursors.open("after", a))
        .transpose()?;
    if after.as_deref().is_some_and(|a| a.contains(RANKED_CURSOR)) {
        return Err(invalid("after", "the cursor of a sorted listing: pass it with its `sort`").into());
    }
    let prefix = page.prefix.as_deref().map(|p| device_id("prefix", p)).transpose()?;
    let listing = Listing {
        prefix: prefix.as_ref().map_or("", |p| p.as_str()),
        filter: page.status,
        after: after.as_deref(),
        limit: limit + 1,
    };
    let pages = try_join_all(views.iter().map(|view| api.directory.list(view, listing))).await?;
    let mut ids = merge_listing(pages, limit + 1);
    let more = ids.len() > limit;
    ids.truncate(limit);
    let next = ids.last().filter(|_| more).map(|last| api.cursors.seal(last.as_str()));
    Ok((ids, next))
}

/// Separates a sorted listing's cursor's parts (`<order>:<rank>:<id>`; ids hold no `:`).
const RANKED_CURSOR: char = ':';

/// A page of `views` in the order `sort` names, and the next page's cursor.
async fn sorted(
    api: &Api,
    views: &[View],
    page: &VehiclePage,
    sort: &str,
    limit: usize,
) -> Result<(Vec<DeviceId>, Option<String>), ApiError> {
    if page.prefix.is_some() || page.status.is_some() {
        return Err(invalid("sort", "sorts the whole fleet: leave out `prefix` and `status`").into());
    }
    let (descending, name) = sort.strip_prefix('-').map_or((false, sort), |name| (true, name));
    let order = Order::from_name(name).ok_or_else(|| {
        invalid(
            "sort",
            "last_heard, soc_pct or cell_temp_max_c; a leading - for highest first",
        )
    })?;
    let after = match page.after.as_deref() {
        None => None,
        Some(cursor) => Some(ranked_cursor(&api.cursors.open("after", cursor)?, order)?),
    };
    let ranking = Ranking {
        order,
        descending,
        after: after.as_ref().map(|(rank, id)| (*rank, id.as_str())),
        limit: limit + 1,
    };
    let pages = try_join_all(views.iter().map(|view| api.directory.ranked(view, ranking))).await?;
    let mut ranked = merge_ranked(pages, &ranking);
    let more = ranked.len() > limit;
    ranked.truncate(limit);
    let next = ranked.last().filter(|_| more).map(|(id, rank)| {
        let c = RANKED_CURSOR;
        api.cursors.seal(&format!("{}{c}{rank}{c}{id}", order.name()))
    });
    Ok((ranked.into_iter().map(|(id, _)| id).collect(), next))
}

/// The (rank, id) an opened cursor of a listing sorted by `order` names.
fn ranked_cursor(opened: &str, order: Order) -> Result<(i64, String), ApiError> {
    let mut parts = opened.splitn(3, RANKED_CURSOR);
    match (parts.next(), parts.next().and_then(|r| r.parse().ok()), parts.next()) {
        (Some(name), Some(rank), Some(id)) if name == order.name() => Ok((rank, id.to_string())),
        _ => Err(invalid(
            "after",
            format!("not the cursor of a listing sorted by {}", order.name()),
        )
        .into()),
    }
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
