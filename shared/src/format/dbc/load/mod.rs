//! From DBC text to a compiled [`Database`], with cantools' semantics.
//!
//! `can-dbc` parses; this module decides what the parsed file means, the way
//! cantools does: which signals a multiplexer selects (`M`/`mN` markers,
//! `SG_MUL_VAL_`, value tables), long names, float types.
//!
//! Strict mode ([`LoadOptions::strict`]) rejects what cantools' strict mode
//! rejects. By default these load instead, each with a [`LoadWarning`]:
//! - signals that overlap: each is decoded on its own from the bits it names;
//! - a signal reaching past the message's length: left out of the message
//!   (no frame of the declared length holds it);
//! - `VAL_` and `SIG_VALTYPE_` for a signal or message that does not exist: ignored;
//! - a frame id above 0x7FF without the extended flag (bit 31): extended, as
//!   only a 29-bit id can be that large; an id above 29 bits is no CAN id, and
//!   its message is left out.
//!
//! Names that start with a digit and sections in any order are DBC as real
//! files write it; the grammar of `can-dbc` takes them in both modes.

use std::collections::{BTreeSet, HashMap};

use can_dbc::{
    AttributeValue, AttributeValueType, Dbc, MessageId, MultiplexIndicator, SignalExtendedValueType, ValueDescription,
};

use super::bits::{ByteOrder, Layout};
use super::columns::ColumnDecoder;
use super::error::{LoadError, LoadWarning};
use super::message::{Branch, Message, Mux, Node};
use super::signal::{Codec, Conversion, DecodeOp, Multiplexed, Signal, ValueKind};
use super::{Database, LoadOptions};
use crate::format::frame::CanId;

const EXTENDED_FLAG: u64 = 0x8000_0000;
/// Multiplexers nested deeper than this are a cycle in the file.
const MAX_MUX_DEPTH: usize = 32;

/// Turns file bytes into text: UTF-8 when they are valid UTF-8, else cp1252
/// (the encoding DBC editors write and cantools assumes).
pub(crate) fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

pub(crate) fn build(text: &str, source_name: &str, options: LoadOptions) -> Result<Database, LoadError> {
    let dbc = Dbc::try_from(text).map_err(|e| parse_error(e, source_name))?;
    Builder::new(&dbc, text, source_name, options).build()
}

fn parse_error(error: can_dbc::DbcError, source_name: &str) -> LoadError {
    match error {
        can_dbc::DbcError::Pest(e) => {
            let (line, column) = match e.line_col {
                pest::error::LineColLocation::Pos(p) => p,
                pest::error::LineColLocation::Span(p, _) => p,
            };
            let found = e.line().trim();
            let found: String = found.chars().take(80).collect();
            LoadError {
                source_name: source_name.to_string(),
                line: Some(line),
                message: format!("column {column}: not valid DBC syntax: {found:?}"),
            }
        }
        other => LoadError {
            source_name: source_name.to_string(),
            line: None,
            message: other.to_string(),
        },
    }
}

/// A `BO_` line as written, found by scanning the text: `can-dbc` truncates
/// standard ids to 16 bits, and the checks need the number in the file.
struct MessageLine {
    line: usize,
    raw_id: u64,
    name: String,
}

fn scan_message_lines(text: &str) -> Vec<MessageLine> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some("BO_") {
            continue;
        }
        let (Some(id), Some(name)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(raw_id) = id.parse::<u64>() else {
            continue;
        };
        found.push(MessageLine {
            line: i + 1,
            raw_id,
            name: name.trim_end_matches(':').to_string(),
        });
    }
    found
}

/// The first line that starts with `keyword` and mentions `id` and `name`.
fn find_line(text: &str, keyword: &str, id: u32, name: &str) -> Option<usize> {
    let id = id.to_string();
    text.lines()
        .position(|line| {
            let mut words = line.split_ascii_whitespace();
            words.next() == Some(keyword) && words.next() == Some(id.as_str()) && words.next() == Some(name)
        })
        .map(|i| i + 1)
}

/// Inclusive ranges of multiplexer values.
type Ranges = Vec<(i128, i128)>;
/// `SG_MUL_VAL_` of a message: multiplexer → [(signal, ranges)], in file order.
type MuxValues = Vec<(String, Vec<(String, Ranges)>)>;

