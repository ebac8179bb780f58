//! The CAN frame: what every source produces and every sink consumes.

use std::fmt;
use std::sync::Arc;

/// Largest CAN FD payload.
pub const MAX_PAYLOAD: usize = 64;
/// Largest classic CAN payload.
pub const MAX_CLASSIC_PAYLOAD: usize = 8;
/// Payload lengths a CAN FD frame can have (the DLC table of ISO 11898-1).
pub const FD_LENGTHS: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64];

/// A CAN identifier: 11-bit standard or 29-bit extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CanId {
    Standard(u16),
    Extended(u32),
}

impl CanId {
    pub const MAX_STANDARD: u32 = 0x7FF;
    pub const MAX_EXTENDED: u32 = 0x1FFF_FFFF;

    /// A standard id, if `raw` fits in 11 bits.
    pub fn standard(raw: u32) -> Option<Self> {
        (raw <= Self::MAX_STANDARD).then_some(Self::Standard(raw as u16))
    }

    /// An extended id, if `raw` fits in 29 bits.
    pub fn extended(raw: u32) -> Option<Self> {
        (raw <= Self::MAX_EXTENDED).then_some(Self::Extended(raw))
    }

    /// An id from its number and IDE flag, if the number fits.
    pub fn new(raw: u32, extended: bool) -> Option<Self> {
        if extended {
            Self::extended(raw)
        } else {
            Self::standard(raw)
        }
    }

    /// The numeric identifier without the IDE flag.
    pub fn raw(self) -> u32 {
        match self {
            Self::Standard(id) => u32::from(id),
            Self::Extended(id) => id,
        }
    }

    pub fn is_extended(self) -> bool {
        matches!(self, Self::Extended(_))
    }

    /// The J1939 parameter group number of an extended id: data page and PDU
    /// format, with PDU specific for broadcast groups (PDU format 240 and up);
    /// for peer-to-peer groups (below 240) PDU specific is the destination
    /// address, not part of the group. `None` for standard ids.
    pub fn pgn(self) -> Option<u32> {
        let Self::Extended(id) = self else { return None };
        let pgn = (id >> 8) & 0x3_FFFF;
        let pdu_format = (pgn >> 8) & 0xFF;
        Some(if pdu_format < 240 { pgn & 0x3_FF00 } else { pgn })
    }

    /// The J1939 source address of an extended id (its low byte).
    pub fn source_address(self) -> Option<u8> {
        match self {
            Self::Extended(id) => Some((id & 0xFF) as u8),
            Self::Standard(_) => None,
        }
    }
}

impl fmt::Display for CanId {
    /// candump notation: 3 hex digits standard, 8 extended.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standard(id) => write!(f, "{id:03X}"),
            Self::Extended(id) => write!(f, "{id:08X}"),
        }
    }
}

/// Frame flags, as a small bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrameFlags(u8);

impl FrameFlags {
    /// CAN FD frame (FDF).
    pub const FD: Self = Self(0x01);
    /// CAN FD bit-rate switch.
    pub const BRS: Self = Self(0x02);
    /// CAN FD error-state indicator.
    pub const ESI: Self = Self(0x04);
    /// Classic remote transmission request.
    pub const REMOTE: Self = Self(0x08);
    /// Error frame (SocketCAN `CAN_ERR_FLAG`): the id carries the error class.
    pub const ERROR: Self = Self(0x10);

    pub const fn empty() -> Self {
        Self(0)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Flags from their bits; unknown bits are dropped.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        Self(bits & 0x1F)
    }
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// Name of the bus a frame was seen on (`can0`, `vcan1`, ...). Shared, because
/// millions of frames carry one of a handful of names.
pub type BusName = Arc<str>;

/// Why a frame could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("payload of {len} bytes is longer than {max} bytes")]
    PayloadTooLong { len: usize, max: usize },
}

/// One CAN or CAN FD frame as captured.
#[derive(Clone, PartialEq, Eq)]
pub struct CanFrame {
    /// Microseconds since the Unix epoch, UTC.
    pub ts_us: i64,
    pub bus: BusName,
    pub id: CanId,
    pub flags: FrameFlags,
    len: u8,
    data: [u8; MAX_PAYLOAD],
}

