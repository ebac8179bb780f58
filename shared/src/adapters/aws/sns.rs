//! [`Notifier`] on SNS: email and SMS subscriptions of the alert topic.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::error_text;
use crate::ports::messaging::{Notifier, PublishError};

#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(config: &aws_config::SdkConfig, topic_arn: &str) -> Self {
        Self {
            client: Client::new(config),
            topic_arn: topic_arn.to_string(),
        }
    }
}

impl Notifier for SnsNotifier {
    async fn notify(&self, subject: &str, body: &str, attributes: &[(&str, &str)]) -> Result<(), PublishError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(body);
        for (name, value) in attributes {
            // Subscriptions can filter on these (severity, vehicle).
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(|e| PublishError {
                    service: "sns",
                    message: e.to_string(),
                })?;
            request = request.message_attributes(*name, value);
        }
        request.send().await.map(|_| ()).map_err(|e| PublishError {
            service: "sns",
            message: error_text(&e),
        })
    }
}
