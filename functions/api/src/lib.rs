//! The `api` Lambda: the query API as an axum router. The same router runs
//! in Lambda (through `lambda_http`, behind API Gateway) and on the local
//! stack (plain axum).
//!
//! - [`routes`]: a file per resource; each handler parses its typed path
//!   and query ([`params`]), calls the domain and answers a typed body, or
//!   an [`error`] with a status that says what happened.
//! - [`openapi`]: the document, generated from those types and the device
//!   kinds' declarations.
//! - [`app::Api`]: what the routes share; [`ports`]: the reads it makes,
//!   as trait objects over any adapter.
//! - [`Config`], `Api::from_env` (feature `aws`, on by default): the wiring
//!   the Lambda's `main.rs` uses.
//! - [`history`]: signal history and fleet statistics: charts read from the
//!   lake's objects ([`history::lake`], in AWS and locally), the rest with
//!   Athena in AWS and DataFusion on the local stack.
//! - [`catalogs`]: the signals of each vehicle's DBC, which names are checked against.
//! - [`access`]: which vehicles a caller reads; [`quota`]: how many history
//!   queries a minute; [`cursor`]: the listings' sealed cursors.
//! - [`extract`]: path and query extractors that reject with JSON errors.
//! - [`console`]: the web console, embedded in the binary and served at `/`;
//!   [`etag`]: 304s for JSON answers that did not change.

pub mod access;
pub mod app;
#[cfg(feature = "aws")]
mod aws;
pub mod catalogs;
pub mod config;
pub mod console;
pub mod cursor;
pub mod error;
pub mod etag;
pub mod extract;
pub mod history;
pub mod openapi;
pub mod params;
pub mod ports;
pub mod quota;
pub mod raw;
pub mod routes;

pub use app::Api;
pub use config::{Config, StartError};
pub use routes::router;

/// The generated document as written to `functions/api/openapi.json`: the
/// repository's device kinds, signed in (as API Gateway serves it).
pub const OPENAPI: &str = include_str!("../openapi.json");

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
