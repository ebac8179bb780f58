//! One signal: where its bits are, how raw becomes physical, and back.

use super::bits::{ByteOrder, Layout, Padded, mask};

/// How a signal's raw bits are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Unsigned,
    Signed,
    /// IEEE 754 half precision (a 16-bit `SIG_VALTYPE_` float).
    Float16,
    Float32,
    Float64,
    /// A `SIG_VALTYPE_` float of a length IEEE 754 does not have. It loads, but
    /// decoding any frame that contains it fails, as in cantools.
    InvalidFloat,
}

impl ValueKind {
    pub(crate) fn float_of_length(length: u32) -> Self {
        match length {
            16 => Self::Float16,
            32 => Self::Float32,
            64 => Self::Float64,
            _ => Self::InvalidFloat,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Self::Float16 | Self::Float32 | Self::Float64 | Self::InvalidFloat)
    }
}

/// Raw to physical: `raw * factor + offset`. cantools computes it with exact
/// integers when factor and offset are integral and the raw value is an integer;
/// the `Integer` form keeps that exactness up to 128 bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Conversion {
    Identity,
    Integer { factor: i64, offset: i64 },
    Linear { factor: f64, offset: f64 },
}

impl Conversion {
    pub fn new(factor: f64, offset: f64, kind: ValueKind) -> Self {
        if factor == 1.0 && offset == 0.0 {
            return Self::Identity;
        }
        // Beyond i64 the exact product would not fit 128 bits.
        let integral = |v: f64| v.fract() == 0.0 && v.abs() < 9.2e18;
        if !kind.is_float() && integral(factor) && integral(offset) {
            return Self::Integer {
                factor: factor as i64,
                offset: offset as i64,
            };
        }
        Self::Linear { factor, offset }
    }
}

/// The multiplexer a signal belongs to, and the multiplexer values that select it.
#[derive(Clone, Debug, PartialEq)]
pub struct Multiplexed {
    pub multiplexer: String,
    /// Inclusive ranges of multiplexer values.
    pub values: Vec<(i128, i128)>,
}

/// A signal of a message, compiled for decoding and encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub name: String,
    pub start_bit: u32,
    pub length: u32,
    pub byte_order: ByteOrder,
    pub kind: ValueKind,
    pub factor: f64,
    pub offset: f64,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub unit: String,
    pub comment: Option<String>,
    /// Value labels (`VAL_`), kept for display; decoded values stay numeric.
    pub choices: Vec<(i64, String)>,
    pub receivers: Vec<String>,
    pub is_multiplexer: bool,
    pub multiplexed: Option<Multiplexed>,
    pub(crate) codec: Codec,
}

/// What decoding and encoding need of a signal, small enough to sit in the
/// message's decode tables next to its neighbours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Codec {
    pub layout: Layout,
    pub kind: ValueKind,
    pub conversion: Conversion,
}

/// A signal compiled for the decode loop. Integer signals of up to 52 bits
/// whose scaled values stay below 2^53 (nearly all of them) take the fast
/// form: one 64-bit load, shift, mask, sign extension by shifts, and
/// `raw * factor + offset` in f64, which is then exactly what cantools
/// computes, integer conversions included. Everything else goes the general way.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct DecodeOp {
    /// False: decode through the signal's [`Codec`] instead.
    pub fast: bool,
    big_endian: bool,
    byte: u8,
    /// Right shift that brings the signal's LSB to bit 0 of the loaded word.
    shift: u8,
    /// Left-then-arithmetic-right shift that sign-extends (0 for unsigned).
    sign_shift: u8,
    mask: u64,
    factor: f64,
    offset: f64,
}

