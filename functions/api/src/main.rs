//! Lambda entry point of `api`: the router behind API Gateway (HTTP API,
//! payload v2): charts read from the lake, Athena for the other history,
//! DynamoDB for state and alerts.

#![recursion_limit = "256"]

use std::sync::Arc;

use canopy::runtime::env::Process;
use canopy_api::{Api, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let api = Api::from_env(&Process, &sdk)?;
    lambda_http::run(router(Arc::new(api))).await
}
