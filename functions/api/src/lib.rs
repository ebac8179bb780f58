//! The `api` Lambda: the query API as an axum router. The same router runs
//! in Lambda (through `lambda_http`, behind API Gateway) and on the local
//! stack (plain axum).
//!
//! - [`router`]: the routes. Handlers validate, call the domain and map the
//!   outcome to JSON with a status that says what happened ([`error`]).
//! - [`Config`], `Api::from_env` (feature `aws`, on by default): the wiring
//!   the Lambda's `main.rs` uses.
//! - [`history`]: signal history and fleet statistics, with both backends
//!   side by side (Athena in AWS, DataFusion on the local stack).
//! - [`devices`]: the routes of each declared device kind (`/stations`…),
//!   and their OpenAPI paths, from the kind's declaration.
//! - [`catalogs`]: the signals of each vehicle's DBC, which names are checked against.
//! - [`access`]: which vehicles a caller reads; [`quota`]: how many history
//!   queries a minute.
//! - [`extract`]: path and query extractors that reject with JSON errors.
//! - [`console`]: the web console, embedded in the binary and served at `/`;
//!   [`etag`]: 304s for JSON answers that did not change.

pub mod access;
#[cfg(feature = "aws")]
mod aws;
pub mod catalogs;
pub mod console;
pub mod cursor;
pub mod devices;
pub mod error;
pub mod etag;
pub mod extract;
pub mod history;
pub mod quota;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kinds;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::quota::QuotaCounter;
use canopy::ports::state::{LatestState, LatestStateStore};
use canopy::runtime::env::{self, EnvError};
use canopy::services::dbc_cache::DbcSource;

use crate::access::{AccessPolicy, Identity, VehicleGroups};
use crate::catalogs::Catalogs;
use crate::console::ConsoleConfig;
use crate::devices::DeviceReads;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::history::{
    History, HistoryError, InvalidQuery, MAX_SIGNALS, SignalRef, TimeRange, max_points, whole_number,
};
use crate::quota::HistoryQuota;
use serde::Deserialize;
use serde_json::{Value, json};

/// The OpenAPI document of these routes, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

const MAX_PAGE: usize = 100;

/// Every route of [`router`] but the device kinds' ([`devices::route_list`]),
/// as `openapi.json` must list it.
pub const ROUTES: [(&str, &str); 16] = [
    ("GET", "/"),
    ("GET", "/docs"),
    ("GET", "/assets/{file}"),
    ("GET", "/config.json"),
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/signals"),
    ("GET", "/alerts"),
    ("GET", "/vehicles"),
    ("GET", "/vehicles/{id}"),
    ("GET", "/vehicles/{id}/alerts"),
    ("GET", "/vehicles/{id}/signals"),
    ("GET", "/vehicles/{id}/trips"),
    ("GET", "/vehicles/{id}/signals/{message}/{signal}"),
    ("POST", "/vehicles/{id}/query"),
    ("GET", "/fleet/stats"),
];

/// Configuration from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `STATE_TABLE`: each vehicle's latest state.
    pub state_table: String,
    /// `ALERTS_TABLE`: the alert log.
    pub alerts_table: String,
    /// `DEVICE_STATE_TABLE`: each declared device's latest state.
    pub device_state_table: String,
    /// `ATHENA_WORKGROUP`: where history queries run.
    pub workgroup: String,
    /// `GLUE_DATABASE`: the lake's tables.
    pub database: String,
    /// `QUOTA_TABLE`: history queries per user and minute.
    pub quota_table: String,
    /// `DATA_BUCKET`: the lake's bucket, whose `dbc/` holds the DBC files.
    pub data_bucket: String,
    /// `DBC_KEY`, `DBC_REFRESH_SECONDS`, `DBC_STRICT`: as the decoder's, so
    /// both read a vehicle's signals from the same DBC.
    pub dbc: DbcSource,
    /// `HISTORY_QUERIES_PER_MINUTE` (default 60; 0 for no quota).
    pub history_quota: HistoryQuota,
    /// `VEHICLE_GROUPS` (optional): `north=veh-001,veh-002;south=veh-1*`.
    pub vehicle_groups: VehicleGroups,
    /// `CONSOLE_AUTH_DOMAIN` and `CONSOLE_CLIENT_ID` (both or neither): the
    /// console's sign-in; `LIVE_URL`: its live stream.
    pub console: ConsoleConfig,
    /// `HISTORY_DEADLINE_SECONDS` (default 25, at most 28): one request's
    /// history queries all end by then, below the function's 29 s timeout.
    pub history_deadline: Duration,
    /// `CURSOR_SECRET`: the key listings' cursors are sealed under, the same
    /// for every instance; unset (one process: the local stack), a key of
    /// the process's own.
    pub cursor_secret: Option<String>,
}