/// A signal as the file defines it, before the tree is built.
struct Draft {
    signal: Signal,
    /// Short name of the multiplexer this signal hangs under, as cantools derives it.
    parent: Option<String>,
    /// Selector values that select this signal (inclusive ranges).
    ids: Option<Vec<(i128, i128)>>,
}

struct Builder<'a> {
    dbc: &'a Dbc,
    text: &'a str,
    source_name: &'a str,
    /// `VAL_` tables by (message id, short signal name); taken when a signal claims them.
    choices: HashMap<(MessageId, String), Vec<(i64, String)>>,
    /// `SIG_VALTYPE_` entries, claimed the same way.
    value_types: HashMap<(MessageId, String), SignalExtendedValueType>,
    options: LoadOptions,
    warnings: Vec<LoadWarning>,
}

impl<'a> Builder<'a> {
    fn new(dbc: &'a Dbc, text: &'a str, source_name: &'a str, options: LoadOptions) -> Self {
        let mut choices = HashMap::new();
        for vd in &dbc.value_descriptions {
            if let ValueDescription::Signal {
                message_id,
                name,
                value_descriptions,
            } = vd
            {
                if value_descriptions.is_empty() {
                    continue;
                }
                let table = value_descriptions
                    .iter()
                    .map(|v| (v.id, v.description.clone()))
                    .collect();
                choices.insert((*message_id, name.clone()), table);
            }
        }
        let value_types = dbc
            .signal_extended_value_type_list
            .iter()
            .map(|v| ((v.message_id, v.signal_name.clone()), v.signal_extended_value_type))
            .collect();
        Self {
            dbc,
            text,
            source_name,
            choices,
            value_types,
            options,
            warnings: Vec::new(),
        }
    }

    fn error(&self, line: Option<usize>, message: String) -> LoadError {
        LoadError {
            source_name: self.source_name.to_string(),
            line,
            message,
        }
    }

    /// A problem strict mode rejects: an error there, a warning otherwise.
    fn tolerate(&mut self, line: Option<usize>, message: String) -> Result<(), LoadError> {
        if self.options.strict {
            return Err(self.error(line, message));
        }
        self.warnings.push(LoadWarning {
            source_name: self.source_name.to_string(),
            line,
            message,
        });
        Ok(())
    }

    fn build(mut self) -> Result<Database, LoadError> {
        let lines = scan_message_lines(self.text);
        let mut messages = Vec::new();
        let mut used_lines = vec![false; lines.len()];
        for parsed in &self.dbc.messages {
            let mut line = None;
            let mut raw_id = u64::from(parsed.id.raw());
            if let Some(i) = lines
                .iter()
                .enumerate()
                .position(|(i, l)| !used_lines[i] && l.name == parsed.name)
            {
                used_lines[i] = true;
                line = Some(lines[i].line);
                raw_id = lines[i].raw_id;
            }
            if !self.options.strict && raw_id & 0x7FFF_FFFF > u64::from(CanId::MAX_EXTENDED) {
                self.warnings.push(LoadWarning {
                    source_name: self.source_name.to_string(),
                    line,
                    message: format!(
                        "frame id 0x{raw_id:x} of message {} is no CAN id (more than 29 bits); message left out",
                        parsed.name
                    ),
                });
                for s in &parsed.signals {
                    self.choices.remove(&(parsed.id, s.name.clone()));
                    self.value_types.remove(&(parsed.id, s.name.clone()));
                }
                continue;
            }
            if parsed.name == "VECTOR__INDEPENDENT_SIG_MSG" {
                // Signals not sent in any frame: dropped, with their value tables
                // (cantools would reject the file over those tables).
                for s in &parsed.signals {
                    self.choices.remove(&(parsed.id, s.name.clone()));
                    self.value_types.remove(&(parsed.id, s.name.clone()));
                }
                continue;
            }
            messages.push(self.message(parsed, raw_id, line)?);
        }
        self.check_unclaimed()?;
        let mut db = Database::new(messages);
        db.warnings = self.warnings;
        Ok(db)
    }

