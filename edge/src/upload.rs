//! The uploader: sealed batches go to S3 oldest first, each checked by S3
//! against its SHA-256, and are deleted only once S3 has confirmed them. It
//! retries with backoff for as long as it takes (hours offline included), and
//! a restart resumes where the outbox stands.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use bytes::Bytes;
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::vehicle::VehicleId;
use canopy::ports::store::{ObjectStore, UploadSink};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::agent_counters::AgentCounters;
use crate::config::UploadConfig;
use crate::spool::{Layout, key_of_outbox_file};

/// What the agent asks of the uploader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Nothing more will be sealed: upload what is there, then stop.
    Drain,
    Stop,
}

pub async fn store(config: &UploadConfig) -> Result<S3Store> {
    let bucket = config.bucket.as_deref().context("upload.bucket is required")?;
    let sdk = match &config.endpoint {
        Some(endpoint) => canopy::adapters::aws::config_for_endpoint(endpoint).await,
        None => {
            let mut loader = aws_config_loader();
            if let Some(region) = &config.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
            loader.load().await
        }
    };
    Ok(S3Store::new(&sdk, bucket))
}

fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
}

/// Uploads one sealed file under `key`; returns its size.
pub async fn upload_file<S: ObjectStore>(store: &S, path: &Path, key: &str, multipart_above: u64) -> Result<u64> {
    let size = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size <= multipart_above {
        let body = tokio::fs::read(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        store.put(key, Bytes::from(body), Some(sum)).await?;
    } else {
        // Parts carry the SDK's CRC32 checksums, which S3 verifies.
        let mut file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let mut sink = UploadSink::new(store, key, 8 * 1024 * 1024);
        let mut chunk = vec![0u8; 8 * 1024 * 1024];
        loop {
            let n = file
                .read(&mut chunk)
                .await
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            let mut part = chunk[..n].to_vec();
            if let Err(e) = sink.write(&mut part).await {
                sink.abort().await;
                return Err(e.into());
            }
        }
        sink.finish().await?;
    }
    Ok(size)
}

/// The uploader task's state.
pub struct Uploader<S> {
    pub store: S,
    pub config: UploadConfig,
    pub vehicle: VehicleId,
    pub layout: Layout,
    pub used: Arc<AtomicU64>,
    pub counters: Arc<AgentCounters>,
    /// Woken by the sealer when a file lands in the outbox.
    pub wake: Arc<Notify>,
}

impl<S: ObjectStore> Uploader<S> {
    pub async fn run(self, mut phase: watch::Receiver<Phase>) -> Result<()> {
        let initial = Duration::from_millis(self.config.retry_initial_ms);
        let mut backoff = initial;
        loop {
            if *phase.borrow() == Phase::Stop {
                return Ok(());
            }
            let files = self.layout.outbox_files()?;
            if files.is_empty() {
                if *phase.borrow() == Phase::Drain {
                    return Ok(());
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = phase.changed() => {}
                }
                continue;
            }
            for (_, path) in files {
                if *phase.borrow() == Phase::Stop {
                    return Ok(());
                }
                let Some(key) = key_of_outbox_file(&path, &self.vehicle) else {
                    warn!(file = %path.display(), "not a sealed batch of this vehicle; left alone");
                    continue;
                };
                let key = key.raw_key();
                match upload_file(&self.store, &path, &key, self.config.multipart_above_bytes).await {
                    Ok(size) => {
                        std::fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
                        self.used
                            .fetch_sub(size.min(self.used.load(Ordering::Relaxed)), Ordering::Relaxed);
                        AgentCounters::add(&self.counters.files_uploaded, 1);
                        AgentCounters::add(&self.counters.bytes_uploaded, size);
                        info!(key = %key, bytes = size, "uploaded");
                        backoff = initial;
                    }
                    Err(e) => {
                        AgentCounters::add(&self.counters.upload_failures, 1);
                        warn!(key = %key, error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "upload failed");
                        tokio::select! {
                            _ = tokio::time::sleep(jittered(backoff)) => {}
                            _ = phase.changed() => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_millis(self.config.retry_max_ms));
                        break; // oldest first: start over from the oldest
                    }
                }
            }
        }
    }
}

/// 75–125% of `d`, so a fleet coming back online does not retry in step.
fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}
