//! The AWS implementations of the platform's storage, state and messaging
//! traits. Each sits behind a cargo feature so a binary compiles only the
//! SDKs it calls.
//!
//! Every client honours `AWS_ENDPOINT_URL` (and the per-service
//! `AWS_ENDPOINT_URL_<SERVICE>`), which is how the local stack points the very
//! same code at moto on loopback.

#[cfg(feature = "athena")]
pub mod athena;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "iot")]
pub mod iot;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sns")]
pub mod sns;

/// The SDK configuration from the environment (region, credentials, endpoint).
pub async fn config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

/// A configuration for a local endpoint (moto on loopback): fixed test
/// credentials and region, no environment needed.
pub async fn local_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = aws_credential_types::Credentials::new("testing", "testing", None, None, "canopy-local");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// The message of an SDK error with its service error code, not just "service error".
pub fn error_text<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
