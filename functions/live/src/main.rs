//! Lambda entry point of `live`: the WebSocket API's `$connect`,
//! `$disconnect` and `$default` routes.

#![recursion_limit = "256"]

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use canopy::runtime::env::Process;
use canopy_live::{Live, handle_route};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let sessions = &Live::sessions(&Process, &sdk)?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Error>(handle_route(sessions, event.payload).await)
        },
    ))
    .await
}
