//! J1939 transport frames in any order and any timing: the reassembler
//! never panics, every message it completes holds 9 to 1,785 bytes, and
//! DM1's reader takes any message it completes.
//!
//! The input is frames of 14 bytes each, little-endian: the milliseconds
//! since the frame before (u16), the 29-bit id (u32), eight data bytes.

use canopy::format::j1939::dm1;
use canopy::format::j1939::transport::{MAX_SIZE, Reassembler};

pub fn run(data: &[u8]) {
    let mut transfers = Reassembler::default();
    let mut ts_us = 0i64;
    for frame in data.chunks_exact(14).take(4096) {
        ts_us += i64::from(u16::from_le_bytes([frame[0], frame[1]])) * 1000;
        let id = u32::from_le_bytes([frame[2], frame[3], frame[4], frame[5]]) & 0x1FFF_FFFF;
        if let Some(message) = transfers.push(ts_us, id, &frame[6..14]) {
            assert!(
                (9..=MAX_SIZE).contains(&message.data.len()),
                "{} bytes",
                message.data.len()
            );
            let _ = dm1::parse(&message.data);
        }
    }
    transfers.finish();
}