impl Config {
    /// From `vars`: the process environment in Lambda, the template's map on the local stack.
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        Ok(Self {
            state_table: env::required(vars, "STATE_TABLE")?,
            alerts_table: env::required(vars, "ALERTS_TABLE")?,
            device_state_table: env::required(vars, "DEVICE_STATE_TABLE")?,
            workgroup: env::required(vars, "ATHENA_WORKGROUP")?,
            database: env::required(vars, "GLUE_DATABASE")?,
            quota_table: env::required(vars, "QUOTA_TABLE")?,
            data_bucket: env::required(vars, "DATA_BUCKET")?,
            dbc: DbcSource::from_vars(vars)?,
            history_quota: HistoryQuota {
                per_minute: env::parse_or(vars, "HISTORY_QUERIES_PER_MINUTE", HistoryQuota::DEFAULT_PER_MINUTE)?,
            },
            vehicle_groups: VehicleGroups::parse(&env::or(vars, "VEHICLE_GROUPS", "")).map_err(|problem| EnvError {
                name: "VEHICLE_GROUPS".into(),
                problem,
            })?,
            console: ConsoleConfig::from_vars(vars)?,
            history_deadline: {
                let seconds: u64 = env::parse_or(vars, "HISTORY_DEADLINE_SECONDS", 25)?;
                if !(1..=28).contains(&seconds) {
                    return Err(EnvError {
                        name: "HISTORY_DEADLINE_SECONDS".into(),
                        problem: format!("{seconds} is not within 1..=28 (the function times out at 29 s)"),
                    });
                }
                Duration::from_secs(seconds)
            },
            cursor_secret: vars.var("CURSOR_SECRET").filter(|s| !s.trim().is_empty()),
        })
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("the built-in DBC: {0}")]
    Dbc(#[from] canopy::format::dbc::LoadError),
}

/// What the handlers share: history, the latest-state tables, the alert log,
/// the catalog names are checked against, who reads what, and the quota.
pub struct Api<H, S, A, Q> {
    pub history: H,
    pub state: S,
    pub alerts: A,
    /// The declared devices' latest states, and their kinds.
    pub devices: Box<dyn DeviceReads>,
    pub kinds: Kinds,
    pub catalogs: Box<dyn Catalogs>,
    pub access: AccessPolicy,
    pub quota_counter: Q,
    pub history_quota: HistoryQuota,
    /// What `/config.json` tells the console: sign-in and the live stream.
    pub console: ConsoleConfig,
    /// When a request's history queries are stopped and answered with a 504.
    pub history_deadline: Duration,
    /// Seals the listings' cursors.
    pub cursors: cursor::Cursors,
}

impl<H: History, S, A, Q: QuotaCounter> Api<H, S, A, Q> {
    /// Runs a request's history `work` under the deadline. Past it, or when
    /// a query fails (the others are then dropped), what was started is
    /// stopped; past it the answer is a 504 naming every query.
    async fn run_history<T>(&self, work: impl Future<Output = Result<T, HistoryError>>) -> Result<T, ApiError> {
        let (answer, ids) = history::within(self.history_deadline, work).await;
        match answer {
            Some(Ok(done)) => Ok(done),
            Some(Err(e)) => {
                self.history.cancel(&ids).await;
                Err(e.into())
            }
            None => {
                self.history.cancel(&ids).await;
                Err(ApiError::deadline(ids, self.history_deadline))
            }
        }
    }

    /// Counts one history query of `identity` against its quota (429 when spent).
    async fn admit_history(&self, identity: &Identity) -> Result<(), ApiError> {
        let now_s = chrono::Utc::now().timestamp();
        self.history_quota.admit(&self.quota_counter, identity, now_s).await
    }
}

