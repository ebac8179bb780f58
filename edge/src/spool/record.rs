//! A segment's records: how the spool appends them and reads them back.
//! Its own file because the format is the spool's promise across a crash:
//! a record is whole and its CRC right, or reading stops there.

use std::io::{self, Read};
use std::sync::Arc;

use canopy::format::frame::{BusName, CanFrame, CanId, FrameFlags};

const FRAME: u8 = 0xF1;
const BUS: u8 = 0xB1;
const CURSOR: u8 = 0xC1;
const EXTENDED_BIT: u32 = 1 << 31;

/// A record read back from a segment.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Frame(CanFrame),
    Cursor(u64),
}

fn crc(bytes: &[u8]) -> [u8; 4] {
    crc32fast::hash(bytes).to_le_bytes()
}

/// Appends the record of one frame to `out`.
pub(super) fn encode_frame(out: &mut Vec<u8>, bus: u8, frame: &CanFrame) {
    let start = out.len();
    let id = match frame.id {
        CanId::Standard(id) => u32::from(id),
        CanId::Extended(id) => id | EXTENDED_BIT,
    };
    out.extend_from_slice(&[FRAME, bus, frame.flags.bits(), frame.dlc()]);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&frame.ts_us.to_le_bytes());
    out.extend_from_slice(frame.data());
    let sum = crc(&out[start..]);
    out.extend_from_slice(&sum);
}

pub(super) fn encode_bus(out: &mut Vec<u8>, index: u8, name: &str) {
    let start = out.len();
    let name = &name.as_bytes()[..name.len().min(255)];
    out.extend_from_slice(&[BUS, index, name.len() as u8]);
    out.extend_from_slice(name);
    let sum = crc(&out[start..]);
    out.extend_from_slice(&sum);
}

pub(super) fn encode_cursor(out: &mut Vec<u8>, position: u64) {
    let start = out.len();
    out.push(CURSOR);
    out.extend_from_slice(&position.to_le_bytes());
    let sum = crc(&out[start..]);
    out.extend_from_slice(&sum);
}

/// Reads a segment's records up to its end or its first damaged record.
pub struct SegmentReader<R> {
    input: R,
    buses: Vec<BusName>,
    /// Bytes of whole, valid records read so far.
    pub valid_len: u64,
    /// Set when reading stopped at a damaged or cut record.
    pub damaged: bool,
}

impl<R: Read> SegmentReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            buses: Vec::new(),
            valid_len: 0,
            damaged: false,
        }
    }

    fn read_exact_or_end(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.input.read(&mut buf[filled..])? {
                0 => return Ok(false),
                n => filled += n,
            }
        }
        Ok(true)
    }

    /// The next record; `None` at the end or at damage (see `damaged`).
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            let mut kind = [0u8; 1];
            if !self.read_exact_or_end(&mut kind)? {
                return Ok(None);
            }
            let mut record = vec![kind[0]];
            let body_len = match kind[0] {
                FRAME => {
                    let mut head = [0u8; 15];
                    if !self.read_exact_or_end(&mut head)? {
                        return self.stop();
                    }
                    record.extend_from_slice(&head);
                    let flags = FrameFlags::from_bits_truncate(head[1]);
                    if flags.contains(FrameFlags::REMOTE) {
                        0
                    } else {
                        usize::from(head[2])
                    }
                }
                BUS => {
                    let mut head = [0u8; 2];
                    if !self.read_exact_or_end(&mut head)? {
                        return self.stop();
                    }
                    record.extend_from_slice(&head);
                    usize::from(head[1])
                }
                CURSOR => 8,
                _ => return self.stop(),
            };
            let mut rest = vec![0u8; body_len + 4];
            if !self.read_exact_or_end(&mut rest)? {
                return self.stop();
            }
            record.extend_from_slice(&rest[..body_len]);
            if crc(&record) != rest[body_len..] {
                return self.stop();
            }
            let len = record.len() as u64 + 4;
            match kind[0] {
                FRAME => {
                    let Some(frame) = self.decode_frame(&record) else {
                        return self.stop();
                    };
                    self.valid_len += len;
                    return Ok(Some(Record::Frame(frame)));
                }
                BUS => {
                    let index = usize::from(record[1]);
                    let name = String::from_utf8_lossy(&record[3..]).into_owned();
                    if index != self.buses.len() {
                        return self.stop();
                    }
                    self.buses.push(Arc::from(name));
                    self.valid_len += len;
                }
                _ => {
                    let mut position = [0u8; 8];
                    position.copy_from_slice(&record[1..9]);
                    self.valid_len += len;
                    return Ok(Some(Record::Cursor(u64::from_le_bytes(position))));
                }
            }
        }
    }

    fn stop(&mut self) -> io::Result<Option<Record>> {
        self.damaged = true;
        Ok(None)
    }

    fn decode_frame(&self, r: &[u8]) -> Option<CanFrame> {
        let bus = self.buses.get(usize::from(r[1]))?.clone();
        let flags = FrameFlags::from_bits_truncate(r[2]);
        let dlc = r[3];
        let id = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        let id = if id & EXTENDED_BIT != 0 {
            CanId::extended(id & !EXTENDED_BIT)?
        } else {
            CanId::standard(id)?
        };
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&r[8..16]);
        let ts_us = i64::from_le_bytes(ts);
        if flags.contains(FrameFlags::REMOTE) {
            CanFrame::remote(ts_us, bus, id, dlc).ok()
        } else {
            CanFrame::new(ts_us, bus, id, flags, &r[16..]).ok()
        }
    }
}

impl<R: Read> Iterator for SegmentReader<R> {
    type Item = io::Result<Record>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}
