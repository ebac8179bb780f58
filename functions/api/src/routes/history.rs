//! `/vehicles/{id}/signals/{message}/{signal}` and `/vehicles/{id}/query`:
//! signals' history, downsampled with LTTB, with exact statistics.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use canopy::domain::device_id::DeviceId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Identity;
use crate::app::Api;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::history::{self, MAX_SIGNALS, Series, SignalRef, invalid, whole_number};
use crate::openapi::HistoryErrors;
use crate::params::{Chart, SignalPath, VehiclePath, max_points, range};

/// One signal's history.
#[derive(Serialize, ToSchema)]
pub struct SignalHistory {
    #[schema(value_type = String)]
    pub vehicle_id: DeviceId,
    pub from_us: i64,
    pub to_us: i64,
    pub series: Series,
}

/// Several signals' history, in the order asked.
#[derive(Serialize, ToSchema)]
pub struct SignalsHistory {
    #[schema(value_type = String)]
    pub vehicle_id: DeviceId,
    pub from_us: i64,
    pub to_us: i64,
    pub series: Vec<Series>,
}

/// The signals and range of a query.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    #[schema(min_items = 1, max_items = 20)]
    signals: Vec<SignalRef>,
    /// RFC 3339; default: a day before `end_time`. At most the 31 days before `end_time` are read (the answer's from_us says where it starts); a `start_time` not before `end_time` asks for nothing, answered empty
    #[schema(format = DateTime)]
    start_time: Option<String>,
    /// RFC 3339, exclusive; default: now
    #[schema(format = DateTime)]
    end_time: Option<String>,
    /// 3-10000, default 1000. A JSON number: `800.0` is the integer 800, as JSON Schema counts it.
    #[schema(value_type = Option<u64>, minimum = 3, maximum = 10000)]
    max_points: Option<f64>,
}

/// One signal's history, downsampled with LTTB
#[utoipa::path(get, path = "/vehicles/{id}/signals/{message}/{signal}", operation_id = "getSignalHistory", params(SignalPath, Chart), responses(
    (status = 200, description = "History", body = SignalHistory),
    HistoryErrors,
))]
pub async fn signal(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(path): ApiPath<SignalPath>,
    ApiQuery(chart): ApiQuery<Chart>,
) -> Result<Json<SignalHistory>, ApiError> {
    let id = api.readable_vehicle(&identity, &path.id)?;
    let catalog = api.catalogs.for_vehicle(&id).await?;
    let entry = catalog.check(&SignalRef {
        message_name: path.message,
        signal_name: path.signal,
    })?;
    let range = range(chart.from.as_deref(), chart.to.as_deref())?;
    let max_points = max_points(chart.max_points)?;
    api.admit_history(&identity).await?;
    let series = api
        .run_history(history::series(api.history.as_ref(), entry, &id, range, max_points))
        .await?;
    Ok(Json(SignalHistory {
        vehicle_id: id,
        from_us: range.from_us,
        to_us: range.to_us,
        series,
    }))
}

/// Several signals' history at once
#[utoipa::path(post, path = "/vehicles/{id}/query", operation_id = "querySignals", params(VehiclePath), request_body = QueryBody, responses(
    (status = 200, description = "History", body = SignalsHistory),
    HistoryErrors,
))]
pub async fn query(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(path): ApiPath<VehiclePath>,
    body: Result<Json<QueryBody>, JsonRejection>,
) -> Result<Json<SignalsHistory>, ApiError> {
    let id = api.readable_vehicle(&identity, &path.id)?;
    let Json(body) = body.map_err(|e| ApiError {
        field: Some("body".into()),
        ..ApiError::new(StatusCode::BAD_REQUEST, e.body_text())
    })?;
    if body.signals.is_empty() || body.signals.len() > MAX_SIGNALS {
        return Err(invalid("signals", format!("ask for 1 to {MAX_SIGNALS} signals")).into());
    }
    // Every name is checked before any query runs.
    let catalog = api.catalogs.for_vehicle(&id).await?;
    let entries = body
        .signals
        .iter()
        .map(|s| catalog.check(s))
        .collect::<Result<Vec<_>, _>>()?;
    let range = range(body.start_time.as_deref(), body.end_time.as_deref())?;
    let max_points = history::max_points(whole_number("max_points", body.max_points)?)?;
    api.admit_history(&identity).await?;
    // All at once, under one deadline: one after another, 20 slow queries
    // would outlast the function.
    let queries = entries
        .into_iter()
        .map(|entry| history::series(api.history.as_ref(), entry, &id, range, max_points));
    let series = api.run_history(futures::future::try_join_all(queries)).await?;
    Ok(Json(SignalsHistory {
        vehicle_id: id,
        from_us: range.from_us,
        to_us: range.to_us,
        series,
    }))
}
