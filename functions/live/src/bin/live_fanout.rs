//! Lambda entry point of `live-fanout`: the state table's and the alert
//! log's DynamoDB streams, pushed to the live stream's subscribers. An
//! invocation ends when nothing it held for a connection is left to send
//! (at most one interval later): the next batch waits for it, which keeps
//! each connection to a message per interval.

#![recursion_limit = "256"]

use aws_lambda_events::event::dynamodb::Event;
use canopy::runtime::env::Process;
use canopy_live::{Live, changes_of};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let fanout = &Live::fanout(&Process, &sdk)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let now_ms = chrono::Utc::now().timestamp_millis();
        fanout.deliver(&changes_of(&event.payload), now_ms).await?;
        fanout.drain().await;
        Ok::<_, Error>(())
    }))
    .await
}
