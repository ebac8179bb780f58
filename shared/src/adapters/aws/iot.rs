//! [`DevicePublisher`] on IoT Core's data plane.

use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::primitives::Blob;

use super::error_text;
use crate::ports::messaging::{DevicePublisher, PublishError};

#[derive(Clone, Debug)]
pub struct IotPublisher {
    client: Client,
}

impl IotPublisher {
    /// The SDK's default data endpoint (`data-ats.iot.<region>.amazonaws.com`)
    /// unless the configuration overrides it.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(config),
        }
    }
}

impl DevicePublisher for IotPublisher {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PublishError> {
        self.client
            .publish()
            .topic(topic)
            .qos(1)
            .payload(Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PublishError {
                service: "iot-data",
                message: error_text(&e),
            })
    }
}
