//! A fleet of simulated vehicles written straight into the tables, as the
//! telemetry and alerts functions would have written them: each vehicle
//! entered in the fleet's directory, its latest state and one alert. To see
//! the console and the API at fleet scale (`canopy-local up --fleet 10000`)
//! and to bench the fleet-wide reads (`make bench-fleet`).
//!
//! Vehicle `n` is `fleet-000000` …; each was heard a millisecond after the
//! one before, the last just now, and raised its alert then (so the alert
//! feed opens with the last one's, every vehicle counts as alerting, and
//! none is near silent). A quarter of
//! them stand parked, the rest drive, and their states of charge are spread
//! over 0–100 % out of id order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use canopy::adapters::aws::dynamodb::{DynamoAlertLog, DynamoDirectory, DynamoStateTable, client};
use canopy::adapters::contract::{alert, telemetry};
use canopy::domain::access::View;
use canopy::domain::device_id::DeviceId;
use canopy::domain::standing::Standing;
use canopy::domain::telemetry::Telemetry;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::state::LatestStateStore;
use futures::StreamExt;

use crate::stack::Stack;

/// The seeded fleet's vehicle `n`.
pub fn vehicle(n: usize) -> Result<DeviceId> {
    Ok(DeviceId::new(format!("fleet-{n:06}"))?)
}

/// What the fleet's vehicle `n` last reported, at `at_ms` (since the Unix epoch).
fn latest(n: usize, at_ms: i64) -> Result<Telemetry> {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).context("a time of this era")?;
    let driving = Telemetry {
        ts: at,
        received_at_ms: Some(at_ms),
        // Spread, and not in id order, so a sorted page differs from an id-ordered one.
        soc_pct: ((n * 37) % 1000) as f64 / 10.0,
        ..telemetry(&vehicle(n)?, 1, 0)
    };
    // Every fourth vehicle stands, so the parked ones are a quarter of the fleet.
    Ok(match n % 4 {
        0 => Telemetry {
            speed_kph: 0.0,
            pack_current_a: 1.0,
            ..driving
        },
        _ => driving,
    })
}

/// Seeds vehicle `n`, heard at `at_ms`: listed in the fleet's view (alerting),
/// its state, one alert (kept until `expires_s`).
async fn seed(
    n: usize,
    at_ms: i64,
    expires_s: i64,
    state: &impl LatestStateStore,
    directory: &impl VehicleDirectory,
    alerts: &impl AlertLog,
) -> Result<()> {
    let latest = latest(n, at_ms)?;
    let raised = canopy::domain::alert::Alert {
        ts: latest.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ts_us: at_ms * 1000,
        ..alert(&latest.vehicle_id, 1, 0)
    };
    directory
        .alerted(&latest.vehicle_id, &[View::All], Standing::of(&latest))
        .await?;
    state.put_if_newer(&latest, latest.received_at_ms.unwrap_or(0)).await?;
    alerts.record(&raised, &[View::All], expires_s).await?;
    Ok(())
}

/// Writes in flight at once: moto takes DynamoDB's requests one at a time
/// (`services.rs`), so more only queue there.
const SEEDING_AT_ONCE: usize = 4;

/// Seeds `vehicles` vehicles into the tables, the last heard at `now_ms`
/// (since the Unix epoch); how long it took.
pub async fn seed_fleet<S, D, A>(
    vehicles: usize,
    now_ms: i64,
    state: Arc<S>,
    directory: Arc<D>,
    alerts: Arc<A>,
) -> Result<Duration>
where
    S: LatestStateStore + 'static,
    D: VehicleDirectory + 'static,
    A: AlertLog + 'static,
{
    let started = Instant::now();
    let first_ms = now_ms - i64::try_from(vehicles).unwrap_or(0);
    let expires_s = now_ms / 1000 + 30 * 86_400;
    let seeded = futures::stream::iter(0..vehicles)
        .map(|n| {
            let (state, directory, alerts) = (state.clone(), directory.clone(), alerts.clone());
            let at_ms = first_ms + i64::try_from(n).unwrap_or(0) + 1;
            async move { seed(n, at_ms, expires_s, state.as_ref(), directory.as_ref(), alerts.as_ref()).await }
        })
        .buffer_unordered(SEEDING_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    seeded.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(started.elapsed())
}

/// Seeds `vehicles` into a running local stack's tables (as its functions
/// are configured), the newest reporting now; then waits until the live
/// stream's fan-out has taken their changes from the tables' streams, so
/// the stack is as quiet as it will be. How long both took.
pub async fn seed_stack(stack: &Stack, vehicles: usize) -> Result<Duration> {
    let table = |function: &str, variable: &str| -> Result<String> {
        (stack.template.function(function))
            .and_then(|f| f.environment.get(variable).cloned())
            .ok_or_else(|| anyhow::anyhow!("the template's {function} has no {variable}"))
    };
    let delivered = || {
        (stack.live.as_ref()).map_or(0, |live| {
            live.changes_delivered.load(std::sync::atomic::Ordering::Relaxed)
        })
    };
    let before = delivered();
    let started = Instant::now();
    let dynamodb = client(&stack.sdk);
    let index = table("AlertsFunction", "FLEET_INDEX_TABLE")?;
    seed_fleet(
        vehicles,
        chrono::Utc::now().timestamp_millis(),
        Arc::new(DynamoStateTable::new(
            dynamodb.clone(),
            &table("TelemetryFunction", "STATE_TABLE")?,
        )),
        Arc::new(DynamoDirectory::new(dynamodb.clone(), &index)),
        Arc::new(DynamoAlertLog::new(
            dynamodb,
            &table("AlertsFunction", "ALERTS_TABLE")?,
            &index,
        )),
    )
    .await?;
    // Each vehicle's state and alert pass through the fan-out once.
    let changes = 2 * u64::try_from(vehicles).unwrap_or(u64::MAX);
    let settled = Instant::now();
    while stack.live.is_some() && delivered() < before.saturating_add(changes) {
        if settled.elapsed() > STREAMS_SETTLE_WITHIN {
            tracing::warn!(
                delivered = delivered() - before,
                changes,
                "the live stream's fan-out has not taken every seeded change yet"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(started.elapsed())
}

/// How long seeding waits for the fan-out to catch up with the tables' streams.
const STREAMS_SETTLE_WITHIN: Duration = Duration::from_secs(180);
