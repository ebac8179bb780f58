//! The routes of each declared device kind ([`canopy::domain::kind`]),
//! made from its declaration: for `path = "stations"`,
//!
//! - `GET /stations`: the devices' latest states, in id order, paged;
//! - `GET /stations/{id}`: one device's latest state;
//! - `GET /stations/{id}/alerts`: its alerts, newest first;
//! - `GET /stations/{id}/history/{field}`: a number field over a range,
//!   reduced by LTTB, with exact statistics of the range.
//!
//! Their answers' keys come from the declaration (`stations`, `station_id`),
//! so they are JSON built here rather than types; [`crate::openapi::devices`]
//! documents the same routes from the same declaration. A device kind is
//! readable by every signed-in member of a group; vehicle groups restrict
//! vehicles only.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use canopy::domain::device::stream;
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kind;
use canopy::domain::lttb::Point;
use canopy::ports::device_state::DeviceState;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::{self, Identity};
use crate::app::{Api, device_id};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::history::devices::{FieldStats, chartable, reduce};
use crate::params::{AlertPage, Chart, before_us, max_points, page_limit, range};

type Answer = Result<Json<Value>, ApiError>;

/// A page of devices: `limit`, and `after` the previous page's `next`.
#[derive(Deserialize)]
struct DevicePage {
    limit: Option<u64>,
    after: Option<String>,
}

/// The paths of a kind's four routes, which [`routes`] serves and
/// [`crate::openapi::devices`] documents.
pub struct KindPaths {
    pub list: String,
    pub one: String,
    pub alerts: String,
    pub history: String,
}

impl KindPaths {
    pub fn of(kind: &Kind) -> Self {
        let base = format!("/{}", kind.path);
        Self {
            one: format!("{base}/{{id}}"),
            alerts: format!("{base}/{{id}}/alerts"),
            history: format!("{base}/{{id}}/history/{{field}}"),
            list: base,
        }
    }
}

/// The routes of every kind of `api.kinds`, added to `router`.
pub fn routes(mut router: Router<Arc<Api>>, kinds: &[Kind]) -> Router<Arc<Api>> {
    for kind in kinds {
        let k = Arc::new(kind.clone());
        let paths = KindPaths::of(kind);
        let (list, one, alerts, history) = (k.clone(), k.clone(), k.clone(), k);
        router = router
            .route(
                &paths.list,
                get(move |state, identity, query| device_list(state, identity, query, list)),
            )
            .route(
                &paths.one,
                get(move |state, identity, path| device(state, identity, path, one)),
            )
            .route(
                &paths.alerts,
                get(move |state, identity, path, query| device_alerts(state, identity, path, query, alerts)),
            )
            .route(
                &paths.history,
                get(move |state, identity, path, query| device_history(state, identity, path, query, history)),
            );
    }
    router
}

fn no_device(kind: &Kind, id: &DeviceId) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no {} {id}", kind.name))
}

async fn device_list(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiQuery(page): ApiQuery<DevicePage>,
    kind: Arc<Kind>,
) -> Answer {
    access::scope(&api.access, &identity)?;
    let limit = page_limit(page.limit)?;
    let after = page.after.map(|a| device_id("after", &a)).transpose()?;
    let page = api
        .devices
        .list(&kind.name, limit, after.as_ref().map(DeviceId::as_str))
        .await?;
    let items: Vec<Value> = page.items.iter().map(|s| s.to_json(&kind.id_field)).collect();
    Ok(Json(json!({ kind.path.as_str(): items, "next": page.next })))
}

/// The device of the path, when the caller may read devices and it exists.
async fn existing(api: &Api, identity: &Identity, kind: &Kind, id: &str) -> Result<(DeviceId, DeviceState), ApiError> {
    access::scope(&api.access, identity)?;
    let id = device_id("id", id)?;
    match api.devices.get(&kind.name, id.as_str()).await? {
        Some(state) => Ok((id, state)),
        None => Err(no_device(kind, &id)),
    }
}

async fn device(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
    kind: Arc<Kind>,
) -> Answer {
    let (_, state) = existing(&api, &identity, &kind, &id).await?;
    Ok(Json(state.to_json(&kind.id_field)))
}

async fn device_alerts(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<AlertPage>,
    kind: Arc<Kind>,
) -> Answer {
    let (id, _) = existing(&api, &identity, &kind, &id).await?;
    let limit = page_limit(page.limit)?;
    let before = before_us(page.before.as_deref())?;
    let alerts = api
        .alerts
        .alerts(&stream(&kind.name, id.as_str()), limit, before)
        .await?;
    Ok(Json(json!({ kind.id_field.as_str(): id, "alerts": alerts })))
}

async fn device_history(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath((id, field)): ApiPath<(String, String)>,
    ApiQuery(chart): ApiQuery<Chart>,
    kind: Arc<Kind>,
) -> Answer {
    let (id, _) = existing(&api, &identity, &kind, &id).await?;
    // An unknown field is a missing resource, as an unknown signal is.
    let declared = chartable(&kind, &field).map_err(|e| ApiError {
        field: Some("field".into()),
        ..ApiError::new(StatusCode::NOT_FOUND, e.problem)
    })?;
    let range = range(chart.from.as_deref(), chart.to.as_deref())?;
    let max_points = max_points(chart.max_points)?;
    api.admit_history(&identity).await?;
    let points: Vec<Point> = if range.is_empty() {
        Vec::new()
    } else {
        api.run_history(api.history.device_points(&kind, &id, &declared.name, range))
            .await?
    };
    Ok(Json(json!({
        kind.id_field.as_str(): id,
        "field": declared.name,
        "unit": declared.unit,
        "from_us": range.from_us,
        "to_us": range.to_us,
        "stats": FieldStats::of(&points),
        "points": reduce(&points, max_points),
    })))
}
