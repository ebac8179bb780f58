//! J1939-21's transport protocol, heard from the bus: the messages of 9 to
//! 1,785 bytes that travel in packets, reassembled as a listener (a logger
//! takes part in no transfer; it hears both sides of one).
//!
//! - **BAM** (broadcast): `TP.CM_BAM` to the global address announces the
//!   size, the packet count and the PGN; `TP.DT` packets 1..=n follow.
//! - **CMDT** (to one address, with flow control): `TP.CM_RTS` from the
//!   sender, `TP.CM_CTS` from the receiver granting packets from a number,
//!   `TP.DT` packets, more CTS, and `TP.CM_EndOfMsgAck` when whole. A CTS
//!   may ask again for packets already sent.
//!
//! A transfer is keyed by its sender and its receiver (the global address
//! for BAM), so transfers of different senders interleave freely. One that
//! cannot be completed is **broken** and counted, never guessed: a packet
//! out of sequence (a lost one), an abort (`TP.Conn_Abort`), a new
//! announcement replacing it, a packet later than the standard's timeouts
//! (T1, 750 ms between packets; T2, 1,250 ms from a CTS to its first
//! packet), or an announcement out of bounds.

use std::collections::HashMap;

/// TP.CM: the connection management messages.
pub const PGN_TP_CM: u32 = 0xEC00;
/// TP.DT: the data packets.
pub const PGN_TP_DT: u32 = 0xEB00;
const GLOBAL: u8 = 0xFF;

const RTS: u8 = 16;
const CTS: u8 = 17;
const END_OF_MSG_ACK: u8 = 19;
const BAM: u8 = 32;
const ABORT: u8 = 255;

/// The longest message the protocol carries: 255 packets of 7 bytes.
pub const MAX_SIZE: usize = 1_785;
/// The most time between two packets of a transfer.
pub const T1_US: i64 = 750_000;
/// The most time from a CTS to the first packet it granted.
pub const T2_US: i64 = 1_250_000;

/// A message reassembled from its packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// The time of its last packet.
    pub ts_us: i64,
    pub pgn: u32,
    pub source_address: u8,
    /// The receiver, or 0xFF for a broadcast.
    pub destination_address: u8,
    pub data: Vec<u8>,
}

/// Why a transfer was not completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Broken {
    /// A packet came out of sequence: one was lost, or came twice.
    OutOfSequence,
    /// A side aborted it.
    Aborted,
    /// A new announcement from the same sender to the same receiver replaced it.
    Replaced,
    /// Its next packet came later than T1 (or T2 after a CTS), or never.
    TimedOut,
    /// Its announcement was out of bounds (size, packet count).
    BadAnnouncement,
}

/// A transfer under way.
#[derive(Debug)]
struct Transfer {
    pgn: u32,
    size: usize,
    packets: u8,
    data: Vec<u8>,
    /// The sequence number the next packet must carry.
    next: u8,
    /// CMDT: the last packet the latest CTS granted.
    granted_to: Option<u8>,
    /// When the next packet is due by.
    due_us: i64,
}

/// Reassembles the transport protocol's messages from frames in time order.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// By (sender, receiver).
    transfers: HashMap<(u8, u8), Transfer>,
    broken: HashMap<Broken, u64>,
}

impl Reassembler {
    /// Takes one frame (its 29-bit id's PGN, addresses and payload, and its
    /// time); a message when it completes one. Frames of other PGNs are not
    /// the reassembler's.
    pub fn push(&mut self, ts_us: i64, id: u32, data: &[u8]) -> Option<Reassembled> {
        let pdu_format = ((id >> 16) & 0xFF) as u8;
        let pgn = (id >> 8) & 0x3_FF00;
        let (source, destination) = ((id & 0xFF) as u8, ((id >> 8) & 0xFF) as u8);
        if pdu_format >= 240 || data.len() < 8 || (pgn != PGN_TP_CM && pgn != PGN_TP_DT) {
            return None;
        }
        // Only a transport frame can change a transfer, so only one looks for
        // late ones (and `finish` for those the log ends in).
        self.expire(ts_us);
        match pgn {
            PGN_TP_CM => {
                self.control(ts_us, source, destination, data);
                None
            }
            PGN_TP_DT => self.packet(ts_us, source, destination, data),
            _ => None,
        }
    }