impl DecodeOp {
    pub fn new(codec: Codec) -> Self {
        let general = Self {
            fast: false,
            big_endian: false,
            byte: 0,
            shift: 0,
            sign_shift: 0,
            mask: 0,
            factor: 0.0,
            offset: 0.0,
        };
        let len = codec.layout.len;
        let signed = match codec.kind {
            ValueKind::Unsigned => false,
            ValueKind::Signed => true,
            _ => return general,
        };
        if len > 52 {
            return general;
        }
        let (factor, offset) = match codec.conversion {
            Conversion::Identity => (1.0, 0.0),
            Conversion::Linear { factor, offset } => (factor, offset),
            Conversion::Integer { factor, offset } => {
                // Exact in f64 only while every product and sum stays below 2^53.
                let bound = (1u128 << len) * u128::from(factor.unsigned_abs()) + u128::from(offset.unsigned_abs());
                if bound >= 1 << 53 {
                    return general;
                }
                (factor as f64, offset as f64)
            }
        };
        let bit = codec.layout.first % 8;
        let big_endian = codec.layout.order == ByteOrder::BigEndian;
        // first < 512 and len <= 52, so every field fits its width.
        Self {
            fast: true,
            big_endian,
            byte: (codec.layout.first / 8) as u8,
            shift: if big_endian { 64 - bit - len } else { bit } as u8,
            sign_shift: if signed { 64 - len } else { 0 } as u8,
            mask: mask(len),
            factor,
            offset,
        }
    }

    /// The physical value of a fast signal (`self.fast`).
    #[inline(always)]
    pub fn physical(&self, buf: &Padded) -> f64 {
        let at = usize::from(self.byte);
        let mut word = [0u8; 8];
        word.copy_from_slice(&buf[at..at + 8]);
        let word = if self.big_endian {
            u64::from_be_bytes(word)
        } else {
            u64::from_le_bytes(word)
        };
        self.scale(word)
    }

    /// Whether [`Self::physical_word`] can decode the signal: a fast one
    /// whose 8-byte load starts within the first 8 bytes.
    pub fn fits_word(&self) -> bool {
        self.fast && self.byte < 8
    }

    /// [`Self::physical`] of a classic frame, given its payload as one
    /// little-endian word (bytes past the message's length zero), for a
    /// signal that [fits](Self::fits_word): the 8 bytes `physical` loads
    /// from the padded buffer are this word shifted by the load's offset.
    #[inline(always)]
    pub fn physical_word(&self, le: u64) -> f64 {
        let at = 8 * u32::from(self.byte);
        let word = if self.big_endian {
            le.swap_bytes() << at
        } else {
            le >> at
        };
        self.scale(word)
    }

    /// The physical value of the signal's bits at `self.shift` in the loaded word.
    #[inline(always)]
    fn scale(&self, word: u64) -> f64 {
        let bits = (word >> self.shift) & self.mask;
        let raw = ((bits << self.sign_shift) as i64) >> self.sign_shift;
        raw as f64 * self.factor + self.offset
    }
}

impl Codec {
    /// The raw value of an integer signal of up to 64 bits, exactly.
    fn integer_raw(&self, buf: &Padded) -> Option<i128> {
        if self.layout.len > 64 {
            return None;
        }
        let bits = self.layout.extract(buf);
        match self.kind {
            ValueKind::Unsigned => Some(i128::from(bits)),
            ValueKind::Signed => Some(i128::from(sign_extend(bits, self.layout.len))),
            _ => None,
        }
    }

    /// Integers wider than 64 bits (possible in CAN FD); exact to f64 precision.
    #[cold]
    fn wide(&self, buf: &Padded) -> f64 {
        let mut value = 0.0f64;
        for i in (0..self.layout.len).rev() {
            value = value * 2.0 + if self.layout.bit(buf, i) { 1.0 } else { 0.0 };
        }
        if self.kind == ValueKind::Signed && self.layout.bit(buf, self.layout.len - 1) {
            value -= 2f64.powi(self.layout.len as i32);
        }
        value
    }

