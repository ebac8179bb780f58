//! Messages out: to people and to vehicles.

use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {message}")]
pub struct PublishError {
    pub service: &'static str,
    pub message: String,
}

/// Notifications to people (SNS: email, SMS).
pub trait Notifier: Send + Sync {
    fn notify(
        &self,
        subject: &str,
        body: &str,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Messages to vehicles (IoT Core's data plane).
pub trait DevicePublisher: Send + Sync {
    fn publish(&self, topic: &str, payload: Vec<u8>) -> impl Future<Output = Result<(), PublishError>> + Send;
}
