//! The query API as an axum router: the same router runs in Lambda (through
//! `lambda_http`, behind API Gateway) and on the local stack (plain axum).
//! Handlers validate, call the domain ([`canopy::history`], the tables) and
//! map the outcome to JSON with a status that says what happened.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use canopy::history::{
    self, Catalog, History, HistoryError, InvalidQuery, MAX_SIGNALS, SignalRef, TimeRange, max_points,
};
use canopy::tables::{AlertTables, LatestState, TableError, TelemetryTables};
use canopy::vehicle::VehicleId;
use serde::Deserialize;
use serde_json::{Value, json};

/// The OpenAPI document of these routes, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

const MAX_PAGE: usize = 100;

/// Every route of [`router`], as `openapi.json` must list it.
pub const ROUTES: [(&str, &str); 9] = [
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/signals"),
    ("GET", "/vehicles"),
    ("GET", "/vehicles/{id}"),
    ("GET", "/vehicles/{id}/alerts"),
    ("GET", "/vehicles/{id}/signals/{message}/{signal}"),
    ("POST", "/vehicles/{id}/query"),
    ("GET", "/fleet/stats"),
];

/// What the handlers share.
pub struct Api<H, T, A> {
    pub history: H,
    pub tables: T,
    pub alerts: A,
    pub catalog: Catalog,
}

pub fn router<H, T, A>(api: Arc<Api<H, T, A>>) -> Router
where
    H: History + 'static,
    T: TelemetryTables + 'static,
    A: AlertTables + 'static,
{
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/signals", get(signals::<H, T, A>))
        .route("/vehicles", get(vehicles::<H, T, A>))
        .route("/vehicles/{id}", get(vehicle::<H, T, A>))
        .route("/vehicles/{id}/alerts", get(alerts::<H, T, A>))
        .route(
            "/vehicles/{id}/signals/{message}/{signal}",
            get(signal_history::<H, T, A>),
        )
        .route("/vehicles/{id}/query", post(query::<H, T, A>))
        .route("/fleet/stats", get(fleet_stats::<H, T, A>))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route (GET /openapi.json lists them)") })
        .with_state(api)
}

/// An error as JSON: `{"error": {"status", "message", "field"?, "query_id"?}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
    query_id: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            query_id: None,
        }
    }
}