    /// The physical value of this signal in a padded payload. One flat match
    /// on (kind, conversion): this is the innermost loop of every decoder.
    #[inline(always)]
    pub(crate) fn physical(&self, buf: &Padded) -> f64 {
        if self.layout.len > 64 {
            return self.scale(self.wide(buf));
        }
        let bits = self.layout.extract(buf);
        match (self.kind, self.conversion) {
            (ValueKind::Unsigned, Conversion::Linear { factor, offset }) => bits as f64 * factor + offset,
            (ValueKind::Signed, Conversion::Linear { factor, offset }) => {
                sign_extend(bits, self.layout.len) as f64 * factor + offset
            }
            (ValueKind::Unsigned, Conversion::Identity) => bits as f64,
            (ValueKind::Signed, Conversion::Identity) => sign_extend(bits, self.layout.len) as f64,
            (ValueKind::Unsigned, Conversion::Integer { factor, offset }) => match i64::try_from(bits) {
                Ok(raw) => integer_scaled(raw, factor, offset),
                Err(_) => (i128::from(bits) * i128::from(factor) + i128::from(offset)) as f64,
            },
            (ValueKind::Signed, Conversion::Integer { factor, offset }) => {
                integer_scaled(sign_extend(bits, self.layout.len), factor, offset)
            }
            (ValueKind::Float16, _) => self.scale(f64::from(half::f16::from_bits(bits as u16))),
            (ValueKind::Float32, _) => self.scale(f64::from(f32::from_bits(bits as u32))),
            (ValueKind::Float64, _) => self.scale(f64::from_bits(bits)),
            // Never decoded: the node holding it fails first.
            (ValueKind::InvalidFloat, _) => f64::NAN,
        }
    }

    /// `raw * factor + offset` in f64, as cantools computes it for floats.
    #[inline(always)]
    fn scale(&self, raw: f64) -> f64 {
        match self.conversion {
            Conversion::Identity => raw,
            Conversion::Integer { factor, offset } => raw * factor as f64 + offset as f64,
            Conversion::Linear { factor, offset } => raw * factor + offset,
        }
    }

    /// The value a multiplexer selects with: cantools' `int(physical value)`.
    pub(crate) fn selector(&self, buf: &Padded) -> Result<i128, f64> {
        let exact = self.integer_raw(buf).and_then(|raw| match self.conversion {
            Conversion::Identity => Some(raw),
            Conversion::Integer { factor, offset } => Some(raw * i128::from(factor) + i128::from(offset)),
            Conversion::Linear { .. } => None,
        });
        if let Some(v) = exact {
            return Ok(v);
        }
        let value = self.physical(buf);
        if value.is_finite() {
            Ok(value.trunc() as i128)
        } else {
            Err(value)
        }
    }

    /// Physical to raw bits, as cantools rounds (half to even), range-checked.
    pub(crate) fn raw_bits(&self, value: f64) -> Result<u64, (f64, f64)> {
        let scaled = match self.conversion {
            Conversion::Identity => value,
            Conversion::Integer { factor, offset } => (value - offset as f64) / factor as f64,
            Conversion::Linear { factor, offset } => (value - offset) / factor,
        };
        match self.kind {
            ValueKind::Float16 => Ok(u64::from(half::f16::from_f64(scaled).to_bits())),
            ValueKind::Float32 => Ok(u64::from((scaled as f32).to_bits())),
            ValueKind::Float64 => Ok(scaled.to_bits()),
            ValueKind::InvalidFloat => Err((f64::NAN, f64::NAN)),
            ValueKind::Unsigned => {
                let max = mask(self.layout.len) as f64;
                let raw = scaled.round_ties_even();
                if !(0.0..=max).contains(&raw) {
                    return Err(self.physical_range(0.0, max));
                }
                Ok(raw as u64)
            }
            ValueKind::Signed => {
                let half = 2f64.powi(self.layout.len as i32 - 1);
                let raw = scaled.round_ties_even();
                if !(-half..=half - 1.0).contains(&raw) {
                    return Err(self.physical_range(-half, half - 1.0));
                }
                Ok((raw as i64) as u64 & mask(self.layout.len))
            }
        }
    }

    fn physical_range(&self, raw_min: f64, raw_max: f64) -> (f64, f64) {
        let (a, b) = match self.conversion {
            Conversion::Identity => (raw_min, raw_max),
            Conversion::Integer { factor, offset } => (
                raw_min * factor as f64 + offset as f64,
                raw_max * factor as f64 + offset as f64,
            ),
            Conversion::Linear { factor, offset } => (raw_min * factor + offset, raw_max * factor + offset),
        };
        (a.min(b), a.max(b))
    }
}

