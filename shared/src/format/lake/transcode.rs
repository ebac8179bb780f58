//! Decoding raw frames into decoded rows, with the counters a decoder reports.
//! J1939 messages longer than a frame come in transport-protocol packets
//! (TP.CM / TP.DT frames the DBC does not define itself): they are
//! reassembled ([`Reassembler`]) and decoded with the DBC's message of their
//! PGN, up to 64 bytes; a transfer that breaks is counted, not guessed.

use std::collections::BTreeMap;
use std::io::Write;

use super::LakeError;
use super::decoded::DecodedWriter;
use super::raw::RawBatch;
use crate::format::dbc::{Database, DecodeError, SignalValue};
use crate::format::frame::{CanId, FrameFlags, MAX_PAYLOAD};
use crate::format::j1939::transport::{PGN_TP_CM, PGN_TP_DT, Reassembled, Reassembler};

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
    /// J1939 transport-protocol frames (TP.CM, TP.DT) the DBC does not define.
    pub transport_frames: u64,
    /// Messages reassembled from them (each decoded, or counted above as unknown, short or invalid).
    pub transport_messages: u64,
    /// Transfers that could not be completed: a lost packet, an abort, a
    /// timeout, or a transfer cut by the end of the batch.
    pub broken_transfers: u64,
    /// Reassembled messages longer than the 64 bytes the codec decodes.
    pub transport_too_long: u64,
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
        self.transport_frames += other.transport_frames;
        self.transport_messages += other.transport_messages;
        self.broken_transfers += other.broken_transfers;
        self.transport_too_long += other.transport_too_long;
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
    transport: Reassembler,
    pub stats: DecodeStats,
}

impl<'db> FrameDecoder<'db> {
    pub fn new(db: &'db Database) -> Self {
        Self {
            db,
            values: Vec::with_capacity(64),
            transport: Reassembler::default(),
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
            if let Some((ts_us, index, source, values)) = self.reassemble(ts_us, id, flags, data) {
                return out.push(ts_us, index, source, values);
            }
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
            if is_transport(id) {
                self.stats.transport_frames += 1;
            } else {
                self.count_unknown(id);
            }
        }
        index
    }

    fn count_unknown(&mut self, id: CanId) {
        self.stats.unknown_ids += 1;
        self.stats.count_unknown(id, 1);
    }

    /// A transport-protocol frame the DBC does not define, taken by the
    /// reassembler (other frames pass by); when it completes a message the
    /// DBC defines, the message's time, index, source address and values.
    pub fn reassemble(
        &mut self,
        ts_us: i64,
        id: CanId,
        flags: FrameFlags,
        data: &[u8],
    ) -> Option<(i64, usize, Option<u8>, &[SignalValue])> {
        if !is_transport(id) || flags.contains(FrameFlags::REMOTE) || flags.contains(FrameFlags::ERROR) {
            return None;
        }
        let message = self.transport.push(ts_us, id.raw(), data)?;
        self.stats.transport_messages += 1;
        let Reassembled {
            ts_us,
            pgn,
            source_address,
            destination_address,
            data,
        } = message;
        // The id a single frame of that PGN would have: PDU1 groups carry the receiver.
        let pdu_specific = if (pgn >> 8) & 0xFF < 240 {
            u32::from(destination_address)
        } else {
            0
        };
        let id = CanId::Extended((6 << 26) | ((pgn | pdu_specific) << 8) | u32::from(source_address));
        let Some(index) = self.db.message_index(id) else {
            self.count_unknown(id);
            return None;
        };
        if self.db.messages()[index].length > MAX_PAYLOAD {
            self.stats.transport_too_long += 1;
            return None;
        }
        let source = self.db.messages()[index].is_j1939.then_some(source_address);
        self.decode_message(index, &data)
            .map(|values| (ts_us, index, source, values))
    }