impl From<InvalidQuery> for ApiError {
    fn from(e: InvalidQuery) -> Self {
        Self {
            field: Some(e.field.clone()),
            ..Self::new(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

impl From<TableError> for ApiError {
    fn from(e: TableError) -> Self {
        tracing::error!(error = %e, "table read failed");
        Self::new(StatusCode::BAD_GATEWAY, e.to_string())
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        tracing::error!(error = %e, "history query failed");
        match &e {
            HistoryError::Timeout { query_id, .. } => Self {
                query_id: Some(query_id.clone()),
                ..Self::new(StatusCode::GATEWAY_TIMEOUT, e.to_string())
            },
            HistoryError::Failed { query_id, .. } => Self {
                query_id: Some(query_id.clone()),
                ..Self::new(StatusCode::BAD_GATEWAY, e.to_string())
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "status": self.status.as_u16(), "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        if let Some(id) = self.query_id {
            error["query_id"] = json!(id);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

type Answer = Result<Json<Value>, ApiError>;
type Shared<H, T, A> = State<Arc<Api<H, T, A>>>;

fn vehicle_id(id: &str) -> Result<VehicleId, ApiError> {
    VehicleId::new(id).map_err(|e| {
        ApiError::from(InvalidQuery {
            field: "id".into(),
            problem: e.to_string(),
        })
    })
}

fn number<N: std::str::FromStr>(params: &HashMap<String, String>, name: &str) -> Result<Option<N>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse().map_err(|_| {
                ApiError::from(InvalidQuery {
                    field: name.into(),
                    problem: "not a non-negative integer".into(),
                })
            })
        })
        .transpose()
}

fn page_limit(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    match number::<usize>(params, "limit")? {
        None => Ok(50),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(InvalidQuery {
            field: "limit".into(),
            problem: format!("{n} is outside 1..={MAX_PAGE}"),
        }
        .into()),
    }
}

fn state_json(state: &LatestState) -> Value {
    let mut v = state.telemetry.to_json();
    v["received_at_ms"] = json!(state.received_at_ms);
    v["updated_at_ms"] = json!(state.updated_at_ms);
    v
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn signals<H, T, A>(State(api): Shared<H, T, A>) -> Json<Value> {
    Json(json!({ "signals": api.catalog.entries() }))
}

async fn vehicles<H, T: TelemetryTables, A>(
    State(api): Shared<H, T, A>,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    let limit = page_limit(&params)?;
    let after = params.get("after").map(|a| vehicle_id(a)).transpose()?;
    let page = api
        .tables
        .list_latest(limit, after.as_ref().map(VehicleId::as_str))
        .await?;
    let items: Vec<Value> = page.items.iter().map(state_json).collect();
    Ok(Json(json!({ "vehicles": items, "next": page.next })))
}

async fn vehicle<H, T: TelemetryTables, A>(State(api): Shared<H, T, A>, Path(id): Path<String>) -> Answer {
    let id = vehicle_id(&id)?;
    match api.tables.latest(&id).await? {
        Some(state) => Ok(Json(state_json(&state))),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no vehicle {id}"))),
    }
}

async fn alerts<H, T, A: AlertTables>(
    State(api): Shared<H, T, A>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    let id = vehicle_id(&id)?;
    let limit = page_limit(&params)?;
    let before = match params.get("before") {
        None => None,
        Some(s) => Some(
            TimeRange::parse(None, Some(s), chrono::Utc::now())
                .map_err(|e| InvalidQuery {
                    field: "before".into(),
                    problem: e.problem,
                })?
                .to_us,
        ),
    };
    let alerts = api.alerts.alerts(&id, limit, before).await?;
    Ok(Json(json!({ "vehicle_id": id, "alerts": alerts })))
}

async fn signal_history<H: History, T, A>(
    State(api): Shared<H, T, A>,
    Path((id, message, signal)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    let id = vehicle_id(&id)?;
    let entry = api.catalog.check(&SignalRef {
        message_name: message,
        signal_name: signal,
    })?;
    let range = TimeRange::parse(
        params.get("from").map(String::as_str),
        params.get("to").map(String::as_str),
        chrono::Utc::now(),
    )?;
    let max_points = max_points(number(&params, "max_points")?)?;
    let series = history::series(&api.history, entry, &id, range, max_points).await?;
    Ok(Json(
        json!({ "vehicle_id": id, "from_us": range.from_us, "to_us": range.to_us, "series": series }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    signals: Vec<SignalRef>,
    start_time: Option<String>,
    end_time: Option<String>,
    max_points: Option<usize>,
}

async fn query<H: History, T, A>(
    State(api): Shared<H, T, A>,
    Path(id): Path<String>,
    body: Result<Json<QueryBody>, JsonRejection>,
) -> Answer {
    let id = vehicle_id(&id)?;
    let Json(body) = body.map_err(|e| ApiError {
        field: Some("body".into()),
        ..ApiError::new(StatusCode::BAD_REQUEST, e.body_text())
    })?;
    if body.signals.is_empty() || body.signals.len() > MAX_SIGNALS {
        return Err(InvalidQuery {
            field: "signals".into(),
            problem: format!("ask for 1 to {MAX_SIGNALS} signals"),
        }
        .into());
    }
    // Every name is checked before any query runs.
    let entries = body
        .signals
        .iter()
        .map(|s| api.catalog.check(s))
        .collect::<Result<Vec<_>, _>>()?;
    let range = TimeRange::parse(body.start_time.as_deref(), body.end_time.as_deref(), chrono::Utc::now())?;
    let max_points = max_points(body.max_points)?;
    let mut series = Vec::with_capacity(entries.len());
    for entry in entries {
        series.push(history::series(&api.history, entry, &id, range, max_points).await?);
    }
    Ok(Json(
        json!({ "vehicle_id": id, "from_us": range.from_us, "to_us": range.to_us, "series": series }),
    ))
}

async fn fleet_stats<H: History, T, A>(
    State(api): Shared<H, T, A>,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    let date = match params.get("date") {
        Some(d) => history::parse_date(d)?,
        None => chrono::Utc::now().date_naive(),
    };
    let stats = api.history.fleet_stats(date).await?;
    Ok(Json(json!({ "date": date.to_string(), "stats": stats })))
}

/// The DBC the catalog comes from: the platform's own, as the decoder's fallback.
pub const BUILT_IN_DBC: &[u8] = include_bytes!("../../../dbc/ev_powertrain.dbc");

/// The catalog of the built-in DBC.
pub fn built_in_catalog() -> Result<Catalog, canopy::dbc::LoadError> {
    let db = canopy::dbc::Database::from_bytes(BUILT_IN_DBC, "ev_powertrain.dbc")?;
    Ok(Catalog::from_database(&db))
}
