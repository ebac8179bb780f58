//! Where frames come from: live SocketCAN buses, a replayed candump log, or
//! the simulator. Every source hands out frames in batches; a source that can
//! resume (a log) also says where it is, and the spool keeps that position
//! with the frames.

pub mod replay;
#[cfg(feature = "tools")]
pub mod simulator;
pub mod socketcan;

use std::time::{Duration, Instant};

use anyhow::Result;
use canopy::format::frame::CanFrame;

/// What a read returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Frames (possibly none yet); the position after them, for resumable sources.
    Frames { cursor: Option<u64> },
    /// The source has nothing more.
    End,
}

pub trait Source: Send {
    /// Appends up to `max` frames to `out`, waiting at most `wait` for the first.
    fn read(&mut self, out: &mut Vec<CanFrame>, max: usize, wait: Duration) -> Result<Status>;
}

/// Paces a recorded or simulated timeline against the wall clock: `speed` 1
/// is real time, 10 ten times faster, 0 as fast as possible.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: f64,
    origin: Option<(i64, Instant)>,
}

impl Pacer {
    pub fn new(speed: f64) -> Self {
        Self { speed, origin: None }
    }

    /// How long to wait before a frame at `ts_us` is due (zero when due).
    pub fn wait_for(&mut self, ts_us: i64) -> Duration {
        if self.speed == 0.0 {
            return Duration::ZERO;
        }
        let (t0, wall0) = *self.origin.get_or_insert((ts_us, Instant::now()));
        let due = wall0 + Duration::from_secs_f64(((ts_us - t0).max(0) as f64 / 1e6) / self.speed);
        due.saturating_duration_since(Instant::now())
    }
}
