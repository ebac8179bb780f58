//! A signal line (`SG_`) as the file defines it: its layout, its value
//! kind, its table and where it hangs in the multiplexing, before the
//! message's tree is built from all of them.

use can_dbc::{MessageId, MultiplexIndicator, SignalExtendedValueType};

use super::{Builder, Draft, MuxValues};
use crate::format::dbc::LoadError;
use crate::format::dbc::bits::{ByteOrder, Layout};
use crate::format::dbc::error::LoadWarning;
use crate::format::dbc::signal::{Codec, Conversion, Signal, ValueKind};

impl Builder<'_> {
    pub(super) fn signal(
        &mut self,
        message_id: MessageId,
        message_name: &str,
        s: &can_dbc::Signal,
        single_mux: Option<&str>,
        mux_values: &MuxValues,
        line: Option<usize>,
    ) -> Result<Draft, LoadError> {
        let key = (message_id, s.name.clone());
        let length = u32::try_from(s.size).ok().filter(|&l| l <= 512).ok_or_else(|| {
            self.error(
                line,
                format!("signal {} of message {message_name} has length {}", s.name, s.size),
            )
        })?;
        let start_bit = u32::try_from(s.start_bit).ok().filter(|&b| b < 512).ok_or_else(|| {
            self.error(
                line,
                format!(
                    "signal {} of message {message_name} starts at bit {}",
                    s.name, s.start_bit
                ),
            )
        })?;
        let kind = self.value_kind(&key, s, length);
        let byte_order = match s.byte_order {
            can_dbc::ByteOrder::LittleEndian => ByteOrder::LittleEndian,
            can_dbc::ByteOrder::BigEndian => ByteOrder::BigEndian,
        };
        let choices = self.choices.remove(&key).unwrap_or_default();
        let (parent, ids) = placement(s, single_mux, mux_values);

        let (minimum, maximum) = match (numeric(&s.min), numeric(&s.max)) {
            (0.0, 0.0) => (None, None),
            (min, max) => (Some(min), Some(max)),
        };
        let name = self
            .signal_long_name(message_id, &s.name)
            .unwrap_or_else(|| s.name.clone());
        let signal = Signal {
            name,
            start_bit,
            length,
            byte_order,
            kind,
            factor: s.factor,
            offset: s.offset,
            minimum,
            maximum,
            unit: s.unit.clone(),
            comment: self.dbc.signal_comment(message_id, &s.name).map(str::to_string),
            choices,
            receivers: s.receivers.iter().filter(|r| *r != "Vector__XXX").cloned().collect(),
            is_multiplexer: is_multiplexer(s.multiplexer_indicator),
            multiplexed: None,
            codec: Codec {
                layout: Layout::new(byte_order, start_bit, length),
                kind,
                conversion: Conversion::new(s.factor, s.offset, kind),
            },
        };
        Ok(Draft { signal, parent, ids })
    }

    /// The drafts whose bits fit in `length` bytes; the others are left out
    /// with a warning (a multiplexer stays, and strict checking rejects it).
    pub(super) fn drop_unfit(
        &mut self,
        drafts: Vec<Draft>,
        message: &str,
        length: usize,
        line: Option<usize>,
    ) -> Vec<Draft> {
        let (fit, unfit): (Vec<Draft>, Vec<Draft>) = drafts
            .into_iter()
            .partition(|d| d.signal.is_multiplexer || d.signal.codec.layout.end_byte() as usize <= length);
        for d in &unfit {
            self.warnings.push(LoadWarning {
                source_name: self.source_name.to_string(),
                line,
                message: format!(
                    "signal {} does not fit in message {message} ({length} bytes); left out",
                    d.signal.name
                ),
            });
        }
        fit
    }

    /// Integer (signed or not) or IEEE float, as `SIG_VALTYPE_` says.
    fn value_kind(&mut self, key: &(MessageId, String), s: &can_dbc::Signal, length: u32) -> ValueKind {
        match self.value_types.remove(key) {
            Some(SignalExtendedValueType::IEEEfloat32Bit | SignalExtendedValueType::IEEEdouble64bit) => {
                ValueKind::float_of_length(length)
            }
            Some(SignalExtendedValueType::SignedOrUnsignedInteger) | None => {
                if s.value_type == can_dbc::ValueType::Signed {
                    ValueKind::Signed
                } else {
                    ValueKind::Unsigned
                }
            }
        }
    }
}

/// Which multiplexer a signal hangs under, and for which of its values
/// (cantools' rules): simple multiplexing by the `mNN` marker, extended
/// multiplexing by `SG_MUL_VAL_` ranges.
fn placement(
    s: &can_dbc::Signal,
    single_mux: Option<&str>,
    mux_values: &MuxValues,
) -> (Option<String>, Option<Vec<(i128, i128)>>) {
    let marker = s.multiplexer_indicator;
    let marked = marker != MultiplexIndicator::Plain;
    let mux_of_signal = mux_values
        .iter()
        .rev()
        .find(|(_, signals)| signals.iter().any(|(n, _)| *n == s.name))
        .map(|(mux, _)| mux.clone());
    let mux_name: Option<String> = match single_mux {
        Some(m) => Some(m.to_string()),
        None => mux_of_signal.clone(),
    };
    let mut ids: Vec<(i128, i128)> = Vec::new();
    if single_mux.is_some()
        && let MultiplexIndicator::MultiplexedSignal(n) = marker
    {
        ids.push((i128::from(n), i128::from(n)));
    }
    if let Some(mux) = &mux_name
        && let Some((_, signals)) = mux_values.iter().find(|(m, _)| m == mux)
        && let Some((_, ranges)) = signals.iter().find(|(n, _)| *n == s.name)
    {
        ids.extend(ranges.iter().copied().filter(|(lo, hi)| lo <= hi));
    }
    let ids = if mux_name.is_some() && !ids.is_empty() {
        Some(ids)
    } else {
        None
    };
    let parent = if !marked {
        None
    } else {
        match single_mux {
            None => mux_of_signal,
            Some(m) if m != s.name => Some(m.to_string()),
            Some(_) => None,
        }
    };
    (parent, ids)
}

pub(super) fn is_multiplexer(marker: MultiplexIndicator) -> bool {
    matches!(
        marker,
        MultiplexIndicator::Multiplexor | MultiplexIndicator::MultiplexorAndMultiplexedSignal(_)
    )
}

fn numeric(v: &can_dbc::NumericValue) -> f64 {
    match *v {
        can_dbc::NumericValue::Uint(u) => u as f64,
        can_dbc::NumericValue::Int(i) => i as f64,
        can_dbc::NumericValue::Double(d) => d,
    }
}

impl Layout {
    /// cantools' sort key: Intel start bit, or Motorola network start bit.
    pub(super) fn first_sort_key(&self) -> u32 {
        self.first
    }
}