    /// `VAL_` and `SIG_VALTYPE_` entries no signal claimed, in id and name order.
    fn check_unclaimed(&mut self) -> Result<(), LoadError> {
        let sorted = |keys: Vec<&(MessageId, String)>| {
            let mut keys: Vec<(MessageId, String)> = keys.into_iter().cloned().collect();
            keys.sort_by_key(|(id, name)| (id.raw(), name.clone()));
            keys
        };
        for (id, name) in sorted(self.choices.keys().collect()) {
            let line = find_line(self.text, "VAL_", id.raw(), &name);
            let message = format!("VAL_ for unknown signal {name} of message {}", id.raw());
            self.tolerate(line, format!("{message} (ignored)"))
                .map_err(|e| LoadError { message, ..e })?;
        }
        for (id, name) in sorted(self.value_types.keys().collect()) {
            let line = find_line(self.text, "SIG_VALTYPE_", id.raw(), &name);
            let message = format!("SIG_VALTYPE_ for unknown signal {name} of message {}", id.raw());
            self.tolerate(line, format!("{message} (ignored)"))
                .map_err(|e| LoadError { message, ..e })?;
        }
        Ok(())
    }

    fn message(&mut self, parsed: &can_dbc::Message, raw_id: u64, line: Option<usize>) -> Result<Message, LoadError> {
        let dbc_id = parsed.id;
        let id = if raw_id & EXTENDED_FLAG != 0 {
            let id = raw_id & 0x7FFF_FFFF;
            CanId::extended(id as u32).ok_or_else(|| {
                self.error(
                    line,
                    format!(
                        "extended frame id 0x{id:x} is more than 29 bits in message {}",
                        parsed.name
                    ),
                )
            })?
        } else if raw_id > 0x7FF && raw_id <= 0x1FFF_FFFF {
            let message = format!(
                "standard frame id 0x{raw_id:x} is more than 11 bits in message {}",
                parsed.name
            );
            self.tolerate(line, format!("{message} (read as the extended id it can only be)"))
                .map_err(|e| LoadError { message, ..e })?;
            CanId::extended(raw_id as u32).ok_or_else(|| self.error(line, "impossible extended id".into()))?
        } else {
            CanId::standard(raw_id as u32)
                .filter(|_| raw_id <= 0x7FF)
                .ok_or_else(|| {
                    self.error(
                        line,
                        format!(
                            "standard frame id 0x{raw_id:x} is more than 11 bits in message {}",
                            parsed.name
                        ),
                    )
                })?
        };
        let length = usize::try_from(parsed.size)
            .map_err(|_| self.error(line, format!("message {} has an impossible length", parsed.name)))?;
        let name = self.message_long_name(dbc_id).unwrap_or_else(|| parsed.name.clone());

        // cantools: exactly one signal marked M (or mNM) makes the message simply
        // multiplexed; more than one leaves SG_MUL_VAL_ as the only relation.
        let markers: Vec<&str> = parsed
            .signals
            .iter()
            .filter(|s| is_multiplexer(s.multiplexer_indicator))
            .map(|s| s.name.as_str())
            .collect();
        let single_mux = if markers.len() == 1 { Some(markers[0]) } else { None };

        let mux_values = self.mux_values(dbc_id);
        let mut drafts = Vec::with_capacity(parsed.signals.len());
        for s in &parsed.signals {
            drafts.push(self.signal(dbc_id, &name, s, single_mux, &mux_values, line)?);
        }
        if !self.options.strict {
            drafts = self.drop_unfit(drafts, &name, length, line);
        }
        // cantools sorts signals by start bit (network order for Motorola); stable.
        drafts.sort_by_key(|d| d.signal.codec.layout.first_sort_key());

        let is_fd = self.message_is_fd(dbc_id) || length > 8;
        let is_j1939 = self.message_is_j1939(dbc_id, id);
        let mut message = Message {
            name,
            id,
            length,
            is_fd,
            is_j1939,
            senders: parsed.transmitter.iter().cloned().collect(),
            comment: self.dbc.message_comment(dbc_id).map(str::to_string),
            cycle_time_ms: self.cycle_time(dbc_id),
            signals: Vec::new(),
            nodes: Vec::new(),
            columns: None,
        };
        let tree = TreeBuilder::new(&drafts)
            .build()
            .map_err(|m| self.error(line, format!("message {}: {m}", message.name)))?;
        message.nodes = tree;
        for d in &drafts {
            if d.signal.length == 0 {
                return Err(self.error(
                    line,
                    format!("signal {} of message {} has length 0", d.signal.name, message.name),
                ));
            }
        }
        message.signals = drafts.into_iter().map(|d| d.signal).collect();
        for overlap in check_layout(&message).map_err(|m| self.error(line, m))? {
            self.tolerate(line, format!("{overlap} (each is decoded on its own)"))
                .map_err(|e| LoadError { message: overlap, ..e })?;
        }
        describe_multiplexing(&mut message);
        for node in &mut message.nodes {
            node.ops = node
                .signals
                .iter()
                .map(|&i| DecodeOp::new(message.signals[usize::from(i)].codec))
                .collect();
        }
        message.columns = ColumnDecoder::new(&message);
        Ok(message)
    }