    /// Transfers not completed, by why.
    pub fn broken(&self) -> &HashMap<Broken, u64> {
        &self.broken
    }

    /// Every transfer still open counts as timed out: the log ended.
    pub fn finish(&mut self) {
        for _ in self.transfers.drain() {
            *self.broken.entry(Broken::TimedOut).or_default() += 1;
        }
    }

    fn fail(&mut self, key: (u8, u8), why: Broken) {
        if self.transfers.remove(&key).is_some() {
            *self.broken.entry(why).or_default() += 1;
        }
    }

    fn expire(&mut self, now_us: i64) {
        let late: Vec<(u8, u8)> = (self.transfers.iter())
            .filter(|(_, t)| now_us > t.due_us)
            .map(|(k, _)| *k)
            .collect();
        for key in late {
            self.fail(key, Broken::TimedOut);
        }
    }

    fn control(&mut self, ts_us: i64, source: u8, destination: u8, d: &[u8]) {
        let pgn = u32::from(d[5]) | u32::from(d[6]) << 8 | u32::from(d[7]) << 16;
        match d[0] {
            BAM | RTS => {
                // BAM goes to the global address, RTS to one receiver.
                let key = (source, if d[0] == BAM { GLOBAL } else { destination });
                self.fail(key, Broken::Replaced);
                let size = usize::from(u16::from_le_bytes([d[1], d[2]]));
                let packets = d[3];
                if !(9..=MAX_SIZE).contains(&size) || usize::from(packets) != size.div_ceil(7) {
                    *self.broken.entry(Broken::BadAnnouncement).or_default() += 1;
                    return;
                }
                self.transfers.insert(
                    key,
                    Transfer {
                        pgn,
                        size,
                        packets,
                        data: Vec::with_capacity(size + 7),
                        next: 1,
                        // An RTS waits for its CTS; the CTS sets when packets are due.
                        granted_to: (d[0] == RTS).then_some(0),
                        due_us: ts_us + if d[0] == BAM { T1_US } else { T2_US },
                    },
                );
            }
            CTS => {
                // From the receiver to the sender: the transfer is (destination, source).
                let key = (destination, source);
                let Some(t) = self.transfers.get_mut(&key) else { return };
                let (count, from) = (d[1], d[2]);
                if count == 0 {
                    // Hold: the receiver asks the sender to wait.
                    t.due_us = ts_us + T2_US;
                    return;
                }
                // Packets again from `from` (a retransmission asks for some already held).
                if from == 0 || from > t.next || usize::from(from) > usize::from(t.packets) {
                    self.fail(key, Broken::OutOfSequence);
                    return;
                }
                t.data.truncate(usize::from(from - 1) * 7);
                t.next = from;
                t.granted_to = Some(from.saturating_add(count - 1).min(t.packets));
                t.due_us = ts_us + T2_US;
            }
            END_OF_MSG_ACK => {}
            ABORT => {
                // Either side may abort: the sender's transfer to us, or ours to it.
                let key = if self.transfers.contains_key(&(source, destination)) {
                    (source, destination)
                } else {
                    (destination, source)
                };
                self.fail(key, Broken::Aborted);
            }
            _ => {}
        }
    }

