//! Moving dead letters back to their source queue once their cause is fixed
//! (a DBC uploaded, a bug deployed). In AWS, SQS does it itself
//! (`aws sqs start-message-move-task --source-arn <dead-letter queue ARN>`,
//! docs/deploy.md, "Dead letters"); moto has no move task, so the local stack moves
//! them with this: receive, send to the source, delete, until none is left.

use anyhow::{Context, Result};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};

/// Moves every message of `dead_letters` to `source`, bodies and attributes
/// unchanged; how many it moved. A message is deleted only after its send
/// succeeded, so a failure leaves it where it was.
pub async fn redrive(sqs: &Client, dead_letters: &str, source: &str) -> Result<u64> {
    let mut moved = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(dead_letters)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .visibility_timeout(30)
            .send()
            .await
            .with_context(|| format!("receiving from {dead_letters}"))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        let mut sends = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            sends.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body().unwrap_or_default())
                    .set_message_attributes(m.message_attributes().cloned())
                    .build()?,
            );
        }
        let sent = sqs
            .send_message_batch()
            .queue_url(source)
            .set_entries(Some(sends))
            .send()
            .await
            .with_context(|| format!("sending to {source}"))?;
        let mut deletes = Vec::new();
        for ok in sent.successful() {
            let Ok(i) = ok.id().parse::<usize>() else { continue };
            if let Some(handle) = messages.get(i).and_then(|m| m.receipt_handle()) {
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(ok.id())
                        .receipt_handle(handle)
                        .build()?,
                );
            }
        }
        if let Some(failed) = sent.failed().first() {
            anyhow::bail!(
                "sending to {source}: {} ({})",
                failed.message().unwrap_or("no reason"),
                failed.code()
            );
        }
        moved += deletes.len() as u64;
        sqs.delete_message_batch()
            .queue_url(dead_letters)
            .set_entries(Some(deletes))
            .send()
            .await
            .with_context(|| format!("deleting from {dead_letters}"))?;
    }
}
