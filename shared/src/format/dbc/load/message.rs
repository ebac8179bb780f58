//! A message line (`BO_`) and its signals, compiled: its CAN id as the
//! file's number means it, its signals in cantools' order, its
//! multiplexing tree and the decode plan the decoder runs.

use can_dbc::MessageId;

use super::layout::{check_layout, describe_multiplexing};
use super::signal::is_multiplexer;
use super::tree::TreeBuilder;
use super::{Builder, Draft, EXTENDED_FLAG, MuxValues};
use crate::format::dbc::LoadError;
use crate::format::dbc::columns::ColumnDecoder;
use crate::format::dbc::message::Message;
use crate::format::dbc::signal::DecodeOp;
use crate::format::frame::CanId;

impl Builder<'_> {
    /// The message of a `BO_` line, `raw_id` the number written there.
    pub(super) fn message(
        &mut self,
        parsed: &can_dbc::Message,
        raw_id: u64,
        line: Option<usize>,
    ) -> Result<Message, LoadError> {
        let dbc_id = parsed.id;
        let id = self.frame_id(&parsed.name, raw_id, line)?;
        let length = usize::try_from(parsed.size)
            .map_err(|_| self.error(line, format!("message {} has an impossible length", parsed.name)))?;
        let name = self.message_long_name(dbc_id).unwrap_or_else(|| parsed.name.clone());
        let drafts = self.drafts(parsed, &name, length, line)?;
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
        self.place_signals(&mut message, drafts, line)?;
        plan_decoding(&mut message);
        Ok(message)
    }

    /// The CAN id a `BO_` line's number means: bit 31 flags an extended id;
    /// a standard id past 11 bits can only be an extended one (a warning,
    /// or strict mode's error).
    fn frame_id(&mut self, name: &str, raw_id: u64, line: Option<usize>) -> Result<CanId, LoadError> {
        if raw_id & EXTENDED_FLAG != 0 {
            let id = raw_id & 0x7FFF_FFFF;
            return CanId::extended(id as u32).ok_or_else(|| {
                self.error(
                    line,
                    format!("extended frame id 0x{id:x} is more than 29 bits in message {name}"),
                )
            });
        }
        if raw_id > 0x7FF && raw_id <= 0x1FFF_FFFF {
            let message = format!("standard frame id 0x{raw_id:x} is more than 11 bits in message {name}");
            self.tolerate(line, format!("{message} (read as the extended id it can only be)"))
                .map_err(|e| LoadError { message, ..e })?;
            return CanId::extended(raw_id as u32).ok_or_else(|| self.error(line, "impossible extended id".into()));
        }
        CanId::standard(raw_id as u32)
            .filter(|_| raw_id <= 0x7FF)
            .ok_or_else(|| {
                self.error(
                    line,
                    format!("standard frame id 0x{raw_id:x} is more than 11 bits in message {name}"),
                )
            })
    }

    /// The message's signals as the file defines them, in cantools' order
    /// (by start bit); outside strict mode, without those that do not fit
    /// in its `length` bytes.
    fn drafts(
        &mut self,
        parsed: &can_dbc::Message,
        name: &str,
        length: usize,
        line: Option<usize>,
    ) -> Result<Vec<Draft>, LoadError> {
        // cantools: exactly one signal marked M (or mNM) makes the message simply
        // multiplexed; more than one leaves SG_MUL_VAL_ as the only relation.
        let markers: Vec<&str> = parsed
            .signals
            .iter()
            .filter(|s| is_multiplexer(s.multiplexer_indicator))
            .map(|s| s.name.as_str())
            .collect();
        let single_mux = if markers.len() == 1 { Some(markers[0]) } else { None };

        let mux_values = self.mux_values(parsed.id);
        let mut drafts = Vec::with_capacity(parsed.signals.len());
        for s in &parsed.signals {
            drafts.push(self.signal(parsed.id, name, s, single_mux, &mux_values, line)?);
        }
        if !self.options.strict {
            drafts = self.drop_unfit(drafts, name, length, line);
        }
        // cantools sorts signals by start bit (network order for Motorola); stable.
        drafts.sort_by_key(|d| d.signal.codec.layout.first_sort_key());
        Ok(drafts)
    }

    /// Builds the message's multiplexing tree from its drafts and takes their
    /// signals, refusing a signal of no bits; overlapping signals are a
    /// warning, or strict mode's error.
    fn place_signals(
        &mut self,
        message: &mut Message,
        drafts: Vec<Draft>,
        line: Option<usize>,
    ) -> Result<(), LoadError> {
        message.nodes = TreeBuilder::new(&drafts)
            .build()
            .map_err(|m| self.error(line, format!("message {}: {m}", message.name)))?;
        if let Some(d) = drafts.iter().find(|d| d.signal.length == 0) {
            return Err(self.error(
                line,
                format!("signal {} of message {} has length 0", d.signal.name, message.name),
            ));
        }
        message.signals = drafts.into_iter().map(|d| d.signal).collect();
        for overlap in check_layout(message).map_err(|m| self.error(line, m))? {
            self.tolerate(line, format!("{overlap} (each is decoded on its own)"))
                .map_err(|e| LoadError { message: overlap, ..e })?;
        }
        Ok(())
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
}

/// What the decoder runs: each signal's multiplexer relation (for the
/// catalog), each node's decode operations, and the column decoder where
/// the message's frames decode by columns.
fn plan_decoding(message: &mut Message) {
    describe_multiplexing(message);
    for node in &mut message.nodes {
        node.ops = node
            .signals
            .iter()
            .map(|&i| DecodeOp::new(message.signals[usize::from(i)].codec))
            .collect();
    }
    message.columns = ColumnDecoder::new(message);
}