    fn packet(&mut self, ts_us: i64, source: u8, destination: u8, d: &[u8]) -> Option<Reassembled> {
        let key = (source, destination);
        let t = self.transfers.get_mut(&key)?;
        let sequence = d[0];
        let granted = t.granted_to.is_none_or(|last| sequence <= last);
        if sequence != t.next || !granted {
            self.fail(key, Broken::OutOfSequence);
            return None;
        }
        t.data.extend_from_slice(&d[1..8]);
        t.next = t.next.wrapping_add(1);
        t.due_us = ts_us + T1_US;
        if sequence < t.packets {
            return None;
        }
        let t = self.transfers.remove(&key)?;
        let mut data = t.data;
        data.truncate(t.size);
        Some(Reassembled {
            ts_us,
            pgn: t.pgn,
            source_address: source,
            destination_address: destination,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 29-bit id of a TP frame of `pgn` (0xEC00 or 0xEB00) from `sa` to `da`.
    fn id(pgn: u32, sa: u8, da: u8) -> u32 {
        (6 << 26) | ((pgn | u32::from(da)) << 8) | u32::from(sa)
    }

    fn announce(kind: u8, size: usize, pgn: u32, max: u8) -> [u8; 8] {
        let packets = size.div_ceil(7) as u8;
        let [lo, hi] = (size as u16).to_le_bytes();
        [
            kind,
            lo,
            hi,
            packets,
            max,
            pgn as u8,
            (pgn >> 8) as u8,
            (pgn >> 16) as u8,
        ]
    }

    fn packet(seq: u8, message: &[u8]) -> [u8; 8] {
        let mut d = [0xFF; 8];
        d[0] = seq;
        let start = usize::from(seq - 1) * 7;
        let part = &message[start.min(message.len())..(start + 7).min(message.len())];
        d[1..1 + part.len()].copy_from_slice(part);
        d
    }

    fn message(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 7 + 3) as u8).collect()
    }

    /// A BAM of `size` bytes from `sa`, a packet every 50 ms from `t0`: its frames.
    fn bam(t0: i64, sa: u8, pgn: u32, body: &[u8]) -> Vec<(i64, u32, [u8; 8])> {
        let mut frames = vec![(t0, id(PGN_TP_CM, sa, GLOBAL), announce(BAM, body.len(), pgn, 0xFF))];
        for seq in 1..=body.len().div_ceil(7) as u8 {
            frames.push((
                t0 + i64::from(seq) * 50_000,
                id(PGN_TP_DT, sa, GLOBAL),
                packet(seq, body),
            ));
        }
        frames
    }

    fn run(frames: &[(i64, u32, [u8; 8])]) -> (Vec<Reassembled>, Reassembler) {
        let mut r = Reassembler::default();
        let done = frames.iter().filter_map(|(t, id, d)| r.push(*t, *id, d)).collect();
        r.finish();
        (done, r)
    }

    #[test]
    fn a_bam_of_2_to_255_packets_reassembles_to_its_size() {
        for size in [9, 14, 15, 100, MAX_SIZE] {
            let body = message(size);
            let (done, r) = run(&bam(0, 0x00, 0xFECA, &body));
            assert_eq!(done.len(), 1, "{size} bytes");
            assert_eq!(done[0].data, body);
            assert_eq!(
                (done[0].pgn, done[0].source_address, done[0].destination_address),
                (0xFECA, 0, 0xFF)
            );
            assert!(r.broken().is_empty());
        }
    }

    #[test]
    fn cmdt_follows_the_receivers_clear_to_send_and_its_retransmission() {
        let body = message(30); // 5 packets
        let (sa, da) = (0x10, 0x20);
        let cts = |count: u8, from: u8| [CTS, count, from, 0xFF, 0xFF, 0xCA, 0xFE, 0x00];
        let frames = vec![
            (0, id(PGN_TP_CM, sa, da), announce(RTS, 30, 0xFECA, 2)),
            (10_000, id(PGN_TP_CM, da, sa), cts(2, 1)),
            (20_000, id(PGN_TP_DT, sa, da), packet(1, &body)),
            (30_000, id(PGN_TP_DT, sa, da), packet(2, &body)),
            // The receiver asks for packet 2 again, then 3 and 4.
            (40_000, id(PGN_TP_CM, da, sa), cts(3, 2)),
            (50_000, id(PGN_TP_DT, sa, da), packet(2, &body)),
            (60_000, id(PGN_TP_DT, sa, da), packet(3, &body)),
            (70_000, id(PGN_TP_DT, sa, da), packet(4, &body)),
            (80_000, id(PGN_TP_CM, da, sa), cts(1, 5)),
            (90_000, id(PGN_TP_DT, sa, da), packet(5, &body)),
            (
                95_000,
                id(PGN_TP_CM, da, sa),
                [END_OF_MSG_ACK, 30, 0, 5, 0xFF, 0xCA, 0xFE, 0x00],
            ),
        ];
        let (done, r) = run(&frames);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].data, body);
        assert_eq!((done[0].source_address, done[0].destination_address), (sa, da));
        assert!(r.broken().is_empty());
    }

    #[test]
    fn a_packet_beyond_what_the_cts_granted_breaks_the_transfer() {
        let body = message(30);
        let frames = vec![
            (0, id(PGN_TP_CM, 1, 2), announce(RTS, 30, 0xFECA, 2)),
            (10_000, id(PGN_TP_CM, 2, 1), [CTS, 1, 1, 0xFF, 0xFF, 0xCA, 0xFE, 0]),
            (20_000, id(PGN_TP_DT, 1, 2), packet(1, &body)),
            (30_000, id(PGN_TP_DT, 1, 2), packet(2, &body)),
        ];
        let (done, r) = run(&frames);
        assert!(done.is_empty());
        assert_eq!(r.broken()[&Broken::OutOfSequence], 1);
    }

    #[test]
    fn transfers_of_two_senders_interleave() {
        let (a, b) = (message(40), message(20));
        let mut frames = bam(0, 0x00, 0xFECA, &a);
        frames.extend(bam(25_000, 0x03, 0xFECA, &b));
        frames.sort_by_key(|f| f.0);
        let (done, r) = run(&frames);
        let mut by_sender: Vec<(u8, Vec<u8>)> = done.into_iter().map(|m| (m.source_address, m.data)).collect();
        by_sender.sort();
        assert_eq!(by_sender, [(0x00, a), (0x03, b)]);
        assert!(r.broken().is_empty());
    }

    #[test]
    fn a_lost_packet_an_abort_a_late_packet_and_a_replaced_bam_are_counted_not_guessed() {
        let body = message(30);
        let mut lost = bam(0, 0x00, 0xFECA, &body);
        lost.remove(3);
        let mut aborted = bam(0, 0x01, 0xFECA, &body)[..3].to_vec();
        aborted.push((
            120_000,
            id(PGN_TP_CM, 0x01, GLOBAL),
            [ABORT, 3, 0xFF, 0xFF, 0xFF, 0xCA, 0xFE, 0],
        ));
        aborted.extend(bam(0, 0x01, 0xFECA, &body)[3..].to_vec());
        let mut late = bam(0, 0x02, 0xFECA, &body);
        for f in late.iter_mut().skip(3) {
            f.0 += 800_000;
        }
        let mut replaced = bam(0, 0x04, 0xFECA, &body)[..3].to_vec();
        replaced.extend(bam(200_000, 0x04, 0xFECA, &message(12)));
        for (frames, why) in [
            (lost, Broken::OutOfSequence),
            (aborted, Broken::Aborted),
            (late, Broken::TimedOut),
            (replaced, Broken::Replaced),
        ] {
            let (done, r) = run(&frames);
            let whole = usize::from(why == Broken::Replaced);
            assert_eq!(
                done.len(),
                whole,
                "{why:?}: only a transfer announced after it completes"
            );
            assert_eq!(r.broken().get(&why), Some(&1), "{why:?}: {:?}", r.broken());
        }
        let bad = [(0, id(PGN_TP_CM, 5, GLOBAL), announce(BAM, 8, 0xFECA, 0xFF))];
        assert_eq!(run(&bad).1.broken().get(&Broken::BadAnnouncement), Some(&1));
    }
}
