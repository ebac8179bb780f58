//! The OpenAPI document, generated: each route's operation from its
//! handler's `#[utoipa::path]` and its types ([`crate::params`] and the
//! answers' structs), gathered as the router is built
//! ([`crate::routes::documented`]); the device kinds' paths from their
//! declarations ([`devices`]); and the ingest function's route, which the
//! same API Gateway serves (`ingest.json`).
//!
//! `functions/api/openapi.json` is this document for the repository's
//! kinds, written out for readers and for the console's generated types; a
//! test fails when it and the code disagree.

pub mod devices;
mod state;

use std::collections::BTreeMap;

use canopy::domain::kind::Kinds;
use serde_json::{Value, json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{self as oa, RefOr, Response};
use utoipa::{IntoResponses, Modify, OpenApi, ToResponse};

pub use state::VehicleState;

/// What the document says before the routes add their operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Canopy query API",
        version = "1.0.0",
        description = "Vehicles, latest state, alerts, the signal catalog, signal history downsampled with LTTB, and fleet statistics. Errors are JSON: {\"error\": {\"status\", \"message\", \"field\"?, \"query_id\"?, \"request_id\"?}}; 400 bad input (no query runs), 401 no access token, 403 the user is in no Canopy group, 404 unknown vehicle (or one outside the user's vehicle groups), message, signal or route, 429 the user's history queries this minute are spent (Retry-After says when to retry), 502 query or table failure, 504 the request's history queries, run at once, did not all finish within its deadline (25 s; each is stopped, and all are named in query_ids). POST /ingest is for devices, not people: it takes a device key (x-api-key) instead of a token, and answers 202 with a result per message, 400 for a body that is not JSON messages or is too large, 401 no or malformed key, 403 an unknown or revoked key or a message of another device (nothing is queued), 429 the key's requests this minute are spent, 503 something valid was not queued (send the request again: what was queued comes back a duplicate)."
    ),
    security(("jwt" = [])),
    paths(crate::routes::console::asset),
    components(
        schemas(crate::error::ErrorBody, crate::history::devices::FieldStats, canopy::domain::lttb::Point),
        responses(Error, TooManyRequests)
    ),
    modifiers(&Jwt)
)]
pub struct ApiDoc;

/// Cognito's access tokens, which API Gateway's JWT authorizer checks.
struct Jwt;

impl Modify for Jwt {
    fn modify(&self, openapi: &mut oa::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some("A Cognito user pool access token (the local stack needs none)".into());
        components.add_security_scheme("jwt", SecurityScheme::Http(bearer));
    }
}

/// An error (any status but 2xx): [`crate::error::ErrorBody`].
pub struct Error;

impl<'r> ToResponse<'r> for Error {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = oa::ResponseBuilder::new()
            .description("An error")
            .content(
                "application/json",
                oa::Content::new(Some(oa::Ref::from_schema_name("Error"))),
            )
            .build();
        ("Error", response.into())
    }
}

/// A 429: the caller's history quota for this minute is spent.
pub struct TooManyRequests;

impl<'r> ToResponse<'r> for TooManyRequests {
    fn response() -> (&'r str, RefOr<Response>) {
        let seconds = oa::ObjectBuilder::new()
            .schema_type(oa::schema::Type::Integer)
            .minimum(Some(1))
            .maximum(Some(60));
        let response = oa::ResponseBuilder::new()
            .description("The user's history quota for this minute (HistoryQueriesPerMinute) is spent")
            .header(
                "Retry-After",
                oa::HeaderBuilder::new()
                    .schema(Some(seconds))
                    .description(Some("Seconds until the next minute's quota"))
                    .build(),
            )
            .content(
                "application/json",
                oa::Content::new(Some(oa::Ref::from_schema_name("Error"))),
            )
            .build();
        ("TooManyRequests", response.into())
    }
}

/// The error answers of a set of statuses: each the `Error` response, 429
/// the `TooManyRequests` one.
fn errors(codes: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    codes
        .iter()
        .map(|code| {
            let response = if *code == 429 { "TooManyRequests" } else { "Error" };
            (code.to_string(), RefOr::Ref(oa::Ref::from_response_name(response)))
        })
        .collect()
}

/// Declares a set of error answers a route may give, by status.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident = [$($code:literal),*]) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                errors(&[$($code),*])
            }
        }
    };
}

