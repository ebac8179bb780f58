//! One message: its signals, its multiplexing tree, decoding and encoding.

use super::bits::{PADDED, Padded};
use super::columns::ColumnDecoder;
use super::error::{DecodeError, EncodeError};
use super::signal::{DecodeOp, Signal, ValueKind};
use crate::format::frame::{CanId, MAX_PAYLOAD};

/// A decoded signal value: the index of the signal in [`Message::signals`]
/// and its physical value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignalValue {
    pub signal: u16,
    pub value: f64,
}

/// One node of the multiplexing tree: the signals present together, and the
/// multiplexers among them that select further nodes. The root node holds the
/// signals that are always present.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Node {
    pub signals: Vec<u16>,
    /// How to decode each of `signals`, side by side, so decoding walks one small array.
    pub ops: Vec<DecodeOp>,
    pub muxes: Vec<Mux>,
    /// A float signal of an impossible length: every decode of this node fails.
    pub invalid_float: Option<u16>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Mux {
    pub signal: u16,
    pub op: DecodeOp,
    /// Sorted, disjoint inclusive ranges of selector values and their node.
    pub branches: Vec<Branch>,
    /// For selector values within a small span (the usual 0..N): node by
    /// `value - base`, `NO_NODE` where no branch applies.
    direct: Option<(i128, Vec<u32>)>,
}

const NO_NODE: u32 = u32::MAX;
/// Largest span of selector values looked up by table rather than search.
const DIRECT_SPAN: i128 = 4096;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Branch {
    pub lo: i128,
    pub hi: i128,
    pub node: u32,
}

impl Mux {
    pub fn new(signal: u16, op: DecodeOp, branches: Vec<Branch>) -> Self {
        let direct = match (branches.first(), branches.last()) {
            (Some(first), Some(last)) if last.hi - first.lo < DIRECT_SPAN => {
                let mut table = vec![NO_NODE; (last.hi - first.lo + 1) as usize];
                for b in &branches {
                    for v in b.lo..=b.hi {
                        table[(v - first.lo) as usize] = b.node;
                    }
                }
                Some((first.lo, table))
            }
            _ => None,
        };
        Self {
            signal,
            op,
            branches,
            direct,
        }
    }

    #[inline]
    pub(super) fn find(&self, value: i128) -> Option<u32> {
        if let Some((base, table)) = &self.direct {
            let node = usize::try_from(value - base).ok().and_then(|i| table.get(i)).copied();
            return node.filter(|&n| n != NO_NODE);
        }
        let i = self.branches.partition_point(|b| b.hi < value);
        self.branches.get(i).filter(|b| b.lo <= value).map(|b| b.node)
    }

    /// The valid selector values, as cantools lists them in its error.
    pub(super) fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .branches
            .iter()
            .map(|b| {
                if b.lo == b.hi {
                    b.lo.to_string()
                } else {
                    format!("{}..{}", b.lo, b.hi)
                }
            })
            .collect();
        match parts.len() {
            0 => String::new(),
            1 => parts.remove(0),
            n => {
                let last = parts.remove(n - 1);
                format!("{} or {}", parts.join(", "), last)
            }
        }
    }
}

/// A message of a DBC, compiled for decoding and encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub name: String,
    pub id: CanId,
    /// Payload length the DBC gives; shorter frames are errors, longer ones are cut.
    pub length: usize,
    pub is_fd: bool,
    /// A J1939 parameter group: frames match it by PGN, whatever their
    /// priority and source address ([`crate::format::frame::CanId::pgn`]).
    pub is_j1939: bool,
    pub senders: Vec<String>,
    pub comment: Option<String>,
    pub cycle_time_ms: Option<u32>,
    /// Sorted by start bit, as cantools sorts them.
    pub signals: Vec<Signal>,
    pub(crate) nodes: Vec<Node>,
    /// How its frames decode by columns, when they can.
    pub(crate) columns: Option<ColumnDecoder>,
}

impl Message {
    /// The index of a signal by name.
    pub fn signal_index(&self, name: &str) -> Option<usize> {
        self.signals.iter().position(|s| s.name == name)
    }

    pub fn signal(&self, name: &str) -> Option<&Signal> {
        self.signals.iter().find(|s| s.name == name)
    }

    /// How this message's frames decode a signal at a time across frames,
    /// when they can ([`ColumnDecoder::new`] says when).
    pub fn columns(&self) -> Option<&ColumnDecoder> {
        self.columns.as_ref()
    }

    pub fn is_multiplexed(&self) -> bool {
        self.nodes.first().is_some_and(|root| !root.muxes.is_empty())
    }

    /// Decodes a payload into `out` (cleared first): one value per signal
    /// present, in tree order. Allocates nothing once `out` has grown.
    pub fn decode(&self, data: &[u8], out: &mut Vec<SignalValue>) -> Result<(), DecodeError> {
        out.clear();
        if data.len() < self.length {
            return Err(DecodeError::WrongLength {
                actual: data.len(),
                expected: self.length,
            });
        }
        let mut buf: Padded = [0u8; PADDED];
        let n = self.length.min(MAX_PAYLOAD);
        if n == 8 {
            // Classic frames: a fixed-size copy the compiler turns into one move.
            buf[..8].copy_from_slice(&data[..8]);
        } else {
            buf[..n].copy_from_slice(&data[..n]);
        }
        self.decode_node(0, &buf, out).map_err(|e| {
            out.clear();
            *e
        })
    }

