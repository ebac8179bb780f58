//! `make bench-telemetry`'s driver: feeds the telemetry handler SQS batches
//! of realistic messages against an endpoint (moto server) and prints what it
//! measured as JSON. tests/bench/telemetry.py starts moto, runs this, and
//! counts the AWS API calls in moto's request log.
//!
//! `bench-telemetry <endpoint> <messages> <vehicles> <batch size>`

use std::time::Instant;

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use canopy::adapters::aws::dynamodb::{DynamoDeviceStateTable, DynamoDirectory, DynamoLedger, DynamoStateTable};
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::access::VehicleGroups;
use canopy::domain::kind::Kinds;
use canopy_local::resources::{create_table, device_state_table, fleet_index_table, ledger_table, state_table};
use canopy_telemetry::TelemetryHandler;
use canopy_telemetry::listing::Listings;
use canopy_telemetry::record::{RecordOptions, Recorder};
use canopy_tests::fixtures::Rng;
use canopy_tests::messages;
use serde_json::{Value, json};

const T0: i64 = 1_700_000_000;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, messages, vehicles, batch] = args.as_slice() else {
        bail!("usage: bench-telemetry <endpoint> <messages> <vehicles> <batch size>");
    };
    let messages: usize = messages.parse().context("messages")?;
    let vehicles: usize = vehicles.parse().context("vehicles")?;
    let batch: usize = batch.parse().context("batch size")?;

    let sdk = canopy_local::services::sdk_config(endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&dynamodb, &state_table("bench-state")).await?;
    create_table(&dynamodb, &ledger_table("bench-ledger")).await?;
    create_table(&dynamodb, &device_state_table("bench-devices")).await?;
    create_table(&dynamodb, &fleet_index_table("bench-index")).await?;
    let store = S3Store::new(&sdk, "bench-telemetry");
    store
        .client()
        .create_bucket()
        .bucket("bench-telemetry")
        .send()
        .await
        .context("create bucket")?;
    let handler = TelemetryHandler::new(Recorder {
        state: DynamoStateTable::new(dynamodb.clone(), "bench-state"),
        listings: Listings::new(
            DynamoDirectory::new(dynamodb.clone(), "bench-index"),
            VehicleGroups::default(),
        ),
        devices: DynamoDeviceStateTable::new(dynamodb.clone(), "bench-devices"),
        ledger: DynamoLedger::new(dynamodb, "bench-ledger"),
        store,
        kinds: Kinds::builtin(),
        options: RecordOptions::default(),
    });

    // Each vehicle publishes once a second; the queue delivers them mixed.
    let mut bodies: Vec<String> = (0..messages)
        .map(|i| {
            let (vehicle, second) = (i % vehicles, (i / vehicles) as i64);
            message(vehicle, second).to_string()
        })
        .collect();
    let mut rng = Rng::new(7);
    for i in (1..bodies.len()).rev() {
        bodies.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }

    // One SQS batch at a time, as one Lambda instance receives them.
    let started = Instant::now();
    let mut retried = 0;
    for (n, chunk) in bodies.chunks(batch).enumerate() {
        let records: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| json!({"messageId": format!("m{n}-{i}"), "body": body}))
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records }))?;
        retried += handler.handle(event).await.batch_item_failures.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "messages": messages,
            "vehicles": vehicles,
            "batch": batch,
            "seconds": seconds,
            "messages_per_second": messages as f64 / seconds,
            "retried": retried,
        })
    );
    Ok(())
}

fn message(vehicle: usize, second: i64) -> Value {
    messages::with(
        messages::telemetry(&format!("veh-{vehicle:03}"), second as u64, T0 + second),
        json!({"soc_pct": 80.0 - second as f64 / 1000.0, "pack_current_a": 42.0,
            "speed_kph": (second % 120) as f64, "received_at": (T0 + second) * 1000 + 150}),
    )
}
