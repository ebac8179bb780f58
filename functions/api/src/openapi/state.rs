//! [`VehicleState`]: a vehicle's latest state as the API answers it, and
//! its schema, made from the measures every message carries
//! ([`Measure`]), as the message itself is.

use std::borrow::Cow;

use canopy::domain::measure::Measure;
use canopy::ports::state::LatestState;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{RefOr, schema};
use utoipa::{PartialSchema, ToSchema};

use super::devices::described;

/// The latest telemetry message (v1) with `received_at_ms` and `updated_at_ms`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct VehicleState(Value);

impl From<&LatestState> for VehicleState {
    fn from(state: &LatestState) -> Self {
        Self(state.to_json())
    }
}

impl PartialSchema for VehicleState {
    fn schema() -> RefOr<Schema> {
        let integer = || ObjectBuilder::new().schema_type(Type::Integer);
        let mut object = ObjectBuilder::new()
            .description(Some(
                "The latest telemetry message (v1) with received_at_ms and updated_at_ms",
            ))
            .property("v", integer().minimum(Some(1)).maximum(Some(1)))
            .property("vehicle_id", ObjectBuilder::new().schema_type(Type::String))
            .property(
                "ts",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .property("seq", integer().minimum(Some(0)));
        let mut required = vec!["v", "vehicle_id", "ts", "seq"];
        for m in Measure::all() {
            let number = ObjectBuilder::new()
                .schema_type(Type::Number)
                .description(Some(described(m.description(), m.unit())));
            object = object.property(m.name(), number);
            if m.is_required() {
                required.push(m.name());
            }
        }
        object = object
            .property(
                "received_at_ms",
                ObjectBuilder::new().schema_type(schema::SchemaType::from_iter([Type::Integer, Type::Null])),
            )
            .property("updated_at_ms", integer());
        required.extend(["received_at_ms", "updated_at_ms"]);
        for name in required {
            object = object.required(name);
        }
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for VehicleState {
    fn name() -> Cow<'static, str> {
        "State".into()
    }
}
