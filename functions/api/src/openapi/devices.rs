//! The OpenAPI paths of each declared device kind's routes
//! ([`crate::routes::devices`]), from its declaration: a new kind's routes
//! and their schemas need no code.

use canopy::domain::kind::{FieldType, Kind};
use serde_json::{Map, Value, json};

use crate::history::devices::chartable_fields;
use crate::params::ID_PATTERN;
use crate::routes::devices::KindPaths;

/// The paths of every kind's routes.
pub fn paths(kinds: &[Kind]) -> Map<String, Value> {
    let mut paths = Map::new();
    for kind in kinds {
        let routes = KindPaths::of(kind);
        paths.insert(routes.list, list(kind));
        paths.insert(routes.one, one(kind));
        paths.insert(routes.alerts, alerts(kind));
        paths.insert(routes.history, history(kind));
    }
    paths
}

fn list(kind: &Kind) -> Value {
    let after = json!({
        "name": "after", "in": "query", "required": false,
        "description": "List the devices after this id (the previous page's next)",
        "schema": {"type": "string", "pattern": ID_PATTERN}
    });
    let page = json!({
        "type": "object", "required": [kind.path, "next"],
        "properties": {
            kind.path.as_str(): {"type": "array", "items": state_schema(kind)},
            "next": {"type": ["string", "null"], "description": "The next page's after, if any"}
        }
    });
    operation(
        kind,
        format!("Every {}'s latest state, in id order", kind.name),
        vec![limit(), after],
        answer("Latest states", page, &[400, 401, 403, 502]),
    )
}

fn one(kind: &Kind) -> Value {
    operation(
        kind,
        format!("A {}'s latest state", kind.name),
        vec![id(kind)],
        answer("Latest state", state_schema(kind), &[400, 401, 403, 404, 502]),
    )
}

fn alerts(kind: &Kind) -> Value {
    let before = time("before", "Only alerts before this RFC 3339 time");
    let alerts = json!({
        "type": "object", "required": [kind.id_field, "alerts"],
        "properties": {
            kind.id_field.as_str(): {"type": "string"},
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}
        }
    });
    operation(
        kind,
        format!("A {}'s alerts, newest first", kind.name),
        vec![id(kind), limit(), before],
        answer("Alerts", alerts, &[400, 401, 403, 404, 502]),
    )
}

fn history(kind: &Kind) -> Value {
    let field = json!({
        "name": "field", "in": "path", "required": true, "description": "A number field of the kind",
        "schema": {"type": "string", "enum": chartable_fields(kind)}
    });
    let max_points = json!({
        "name": "max_points", "in": "query", "required": false,
        "description": "Points to reduce to (3-10000, default 1000)",
        "schema": {"type": "integer", "minimum": 3, "maximum": 10000}
    });
    let history = json!({
        "type": "object",
        "required": [kind.id_field, "field", "unit", "from_us", "to_us", "stats", "points"],
        "properties": {
            kind.id_field.as_str(): {"type": "string"},
            "field": {"type": "string"}, "unit": {"type": "string"},
            "from_us": {"type": "integer", "format": "int64"}, "to_us": {"type": "integer", "format": "int64"},
            "stats": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/FieldStats"}]},
            "points": {"type": "array", "items": {"$ref": "#/components/schemas/Point"}}
        }
    });
    let parameters = vec![
        id(kind),
        field,
        time(
            "from",
            "Start (RFC 3339; default a day before to). At most the 31 days before to are read (the answer's from_us says where it starts); a from not before to asks for nothing, answered empty",
        ),
        time("to", "End, exclusive (RFC 3339; default now)"),
        max_points,
    ];
    operation(
        kind,
        format!(
            "A {}'s field over a range, reduced by LTTB, with its statistics",
            kind.name
        ),
        parameters,
        answer(
            "The field's points and statistics",
            history,
            &[400, 401, 403, 404, 429, 502, 504],
        ),
    )
}

fn operation(kind: &Kind, summary: String, parameters: Vec<Value>, responses: Value) -> Value {
    json!({"get": {"summary": summary, "tags": [kind.title], "parameters": parameters, "responses": responses}})
}

/// A 200 with `schema`, and the errors of `codes`.
fn answer(description: &str, schema: Value, codes: &[u16]) -> Value {
    let mut responses = super::error_json(codes);
    responses.insert(
        "200".into(),
        json!({"description": description, "content": {"application/json": {"schema": schema}}}),
    );
    Value::Object(responses)
}

fn id(kind: &Kind) -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": format!("{} id: 1-64 of A-Z a-z 0-9 _ -", kind.title),
        "schema": {"type": "string", "pattern": ID_PATTERN}
    })
}

fn limit() -> Value {
    json!({
        "name": "limit", "in": "query", "required": false, "description": "Page size (1-100, default 50)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100}
    })
}

fn time(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
        "schema": {"type": "string", "format": "date-time"}})
}

/// A device's latest state, as [`canopy::ports::device_state::DeviceState::to_json`] writes it.
fn state_schema(kind: &Kind) -> Value {
    let mut properties = Map::new();
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
        schema["description"] = described(&f.description, &f.unit).into();
        properties.insert(f.name.clone(), schema);
    }
    properties.insert("received_at_ms".into(), json!({"type": ["integer", "null"]}));
    properties.insert("updated_at_ms".into(), json!({"type": "integer"}));
    let mut required: Vec<&str> = vec!["kind", &kind.id_field, "ts", "seq", "received_at_ms", "updated_at_ms"];
    required.extend(kind.fields.iter().filter(|f| f.required).map(|f| f.name.as_str()));
    json!({"type": "object", "description": kind.title, "required": required, "properties": properties})
}

/// A field's description with its unit, when it has one.
pub(crate) fn described(description: &str, unit: &str) -> String {
    match unit {
        "" => description.to_string(),
        unit => format!("{description} ({unit})"),
    }
}