    /// Errors are boxed so that the common, successful path returns in a register.
    /// Inlined for the root; children go through `decode_child`.
    #[inline(always)]
    fn decode_node(&self, node: usize, buf: &Padded, out: &mut Vec<SignalValue>) -> Result<(), Box<DecodeError>> {
        let Some(node) = self.nodes.get(node) else {
            return Ok(());
        };
        if let Some(bad) = node.invalid_float {
            let signal = &self.signals[usize::from(bad)];
            return Err(Box::new(DecodeError::Unpacking {
                signal: signal.name.clone(),
                length: signal.length,
            }));
        }
        out.extend(node.signals.iter().zip(&node.ops).map(|(&signal, op)| {
            let value = if op.fast {
                op.physical(buf)
            } else {
                self.signals[usize::from(signal)].physical(buf)
            };
            SignalValue { signal, value }
        }));
        for mux in &node.muxes {
            let selector = if mux.op.fast {
                // Fast signals are exact integers scaled in f64: int() is a truncation.
                i128::from(mux.op.physical(buf) as i64)
            } else {
                let signal = &self.signals[usize::from(mux.signal)];
                signal.selector(buf).map_err(|value| {
                    Box::new(DecodeError::MultiplexerNotInteger {
                        multiplexer: signal.name.clone(),
                        value,
                    })
                })?
            };
            let Some(child) = mux.find(selector) else {
                return Err(Box::new(DecodeError::UnknownMultiplexerValue {
                    multiplexer: self.signals[usize::from(mux.signal)].name.clone(),
                    got: selector,
                    expected: mux.describe(),
                }));
            };
            self.decode_child(child as usize, buf, out)?;
        }
        Ok(())
    }

    #[inline(never)]
    fn decode_child(&self, node: usize, buf: &Padded, out: &mut Vec<SignalValue>) -> Result<(), Box<DecodeError>> {
        self.decode_node(node, buf, out)
    }

    /// Encodes physical values into a payload of the DBC length. `value_of`
    /// gives the value of each signal the multiplexers select; a missing one is
    /// an error, as is a value the signal's bits cannot hold.
    pub fn encode(&self, mut value_of: impl FnMut(usize, &Signal) -> Option<f64>) -> Result<Vec<u8>, EncodeError> {
        if self.length > MAX_PAYLOAD {
            return Err(EncodeError::Unsupported {
                message: self.name.clone(),
                signal: String::new(),
                reason: "message longer than 64 bytes",
            });
        }
        let mut buf: Padded = [0u8; PADDED];
        self.encode_node(0, &mut buf, &mut value_of)?;
        Ok(buf[..self.length].to_vec())
    }

    /// Encodes from `(signal name, physical value)` pairs.
    pub fn encode_named(&self, values: &[(&str, f64)]) -> Result<Vec<u8>, EncodeError> {
        self.encode(|_, signal| values.iter().find(|(n, _)| *n == signal.name).map(|(_, v)| *v))
    }

    /// [`Self::encode_named`], every signal not named at its minimum (or 0):
    /// a frame of a few signals of interest, as tests and replays make them.
    pub fn encode_named_or_minimum(&self, values: &[(&str, f64)]) -> Result<Vec<u8>, EncodeError> {
        self.encode(|_, signal| {
            Some(
                values
                    .iter()
                    .find(|(n, _)| *n == signal.name)
                    .map_or(signal.minimum.unwrap_or(0.0), |(_, v)| *v),
            )
        })
    }

    fn encode_node(
        &self,
        node: usize,
        buf: &mut Padded,
        value_of: &mut impl FnMut(usize, &Signal) -> Option<f64>,
    ) -> Result<(), EncodeError> {
        let Some(node) = self.nodes.get(node) else {
            return Ok(());
        };
        for &index in &node.signals {
            let index = usize::from(index);
            let signal = &self.signals[index];
            let value = value_of(index, signal).ok_or_else(|| EncodeError::MissingValue {
                message: self.name.clone(),
                signal: signal.name.clone(),
            })?;
            if signal.length > 64 {
                return Err(self.unsupported(signal, "signals longer than 64 bits are decode-only"));
            }
            if signal.kind == ValueKind::InvalidFloat {
                return Err(self.unsupported(signal, "float signal of a length IEEE 754 does not define"));
            }
            let raw = signal.raw_bits(value).map_err(|(min, max)| EncodeError::OutOfRange {
                message: self.name.clone(),
                signal: signal.name.clone(),
                value,
                length: signal.length,
                min,
                max,
            })?;
            signal.codec.layout.insert(buf, raw);
        }
        for mux in &node.muxes {
            let signal = &self.signals[usize::from(mux.signal)];
            let selector = signal
                .selector(buf)
                .map_err(|value| EncodeError::UnknownMultiplexerValue {
                    message: self.name.clone(),
                    multiplexer: signal.name.clone(),
                    value,
                })?;
            let child = mux.find(selector).ok_or_else(|| EncodeError::UnknownMultiplexerValue {
                message: self.name.clone(),
                multiplexer: signal.name.clone(),
                value: selector as f64,
            })?;
            self.encode_node(child as usize, buf, value_of)?;
        }
        Ok(())
    }

    fn unsupported(&self, signal: &Signal, reason: &'static str) -> EncodeError {
        EncodeError::Unsupported {
            message: self.name.clone(),
            signal: signal.name.clone(),
            reason,
        }
    }
}
