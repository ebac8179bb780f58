//! The object store the lake is read through on the local stack.

use object_store::aws::{AmazonS3, AmazonS3Builder};

/// `bucket` of an S3-compatible endpoint (moto on loopback), with the local
/// stack's fixed credentials and path-style requests.
pub fn local_s3(endpoint: &str, bucket: &str) -> object_store::Result<AmazonS3> {
    AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .with_virtual_hosted_style_request(false)
        .build()
}