    /// Counts the transfers the batch ended in the middle of, with the
    /// others that broke: call once the batch's frames are all decoded.
    pub fn finish(&mut self) {
        self.transport.finish();
        self.stats.broken_transfers = self.transport.broken().values().sum();
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

/// Whether `id` is a J1939 transport-protocol frame: TP.CM or TP.DT.
fn is_transport(id: CanId) -> bool {
    id.pgn().is_some_and(|pgn| pgn == PGN_TP_CM || pgn == PGN_TP_DT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A J1939 database: `Long`, 20 bytes of PGN 0xFF10; `Prop`, 12 bytes of
    /// the PDU1 group 0xEF00 (to 0x20); `Huge`, 100 bytes of PGN 0xFF20.
    fn db() -> Database {
        Database::from_text(
            "BA_DEF_ \"ProtocolType\" STRING ;\nBA_ \"ProtocolType\" \"J1939\";\n\
             BO_ 2566852862 Long: 20 ECU\n SG_ First : 0|8@1+ (1,0) [0|255] \"\" X\n \
             SG_ Mid : 64|16@1+ (0.5,0) [0|32767] \"\" X\n SG_ Last : 152|8@1+ (1,-40) [-40|215] \"\" X\n\
             BO_ 2565808144 Prop: 12 ECU\n SG_ Byte11 : 88|8@1+ (1,0) [0|255] \"\" X\n\
             BO_ 2566856958 Huge: 100 ECU\n SG_ B0 : 0|8@1+ (1,0) [0|255] \"\" X\n",
            "j1939.dbc",
        )
        .unwrap()
    }

    /// The TP frames carrying `body` of `pgn` from `sa` to `da` (0xFF: BAM;
    /// otherwise RTS, one CTS for everything, the packets), 10 ms apart.
    fn transfer(sa: u8, da: u8, pgn: u32, body: &[u8]) -> Vec<(i64, CanId, [u8; 8])> {
        let id = |tp: u32, from: u8, to: u8| CanId::Extended((6 << 26) | ((tp | u32::from(to)) << 8) | u32::from(from));
        let packets = body.len().div_ceil(7) as u8;
        let [lo, hi] = (body.len() as u16).to_le_bytes();
        let [p0, p1, p2, _] = pgn.to_le_bytes();
        let kind = if da == 0xFF { 32 } else { 16 };
        let mut frames = vec![(0, id(PGN_TP_CM, sa, da), [kind, lo, hi, packets, 0xFF, p0, p1, p2])];
        if da != 0xFF {
            frames.push((5_000, id(PGN_TP_CM, da, sa), [17, packets, 1, 0xFF, 0xFF, p0, p1, p2]));
        }
        for seq in 1..=packets {
            let mut d = [0xFF; 8];
            d[0] = seq;
            let chunk = &body[usize::from(seq - 1) * 7..(usize::from(seq) * 7).min(body.len())];
            d[1..1 + chunk.len()].copy_from_slice(chunk);
            frames.push((i64::from(seq) * 10_000, id(PGN_TP_DT, sa, da), d));
        }
        frames
    }

    fn run(
        decoder: &mut FrameDecoder<'_>,
        frames: &[(i64, CanId, [u8; 8])],
    ) -> Vec<(usize, Option<u8>, Vec<SignalValue>)> {
        let mut out = Vec::new();
        for (ts, id, data) in frames {
            assert!(
                decoder.message_index(*id, FrameFlags::empty()).is_none(),
                "no DBC message of TP's own"
            );
            if let Some((_, index, source, values)) = decoder.reassemble(*ts, *id, FrameFlags::empty(), data) {
                out.push((index, source, values.to_vec()));
            }
        }
        out
    }

    #[test]
    fn reassembled_messages_decode_as_the_dbc_decodes_their_bytes() {
        let db = db();
        let mut decoder = FrameDecoder::new(&db);
        let long: Vec<u8> = (0..20).map(|i| i * 11 + 1).collect();
        let prop: Vec<u8> = (0..12).map(|i| 200 - i * 3).collect();
        let mut got = run(&mut decoder, &transfer(0x05, 0xFF, 0xFF10, &long));
        got.extend(run(&mut decoder, &transfer(0x10, 0x20, 0xEF00, &prop)));
        let direct = |name: &str, bytes: &[u8]| {
            let index = (db.messages().iter()).position(|m| m.name == name).unwrap();
            let mut values = Vec::new();
            db.messages()[index].decode(bytes, &mut values).unwrap();
            (index, values)
        };
        let (long_index, long_values) = direct("Long", &long);
        let (prop_index, prop_values) = direct("Prop", &prop);
        assert_eq!(
            got,
            [
                (long_index, Some(0x05), long_values),
                (prop_index, Some(0x10), prop_values)
            ]
        );
        assert_eq!(decoder.stats.transport_messages, 2);
        assert_eq!(decoder.stats.unknown_ids, 0, "TP frames are not unknown ids");
    }

    #[test]
    fn a_message_over_64_bytes_and_a_cut_transfer_are_counted() {
        let db = db();
        let mut decoder = FrameDecoder::new(&db);
        assert!(run(&mut decoder, &transfer(0x05, 0xFF, 0xFF20, &[7; 100])).is_empty());
        assert_eq!(decoder.stats.transport_too_long, 1);
        let cut = transfer(0x06, 0xFF, 0xFF10, &[1; 20]);
        assert!(run(&mut decoder, &cut[..2]).is_empty());
        decoder.finish();
        assert_eq!(decoder.stats.broken_transfers, 1, "the batch ended inside it");
    }
}
