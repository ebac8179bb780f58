//! Messages into a queue: what HTTP ingest hands the telemetry function, the
//! same way the IoT rule does.

use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue {queue}: {message}")]
pub struct QueueError {
    pub queue: String,
    pub message: String,
}

pub trait MessageQueue: Send + Sync {
    /// Sends each of `bodies`; the outcome of each, in their order. A body
    /// that failed may be sent again: the consumer is idempotent.
    fn send_all(&self, bodies: &[String]) -> impl Future<Output = Vec<Result<(), QueueError>>> + Send;
}
