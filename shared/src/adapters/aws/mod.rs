//! The ports on AWS. Each service sits behind a cargo feature so a binary
//! compiles only the SDKs it calls.
//!
//! Every client honours `AWS_ENDPOINT_URL` (and the per-service
//! `AWS_ENDPOINT_URL_<SERVICE>`), which is how the local stack points the very
//! same code at moto on loopback.

#[cfg(feature = "apigateway")]
pub mod apigateway;
#[cfg(feature = "cognito")]
pub mod cognito;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "iot")]
pub mod iot;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "sqs")]
pub mod sqs;

/// A configuration loader with Canopy's one HTTPS client, trusting the
/// system's root certificates ([`loader_with`]).
pub fn loader() -> aws_config::ConfigLoader {
    loader_with(TlsContext::default())
}

pub use aws_smithy_http_client::tls::{TlsContext, TrustStore};

/// A configuration loader whose HTTPS client trusts what `tls` names. The
/// client is rustls on ring, the TLS the MQTT client and the edge's credential
/// exchange use too: the SDKs are built without their default client (which
/// would bring aws-lc, a second TLS stack and a C build), so every
/// configuration must start here.
pub fn loader_with(tls: TlsContext) -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https)
}

/// The SDK configuration from the environment (region, credentials, endpoint).
pub async fn config() -> aws_config::SdkConfig {
    loader().load().await
}

/// The SDK configuration for an explicit endpoint (an S3-compatible store,
/// or the local stack's moto): region from `AWS_REGION`, else us-east-1;
/// credentials from the environment when it has them, else a placeholder
/// pair, which such endpoints accept.
pub async fn config_for_endpoint(endpoint: &str) -> aws_config::SdkConfig {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let mut loader = loader().endpoint_url(endpoint).region(aws_config::Region::new(region));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "placeholder",
        ));
    }
    loader.load().await
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
