//! `list-fleet`: lists every vehicle of the latest-state table in the
//! fleet's directory, with the standing its latest state gives it, as the
//! telemetry function does when a vehicle reports (the silence check then
//! finds the ones long unheard).
//! Run it once after the deploy that adds the directory (a vehicle that
//! reports is listed anyway; one parked for days would not be until then),
//! and after changing `VehicleGroups` if parked vehicles should move at once.
//! Entering a vehicle already listed in its views is one read, so running it
//! again changes nothing. The same command serves AWS (the stack's outputs,
//! credentials from the environment) and the local stack (`--endpoint` its moto).

#![recursion_limit = "256"]

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use canopy::adapters::aws::dynamodb::{self, DynamoDirectory, DynamoStateTable};
use canopy::domain::access::VehicleGroups;
use canopy::domain::standing::Standing;
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::state::LatestStateStore;
use clap::Parser;
use futures::stream::{self, TryStreamExt};
use serde_json::json;

/// Vehicles entered at once.
const CONCURRENCY: usize = 16;

#[derive(Parser)]
#[command(
    name = "list-fleet",
    version,
    about = "List every vehicle with a latest state in the fleet's directory (what the fleet page reads)"
)]
struct Cli {
    /// The latest-state table: the stack's StateTableName output.
    #[arg(long, env = "STATE_TABLE")]
    state_table: String,
    /// The fleet index table: the stack's FleetIndexTableName output.
    #[arg(long, env = "FLEET_INDEX_TABLE")]
    index_table: String,
    /// The stack's VehicleGroups parameter, as deployed ("north=veh-0*;south=veh-1*").
    #[arg(long, env = "VEHICLE_GROUPS", default_value = "")]
    groups: String,
    /// An endpoint in AWS's place (the local stack's moto, `http://127.0.0.1:5000`).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let groups = VehicleGroups::parse(&cli.groups)
        .map_err(anyhow::Error::msg)
        .context("--groups")?;
    let sdk = match &cli.endpoint {
        Some(endpoint) => canopy::adapters::aws::config_for_endpoint(endpoint).await,
        None => canopy::adapters::aws::config().await,
    };
    let client = dynamodb::client(&sdk);
    let states = DynamoStateTable::new(client.clone(), &cli.state_table);
    let directory = DynamoDirectory::new(client, &cli.index_table);
    let (seen, changed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut after: Option<String> = None;
    loop {
        let page = states
            .list(100, after.as_deref())
            .await
            .context("reading the state table")?;
        stream::iter(page.items.iter().map(Ok))
            .try_for_each_concurrent(CONCURRENCY, |state| {
                let (directory, groups, seen, changed) = (&directory, &groups, &seen, &changed);
                async move {
                    let vehicle = &state.telemetry.vehicle_id;
                    let views = groups.views_of(vehicle.as_str());
                    let entered = directory.enter(vehicle, &views, Standing::of(&state.telemetry)).await;
                    seen.fetch_add(1, Ordering::Relaxed);
                    if entered.with_context(|| format!("listing {vehicle}"))? {
                        changed.fetch_add(1, Ordering::Relaxed);
                    }
                    anyhow::Ok(())
                }
            })
            .await?;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let (seen, changed) = (seen.into_inner(), changed.into_inner());
    println!("{}", json!({ "vehicles": seen, "listed_or_moved": changed }));
    Ok(())
}