    /// `SG_MUL_VAL_` of one message: multiplexer short name → signal short name → ranges.
    /// Kept in file order, as cantools iterates them.
    fn mux_values(&self, id: MessageId) -> MuxValues {
        let mut out: MuxValues = Vec::new();
        for m in self.dbc.extended_multiplex.iter().filter(|m| m.message_id == id) {
            let ranges = m
                .mappings
                .iter()
                .map(|r| (i128::from(r.min_value), i128::from(r.max_value)))
                .collect();
            let entry = match out.iter_mut().position(|(mux, _)| *mux == m.multiplexor_signal_name) {
                Some(i) => &mut out[i].1,
                None => {
                    out.push((m.multiplexor_signal_name.clone(), Vec::new()));
                    let last = out.len() - 1;
                    &mut out[last].1
                }
            };
            match entry.iter_mut().find(|(s, _)| *s == m.signal_name) {
                Some((_, r)) => *r = ranges,
                None => entry.push((m.signal_name.clone(), ranges)),
            }
        }
        out
    }

    fn signal(
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
    fn drop_unfit(&mut self, drafts: Vec<Draft>, message: &str, length: usize, line: Option<usize>) -> Vec<Draft> {
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

    fn message_long_name(&self, id: MessageId) -> Option<String> {
        match self.dbc.message_attribute(id, "SystemMessageLongSymbol") {
            Some(AttributeValue::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn signal_long_name(&self, id: MessageId, short: &str) -> Option<String> {
        match self.dbc.signal_attribute(id, short, "SystemSignalLongSymbol") {
            Some(AttributeValue::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn cycle_time(&self, id: MessageId) -> Option<u32> {
        match self.dbc.resolved_message_attribute(id, "GenMsgCycleTime")? {
            AttributeValue::Uint(v) => u32::try_from(*v).ok(),
            AttributeValue::Int(v) => u32::try_from(*v).ok(),
            AttributeValue::Double(v) if *v >= 0.0 => Some(*v as u32),
            _ => None,
        }
        .filter(|&ms| ms > 0)
    }

    /// `VFrameFormat` names the frame format; its value is an index into the
    /// attribute's enum, or the enum text itself.
    /// `VFrameFormat` of a message (`StandardCAN_FD`, `J1939PG`, ...), its default applied.
    fn frame_format(&self, id: MessageId) -> Option<String> {
        match self.dbc.resolved_message_attribute(id, "VFrameFormat")? {
            AttributeValue::String(s) => Some(s.clone()),
            AttributeValue::Uint(i) => self.enum_value("VFrameFormat", *i as usize),
            AttributeValue::Int(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| self.enum_value("VFrameFormat", i)),
            AttributeValue::Double(_) => None,
        }
    }

    fn message_is_fd(&self, id: MessageId) -> bool {
        self.frame_format(id).is_some_and(|t| t.ends_with("CAN_FD"))
    }

    /// A J1939 parameter group: `VFrameFormat` `J1939PG` (cantools' sign), or
    /// an extended frame of a database whose `ProtocolType` is `J1939`.
    fn message_is_j1939(&self, id: MessageId, can_id: CanId) -> bool {
        let database_j1939 = self.dbc.attribute_values_database.iter().any(|a| {
            a.name == "ProtocolType" && matches!(&a.value, AttributeValue::String(s) if s.eq_ignore_ascii_case("J1939"))
        });
        self.frame_format(id).is_some_and(|t| t == "J1939PG") || (database_j1939 && can_id.is_extended())
    }

    fn enum_value(&self, attribute: &str, index: usize) -> Option<String> {
        self.dbc.attribute_definitions.iter().find_map(|d| match d {
            can_dbc::AttributeDefinition::Message(name, AttributeValueType::Enum(values)) if name == attribute => {
                values.get(index).cloned()
            }
            _ => None,
        })
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

fn is_multiplexer(marker: MultiplexIndicator) -> bool {
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
    fn first_sort_key(&self) -> u32 {
        self.first
    }
}

/// Builds the multiplexing tree as cantools' `Message._create_codec` does,
/// with identical subtrees shared and selector values kept as ranges.
struct TreeBuilder<'d> {
    drafts: &'d [Draft],
    nodes: Vec<Node>,
    memo: HashMap<Vec<u16>, u32>,
    /// Nodes whose subtree is being built: meeting one again is a cycle.
    building: Vec<bool>,
}

impl<'d> TreeBuilder<'d> {
    fn new(drafts: &'d [Draft]) -> Self {
        Self {
            drafts,
            nodes: Vec::new(),
            memo: HashMap::new(),
            building: Vec::new(),
        }
    }

    fn build(mut self) -> Result<Vec<Node>, String> {
        let root: Vec<u16> = (0..self.drafts.len())
            .filter(|&i| self.drafts[i].parent.is_none())
            .map(|i| i as u16)
            .collect();
        self.nodes.push(Node::default());
        self.building.push(true);
        self.fill(0, root, 0)?;
        Ok(self.nodes)
    }

    /// Children of the multiplexer named `mux` (cantools matches a parent's
    /// short name against the multiplexer's final, possibly long, name).
    fn children_of(&self, mux: &str) -> Vec<u16> {
        (0..self.drafts.len())
            .filter(|&i| self.drafts[i].parent.as_deref() == Some(mux))
            .map(|i| i as u16)
            .collect()
    }

    fn node_for(&mut self, signals: Vec<u16>, depth: usize) -> Result<u32, String> {
        if let Some(&n) = self.memo.get(&signals) {
            if self.building[n as usize] {
                return Err("a multiplexer selects itself (a cycle of multiplexers)".to_string());
            }
            return Ok(n);
        }
        let index = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        self.building.push(true);
        self.memo.insert(signals.clone(), index);
        self.fill(index as usize, signals, depth)?;
        self.building[index as usize] = false;
        Ok(index)
    }

    fn fill(&mut self, node: usize, signals: Vec<u16>, depth: usize) -> Result<(), String> {
        if depth > MAX_MUX_DEPTH {
            return Err("multiplexers are nested in a cycle".to_string());
        }
        let mut muxes = Vec::new();
        let mut invalid_float = None;
        for &i in &signals {
            let draft = &self.drafts[usize::from(i)];
            if draft.signal.kind == ValueKind::InvalidFloat && invalid_float.is_none() {
                invalid_float = Some(i);
            }
            if !draft.signal.is_multiplexer {
                continue;
            }
            let branches = self.branches(&draft.signal, depth)?;
            if !branches.is_empty() {
                muxes.push(Mux::new(i, DecodeOp::new(draft.signal.codec), branches));
            }
        }
        self.nodes[node] = Node {
            signals,
            ops: Vec::new(),
            muxes,
            invalid_float,
        };
        Ok(())
    }

    /// Splits the selector values of a multiplexer's children (and its value
    /// table) into intervals that select the same set of signals.
    fn branches(&mut self, mux: &Signal, depth: usize) -> Result<Vec<Branch>, String> {
        let children = self.children_of(&mux.name);
        let mut ranges: Vec<(i128, i128)> = Vec::new();
        for &c in &children {
            if let Some(ids) = &self.drafts[usize::from(c)].ids {
                ranges.extend(ids.iter().copied());
            }
        }
        ranges.extend(mux.choices.iter().map(|(v, _)| (i128::from(*v), i128::from(*v))));
        let mut cuts = BTreeSet::new();
        for &(lo, hi) in &ranges {
            cuts.insert(lo);
            cuts.insert(hi + 1);
        }
        let cuts: Vec<i128> = cuts.into_iter().collect();
        let mut branches: Vec<Branch> = Vec::new();
        for w in cuts.windows(2) {
            let (lo, hi) = (w[0], w[1] - 1);
            if !ranges.iter().any(|&(a, b)| a <= lo && hi <= b) {
                continue;
            }
            let selected: Vec<u16> = children
                .iter()
                .copied()
                .filter(|&c| {
                    self.drafts[usize::from(c)]
                        .ids
                        .as_ref()
                        .is_some_and(|ids| ids.iter().any(|&(a, b)| a <= lo && hi <= b))
                })
                .collect();
            let node = self.node_for(selected, depth + 1)?;
            match branches.last_mut() {
                Some(prev) if prev.node == node && prev.hi + 1 == lo => prev.hi = hi,
                _ => branches.push(Branch { lo, hi, node }),
            }
        }
        Ok(branches)
    }
}

/// cantools' strict check: every signal inside the message, and no two
/// signals that can be present together sharing a bit.
/// Checks that every signal fits in the message; the overlaps found (the
/// first per signal), which strict mode rejects.
fn check_layout(message: &Message) -> Result<Vec<String>, String> {
    let mut bits: Vec<Option<u16>> = vec![None; message.length * 8];
    let mut overlaps = Vec::new();
    check_node(message, 0, &mut bits, &mut overlaps)?;
    Ok(overlaps)
}

fn check_node(
    message: &Message,
    node: usize,
    bits: &mut [Option<u16>],
    overlaps: &mut Vec<String>,
) -> Result<(), String> {
    let node = &message.nodes[node];
    for &i in &node.signals {
        check_signal(message, i, bits, overlaps)?;
        let Some(mux) = node.muxes.iter().find(|m| m.signal == i) else {
            continue;
        };
        let before = bits.to_vec();
        let mut seen = BTreeSet::new();
        for branch in &mux.branches {
            if !seen.insert(branch.node) {
                continue;
            }
            let mut child = before.clone();
            check_node(message, branch.node as usize, &mut child, overlaps)?;
            for (slot, bit) in bits.iter_mut().zip(child) {
                if bit.is_some() {
                    *slot = bit;
                }
            }
        }
    }
    Ok(())
}

fn check_signal(
    message: &Message,
    index: u16,
    bits: &mut [Option<u16>],
    overlaps: &mut Vec<String>,
) -> Result<(), String> {
    let signal = &message.signals[usize::from(index)];
    if signal.codec.layout.end_byte() as usize > message.length {
        return Err(format!(
            "signal {} does not fit in message {}",
            signal.name, message.name
        ));
    }
    let mut overlapped = false;
    for bit in signal.codec.layout.network_bits() {
        let slot = &mut bits[bit as usize];
        if let Some(other) = *slot
            && other != index
            && !overlapped
        {
            overlapped = true;
            overlaps.push(format!(
                "signals {} and {} overlap in message {}",
                signal.name,
                message.signals[usize::from(other)].name,
                message.name
            ));
        }
        *slot = Some(index);
    }
    Ok(())
}

/// Fills in each signal's multiplexer relation for the catalog.
pub(crate) fn describe_multiplexing(message: &mut Message) {
    let mut relations: Vec<(usize, Multiplexed)> = Vec::new();
    for node in &message.nodes {
        for mux in &node.muxes {
            let mux_name = message.signals[usize::from(mux.signal)].name.clone();
            for branch in &mux.branches {
                for &s in &message.nodes[branch.node as usize].signals {
                    let s = usize::from(s);
                    match relations.iter_mut().find(|(i, _)| *i == s) {
                        Some((_, rel)) => rel.values.push((branch.lo, branch.hi)),
                        None => relations.push((
                            s,
                            Multiplexed {
                                multiplexer: mux_name.clone(),
                                values: vec![(branch.lo, branch.hi)],
                            },
                        )),
                    }
                }
            }
        }
    }
    for (i, mut rel) in relations {
        rel.values.sort_unstable();
        rel.values.dedup();
        message.signals[i].multiplexed = Some(rel);
    }
}