pub fn router<H, S, A, Q>(api: Arc<Api<H, S, A, Q>>) -> Router
where
    H: History + 'static,
    S: LatestStateStore + 'static,
    A: AlertLog + 'static,
    Q: QuotaCounter + 'static,
{
    let console_config = api.console.clone();
    let page_config = Arc::new(api.console.clone());
    let page = move |request: axum::http::HeaderMap| {
        let config = page_config.clone();
        async move { console::page(request, &config).await }
    };
    let document: Arc<str> = Arc::from(openapi_document(api.access.identity_required, &api.kinds));
    let kinds: Vec<canopy::domain::kind::Kind> = api.kinds.iter().cloned().collect();
    let app = Router::new()
        .route("/", get(page.clone()))
        .route("/docs", get(page))
        .route("/assets/{*file}", get(console::file))
        .route(
            "/config.json",
            get(move || async move { console::config_json(&console_config) }),
        )
        .route("/health", get(health))
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document.to_string()) }),
        )
        .route("/signals", get(signals::<H, S, A, Q>))
        .route("/alerts", get(fleet_alerts::<H, S, A, Q>))
        .route("/vehicles", get(vehicles::<H, S, A, Q>))
        .route("/vehicles/{id}", get(vehicle::<H, S, A, Q>))
        .route("/vehicles/{id}/alerts", get(alerts::<H, S, A, Q>))
        .route("/vehicles/{id}/signals", get(vehicle_signals::<H, S, A, Q>))
        .route("/vehicles/{id}/trips", get(vehicle_trips::<H, S, A, Q>))
        .route(
            "/vehicles/{id}/signals/{message}/{signal}",
            get(signal_history::<H, S, A, Q>),
        )
        .route("/vehicles/{id}/query", post(query::<H, S, A, Q>))
        .route("/fleet/stats", get(fleet_stats::<H, S, A, Q>));
    devices::routes(app, &kinds)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route (GET /openapi.json lists them)") })
        // axum keeps the Allow header; the body is JSON like every other error.
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("this route does not answer {method} (the Allow header says what it answers)"),
            )
        })
        .layer(axum::middleware::from_fn(etag::etag))
        .with_state(api)
}

type Answer = Result<Json<Value>, ApiError>;
type Shared<H, S, A, Q> = State<Arc<Api<H, S, A, Q>>>;

/// A vehicle id from the path, when the caller may read it.
fn readable_vehicle<H, S, A, Q>(api: &Api<H, S, A, Q>, identity: &Identity, id: &str) -> Result<DeviceId, ApiError> {
    let scope = access::scope(&api.access, identity)?;
    let id = vehicle_id(id)?;
    access::check(&scope, &id)?;
    Ok(id)
}

