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
//!
//! This file reads the file and matches its messages to their lines; by
//! job, `message` compiles a message, `signal` a signal line,
//! `attributes` reads what `BA_` says, `tree` builds the multiplexing
//! tree and `layout` checks the bits.

use std::collections::HashMap;

use can_dbc::{Dbc, MessageId, SignalExtendedValueType, ValueDescription};

use super::error::{LoadError, LoadWarning};
use super::signal::Signal;
use super::{Database, LoadOptions};
use crate::format::frame::CanId;

mod attributes;
mod layout;
mod message;
mod signal;
mod tree;

const EXTENDED_FLAG: u64 = 0x8000_0000;

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

/// The `BO_` lines of a file, each matched to one parsed message.
struct LinesFound {
    lines: Vec<MessageLine>,
    used: Vec<bool>,
}

impl LinesFound {
    fn new(lines: Vec<MessageLine>) -> Self {
        let used = vec![false; lines.len()];
        Self { lines, used }
    }

    /// The line of `parsed` (the first of its name not matched yet) and the
    /// id written there; without one, the id `can-dbc` read.
    fn claim(&mut self, parsed: &can_dbc::Message) -> (Option<usize>, u64) {
        let found = (self.lines.iter().enumerate()).position(|(i, l)| !self.used[i] && l.name == parsed.name);
        match found {
            Some(i) => {
                self.used[i] = true;
                (Some(self.lines[i].line), self.lines[i].raw_id)
            }
            None => (None, u64::from(parsed.id.raw())),
        }
    }
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
        let mut lines = LinesFound::new(scan_message_lines(self.text));
        let mut messages = Vec::new();
        for parsed in &self.dbc.messages {
            let (line, raw_id) = lines.claim(parsed);
            if !self.options.strict && raw_id & 0x7FFF_FFFF > u64::from(CanId::MAX_EXTENDED) {
                self.warnings.push(LoadWarning {
                    source_name: self.source_name.to_string(),
                    line,
                    message: format!(
                        "frame id 0x{raw_id:x} of message {} is no CAN id (more than 29 bits); message left out",
                        parsed.name
                    ),
                });
                self.forget_tables(parsed);
                continue;
            }
            if parsed.name == "VECTOR__INDEPENDENT_SIG_MSG" {
                // Signals not sent in any frame: dropped, with their value tables
                // (cantools would reject the file over those tables).
                self.forget_tables(parsed);
                continue;
            }
            messages.push(self.message(parsed, raw_id, line)?);
        }
        self.check_unclaimed()?;
        let mut db = Database::new(messages);
        db.warnings = self.warnings;
        Ok(db)
    }

    /// Drops the `VAL_` and `SIG_VALTYPE_` entries of a message left out,
    /// so that they are not reported as claimed by no signal.
    fn forget_tables(&mut self, parsed: &can_dbc::Message) {
        for s in &parsed.signals {
            self.choices.remove(&(parsed.id, s.name.clone()));
            self.value_types.remove(&(parsed.id, s.name.clone()));
        }
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
}
