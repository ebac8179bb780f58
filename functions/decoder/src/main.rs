//! Lambda entry point of `decoder`: wires the runtime to [`canopy_decoder::Decoder`].

// The decode future nests the SDK's, Parquet's and the runtime's futures deeply.
#![recursion_limit = "256"]

use canopy::aws::s3::S3Store;
use canopy_decoder::{Config, Decoder};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::logging::init_json();
    let config = Config::from_env()?;
    let sdk = canopy::aws::config().await;
    let decoder = Decoder::new(S3Store::new(&sdk, &config.bucket), config)?;
    let decoder = &decoder;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        decoder.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
