//! Decoding raw frames into decoded rows, with the counters a decoder reports.

use std::collections::BTreeMap;
use std::io::Write;

use super::LakeError;
use super::decoded::DecodedWriter;
use super::raw::RawBatch;
use crate::format::dbc::{Database, DecodeError, SignalValue};
use crate::format::frame::{CanId, FrameFlags};

/// Unknown ids remembered for the log; the rest are only counted.
const UNKNOWN_IDS_KEPT: usize = 32;

/// What a decode run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    pub frames: u64,
    pub decoded_frames: u64,
    pub values: u64,
    /// Frames whose id the DBC does not define.
    pub unknown_ids: u64,
    /// Frames shorter than their message's DBC length.
    pub short_frames: u64,
    /// Frames with a multiplexer value the DBC does not define, or an invalid float.
    pub invalid_frames: u64,
    /// Remote and error frames, which carry no signals.
    pub skipped_frames: u64,
    /// Frame count per unknown id (the first few ids seen).
    #[serde(serialize_with = "hex_ids")]
    pub unknown_id_counts: BTreeMap<CanId, u64>,
}

fn hex_ids<S: serde::Serializer>(ids: &BTreeMap<CanId, u64>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(ids.iter().map(|(id, n)| (format!("0x{id}"), n)))
}

impl DecodeStats {
    pub fn add(&mut self, other: &DecodeStats) {
        self.frames += other.frames;
        self.decoded_frames += other.decoded_frames;
        self.values += other.values;
        self.unknown_ids += other.unknown_ids;
        self.short_frames += other.short_frames;
        self.invalid_frames += other.invalid_frames;
        self.skipped_frames += other.skipped_frames;
        for (id, n) in &other.unknown_id_counts {
            self.count_unknown(*id, *n);
        }
    }

    fn count_unknown(&mut self, id: CanId, n: u64) {
        if let Some(count) = self.unknown_id_counts.get_mut(&id) {
            *count += n;
        } else if self.unknown_id_counts.len() < UNKNOWN_IDS_KEPT {
            self.unknown_id_counts.insert(id, n);
        }
    }
}

/// Decodes raw batches into a decoded writer, counting as it goes.
pub struct FrameDecoder<'db> {
    db: &'db Database,
    values: Vec<SignalValue>,
    pub stats: DecodeStats,
}

impl<'db> FrameDecoder<'db> {
    pub fn new(db: &'db Database) -> Self {
        Self {
            db,
            values: Vec::with_capacity(64),
            stats: DecodeStats::default(),
        }
    }

    pub fn decode_batch<W: Write + Send>(
        &mut self,
        batch: &RawBatch,
        out: &mut DecodedWriter<W>,
    ) -> Result<(), LakeError> {
        for i in 0..batch.len() {
            let row = batch.frame(i)?;
            self.decode_frame(row.ts_us, row.id, row.flags, row.data, out)?;
        }
        Ok(())
    }

    pub fn decode_frame<W: Write + Send>(
        &mut self,
        ts_us: i64,
        id: CanId,
        flags: FrameFlags,
        data: &[u8],
        out: &mut DecodedWriter<W>,
    ) -> Result<(), LakeError> {
        let Some(index) = self.message_index(id, flags) else {
            return Ok(());
        };
        let message = &self.db.messages()[index];
        let source = id.source_address().filter(|_| message.is_j1939);
        // The writer decodes the frames of most messages itself, a signal
        // at a time over many frames; only reading the frame is left here.
        let Some(columns) = message.columns() else {
            return match self.decode_message(index, data) {
                Some(values) => out.push(ts_us, index, source, values),
                None => Ok(()),
            };
        };
        match columns.frame(data) {
            Ok(frame) => {
                self.count_decoded(columns.values(frame));
                out.push_frame(ts_us, index, source, frame)
            }
            Err(e) => {
                self.count_failed(&e);
                Ok(())
            }
        }
    }

    /// Decodes one frame and counts it; the message index and values when
    /// the frame decodes.
    pub fn decode(&mut self, id: CanId, flags: FrameFlags, data: &[u8]) -> Option<(usize, &[SignalValue])> {
        let index = self.message_index(id, flags)?;
        self.decode_message(index, data).map(|values| (index, values))
    }

    /// Counts a frame; the index of its message when it has one to decode.
    fn message_index(&mut self, id: CanId, flags: FrameFlags) -> Option<usize> {
        self.stats.frames += 1;
        if flags.contains(FrameFlags::REMOTE) || flags.contains(FrameFlags::ERROR) {
            self.stats.skipped_frames += 1;
            return None;
        }
        let index = self.db.message_index(id);
        if index.is_none() {
            self.stats.unknown_ids += 1;
            self.stats.count_unknown(id, 1);
        }
        index
    }

    fn decode_message(&mut self, index: usize, data: &[u8]) -> Option<&[SignalValue]> {
        match self.db.messages()[index].decode(data, &mut self.values) {
            Ok(()) => {
                self.count_decoded(self.values.len());
                Some(&self.values)
            }
            Err(e) => {
                self.count_failed(&e);
                None
            }
        }
    }

    fn count_decoded(&mut self, values: usize) {
        self.stats.decoded_frames += 1;
        self.stats.values += values as u64;
    }

    fn count_failed(&mut self, error: &DecodeError) {
        match error {
            DecodeError::WrongLength { .. } => self.stats.short_frames += 1,
            _ => self.stats.invalid_frames += 1,
        }
    }
}
