//! [`MessageQueue`] in memory: the bodies sent, until a consumer takes them.

use std::sync::Mutex;

use super::{Faults, lock};
use crate::ports::queue::{MessageQueue, QueueError};

#[derive(Debug, Default)]
pub struct MemoryQueue {
    bodies: Mutex<Vec<String>>,
    /// Faults per body: each body sent is one `send` call.
    pub faults: Faults,
}

impl MemoryQueue {
    /// The bodies sent and not taken yet, oldest first; the queue is left empty.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.bodies))
    }
}

impl MessageQueue for MemoryQueue {
    async fn send_all(&self, bodies: &[String]) -> Vec<Result<(), QueueError>> {
        let mut outcomes = Vec::with_capacity(bodies.len());
        for body in bodies {
            let sent = self.faults.enter("send").await.map_err(|message| QueueError {
                queue: "memory-queue".into(),
                message,
            });
            if sent.is_ok() {
                lock(&self.bodies).push(body.clone());
            }
            outcomes.push(sent);
        }
        outcomes
    }
}
