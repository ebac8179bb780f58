//! The template's functions run in process: each binary's handler built from
//! its environment, invoked synchronously by a queue or asynchronously by a
//! rule (retried as Lambda retries, then its dead-letter queue), and the
//! scheduled ones on their schedule.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use canopy::adapters::aws::dynamodb::{
    DynamoAlertLog, DynamoDeviceStateTable, DynamoDirectory, DynamoLedger, DynamoStateTable,
};
use canopy::adapters::aws::iot::IotPublisher;
use canopy::adapters::aws::s3::S3Store;
use canopy::adapters::aws::sns::SnsNotifier;
use canopy::runtime::metrics::MetricsSink;
use canopy_decoder::event::{DecoderEvent, DecoderResponse};
use serde_json::Value;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::counters::StackCounters;
use crate::template::{Template, queue_url};

/// A function's handler, built by the same constructor as its Lambda's `main.rs`.
pub(super) enum Handler {
    Decoder(Box<canopy_decoder::Decoder<S3Store>>),
    Telemetry(
        canopy_telemetry::TelemetryHandler<
            DynamoStateTable,
            DynamoDeviceStateTable,
            DynamoLedger,
            S3Store,
            DynamoDirectory,
        >,
    ),
    Alerts(
        canopy_alerts::AlertsHandler<
            DynamoAlertLog,
            SnsNotifier,
            IotPublisher,
            DynamoDeviceStateTable,
            DynamoDirectory,
        >,
    ),
}

impl Handler {
    /// An SQS event source's batch; the ids of the messages to retry.
    pub(super) async fn invoke_batch(&self, event: SqsEvent) -> Result<Vec<String>, String> {
        let response = match self {
            Handler::Decoder(h) => match h.handle(DecoderEvent::Sqs(event)).await {
                Ok(DecoderResponse::Batch(response)) => response,
                Ok(DecoderResponse::Decoded { .. }) => {
                    return Err("the decoder answered a batch as a notification".into());
                }
                Err(e) => return Err(e.to_string()),
            },
            Handler::Telemetry(h) => h.handle(event).await,
            Handler::Alerts(_) => return Err("the alerts function has no queue".into()),
        };
        Ok(response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect())
    }

    /// An asynchronous invocation (an IoT rule's, a schedule's) with `event`.
    pub(super) async fn invoke_event(&self, event: Value) -> Result<(), String> {
        match self {
            Handler::Alerts(h) => h.handle(event).await.map(|_| ()).map_err(|e| e.to_string()),
            _ => Err("only the alerts function is invoked asynchronously".into()),
        }
    }
}

/// Lambda retries a failed asynchronous invocation after a minute, then
/// after two more; here after a second and two, so a test sees the retries.
pub(super) const ASYNC_RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// A function of the template and its handler, invoked as Lambda invokes it.
pub(super) struct LocalFunction {
    pub(super) logical_id: String,
    pub(super) handler: Handler,
    /// An invocation still running after this long is stopped (its `Timeout`).
    pub(super) timeout: Option<Duration>,
    /// Retries of a failed asynchronous invocation.
    pub(super) async_retries: u32,
    /// Where an asynchronous event goes once its retries are spent.
    pub(super) dead_letter_queue: Option<String>,
}

impl LocalFunction {
    /// `work` under the function's timeout; `None` when it ran out.
    pub(super) async fn within_timeout<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, work).await.ok(),
            None => Some(work.await),
        }
    }

    /// One attempt of an asynchronous invocation, timed and counted.
    pub(super) async fn attempt_event(&self, event: &Value, counters: &StackCounters) -> Result<(), String> {
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let outcome = self
            .within_timeout(self.handler.invoke_event(event.clone()))
            .await
            .unwrap_or_else(|| Err(format!("timed out after {:?}", self.timeout.unwrap_or_default())));
        counters.invoked(&self.logical_id, started.elapsed());
        if outcome.is_err() {
            counters.failed_invocations.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

/// Lambda's asynchronous invocation, as an IoT rule's Lambda action makes
/// it: the caller does not wait; a failed attempt is retried as the
/// function's `EventInvokeConfig` says, and an event whose retries are spent
/// goes to the function's dead-letter queue.
pub(super) fn invoke_async(
    function: Arc<LocalFunction>,
    event: Value,
    sqs: aws_sdk_sqs::Client,
    counters: Arc<StackCounters>,
) {
    counters.async_in_flight.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        run_async(&function, &event, &sqs, &counters).await;
        counters.async_in_flight.fetch_sub(1, Ordering::SeqCst);
    });
}

