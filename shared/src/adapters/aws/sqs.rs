//! [`MessageQueue`] on SQS: bodies sent ten to a `SendMessageBatch`.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::error_text;
use crate::ports::queue::{MessageQueue, QueueError};

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

/// SQS takes at most ten messages per batch.
const BATCH: usize = 10;

impl SqsQueue {
    pub fn new(config: &aws_config::SdkConfig, url: &str) -> Self {
        Self {
            client: Client::new(config),
            url: url.to_string(),
        }
    }

    fn error(&self, message: String) -> QueueError {
        QueueError {
            queue: self.url.clone(),
            message,
        }
    }

    async fn send_batch(&self, bodies: &[String]) -> Vec<Result<(), QueueError>> {
        let entries: Result<Vec<_>, _> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
            })
            .collect();
        let sent = match entries {
            Ok(entries) => self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| error_text(&e)),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(out) => {
                let mut outcomes: Vec<Result<(), QueueError>> = vec![Ok(()); bodies.len()];
                for failed in out.failed() {
                    if let Some(slot) = failed.id().parse::<usize>().ok().and_then(|i| outcomes.get_mut(i)) {
                        *slot = Err(self.error(format!(
                            "{}: {}",
                            failed.code(),
                            failed.message().unwrap_or("no message")
                        )));
                    }
                }
                outcomes
            }
            Err(message) => bodies.iter().map(|_| Err(self.error(message.clone()))).collect(),
        }
    }
}

impl MessageQueue for SqsQueue {
    async fn send_all(&self, bodies: &[String]) -> Vec<Result<(), QueueError>> {
        let batches = bodies.chunks(BATCH).map(|chunk| self.send_batch(chunk));
        futures::future::join_all(batches).await.into_iter().flatten().collect()
    }
}
