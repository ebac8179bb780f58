//! The routes of each declared device kind ([`canopy::domain::kind`]),
//! made from its declaration: for `path = "stations"`,
//!
//! - `GET /stations`: the devices' latest states, in id order, paged;
//! - `GET /stations/{id}`: one device's latest state;
//! - `GET /stations/{id}/alerts`: its alerts, newest first;
//! - `GET /stations/{id}/history/{field}`: a number field over a range,
//!   reduced by LTTB, with exact statistics of the range.
//!
//! [`openapi_paths`] documents the same routes from the same declaration,
//! so a new kind's routes and their schemas need no code. A device kind is
//! readable by every signed-in member of a group; vehicle groups restrict
//! vehicles only.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use canopy::domain::device::stream;
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::{FieldType, Kind};
use canopy::domain::lttb::Point;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::device_state::{DeviceState, DeviceStateStore};
use canopy::ports::quota::QuotaCounter;
use canopy::ports::{Page, TableError};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::access::{self, Identity};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::history::devices::{FieldStats, chartable, chartable_fields, reduce};
use crate::history::{History, InvalidQuery, max_points};
use crate::{Answer, Api, before_us, number, page_limit, range_of};

/// The latest states of declared devices, as the API reads them.
pub trait DeviceReads: Send + Sync {
    fn list<'a>(
        &'a self,
        kind: &'a str,
        limit: usize,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page<DeviceState>, TableError>>;
    fn get<'a>(&'a self, kind: &'a str, id: &'a str) -> BoxFuture<'a, Result<Option<DeviceState>, TableError>>;
}

impl<T: DeviceStateStore> DeviceReads for T {
    fn list<'a>(
        &'a self,
        kind: &'a str,
        limit: usize,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page<DeviceState>, TableError>> {
        Box::pin(DeviceStateStore::list(self, kind, limit, after))
    }
    fn get<'a>(&'a self, kind: &'a str, id: &'a str) -> BoxFuture<'a, Result<Option<DeviceState>, TableError>> {
        Box::pin(DeviceStateStore::get(self, kind, id))
    }
}

/// The routes of every kind of `api.kinds`, added to `router`.
pub fn routes<H, S, A, Q>(mut router: Router<Arc<Api<H, S, A, Q>>>, kinds: &[Kind]) -> Router<Arc<Api<H, S, A, Q>>>
where
    H: History + 'static,
    S: Send + Sync + 'static,
    A: AlertLog + 'static,
    Q: QuotaCounter + 'static,
{
    for kind in kinds {
        let k = Arc::new(kind.clone());
        let base = format!("/{}", kind.path);
        let (list, one, alerts, history) = (k.clone(), k.clone(), k.clone(), k);
        router = router
            .route(
                &base,
                get(move |state, identity, query| device_list(state, identity, query, list)),
            )
            .route(
                &format!("{base}/{{id}}"),
                get(move |state, identity, path| device(state, identity, path, one)),
            )
            .route(
                &format!("{base}/{{id}}/alerts"),
                get(move |state, identity, path, query| device_alerts(state, identity, path, query, alerts)),
            )
            .route(
                &format!("{base}/{{id}}/history/{{field}}"),
                get(move |state, identity, path, query| device_history(state, identity, path, query, history)),
            );
    }
    router
}

/// The method and path of every route of `kinds`, as [`routes`] serves them.
pub fn route_list(kinds: &[Kind]) -> Vec<(&'static str, String)> {
    kinds
        .iter()
        .flat_map(|k| {
            let base = format!("/{}", k.path);
            [
                ("GET", base.clone()),
                ("GET", format!("{base}/{{id}}")),
                ("GET", format!("{base}/{{id}}/alerts")),
                ("GET", format!("{base}/{{id}}/history/{{field}}")),
            ]
        })
        .collect()
}

type Shared<H, S, A, Q> = State<Arc<Api<H, S, A, Q>>>;

fn device_id(field: &str, id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::new(id).map_err(|e| {
        ApiError::from(InvalidQuery {
            field: field.into(),
            problem: e.to_string(),
        })
    })
}

fn no_device(kind: &Kind, id: &DeviceId) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no {} {id}", kind.name))
}