/// One asynchronous event through its attempts, then to the dead-letter queue.
pub(super) async fn run_async(
    function: &LocalFunction,
    event: &Value,
    sqs: &aws_sdk_sqs::Client,
    counters: &StackCounters,
) {
    let mut attempt = 0usize;
    let error = loop {
        match function.attempt_event(event, counters).await {
            Ok(()) => return,
            Err(e) if attempt < function.async_retries as usize => {
                warn!(function = %function.logical_id, error = %e, attempt, "asynchronous invocation failed; retrying");
                let delay = ASYNC_RETRY_DELAYS[attempt.min(ASYNC_RETRY_DELAYS.len() - 1)];
                attempt += 1;
                tokio::time::sleep(delay).await;
            }
            Err(e) => break e,
        }
    };
    let Some(queue) = &function.dead_letter_queue else {
        tracing::error!(function = %function.logical_id, %error, "asynchronous invocation failed and its retries are spent; the event is dropped");
        return;
    };
    tracing::error!(function = %function.logical_id, %error, %queue, "asynchronous invocation failed and its retries are spent; the event goes to the dead-letter queue");
    let sent = sqs
        .send_message()
        .queue_url(queue_url(queue))
        .message_body(event.to_string())
        .send()
        .await;
    if let Err(e) = sent {
        tracing::error!(function = %function.logical_id, %queue, error = %canopy::adapters::aws::error_text(&e), "the dead-letter queue did not take the event; it is lost");
    }
}

pub(super) fn handler(
    binary: &str,
    env: &BTreeMap<String, String>,
    sdk: &aws_config::SdkConfig,
) -> Result<Option<Handler>> {
    let sink = MetricsSink::Log;
    Ok(Some(match binary {
        "decoder" => Handler::Decoder(Box::new(
            canopy_decoder::Decoder::from_env(env, sdk)?.with_metrics(sink),
        )),
        "telemetry" => Handler::Telemetry(canopy_telemetry::TelemetryHandler::from_env(env, sdk)?.with_metrics(sink)),
        "alerts" => Handler::Alerts(canopy_alerts::AlertsHandler::from_env(env, sdk)?.with_metrics(sink)),
        // Served over HTTP instead (serve_api); the live stream's fan-out
        // runs on its tables' streams (start_live).
        "api" | "ingest" | "live" | "live-fanout" => return Ok(None),
        // Run on its schedule instead (run_schedule).
        "compactor" => return Ok(None),
        other => bail!("the template's function binary {other:?} has no local handler"),
    }))
}

/// The compactor's schedule: a run as of now, every `every`, as EventBridge
/// would invoke it; a failed run is logged and the next one redoes it.
pub(super) async fn run_schedule(
    function: String,
    compactor: canopy_decoder::compact::Compactor<S3Store>,
    every: std::time::Duration,
    counters: Arc<StackCounters>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        let outcome = compactor.run(chrono::Utc::now().timestamp_micros()).await;
        counters.invoked(&function, started.elapsed());
        match outcome {
            Ok(report) => {
                info!(
                    compacted = report.compacted.len(),
                    deleted = report.deleted,
                    failed = report.failed.len(),
                    quarantined = report.quarantined.len(),
                    "compaction run"
                );
                for (unit, error) in &report.failed {
                    warn!(unit = %unit.describe(), %error, "a unit failed to compact; it is tried again next run");
                }
            }
            Err(e) => warn!(error = %e, "compaction run failed"),
        }
    }
}

/// The alerts function's schedule (its silence check), invoked every
/// `every` with the event EventBridge sends.
pub(super) async fn run_alerts_schedule(function: Arc<LocalFunction>, every: Duration, counters: Arc<StackCounters>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let event = serde_json::json!({
            "source": "aws.events",
            "detail-type": "Scheduled Event",
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "detail": {},
        });
        // The next tick runs the check again: no retry, as for a schedule's missed run.
        if let Err(e) = function.attempt_event(&event, &counters).await {
            warn!(function = %function.logical_id, error = %e, "scheduled run failed");
        }
    }
}

/// The template's functions that run here, by logical id, each with its
/// handler built from its environment.
pub(super) fn local_functions(
    template: &Template,
    sdk: &aws_config::SdkConfig,
) -> Result<BTreeMap<String, Arc<LocalFunction>>> {
    let mut functions = BTreeMap::new();
    for f in &template.functions {
        if let Some(handler) = handler(&f.binary, &f.environment, sdk)? {
            let function = LocalFunction {
                logical_id: f.logical_id.clone(),
                handler,
                timeout: f.timeout,
                async_retries: f.async_retries,
                dead_letter_queue: f.dead_letter_queue.clone(),
            };
            functions.insert(f.logical_id.clone(), Arc::new(function));
        }
    }
    Ok(functions)
}

/// The scheduled functions on their schedules: the alerts function's silence
/// check and the compactor.
pub(super) fn spawn_schedules(
    template: &Template,
    functions: &BTreeMap<String, Arc<LocalFunction>>,
    sdk: &aws_config::SdkConfig,
    counters: &Arc<StackCounters>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<()> {
    for f in &template.functions {
        let Some(every) = f.every else { continue };
        if let Some(h) = functions.get(&f.logical_id)
            && let Handler::Alerts(_) = &h.handler
        {
            tasks.push(tokio::spawn(run_alerts_schedule(h.clone(), every, counters.clone())));
        }
        if f.binary == "compactor" {
            let compactor = canopy_decoder::compact::Compactor::from_env(&f.environment, sdk)?;
            tasks.push(tokio::spawn(run_schedule(
                f.logical_id.clone(),
                compactor,
                every,
                counters.clone(),
            )));
        }
    }
    Ok(())
}
