//! The uploader: sealed batches go to S3 oldest first, each checked by S3
//! against its SHA-256, and are deleted only once S3 has confirmed them. It
//! retries with backoff for as long as it takes (hours offline included), and
//! a restart resumes where the outbox stands.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine;
use bytes::Bytes;
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy::ports::store::{ObjectStore, UploadSink};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::agent_counters::AgentCounters;
use crate::config::UploadConfig;
use crate::iot_credentials::IotCredentials;
use crate::spool::{Layout, key_of_outbox_file};

/// What the agent asks of the uploader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Nothing more will be sealed: upload what is there, then stop.
    Drain,
    Stop,
}

/// The lake bucket's store, with credentials from the IoT credentials
/// provider when `upload.credentials` says so.
pub async fn store(config: &UploadConfig, vehicle: &DeviceId) -> Result<S3Store> {
    let bucket = config.bucket.as_deref().context("upload.bucket is required")?;
    let mut sdk = match &config.endpoint {
        Some(endpoint) => canopy::adapters::aws::config_for_endpoint(endpoint).await,
        None => {
            let mut loader = canopy::adapters::aws::loader();
            if let Some(region) = &config.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
            loader.load().await
        }
    };
    if let Some(credentials) = &config.credentials {
        let provider = IotCredentials::new(credentials, vehicle.as_str())?;
        sdk = sdk
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
    }
    Ok(S3Store::new(&sdk, bucket))
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
    pub vehicle: DeviceId,
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::iot_credentials::tests::{Pki, bundle, endpoint};

    #[tokio::test]
    async fn uploads_are_signed_with_the_credentials_the_certificate_bought() {
        let (server_pki, vehicle_pki) = (Pki::new(), Pki::new());
        let credentials = endpoint(&server_pki, &vehicle_pki).await;
        let dir = tempfile::tempdir().unwrap();
        // S3's part: keeps the first request's head and says it stored the object.
        let s3 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s3_port = s3.local_addr().unwrap().port();
        let head = tokio::spawn(async move {
            let (mut tcp, _) = s3.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request ended early");
                head.extend_from_slice(&buf[..n]);
            }
            tcp.write_all(b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        let config = UploadConfig {
            enabled: true,
            bucket: Some("lake".into()),
            endpoint: Some(format!("http://127.0.0.1:{s3_port}")),
            credentials: Some(bundle(
                dir.path(),
                &server_pki,
                &vehicle_pki,
                credentials.port,
                "canopy-upload",
            )),
            ..UploadConfig::default()
        };
        let store = store(&config, &DeviceId::new("veh-001").unwrap()).await.unwrap();
        store
            .put("raw/x.parquet", Bytes::from_static(b"abc"), None)
            .await
            .unwrap();
        let head = head.await.unwrap();
        assert!(
            head.starts_with("put /lake/raw/x.parquet") || head.starts_with("put /raw/x.parquet"),
            "{head}"
        );
        assert!(head.contains("credential=asiavehicle1/"), "{head}");
        assert!(head.contains("\r\nx-amz-security-token: token\r\n"), "{head}");
    }

    /// The SDKs' one HTTPS client (rustls on ring, `canopy::adapters::aws::loader_with`)
    /// completes a handshake with a server its trust store names, and an upload over it.
    #[tokio::test]
    async fn the_sdk_client_uploads_over_tls_with_rustls_on_ring() {
        use canopy::adapters::aws::{TlsContext, TrustStore};
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;

        let pki = Pki::new();
        let (cert, key) = pki.issue("localhost");
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let head = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request ended early");
                head.extend_from_slice(&buf[..n]);
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            tls.shutdown().await.ok();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        let trust = TrustStore::empty().with_pem_certificate(pki.ca_pem().into_bytes());
        let sdk = canopy::adapters::aws::loader_with(TlsContext::builder().with_trust_store(trust).build().unwrap())
            .endpoint_url(format!("https://localhost:{port}"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .load()
            .await;
        S3Store::new(&sdk, "lake")
            .put("raw/x.parquet", Bytes::from_static(b"abc"), None)
            .await
            .unwrap();
        let head = head.await.unwrap();
        assert!(head.starts_with("put /lake/raw/x.parquet"), "{head}");
    }
}