fn vehicle_id(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::new(id).map_err(|e| {
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

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The document as served: [`OPENAPI`] where requests must be signed in
/// (API Gateway's JWT authorizer in AWS); without its security requirement
/// where nobody signs in (the local stack), so that a client generated from
/// it sends what that server takes.
pub fn openapi_document(signed_in: bool, kinds: &Kinds) -> String {
    let mut doc: Value = serde_json::from_str(OPENAPI).unwrap_or_else(|_| json!({}));
    let kinds: Vec<canopy::domain::kind::Kind> = kinds.iter().cloned().collect();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        paths.extend(devices::openapi_paths(&kinds));
    }
    if signed_in {
        return serde_json::to_string_pretty(&doc).unwrap_or_else(|_| OPENAPI.to_string());
    }
    if let Some(doc) = doc.as_object_mut() {
        doc.remove("security");
        doc.insert("x-canopy-local".into(), json!(true));
    }
    if let Some(description) = doc.pointer_mut("/info/description")
        && let Some(text) = description.as_str()
    {
        *description = json!(format!(
            "{text} Served by the local stack: nobody signs in there, so this copy declares no security."
        ));
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| OPENAPI.to_string())
}

/// The fleet's signals: those of vehicles without a DBC of their own.
async fn signals<H, S, A, Q>(State(api): Shared<H, S, A, Q>, identity: Identity) -> Answer {
    access::scope(&api.access, &identity)?;
    Ok(Json(json!({ "signals": api.catalogs.fleet().await?.entries() })))
}

/// The signals of the DBC a vehicle's data is decoded with.
async fn vehicle_signals<H, S, A, Q>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
) -> Answer {
    let id = readable_vehicle(&api, &identity, &id)?;
    let catalog = api.catalogs.for_vehicle(&id).await?;
    Ok(Json(json!({ "vehicle_id": id, "signals": catalog.entries() })))
}

/// The latest states of vehicles in `scope`, listed from `after`: up to
/// `want` of them, from at most `max_pages` table pages; and where the next
/// listing starts.
async fn states_in_scope<S: LatestStateStore>(
    state: &S,
    scope: &access::Scope,
    mut after: Option<String>,
    want: usize,
    max_pages: usize,
) -> Result<(Vec<LatestState>, Option<String>), ApiError> {
    let mut items = Vec::new();
    for _ in 0..max_pages {
        let page = state.list((want - items.len()).min(MAX_PAGE), after.as_deref()).await?;
        items.extend(
            page.items
                .into_iter()
                .filter(|s| scope.allows(s.telemetry.vehicle_id.as_str())),
        );
        after = page.next;
        if after.is_none() || items.len() >= want {
            break;
        }
    }
    Ok((items, after))
}

/// Table pages read for one answer at most: a caller in a small group of a
/// large fleet gets a short page and a `next` rather than a slow answer.
const MAX_PAGES_PER_LISTING: usize = 10;

async fn vehicles<H, S: LatestStateStore, A, Q>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
) -> Answer {
    let scope = access::scope(&api.access, &identity)?;
    let limit = page_limit(&params)?;
    // The cursor is sealed: where the table's scan stopped may be another
    // group's vehicle, which this caller may not learn of.
    let after = params.get("after").map(|a| api.cursors.open("after", a)).transpose()?;
    let (states, after) = states_in_scope(&api.state, &scope, after, limit, MAX_PAGES_PER_LISTING).await?;
    let items: Vec<Value> = states.iter().map(LatestState::to_json).collect();
    let next = after.map(|position| api.cursors.seal(&position));
    Ok(Json(json!({ "vehicles": items, "next": next })))
}

async fn vehicle<H, S: LatestStateStore, A, Q>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
) -> Answer {
    let id = readable_vehicle(&api, &identity, &id)?;
    match api.state.get(&id).await? {
        Some(state) => Ok(Json(state.to_json())),
        None => Err(access::no_vehicle(&id)),
    }
}

async fn alerts<H, S, A: AlertLog, Q>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
) -> Answer {
    let id = readable_vehicle(&api, &identity, &id)?;
    let limit = page_limit(&params)?;
    let before = before_us(&params)?;
    let alerts = api.alerts.alerts(id.as_str(), limit, before).await?;
    Ok(Json(json!({ "vehicle_id": id, "alerts": alerts })))
}

/// `from` and `to`: the range a history route reads.
fn range_of(params: &HashMap<String, String>) -> Result<TimeRange, ApiError> {
    Ok(TimeRange::parse(
        params.get("from").map(String::as_str),
        params.get("to").map(String::as_str),
        chrono::Utc::now(),
    )?)
}

/// `before`: only alerts older than this time.
fn before_us(params: &HashMap<String, String>) -> Result<Option<i64>, ApiError> {
    let Some(s) = params.get("before") else { return Ok(None) };
    let range = TimeRange::parse(None, Some(s), chrono::Utc::now()).map_err(|e| InvalidQuery {
        field: "before".into(),
        problem: e.problem,
    })?;
    Ok(Some(range.to_us))
}

/// Vehicles whose logs `/alerts` reads at most, and how many at once.
const MAX_FLEET_ALERT_VEHICLES: usize = 5_000;
const ALERT_READS_AT_ONCE: usize = 16;

/// The fleet's newest alerts: each vehicle in scope's newest `limit`,
/// merged. One query per vehicle keeps the alert log keyed by vehicle (the
/// alerts function's writes stay simple); a fleet past a few thousand
/// vehicles wants an index by time instead.
async fn fleet_alerts<H, S: LatestStateStore, A: AlertLog, Q>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
) -> Answer {
    let scope = access::scope(&api.access, &identity)?;
    let limit = page_limit(&params)?;
    let before = before_us(&params)?;
    let (states, _) = states_in_scope(&api.state, &scope, None, MAX_FLEET_ALERT_VEHICLES, usize::MAX).await?;
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
    Ok(Json(json!({ "alerts": alerts })))
}

