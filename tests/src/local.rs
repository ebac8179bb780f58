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
