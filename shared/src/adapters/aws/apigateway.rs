//! [`ConnectionPoster`] on API Gateway's management API: `PostToConnection`
//! and `DeleteConnection` on a WebSocket API's stage; a closed connection
//! answers Gone (410).

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use super::error_text;
use crate::ports::live::{ConnectionPoster, PostError};

#[derive(Clone, Debug)]
pub struct ApiGatewayPoster {
    client: Client,
}

impl ApiGatewayPoster {
    /// `endpoint`: the stage's management URL, `https://<api id>.execute-api.<region>.amazonaws.com/<stage>`.
    pub fn new(config: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(config)
            .endpoint_url(endpoint)
            .build();
        Self {
            client: Client::from_conf(conf),
        }
    }
}

impl ConnectionPoster for ApiGatewayPoster {
    async fn post(&self, id: &str, text: &str) -> Result<(), PostError> {
        match self
            .client
            .post_to_connection()
            .connection_id(id)
            .data(Blob::new(text.as_bytes()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(PostToConnectionError::GoneException(_))) => {
                Err(PostError::Gone(id.to_string()))
            }
            Err(e) => Err(PostError::Failed {
                id: id.to_string(),
                message: error_text(&e),
            }),
        }
    }

    async fn close(&self, id: &str) -> Result<(), PostError> {
        match self.client.delete_connection().connection_id(id).send().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(DeleteConnectionError::GoneException(_))) => Ok(()),
            Err(e) => Err(PostError::Failed {
                id: id.to_string(),
                message: error_text(&e),
            }),
        }
    }
}