error_set!(
    /// A listing of the fleet: bad input, not signed in, in no group, a table failed or was slow.
    ListErrors = [400, 401, 403, 502, 504]
);
error_set!(
    /// A read of one vehicle: as a listing's, and 404 for a vehicle (or name) not found.
    ReadErrors = [400, 401, 403, 404, 502, 504]
);
error_set!(
    /// A read that runs history queries: as a vehicle read's, and 429 past the quota.
    HistoryErrors = [400, 401, 403, 404, 429, 502, 504]
);
error_set!(
    /// The fleet's statistics: a listing's errors, and 429 past the quota.
    StatsErrors = [400, 401, 403, 429, 502, 504]
);

/// The device kinds' routes, by their statuses (as JSON: those paths are built as JSON).
pub(crate) fn error_json(codes: &[u16]) -> serde_json::Map<String, Value> {
    errors(codes)
        .into_iter()
        .filter_map(|(code, response)| Some((code, serde_json::to_value(response).ok()?)))
        .collect()
}

/// The ingest function's route and its schemas, on the same API Gateway.
const INGEST: &str = include_str!("ingest.json");

/// The document as served. `routes` is what the router gathered; to it
/// come the kinds' paths and the ingest route. Where requests must be
/// signed in (API Gateway's JWT authorizer in AWS) it keeps its security
/// requirement; where nobody signs in (the local stack) it drops it, so a
/// client generated from it sends what that server takes.
pub fn document(routes: oa::OpenApi, signed_in: bool, kinds: &Kinds) -> String {
    let mut doc = serde_json::to_value(&routes).unwrap_or_else(|_| json!({}));
    let kinds: Vec<_> = kinds.iter().cloned().collect();
    merge(&mut doc, "paths", devices::paths(&kinds));
    if let Ok(Value::Object(ingest)) = serde_json::from_str::<Value>(INGEST) {
        for (section, part) in ingest {
            match (section.as_str(), part) {
                ("paths", Value::Object(paths)) => merge(&mut doc, "paths", paths),
                ("components", Value::Object(components)) => {
                    for (kind, entries) in components {
                        if let Value::Object(entries) = entries {
                            merge(&mut doc, &format!("components/{kind}"), entries);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if !signed_in {
        local(&mut doc);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Adds `entries` to the object at `pointer` (`components/schemas`), made if missing.
fn merge(doc: &mut Value, pointer: &str, entries: serde_json::Map<String, Value>) {
    let mut at = doc;
    for key in pointer.split('/') {
        at = &mut at[key];
        if !at.is_object() {
            *at = json!({});
        }
    }
    if let Some(object) = at.as_object_mut() {
        object.extend(entries);
    }
}

/// The local stack's copy: no security requirement, and it says why.
fn local(doc: &mut Value) {
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
}

#[cfg(test)]
mod tests {
    use canopy::domain::device_id::DeviceId;
    use canopy::domain::kind::Kinds;
    use serde_json::Value;

    /// `openapi.json` is the generated document for the repository's kinds.
    /// After changing a route or a type it answers with, write it again:
    /// `UPDATE_OPENAPI=1 cargo test -p canopy-api --lib openapi`.
    #[test]
    fn openapi_json_is_the_generated_document() {
        let generated = format!("{}\n", crate::routes::document(true, &Kinds::builtin()));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        assert!(
            crate::OPENAPI == generated,
            "{path} is not the document the code generates: run UPDATE_OPENAPI=1 cargo test -p canopy-api --lib openapi"
        );
    }

    /// The attributes spell the id pattern out (an attribute takes a literal):
    /// every id the document declares has the one pattern, and it is the
    /// rule `DeviceId` checks.
    #[test]
    fn every_id_parameter_has_the_pattern_device_ids_are_checked_by() {
        let doc: Value = serde_json::from_str(crate::OPENAPI).unwrap();
        let mut ids = 0;
        for (path, operations) in doc["paths"].as_object().unwrap() {
            for operation in operations.as_object().unwrap().values() {
                for p in operation["parameters"].as_array().into_iter().flatten() {
                    if p["name"] == "id" {
                        ids += 1;
                        assert_eq!(p["schema"]["pattern"], crate::params::ID_PATTERN, "{path}");
                    }
                }
            }
        }
        assert!(ids >= 9, "{ids} id parameters");
        for (id, valid) in [
            ("veh-001", true),
            ("_x", true),
            ("-x", false),
            ("", false),
            ("a b", false),
        ] {
            assert_eq!(DeviceId::new(id).is_ok(), valid, "{id:?}");
        }
        assert!(DeviceId::new("a".repeat(64)).is_ok() && DeviceId::new("a".repeat(65)).is_err());
    }
}
