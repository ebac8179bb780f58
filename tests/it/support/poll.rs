//! Waiting for the pipeline: a condition polled until it holds.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `done` every 250 ms until it holds; fails naming `what` after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
