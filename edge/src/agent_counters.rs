//! The agent's counters, shared by its threads and tasks and logged as one
//! structured line every few seconds and at exit.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

#[derive(Debug, Default)]
pub struct AgentCounters {
    pub frames_read: AtomicU64,
    pub frames_spooled: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub frames_sealed: AtomicU64,
    pub files_sealed: AtomicU64,
    pub files_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub upload_failures: AtomicU64,
    pub telemetry_built: AtomicU64,
    pub telemetry_published: AtomicU64,
    /// Publishes the broker acknowledged (each a message of one or more
    /// samples; with Basic Ingest one that goes to both rules counts twice).
    pub messages_published: AtomicU64,
    pub telemetry_dropped: AtomicU64,
}

impl AgentCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Value {
        let g = Self::get;
        json!({
            "frames_read": g(&self.frames_read),
            "frames_spooled": g(&self.frames_spooled),
            "frames_dropped": g(&self.frames_dropped),
            "frames_sealed": g(&self.frames_sealed),
            "files_sealed": g(&self.files_sealed),
            "files_uploaded": g(&self.files_uploaded),
            "bytes_uploaded": g(&self.bytes_uploaded),
            "upload_failures": g(&self.upload_failures),
            "telemetry_built": g(&self.telemetry_built),
            "telemetry_published": g(&self.telemetry_published),
            "messages_published": g(&self.messages_published),
            "telemetry_dropped": g(&self.telemetry_dropped),
        })
    }
}
