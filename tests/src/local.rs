//! One moto server per test binary, started on first use and gone with the
//! process; every test works in buckets of its own.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use canopy::aws::s3::S3Store;
use canopy_local::services::{Moto, moto_server_path};

static MOTO: OnceLock<Moto> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The moto server of this test run.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| {
        let path = moto_server_path();
        Moto::start(&path).unwrap_or_else(|e| panic!("the tests need moto server: {e}"))
    })
}

pub async fn sdk() -> aws_config::SdkConfig {
    canopy::aws::local_config(&moto().endpoint).await
}

/// A name no other test of this run uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh, empty bucket.
pub async fn bucket(prefix: &str) -> S3Store {
    let sdk = sdk().await;
    let name = unique(prefix);
    let store = S3Store::new(&sdk, &name);
    if let Err(e) = store.client().create_bucket().bucket(&name).send().await {
        panic!("creating bucket {name}: {e:?}");
    }
    store
}

/// A binary of this workspace, built beside the test binary (`cargo test --workspace` builds them).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .unwrap_or_default();
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p {name}`)",
        path.display()
    );
    path
}

/// Clients of the local endpoint.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk().await)
}

/// A fresh table of `spec`'s kind, under a unique name.
pub async fn table(kind: fn(&str) -> canopy_local::resources::TableSpec<'_>, prefix: &str) -> String {
    let name = unique(prefix);
    canopy_local::resources::create_table(&dynamodb().await, &kind(&name)).await.unwrap_or_else(|e| panic!("{e}"));
    name
}

/// Messages SNS "sent" on the local endpoint, per topic ARN: (subject, body).
pub fn sns_sent(topic_arn: &str) -> Vec<(String, String)> {
    let (_, body) = canopy_local::services::http(&moto().endpoint, "GET", "/moto-api/data.json", None)
        .unwrap_or_else(|e| panic!("moto data: {e}"));
    let data: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("moto data: {e}"));
    let topics = data["sns"]["Topic"].as_array().cloned().unwrap_or_default();
    topics
        .iter()
        .filter(|t| t["arn"] == topic_arn)
        .flat_map(|t| t["sent_notifications"].as_array().cloned().unwrap_or_default())
        .map(|n| (n[2].as_str().unwrap_or_default().to_string(), n[1].as_str().unwrap_or_default().to_string()))
        .collect()
}
