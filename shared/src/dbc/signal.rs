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
        matches!(
            self,
            Self::Float16 | Self::Float32 | Self::Float64 | Self::InvalidFloat
        )
    }
}

/// Raw to physical: `raw * factor + offset`. cantools computes it with exact
/// integers when factor and offset are integral and the raw value is an integer;
/// the `Integer` form keeps that exactness up to 128 bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Conversion {
    Identity,
    Integer { factor: i128, offset: i128 },
    Linear { factor: f64, offset: f64 },
}

impl Conversion {
    pub fn new(factor: f64, offset: f64, kind: ValueKind) -> Self {
        if factor == 1.0 && offset == 0.0 {
            return Self::Identity;
        }
        let integral = |v: f64| v.fract() == 0.0 && v.abs() < 1e30;
        if !kind.is_float() && integral(factor) && integral(offset) {
            return Self::Integer {
                factor: factor as i128,
                offset: offset as i128,
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
    pub(crate) layout: Layout,
    pub(crate) conversion: Conversion,
}

/// A raw value as read from the payload.
#[derive(Clone, Copy, Debug)]
enum Raw {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// An integer wider than 64 bits, approximated.
    Wide(f64),
}

impl Signal {
    #[inline(always)]
    fn raw(&self, buf: &Padded) -> Raw {
        if self.length > 64 {
            return Raw::Wide(self.wide(buf));
        }
        let bits = self.layout.extract(buf);
        match self.kind {
            ValueKind::Unsigned => Raw::Unsigned(bits),
            ValueKind::Signed => Raw::Signed(sign_extend(bits, self.length)),
            ValueKind::Float16 => Raw::Float(f64::from(half::f16::from_bits(bits as u16))),
            ValueKind::Float32 => Raw::Float(f64::from(f32::from_bits(bits as u32))),
            ValueKind::Float64 => Raw::Float(f64::from_bits(bits)),
            // Never decoded: the node holding it fails first.
            ValueKind::InvalidFloat => Raw::Float(f64::NAN),
        }
    }

    /// Integers wider than 64 bits (possible in CAN FD); exact to f64 precision.
    #[cold]
    fn wide(&self, buf: &Padded) -> f64 {
        let mut value = 0.0f64;
        for i in (0..self.length).rev() {
            value = value * 2.0 + if self.layout.bit(buf, i) { 1.0 } else { 0.0 };
        }
        if self.kind == ValueKind::Signed && self.layout.bit(buf, self.length - 1) {
            value -= 2f64.powi(self.length as i32);
        }
        value
    }

    /// The physical value of this signal in a padded payload.
    #[inline(always)]
    pub(crate) fn physical(&self, buf: &Padded) -> f64 {
        let raw = self.raw(buf);
        match (self.conversion, raw) {
            (Conversion::Identity, r) => raw_f64(r),
            (Conversion::Integer { factor, offset }, Raw::Unsigned(u)) => {
                integer_scaled(i128::from(u), factor, offset)
            }
            (Conversion::Integer { factor, offset }, Raw::Signed(s)) => {
                integer_scaled(i128::from(s), factor, offset)
            }
            (Conversion::Integer { factor, offset }, r) => {
                raw_f64(r) * factor as f64 + offset as f64
            }
            (Conversion::Linear { factor, offset }, r) => raw_f64(r) * factor + offset,
        }
    }

    /// The value a multiplexer selects with: cantools' `int(physical value)`.
    pub(crate) fn selector(&self, buf: &Padded) -> Result<i128, f64> {
        let raw = self.raw(buf);
        let exact = match (self.conversion, raw) {
            (Conversion::Identity, Raw::Unsigned(u)) => Some(i128::from(u)),
            (Conversion::Identity, Raw::Signed(s)) => Some(i128::from(s)),
            (Conversion::Integer { factor, offset }, Raw::Unsigned(u)) => i128::from(u)
                .checked_mul(factor)
                .and_then(|v| v.checked_add(offset)),
            (Conversion::Integer { factor, offset }, Raw::Signed(s)) => i128::from(s)
                .checked_mul(factor)
                .and_then(|v| v.checked_add(offset)),
            _ => None,
        };
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
                let max = mask(self.length) as f64;
                let raw = scaled.round_ties_even();
                if !(0.0..=max).contains(&raw) {
                    return Err(self.physical_range(0.0, max));
                }
                Ok(raw as u64)
            }
            ValueKind::Signed => {
                let half = 2f64.powi(self.length as i32 - 1);
                let raw = scaled.round_ties_even();
                if !(-half..=half - 1.0).contains(&raw) {
                    return Err(self.physical_range(-half, half - 1.0));
                }
                Ok((raw as i64) as u64 & mask(self.length))
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
            Conversion::Linear { factor, offset } => {
                (raw_min * factor + offset, raw_max * factor + offset)
            }
        };
        (a.min(b), a.max(b))
    }

    /// The label of a raw value, if the DBC gives one.
    pub fn choice(&self, raw: i64) -> Option<&str> {
        self.choices
            .iter()
            .find(|(v, _)| *v == raw)
            .map(|(_, label)| label.as_str())
    }
}

#[inline(always)]
fn raw_f64(raw: Raw) -> f64 {
    match raw {
        Raw::Unsigned(u) => u as f64,
        Raw::Signed(s) => s as f64,
        Raw::Float(f) | Raw::Wide(f) => f,
    }
}

#[inline(always)]
fn integer_scaled(raw: i128, factor: i128, offset: i128) -> f64 {
    match raw.checked_mul(factor).and_then(|v| v.checked_add(offset)) {
        Some(v) => v as f64,
        None => raw as f64 * factor as f64 + offset as f64,
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
    fn sign_extension() {
        assert_eq!(sign_extend(0b1, 1), -1);
        assert_eq!(sign_extend(0b0111, 4), 7);
        assert_eq!(sign_extend(0b1000, 4), -8);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
    }

    #[test]
    fn integer_conversion_only_for_integral_non_float_signals() {
        assert_eq!(
            Conversion::new(1.0, 0.0, ValueKind::Unsigned),
            Conversion::Identity
        );
        assert_eq!(
            Conversion::new(2.0, -40.0, ValueKind::Signed),
            Conversion::Integer {
                factor: 2,
                offset: -40
            }
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