async fn signal_history<H: History, S, A, Q: QuotaCounter>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath((id, message, signal)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
) -> Answer {
    let id = readable_vehicle(&api, &identity, &id)?;
    let catalog = api.catalogs.for_vehicle(&id).await?;
    let entry = catalog.check(&SignalRef {
        message_name: message,
        signal_name: signal,
    })?;
    let range = range_of(&params)?;
    let max_points = max_points(number(&params, "max_points")?)?;
    api.admit_history(&identity).await?;
    let series = api
        .run_history(history::series(&api.history, entry, &id, range, max_points))
        .await?;
    Ok(Json(
        json!({ "vehicle_id": id, "from_us": range.from_us, "to_us": range.to_us, "series": series }),
    ))
}

/// A vehicle's trips in the range, each with the alerts raised on the way.
async fn vehicle_trips<H: History, S, A: AlertLog, Q: QuotaCounter>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
) -> Answer {
    let id = readable_vehicle(&api, &identity, &id)?;
    let range = range_of(&params)?;
    let gap_us = history::trips::gap_us(number(&params, "gap_s")?)?;
    api.admit_history(&identity).await?;
    let rows = api.run_history(api.history.trips(&id, range, gap_us)).await?;
    let alerts = alerts_in(&api.alerts, &id, range).await?;
    Ok(Json(json!({
        "vehicle_id": id,
        "from_us": range.from_us,
        "to_us": range.to_us,
        "gap_s": gap_us / 1_000_000,
        "trips": history::trips::trips(&rows, &alerts),
    })))
}

/// Pages of the alert log read for one range at most (cooldowns keep alerts
/// sparse: one per rule per window).
const MAX_ALERT_PAGES: usize = 10;

/// A vehicle's alerts in `range`, newest first, up to [`MAX_ALERT_PAGES`] pages.
async fn alerts_in<A: AlertLog>(
    log: &A,
    vehicle: &DeviceId,
    range: TimeRange,
) -> Result<Vec<canopy::domain::alert::Alert>, ApiError> {
    let mut found: Vec<canopy::domain::alert::Alert> = Vec::new();
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    signals: Vec<SignalRef>,
    start_time: Option<String>,
    end_time: Option<String>,
    /// A JSON number: `800.0` is the integer 800, as JSON Schema counts it.
    max_points: Option<f64>,
}

async fn query<H: History, S, A, Q: QuotaCounter>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<QueryBody>, JsonRejection>,
) -> Answer {
    let id = readable_vehicle(&api, &identity, &id)?;
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
    let catalog = api.catalogs.for_vehicle(&id).await?;
    let entries = body
        .signals
        .iter()
        .map(|s| catalog.check(s))
        .collect::<Result<Vec<_>, _>>()?;
    let range = TimeRange::parse(body.start_time.as_deref(), body.end_time.as_deref(), chrono::Utc::now())?;
    let max_points = max_points(whole_number("max_points", body.max_points)?)?;
    api.admit_history(&identity).await?;
    // All at once, under one deadline: one after another, 20 slow queries
    // would outlast the function.
    let queries = entries
        .into_iter()
        .map(|entry| history::series(&api.history, entry, &id, range, max_points));
    let series = api.run_history(futures::future::try_join_all(queries)).await?;
    Ok(Json(
        json!({ "vehicle_id": id, "from_us": range.from_us, "to_us": range.to_us, "series": series }),
    ))
}

async fn fleet_stats<H: History, S, A, Q: QuotaCounter>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
) -> Answer {
    let scope = access::scope(&api.access, &identity)?;
    let date = match params.get("date") {
        Some(d) => history::parse_date(d)?,
        None => chrono::Utc::now().date_naive(),
    };
    api.admit_history(&identity).await?;
    let mut stats = api.history.fleet_stats(date).await?;
    stats.retain(|s| scope.allows(&s.vehicle_id));
    Ok(Json(json!({ "date": date.to_string(), "stats": stats })))
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
