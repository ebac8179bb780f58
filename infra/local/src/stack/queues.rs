//! SQS event sources: each queue polled into its function's handler as
//! Lambda's event source mappings do (batches, partial batch failures,
//! visibility timeouts), and dead letters moved back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use tokio::task::JoinHandle;
use tracing::warn;

use super::counters::{InvocationFaults, StackCounters};
use super::functions::LocalFunction;
use crate::template::{ACCOUNT, REGION, Template, queue_url};

/// [`Stack::redrive`] for a stack already running on `sdk`'s endpoint.
pub async fn redrive_queue(template: &Template, sdk: &aws_config::SdkConfig, dead_letter_queue: &str) -> Result<u64> {
    let source = template
        .queues
        .iter()
        .find(|q| q.redrive.as_ref().is_some_and(|(dlq, _)| dlq == dead_letter_queue))
        .with_context(|| format!("no queue of the template sends its dead letters to {dead_letter_queue}"))?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    crate::redrive::redrive(&sqs, &queue_url(dead_letter_queue), &queue_url(&source.name)).await
}

/// Lambda's SQS event source mapping: batches of up to `batch`, the records
/// the handler reports failed stay in the queue (back after the visibility
/// timeout, to the dead-letter queue after maxReceiveCount).
pub(super) async fn poll_queue(
    sqs: aws_sdk_sqs::Client,
    EventSource { queue, batch, window }: EventSource,
    function: Arc<LocalFunction>,
    counters: Arc<StackCounters>,
    faults: Arc<InvocationFaults>,
) {
    let url = queue_url(&queue);
    let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}");
    loop {
        let messages = receive_batch(&sqs, &url, batch, window).await;
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| sqs_record(m, &arn)).collect();
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let kill_after = faults.deadline();
        let invocation = function.handler.invoke_batch(event);
        let outcome = match kill_after {
            Some(after) => tokio::time::timeout(after, invocation).await.ok(),
            None => function.within_timeout(invocation).await,
        };
        counters.invoked(&function.logical_id, started.elapsed());
        let Some(outcome) = outcome else {
            if kill_after.is_some() {
                faults.killed();
                counters.killed_invocations.fetch_add(1, Ordering::Relaxed);
                warn!(%queue, "invocation killed mid-batch; the whole batch returns to the queue");
            } else {
                counters.failed_invocations.fetch_add(1, Ordering::Relaxed);
                warn!(%queue, timeout = ?function.timeout, "invocation timed out; the whole batch returns to the queue");
            }
            continue;
        };
        let failed: Vec<String> = match outcome {
            Ok(failed) => failed,
            Err(e) => {
                counters.failed_invocations.fetch_add(1, Ordering::Relaxed);
                warn!(%queue, error = %e, "invocation failed; the whole batch returns to the queue");
                messages
                    .iter()
                    .filter_map(|m| m.message_id().map(str::to_string))
                    .collect()
            }
        };
        counters
            .records_retried
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        let done: Vec<&aws_sdk_sqs::types::Message> = messages
            .iter()
            .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
            .collect();
        delete(&sqs, &url, &done).await;
    }
}

/// Up to `batch` messages: a long poll for the first, then whatever is waiting.
/// A function's SQS event source mapping.
pub(super) struct EventSource {
    pub(super) queue: String,
    pub(super) batch: usize,
    /// How long a batch is held for more messages (its MaximumBatchingWindowInSeconds).
    pub(super) window: Duration,
}

/// Up to `batch` messages; with a batching `window`, gathered until the
/// batch is full or the window since the first one has passed, as Lambda does.
pub(super) async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    batch: usize,
    window: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut messages = Vec::new();
    let mut first = None::<std::time::Instant>;
    while messages.len() < batch {
        let open = first.is_some_and(|at: std::time::Instant| at.elapsed() < window);
        let wait = if messages.is_empty() || open { 1 } else { 0 };
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages((batch - messages.len()).min(10) as i32)
            .wait_time_seconds(wait)
            .send()
            .await;
        match received {
            Ok(r) if !r.messages().is_empty() => {
                first.get_or_insert_with(std::time::Instant::now);
                messages.extend(r.messages.unwrap_or_default());
            }
            Ok(_) if open => {}
            Ok(_) => break,
            Err(e) => {
                warn!(%url, error = %canopy::adapters::aws::error_text(&e), "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
        }
    }
    messages
}

/// Deletes handled messages, ten at a time; a failed delete only means a redelivery.
pub(super) async fn delete(sqs: &aws_sdk_sqs::Client, url: &str, done: &[&aws_sdk_sqs::types::Message]) {
    for chunk in done.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        if let Err(e) = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            warn!(%url, error = %canopy::adapters::aws::error_text(&e), "delete failed; the messages will be delivered again");
        }
    }
}

/// A received message as Lambda's event source mapping hands it over.
pub(super) fn sqs_record(m: &aws_sdk_sqs::types::Message, arn: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id().map(str::to_string);
    record.receipt_handle = m.receipt_handle().map(str::to_string);
    record.body = m.body().map(str::to_string);
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some(arn.to_string());
    record.aws_region = Some(REGION.into());
    record
}

/// What the queue pollers share.
pub(super) struct EventSources<'a> {
    pub(super) sqs: &'a aws_sdk_sqs::Client,
    pub(super) counters: &'a Arc<StackCounters>,
    pub(super) faults: &'a Arc<InvocationFaults>,
    /// Whether batches wait for their `MaximumBatchingWindowInSeconds`, as
    /// Lambda's do (the cost model), or go at once (the tests).
    pub(super) batching_windows: bool,
}

impl EventSources<'_> {
    /// A poller for each SQS event source of each function that runs here.
    pub(super) fn spawn(
        &self,
        template: &Template,
        functions: &BTreeMap<String, Arc<LocalFunction>>,
        tasks: &mut Vec<JoinHandle<()>>,
    ) {
        for f in &template.functions {
            let Some(h) = functions.get(&f.logical_id) else {
                continue;
            };
            for (queue, batch, window) in &f.queues {
                let source = EventSource {
                    queue: queue.clone(),
                    batch: *batch,
                    window: if self.batching_windows { *window } else { Duration::ZERO },
                };
                tasks.push(tokio::spawn(poll_queue(
                    self.sqs.clone(),
                    source,
                    h.clone(),
                    self.counters.clone(),
                    self.faults.clone(),
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_message_becomes_the_record_lambda_hands_its_function() {
        let received = aws_sdk_sqs::types::Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body("{\"a\":1}")
            .build();
        let record = sqs_record(&received, "arn:aws:sqs:us-east-1:123456789012:RawObjectsQueue");
        let mut event = SqsEvent::default();
        event.records.push(record);
        let json = serde_json::to_value(event).unwrap();
        let record = &json["Records"][0];
        assert_eq!(record["messageId"], "m-1");
        assert_eq!(record["receiptHandle"], "r-1");
        assert_eq!(record["body"], "{\"a\":1}");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(
            record["eventSourceARN"],
            "arn:aws:sqs:us-east-1:123456789012:RawObjectsQueue"
        );
        assert_eq!(record["awsRegion"], REGION);
    }
}