impl CanFrame {
    /// A frame with the given payload; at most 8 bytes unless `flags` has FD.
    pub fn new(ts_us: i64, bus: BusName, id: CanId, flags: FrameFlags, payload: &[u8]) -> Result<Self, FrameError> {
        let max = if flags.contains(FrameFlags::FD) {
            MAX_PAYLOAD
        } else {
            MAX_CLASSIC_PAYLOAD
        };
        if payload.len() > max {
            return Err(FrameError::PayloadTooLong {
                len: payload.len(),
                max,
            });
        }
        let mut data = [0u8; MAX_PAYLOAD];
        data[..payload.len()].copy_from_slice(payload);
        Ok(Self {
            ts_us,
            bus,
            id,
            flags,
            len: payload.len() as u8,
            data,
        })
    }

    /// A remote request for `dlc` bytes (classic CAN only).
    pub fn remote(ts_us: i64, bus: BusName, id: CanId, dlc: u8) -> Result<Self, FrameError> {
        if usize::from(dlc) > MAX_CLASSIC_PAYLOAD {
            return Err(FrameError::PayloadTooLong {
                len: dlc.into(),
                max: MAX_CLASSIC_PAYLOAD,
            });
        }
        Ok(Self {
            ts_us,
            bus,
            id,
            flags: FrameFlags::REMOTE,
            len: dlc,
            data: [0u8; MAX_PAYLOAD],
        })
    }

    /// The payload; empty for a remote frame.
    pub fn data(&self) -> &[u8] {
        if self.is_remote() {
            &[]
        } else {
            &self.data[..usize::from(self.len)]
        }
    }

    /// Payload length in bytes; for a remote frame, the length requested.
    pub fn dlc(&self) -> u8 {
        self.len
    }

    pub fn is_fd(&self) -> bool {
        self.flags.contains(FrameFlags::FD)
    }
    pub fn is_remote(&self) -> bool {
        self.flags.contains(FrameFlags::REMOTE)
    }
    pub fn is_error(&self) -> bool {
        self.flags.contains(FrameFlags::ERROR)
    }
}

impl fmt::Debug for CanFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CanFrame")
            .field("ts_us", &self.ts_us)
            .field("bus", &self.bus)
            .field("id", &format_args!("{}", self.id))
            .field("flags", &self.flags)
            .field("dlc", &self.len)
            .field("data", &format_args!("{}", hex(self.data())))
            .finish()
    }
}

/// Upper-case hex of a byte string, as candump writes it.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xF)] as char);
    }
    out
}

/// The smallest CAN FD length that holds `len` bytes, or `None` above 64.
pub fn fd_length_for(len: usize) -> Option<usize> {
    FD_LENGTHS.iter().copied().find(|&l| l >= len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus() -> BusName {
        Arc::from("can0")
    }

    #[test]
    fn classic_frames_hold_at_most_eight_bytes() {
        let id = CanId::Standard(0x123);
        assert!(CanFrame::new(0, bus(), id, FrameFlags::empty(), &[0; 8]).is_ok());
        assert_eq!(
            CanFrame::new(0, bus(), id, FrameFlags::empty(), &[0; 9]).unwrap_err(),
            FrameError::PayloadTooLong { len: 9, max: 8 }
        );
        assert!(CanFrame::new(0, bus(), id, FrameFlags::FD, &[0; 64]).is_ok());
        assert!(CanFrame::new(0, bus(), id, FrameFlags::FD, &[0; 65]).is_err());
    }

    #[test]
    fn ids_are_range_checked() {
        assert_eq!(CanId::standard(0x7FF), Some(CanId::Standard(0x7FF)));
        assert_eq!(CanId::standard(0x800), None);
        assert_eq!(CanId::extended(0x1FFF_FFFF), Some(CanId::Extended(0x1FFF_FFFF)));
        assert_eq!(CanId::extended(0x2000_0000), None);
        assert_eq!(CanId::Standard(0x1F).to_string(), "01F");
        assert_eq!(CanId::Extended(0x1F).to_string(), "0000001F");
    }

    #[test]
    fn remote_frames_have_no_payload_but_a_length() {
        let f = CanFrame::remote(1, bus(), CanId::Standard(1), 4).unwrap();
        assert!(f.data().is_empty());
        assert_eq!(f.dlc(), 4);
    }

    #[test]
    fn fd_lengths_round_up() {
        assert_eq!(fd_length_for(9), Some(12));
        assert_eq!(fd_length_for(64), Some(64));
        assert_eq!(fd_length_for(65), None);
    }
}
