//! [`Notifier`] and [`DevicePublisher`] in memory: what was sent, in order.

use std::sync::Mutex;

use super::{Faults, lock};
use crate::ports::messaging::{DevicePublisher, Notifier, PublishError};

/// One notification as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: String,
    pub body: String,
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<Notification>>,
    pub faults: Faults,
}

impl MemoryNotifier {
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

impl Notifier for MemoryNotifier {
    async fn notify(&self, subject: &str, body: &str, attributes: &[(&str, &str)]) -> Result<(), PublishError> {
        self.faults.enter("notify").await.map_err(|message| PublishError {
            service: "memory-notifier",
            message,
        })?;
        lock(&self.sent).push(Notification {
            subject: subject.to_string(),
            body: body.to_string(),
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        });
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct MemoryDevicePublisher {
    published: Mutex<Vec<(String, Vec<u8>)>>,
    pub faults: Faults,
}

impl MemoryDevicePublisher {
    /// (topic, payload) of each message published.
    pub fn published(&self) -> Vec<(String, Vec<u8>)> {
        lock(&self.published).clone()
    }
}

impl DevicePublisher for MemoryDevicePublisher {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PublishError> {
        self.faults.enter("publish").await.map_err(|message| PublishError {
            service: "memory-device-publisher",
            message,
        })?;
        lock(&self.published).push((topic.to_string(), payload));
        Ok(())
    }
}
