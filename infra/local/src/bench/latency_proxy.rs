//! The network between a Lambda function and an AWS service, played in front
//! of moto: a TCP proxy that holds each answer back by a first-byte delay
//! and then lets its bytes through at a set rate. A process under test (a
//! function's own binary, with its own SDK clients) points its endpoint
//! here, so what it waits for stands for AWS, not loopback.
//!
//! It knows nothing of HTTP: on a connection, the first bytes back after
//! the client has sent something are an answer's first byte. HTTP/1.1
//! clients ask one request at a time per connection, so that is one delay
//! per request. The delay comes on top of moto's own time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::bench::s3_model::Latency;

/// A proxy listening on loopback; it stops when dropped.
pub struct LatencyProxy {
    pub endpoint: String,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LatencyProxy {
    /// A proxy to `upstream` (`http://host:port`) with `latency` on every answer.
    pub async fn start(upstream: &str, latency: Latency) -> Result<Self> {
        let target: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("{upstream} is not http://<ip>:<port>"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, latency, counted).await;
                    }
                });
            }
        });
        Ok(Self {
            endpoint,
            requests,
            task,
        })
    }

    /// Answers held back so far: the requests that went through.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Copies both ways until either side closes; the answers wait as `latency` says.
async fn relay(client: TcpStream, server: TcpStream, latency: Latency, requests: Arc<AtomicU64>) {
    client.set_nodelay(true).ok();
    server.set_nodelay(true).ok();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let asked = Arc::new(AtomicBool::new(false));
    let asking = asked.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    asking.store(true, Ordering::Release);
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        server_write.shutdown().await.ok();
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        // When the bytes read so far may reach the client, at the model's rate.
        let mut due = Instant::now();
        loop {
            match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if asked.swap(false, Ordering::AcqRel) {
                        requests.fetch_add(1, Ordering::Relaxed);
                        due = Instant::now() + latency.first_byte;
                    }
                    due = due.max(Instant::now()) + latency.transfer(n as u64);
                    tokio::time::sleep_until(due).await;
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        client_write.shutdown().await.ok();
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A server behind the proxy that answers each line `<n>` with n bytes:
    /// each answer waits the first byte, a large one its bytes too, and each
    /// request is counted once.
    #[tokio::test]
    async fn each_answer_waits_its_first_byte_and_its_bytes() {
        use tokio::io::AsyncBufReadExt;
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = format!("http://{}", server.local_addr().expect("addr"));
        tokio::spawn(async move {
            while let Ok((s, _)) = server.accept().await {
                tokio::spawn(async move {
                    let (read, mut write) = s.into_split();
                    let mut lines = tokio::io::BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let n: usize = line.trim().parse().unwrap_or(0);
                        if write.write_all(&vec![7u8; n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let latency = Latency {
            first_byte: Duration::from_millis(40),
            bytes_per_s: 10_000_000,
        };
        let proxy = LatencyProxy::start(&upstream, latency).await.expect("proxy");
        let mut s = TcpStream::connect(proxy.endpoint.trim_start_matches("http://"))
            .await
            .expect("connect");
        for size in [10usize, 500_000] {
            let started = std::time::Instant::now();
            s.write_all(format!("{size}\n").as_bytes()).await.expect("write");
            let mut got = vec![0u8; size];
            s.read_exact(&mut got).await.expect("read");
            let waited = started.elapsed();
            let least = latency.first_byte + latency.transfer(size as u64);
            assert!(waited >= least, "{size} bytes back after {waited:?}, before {least:?}");
            assert!(got.iter().all(|&b| b == 7));
        }
        assert_eq!(proxy.requests(), 2);
    }
}
