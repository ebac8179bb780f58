//! Lambda entry point of `decoder`.

// The decode future nests the SDK's, Parquet's and the runtime's futures deeply.
#![recursion_limit = "256"]

use canopy::runtime::env::Process;
use canopy_decoder::Decoder;
use canopy_decoder::event::DecoderEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let decoder = &Decoder::from_env(&Process, &sdk)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<DecoderEvent>| async move {
        decoder.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
