//! Lambda entry point of `compactor`: an EventBridge schedule invokes it
//! (every 5 minutes in the template); each invocation is one compaction run
//! as of the time it starts.

use canopy::runtime::env::Process;
use canopy_decoder::compact::Compactor;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let compactor = &Compactor::from_env(&Process, &sdk)?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let report = compactor.run(chrono::Utc::now().timestamp_micros()).await?;
        Ok::<Value, Error>(json!({ "compacted": report.compacted.len(), "deleted": report.deleted }))
    }))
    .await
}
