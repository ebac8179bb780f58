//! Where a signal's bits sit in a payload, and moving them in and out.
//!
//! DBC numbers Intel (little-endian) signals by their least significant bit,
//! counting bit 0 as the LSB of byte 0. Motorola (big-endian) signals are
//! numbered by their most significant bit in "sawtooth" order (bit 7 is the MSB
//! of byte 0); the signal then runs MSB first through consecutive bits in
//! network order (bit 0 = MSB of byte 0), as cantools does.
//!
//! Payloads are copied into a zero-padded buffer, so a signal of up to 64 bits
//! is always one unaligned 128-bit load, one shift and one mask.

/// Payload buffer: 64 data bytes plus room for a 16-byte load at any offset.
pub(crate) const PADDED: usize = 64 + 16;
pub(crate) type Padded = [u8; PADDED];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// Intel.
    LittleEndian,
    /// Motorola.
    BigEndian,
}

/// A signal's position, compiled from its DBC start bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub order: ByteOrder,
    /// Intel: the LSB's bit number. Motorola: the MSB's network bit number.
    pub first: u32,
    pub len: u32,
}

impl Layout {
    pub fn new(order: ByteOrder, dbc_start_bit: u32, len: u32) -> Self {
        let first = match order {
            ByteOrder::LittleEndian => dbc_start_bit,
            ByteOrder::BigEndian => network_bit(dbc_start_bit),
        };
        Self { order, first, len }
    }

    /// Network bit numbers (bit 0 = MSB of byte 0) the signal occupies, in
    /// the numbering cantools uses to check overlaps.
    pub fn network_bits(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).map(move |i| match self.order {
            ByteOrder::BigEndian => self.first + i,
            ByteOrder::LittleEndian => network_bit(self.first + i),
        })
    }

    /// One past the last byte the signal touches.
    pub fn end_byte(&self) -> u32 {
        (self.first + self.len).div_ceil(8)
    }

    /// The signal's bits as an unsigned integer (`len` <= 64).
    #[inline(always)]
    pub fn extract(&self, buf: &Padded) -> u64 {
        debug_assert!(self.len <= 64);
        let byte = (self.first / 8) as usize;
        let bit = self.first % 8;
        let mut word = [0u8; 16];
        word.copy_from_slice(&buf[byte..byte + 16]);
        let value = match self.order {
            ByteOrder::LittleEndian => u128::from_le_bytes(word) >> bit,
            ByteOrder::BigEndian => u128::from_be_bytes(word) >> (128 - bit - self.len),
        };
        (value as u64) & mask(self.len)
    }

    /// Writes `raw`'s low `len` bits into the signal's place (`len` <= 64).
    pub fn insert(&self, buf: &mut Padded, raw: u64) {
        debug_assert!(self.len <= 64);
        let byte = (self.first / 8) as usize;
        let bit = self.first % 8;
        let raw = u128::from(raw & mask(self.len));
        let field = u128::from(mask(self.len));
        let mut word = [0u8; 16];
        word.copy_from_slice(&buf[byte..byte + 16]);
        let updated = match self.order {
            ByteOrder::LittleEndian => {
                let v = u128::from_le_bytes(word);
                ((v & !(field << bit)) | (raw << bit)).to_le_bytes()
            }
            ByteOrder::BigEndian => {
                let shift = 128 - bit - self.len;
                let v = u128::from_be_bytes(word);
                ((v & !(field << shift)) | (raw << shift)).to_be_bytes()
            }
        };
        buf[byte..byte + 16].copy_from_slice(&updated);
    }

    /// Bit `i` of the signal counted from its LSB; for signals longer than 64 bits.
    pub fn bit(&self, buf: &Padded, i: u32) -> bool {
        let (byte, shift) = match self.order {
            ByteOrder::LittleEndian => {
                let b = self.first + i;
                (b / 8, b % 8)
            }
            ByteOrder::BigEndian => {
                let net = self.first + self.len - 1 - i;
                (net / 8, 7 - net % 8)
            }
        };
        buf[byte as usize] >> shift & 1 == 1
    }
}

/// Sawtooth bit number (DBC Motorola start bit) to network bit number.
pub(crate) fn network_bit(sawtooth: u32) -> u32 {
    8 * (sawtooth / 8) + (7 - sawtooth % 8)
}

#[inline(always)]
pub(crate) fn mask(len: u32) -> u64 {
    if len >= 64 { u64::MAX } else { (1u64 << len) - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn padded(data: &[u8]) -> Padded {
        let mut buf = [0u8; PADDED];
        buf[..data.len()].copy_from_slice(data);
        buf
    }

    #[test]
    fn intel_signals_read_lsb_first() {
        let buf = padded(&[0x34, 0x12, 0xFF]);
        assert_eq!(Layout::new(ByteOrder::LittleEndian, 0, 16).extract(&buf), 0x1234);
        assert_eq!(Layout::new(ByteOrder::LittleEndian, 4, 8).extract(&buf), 0x23);
        assert_eq!(Layout::new(ByteOrder::LittleEndian, 0, 1).extract(&buf), 0);
    }

    #[test]
    fn motorola_start_bit_is_the_msb_in_sawtooth_order() {
        // A 16-bit Motorola signal starting at bit 7 covers bytes 0 and 1, MSB first.
        let buf = padded(&[0x12, 0x34]);
        assert_eq!(Layout::new(ByteOrder::BigEndian, 7, 16).extract(&buf), 0x1234);
        // Start bit 3, 8 bits: the low nibble of byte 0 then the high nibble of byte 1.
        assert_eq!(Layout::new(ByteOrder::BigEndian, 3, 8).extract(&buf), 0x23);
    }

    #[test]
    fn full_width_signals_at_the_end_of_a_64_byte_frame() {
        let mut data = [0u8; 64];
        data[56..].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        let buf = padded(&data);
        assert_eq!(
            Layout::new(ByteOrder::LittleEndian, 448, 64).extract(&buf),
            0x0102_0304_0506_0708
        );
        assert_eq!(
            Layout::new(ByteOrder::BigEndian, 455, 64).extract(&buf),
            0x0807_0605_0403_0201
        );
    }

    #[test]
    fn insert_is_the_inverse_of_extract_and_keeps_neighbours() {
        for order in [ByteOrder::LittleEndian, ByteOrder::BigEndian] {
            for start in [0, 3, 7, 12, 21, 60] {
                for len in [1, 5, 13, 32, 64] {
                    let layout = Layout::new(order, start, len);
                    let mut buf = padded(&[0xA5; 16]);
                    let before = buf;
                    let value = 0x0123_4567_89AB_CDEF & mask(len);
                    layout.insert(&mut buf, value);
                    assert_eq!(layout.extract(&buf), value, "{order:?} {start} {len}");
                    layout.insert(&mut buf, layout.extract(&before));
                    assert_eq!(buf, before);
                }
            }
        }
    }

    #[test]
    fn bitwise_reading_matches_word_reading() {
        let buf = padded(&[0x9C, 0x5A, 0x33, 0xF0, 0x0F, 0x81, 0x7E, 0x42]);
        for order in [ByteOrder::LittleEndian, ByteOrder::BigEndian] {
            let layout = Layout::new(order, 13, 27);
            let word = layout.extract(&buf);
            let bitwise = (0..27)
                .rev()
                .fold(0u64, |acc, i| acc << 1 | u64::from(layout.bit(&buf, i)));
            assert_eq!(word, bitwise, "{order:?}");
        }
    }
}