async fn device_list<H, S, A, Q>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
    kind: Arc<Kind>,
) -> Answer {
    access::scope(&api.access, &identity)?;
    let limit = page_limit(&params)?;
    let after = params.get("after").map(|a| device_id("after", a)).transpose()?;
    let page = api
        .devices
        .list(&kind.name, limit, after.as_ref().map(DeviceId::as_str))
        .await?;
    let items: Vec<Value> = page.items.iter().map(|s| s.to_json(&kind.id_field)).collect();
    Ok(Json(json!({ kind.path.as_str(): items, "next": page.next })))
}

/// The device of the path, when the caller may read devices and it exists.
async fn existing<H, S, A, Q>(
    api: &Api<H, S, A, Q>,
    identity: &Identity,
    kind: &Kind,
    id: &str,
) -> Result<(DeviceId, DeviceState), ApiError> {
    access::scope(&api.access, identity)?;
    let id = device_id("id", id)?;
    match api.devices.get(&kind.name, id.as_str()).await? {
        Some(state) => Ok((id, state)),
        None => Err(no_device(kind, &id)),
    }
}

async fn device<H, S, A, Q>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
    kind: Arc<Kind>,
) -> Answer {
    let (_, state) = existing(&api, &identity, &kind, &id).await?;
    Ok(Json(state.to_json(&kind.id_field)))
}

async fn device_alerts<H, S, A: AlertLog, Q>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
    kind: Arc<Kind>,
) -> Answer {
    let (id, _) = existing(&api, &identity, &kind, &id).await?;
    let limit = page_limit(&params)?;
    let before = before_us(&params)?;
    let alerts = api
        .alerts
        .alerts(&stream(&kind.name, id.as_str()), limit, before)
        .await?;
    Ok(Json(json!({ kind.id_field.as_str(): id, "alerts": alerts })))
}

