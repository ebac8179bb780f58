//! Frames and files the tests feed the pipeline: valid frames of the
//! platform's DBC with deterministic pseudo-random values, frames of a
//! message with chosen values, and raw lake files of them.

use std::sync::Arc;

use canopy::format::dbc::{Database, Message};
use canopy::format::frame::{CanFrame, CanId, FrameFlags};
use canopy::format::lake::raw::RawWriter;

pub const DBC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dbc/ev_powertrain.dbc");

pub fn database() -> Database {
    Database::load(DBC).unwrap_or_else(|e| panic!("{e}"))
}

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A frame of `message` on can0 at `ts_us` carrying `payload`, flagged FD
/// when the message is.
pub fn frame(ts_us: i64, message: &Message, payload: &[u8]) -> CanFrame {
    let flags = if message.is_fd {
        FrameFlags::FD
    } else {
        FrameFlags::empty()
    };
    CanFrame::new(ts_us, Arc::from("can0"), message.id, flags, payload).unwrap_or_else(|e| panic!("{e}"))
}

/// `frame` with its payload cut to its first `len` bytes: shorter than its
/// message says, as a faulty node sends it.
pub fn truncated(frame: &CanFrame, len: usize) -> CanFrame {
    CanFrame::new(
        frame.ts_us,
        frame.bus.clone(),
        frame.id,
        frame.flags,
        &frame.data()[..len],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `n` frames from `start_us`, 200 to 1200 µs apart: valid frames of random
/// messages, and every `unknown_every`-th frame (if not 0) an id the DBC lacks.
pub fn frames(db: &Database, n: usize, start_us: i64, seed: u64, unknown_every: usize) -> Vec<CanFrame> {
    let mut rng = Rng::new(seed);
    let bus: Arc<str> = Arc::from("can0");
    let mut ts = start_us;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        ts += 200 + (rng.next_u64() % 1000) as i64;
        if unknown_every > 0 && i % unknown_every == unknown_every - 1 {
            let data = rng.next_u64().to_le_bytes();
            out.push(CanFrame::new(ts, bus.clone(), CanId::Standard(0x7A0), FrameFlags::empty(), &data).unwrap());
            continue;
        }
        let message = &db.messages()[(rng.next_u64() % db.messages().len() as u64) as usize];
        let payload = message
            .encode(|_, s| {
                let (lo, hi) = (s.minimum.unwrap_or(0.0), s.maximum.unwrap_or(1.0));
                let v = lo + (hi - lo) * rng.unit();
                Some(if s.is_multiplexer { v.floor() } else { v })
            })
            .unwrap_or_else(|e| panic!("{e}"));
        out.push(frame(ts, message, &payload));
    }
    out
}

/// A raw lake file of `frames`.
pub fn raw_file(frames: &[CanFrame]) -> Vec<u8> {
    let mut writer = RawWriter::new(Vec::new(), "fixture").unwrap();
    for f in frames {
        writer.push(f.clone()).unwrap();
    }
    writer.finish().unwrap().0
}