/// A signal's `[min|max]` as its DBC sets it (`[0|0]` sets none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueRange {
    pub min: f64,
    pub max: f64,
}

impl ValueRange {
    /// Whether `value` lies outside the range by more than scaling rounds
    /// (a billionth of the range's magnitude: `raw * factor + offset` may
    /// land an ulp past a bound the DBC wrote in decimal). NaN is not judged.
    pub fn excludes(&self, value: f64) -> bool {
        let (lo, hi) = self.limits();
        value < lo || value > hi
    }

    /// The lowest and highest values the range admits, its tolerance included:
    /// for loops that check many values against one range.
    pub fn limits(&self) -> (f64, f64) {
        let tolerance = 1e-9 * self.min.abs().max(self.max.abs()).max(1.0);
        (self.min - tolerance, self.max + tolerance)
    }
}

impl Signal {
    /// The range the DBC gives the signal's physical values, if it gives one.
    pub fn range(&self) -> Option<ValueRange> {
        Some(ValueRange {
            min: self.minimum?,
            max: self.maximum?,
        })
    }

    pub(crate) fn physical(&self, buf: &Padded) -> f64 {
        self.codec.physical(buf)
    }

    pub(crate) fn selector(&self, buf: &Padded) -> Result<i128, f64> {
        self.codec.selector(buf)
    }

    pub(crate) fn raw_bits(&self, value: f64) -> Result<u64, (f64, f64)> {
        self.codec.raw_bits(value)
    }

    /// The label of a raw value, if the DBC gives one.
    pub fn choice(&self, raw: i64) -> Option<&str> {
        self.choices
            .iter()
            .find(|(v, _)| *v == raw)
            .map(|(_, label)| label.as_str())
    }
}

/// Exact integer scaling, converted to f64 once (as Python's int does):
/// in i64 when it fits, else in i128, where a 64-bit raw value times a 64-bit
/// factor always fits.
#[inline(always)]
fn integer_scaled(raw: i64, factor: i64, offset: i64) -> f64 {
    match raw.checked_mul(factor).and_then(|v| v.checked_add(offset)) {
        Some(v) => v as f64,
        None => (i128::from(raw) * i128::from(factor) + i128::from(offset)) as f64,
    }
}

#[inline(always)]
fn sign_extend(bits: u64, length: u32) -> i64 {
    if length >= 64 {
        bits as i64
    } else {
        let shift = 64 - length;
        ((bits << shift) as i64) >> shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_excludes_what_lies_past_it_not_what_scaling_rounded() {
        let r = ValueRange { min: -40.0, max: 215.0 };
        assert!(!r.excludes(-40.0) && !r.excludes(215.0) && !r.excludes(0.0));
        assert!(r.excludes(215.5) && r.excludes(-40.1));
        // 0.1 * 2147 is 214.70000000000002: inside a bound of 214.7.
        let tight = ValueRange { min: 0.0, max: 214.7 };
        assert!(!tight.excludes(0.1 * 2147.0));
        assert!(tight.excludes(0.1 * 2148.0));
        assert!(!r.excludes(f64::NAN), "NaN is not judged");
        assert!(r.excludes(f64::INFINITY));
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0b1, 1), -1);
        assert_eq!(sign_extend(0b0111, 4), 7);
        assert_eq!(sign_extend(0b1000, 4), -8);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
    }

    #[test]
    fn integer_conversion_only_for_integral_non_float_signals() {
        assert_eq!(Conversion::new(1.0, 0.0, ValueKind::Unsigned), Conversion::Identity);
        assert_eq!(
            Conversion::new(2.0, -40.0, ValueKind::Signed),
            Conversion::Integer { factor: 2, offset: -40 }
        );
        assert_eq!(
            Conversion::new(2.0, 0.0, ValueKind::Float32),
            Conversion::Linear {
                factor: 2.0,
                offset: 0.0
            }
        );
        assert_eq!(
            Conversion::new(0.5, 0.0, ValueKind::Unsigned),
            Conversion::Linear {
                factor: 0.5,
                offset: 0.0
            }
        );
    }
}