async fn device_history<H: History, S, A, Q: QuotaCounter>(
    State(api): Shared<H, S, A, Q>,
    identity: Identity,
    ApiPath((id, field)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<HashMap<String, String>>,
    kind: Arc<Kind>,
) -> Answer {
    let (id, _) = existing(&api, &identity, &kind, &id).await?;
    // An unknown field is a missing resource, as an unknown signal is.
    let declared = chartable(&kind, &field).map_err(|e| ApiError {
        field: Some("field".into()),
        ..ApiError::new(StatusCode::NOT_FOUND, e.problem)
    })?;
    let range = range_of(&params)?;
    let max_points = max_points(number(&params, "max_points")?)?;
    api.admit_history(&identity).await?;
    let points: Vec<Point> = api
        .run_history(api.history.device_points(&kind, &id, &declared.name, range))
        .await?;
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

/// The OpenAPI paths of every kind's routes, from its declaration.
pub fn openapi_paths(kinds: &[Kind]) -> serde_json::Map<String, Value> {
    let errors = |codes: &[&str]| -> serde_json::Map<String, Value> {
        codes
            .iter()
            .map(|c| (c.to_string(), json!({"$ref": "#/components/responses/Error"})))
            .collect()
    };
    let mut paths = serde_json::Map::new();
    for kind in kinds {
        let id = json!({
            "name": "id", "in": "path", "required": true,
            "description": format!("{} id: 1-64 of A-Z a-z 0-9 _ -", kind.title),
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$"}
        });
        let limit = json!({
            "name": "limit", "in": "query", "required": false, "description": "Page size (1-100, default 50)",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100}
        });
        let state = state_schema(kind);
        let base = format!("/{}", kind.path);
        let answer = |description: &str, schema: Value, codes: &[&str]| {
            let mut responses = errors(codes);
            responses.insert(
                "200".into(),
                json!({"description": description, "content": {"application/json": {"schema": schema}}}),
            );
            Value::Object(responses)
        };
        paths.insert(
            base.clone(),
            json!({"get": {
                "summary": format!("Every {}'s latest state, in id order", kind.name),
                "tags": [kind.title],
                "parameters": [limit, {
                    "name": "after", "in": "query", "required": false,
                    "description": "List the devices after this id (the previous page's next)",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$"}
                }],
                "responses": answer("Latest states", json!({
                    "type": "object", "required": [kind.path, "next"],
                    "properties": {
                        kind.path.as_str(): {"type": "array", "items": state},
                        "next": {"type": ["string", "null"], "description": "The next page's after, if any"}
                    }
                }), &["400", "401", "403", "502"]),
            }}),
        );
        paths.insert(
            format!("{base}/{{id}}"),
            json!({"get": {
                "summary": format!("A {}'s latest state", kind.name),
                "tags": [kind.title],
                "parameters": [id],
                "responses": answer("Latest state", state_schema(kind), &["400", "401", "403", "404", "502"]),
            }}),
        );
        paths.insert(
            format!("{base}/{{id}}/alerts"),
            json!({"get": {
                "summary": format!("A {}'s alerts, newest first", kind.name),
                "tags": [kind.title],
                "parameters": [id, limit, {
                    "name": "before", "in": "query", "required": false,
                    "description": "Only alerts before this RFC 3339 time",
                    "schema": {"type": "string", "format": "date-time"}
                }],
                "responses": answer("Alerts", json!({
                    "type": "object", "required": [kind.id_field, "alerts"],
                    "properties": {kind.id_field.as_str(): {"type": "string"}, "alerts": {"type": "array", "items": {"type": "object"}}}
                }), &["400", "401", "403", "404", "502"]),
            }}),
        );
        let time = |name: &str, what: &str| {
            json!({"name": name, "in": "query", "required": false, "description": what,
                "schema": {"type": "string", "format": "date-time"}})
        };
        paths.insert(
            format!("{base}/{{id}}/history/{{field}}"),
            json!({"get": {
                "summary": format!("A {}'s field over a range, reduced by LTTB, with its statistics", kind.name),
                "tags": [kind.title],
                "parameters": [id, {
                    "name": "field", "in": "path", "required": true, "description": "A number field of the kind",
                    "schema": {"type": "string", "enum": chartable_fields(kind)}
                }, time("from", "Start (RFC 3339; default a day before to)"), time("to", "End, exclusive (RFC 3339; default now)"), {
                    "name": "max_points", "in": "query", "required": false,
                    "description": "Points to reduce to (3-10000, default 1000)",
                    "schema": {"type": "integer", "minimum": 3, "maximum": 10000}
                }],
                "responses": answer("The field's points and statistics", json!({
                    "type": "object",
                    "required": [kind.id_field, "field", "unit", "from_us", "to_us", "stats", "points"],
                    "properties": {
                        kind.id_field.as_str(): {"type": "string"},
                        "field": {"type": "string"}, "unit": {"type": "string"},
                        "from_us": {"type": "integer", "format": "int64"}, "to_us": {"type": "integer", "format": "int64"},
                        "stats": {"oneOf": [{"type": "null"}, {
                            "type": "object", "required": ["count", "min", "max", "mean", "stddev"],
                            "properties": {"count": {"type": "integer"}, "min": {"type": "number"}, "max": {"type": "number"},
                                "mean": {"type": "number"}, "stddev": {"type": "number"}}
                        }]},
                        "points": {"type": "array", "items": {"$ref": "#/components/schemas/Point"}}
                    }
                }), &["400", "401", "403", "404", "429", "502", "504"]),
            }}),
        );
    }
    paths
}

/// A device's latest state, as [`DeviceState::to_json`] writes it.
fn state_schema(kind: &Kind) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert("kind".into(), json!({"type": "string", "enum": [kind.name]}));
    properties.insert(kind.id_field.clone(), json!({"type": "string"}));
    properties.insert("ts".into(), json!({"type": "string", "format": "date-time"}));
    properties.insert("seq".into(), json!({"type": "integer", "minimum": 0}));
    for f in &kind.fields {
        let mut schema = match f.ty {
            FieldType::Integer => json!({"type": "integer"}),
            FieldType::Number => json!({"type": "number"}),
            FieldType::Numbers => json!({"type": "array", "items": {"type": "number"}}),
        };
        let description = match f.unit.as_str() {
            "" => f.description.clone(),
            unit => format!("{} ({unit})", f.description),
        };
        schema["description"] = description.into();
        properties.insert(f.name.clone(), schema);
    }
    properties.insert("received_at_ms".into(), json!({"type": ["integer", "null"]}));
    properties.insert("updated_at_ms".into(), json!({"type": "integer"}));
    let mut required: Vec<&str> = vec!["kind", &kind.id_field, "ts", "seq", "received_at_ms", "updated_at_ms"];
    required.extend(kind.fields.iter().filter(|f| f.required).map(|f| f.name.as_str()));
    json!({"type": "object", "description": kind.title, "required": required, "properties": properties})
}
