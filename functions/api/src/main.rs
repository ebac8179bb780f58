//! Lambda entry point of `api`: the router behind API Gateway (HTTP API,
//! payload v2), with Athena for history and DynamoDB for state and alerts.

#![recursion_limit = "256"]

use std::sync::Arc;

use canopy::aws::athena::AthenaHistory;
use canopy::aws::dynamodb::{self, DynamoAlertTables, DynamoTelemetryTables};
use canopy::env;
use canopy_api::{Api, built_in_catalog, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    canopy::logging::init_json();
    let vars = &env::Process;
    let state_table = env::required(vars, "STATE_TABLE")?;
    let alerts_table = env::required(vars, "ALERTS_TABLE")?;
    let workgroup = env::required(vars, "ATHENA_WORKGROUP")?;
    let database = env::required(vars, "GLUE_DATABASE")?;
    let sdk = canopy::aws::config().await;
    let client = dynamodb::client(&sdk);
    let api = Api {
        history: AthenaHistory::new(&sdk, &workgroup, &database),
        // The API reads state only; it never claims archive entries in the ledger.
        tables: DynamoTelemetryTables::new(client.clone(), &state_table, ""),
        alerts: DynamoAlertTables::new(client, &alerts_table),
        catalog: built_in_catalog()?,
    };
    lambda_http::run(router(Arc::new(api))).await
}
