//! The DBC codec: a DBC file compiled once into flat per-message tables, so
//! that decoding a frame does no lookup by name and no allocation.
//!
//! Semantics follow cantools, the field's reference decoder, including its
//! edge cases (`tests/oracle/README.md` says how the oracle checks it):
//! Motorola sawtooth start bits, IEEE floats of 16/32/64 bits, integer-exact
//! scaling, multiplexers selected by physical value, simple, nested and
//! extended (`SG_MUL_VAL_`) multiplexing, frames shorter than the DBC length
//! rejected and longer ones cut.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use canopy::format::dbc::Database;
//! use canopy::format::frame::CanId;
//!
//! let db = Database::from_text(r#"
//! BO_ 256 Pack: 2 BMS
//!  SG_ Voltage : 0|16@1+ (0.1,0) [0|1000] "V" VCU
//! "#, "inline.dbc")?;
//! let message = db.lookup(CanId::Standard(256)).unwrap();
//! let mut values = Vec::new();
//! message.decode(&[0x10, 0x0E], &mut values)?;
//! assert_eq!(values[0].value, 360.0);
//! # Ok(()) }
//! ```

mod bits;
pub mod columns;
mod error;
mod load;
mod message;
mod signal;

use std::path::Path;

pub use bits::ByteOrder;
pub use error::{DecodeError, EncodeError, LoadError, LoadWarning};
pub use message::{Message, SignalValue};
pub use signal::{Multiplexed, Signal, ValueKind, ValueRange};

use crate::format::frame::CanId;

/// The DBC the platform ships with (`dbc/ev_powertrain.dbc`): what a vehicle
/// without a DBC of its own is decoded with, and the API's default catalog.
pub const BUILT_IN: &[u8] = include_bytes!("../../../../dbc/ev_powertrain.dbc");
/// The name [`BUILT_IN`] goes by in logs and outcomes.
pub const BUILT_IN_NAME: &str = "built-in:ev_powertrain.dbc";

/// [`BUILT_IN`], compiled.
pub fn built_in() -> Result<Database, LoadError> {
    Database::from_bytes(BUILT_IN, BUILT_IN_NAME)
}

const NO_MESSAGE: u32 = u32::MAX;

/// A compiled DBC database.
#[derive(Clone, Debug)]
pub struct Database {
    messages: Vec<Message>,
    /// Standard id → index into `messages`.
    standard: Box<[u32; 0x800]>,
    /// Sorted (extended id, index into `messages`).
    extended: Vec<(u32, u32)>,
    /// Sorted (PGN, index into `messages`) of J1939 messages: a frame whose
    /// id is not in the file matches by its parameter group.
    j1939: Vec<(u32, u32)>,
    /// What lenient loading tolerated, one entry per problem.
    warnings: Vec<LoadWarning>,
}

/// How a DBC file is loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Reject what cantools' strict mode rejects (overlapping signals, signals
    /// past the message's length, `VAL_` for unknown signals, standard ids
    /// above 11 bits). Off by default: such files load, with a
    /// [`LoadWarning`] per problem (see `load/mod.rs` for what is tolerated).
    pub strict: bool,
}

impl Database {
    fn new(messages: Vec<Message>) -> Self {
        let mut standard = Box::new([NO_MESSAGE; 0x800]);
        let mut extended: Vec<(u32, u32)> = Vec::new();
        let mut j1939: Vec<(u32, u32)> = Vec::new();
        // When two messages share an id the later one wins, as in cantools.
        for (i, m) in messages.iter().enumerate() {
            if let Some(pgn) = m.id.pgn().filter(|_| m.is_j1939) {
                match j1939.iter_mut().find(|(p, _)| *p == pgn) {
                    Some(entry) => entry.1 = i as u32,
                    None => j1939.push((pgn, i as u32)),
                }
            }
            match m.id {
                CanId::Standard(id) => standard[usize::from(id)] = i as u32,
                CanId::Extended(id) => match extended.iter_mut().find(|(e, _)| *e == id) {
                    Some(entry) => entry.1 = i as u32,
                    None => extended.push((id, i as u32)),
                },
            }
        }
        extended.sort_unstable();
        j1939.sort_unstable();
        Self {
            messages,
            standard,
            extended,
            j1939,
            warnings: Vec::new(),
        }
    }

    /// Loads a DBC file (UTF-8 or cp1252, LF or CRLF), leniently.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::load_with(path, LoadOptions::default())
    }

    pub fn load_with(path: impl AsRef<Path>, options: LoadOptions) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| LoadError {
            source_name: name.clone(),
            line: None,
            message: e.to_string(),
        })?;
        Self::from_bytes_with(&bytes, &name, options)
    }

    /// Compiles DBC file contents leniently; `source_name` is named in errors and warnings.
    pub fn from_bytes(bytes: &[u8], source_name: &str) -> Result<Self, LoadError> {
        Self::from_bytes_with(bytes, source_name, LoadOptions::default())
    }

    pub fn from_bytes_with(bytes: &[u8], source_name: &str, options: LoadOptions) -> Result<Self, LoadError> {
        Self::from_text_with(&load::decode_text(bytes), source_name, options)
    }

    /// Compiles DBC text leniently; `source_name` is named in errors and warnings.
    pub fn from_text(text: &str, source_name: &str) -> Result<Self, LoadError> {
        Self::from_text_with(text, source_name, LoadOptions::default())
    }

    pub fn from_text_with(text: &str, source_name: &str, options: LoadOptions) -> Result<Self, LoadError> {
        load::build(text, source_name, options)
    }

    /// What loading tolerated (empty for a clean file and in strict mode).
    pub fn warnings(&self) -> &[LoadWarning] {
        &self.warnings
    }

    /// Every message, in file order.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The index into [`Self::messages`] of the message with this id: the
    /// message the file gives this id, else the J1939 message of its PGN
    /// (any priority, any source address).
    #[inline]
    pub fn message_index(&self, id: CanId) -> Option<usize> {
        let index = match id {
            CanId::Standard(id) => *self.standard.get(usize::from(id))?,
            CanId::Extended(raw) => match self.extended.binary_search_by_key(&raw, |e| e.0) {
                Ok(i) => self.extended[i].1,
                Err(_) => self.j1939_index(id)?,
            },
        };
        (index != NO_MESSAGE).then_some(index as usize)
    }

    #[cold]
    fn j1939_index(&self, id: CanId) -> Option<u32> {
        if self.j1939.is_empty() {
            return None;
        }
        let pgn = id.pgn()?;
        let i = self.j1939.binary_search_by_key(&pgn, |e| e.0).ok()?;
        Some(self.j1939[i].1)
    }

    /// The message with this id, or `None` for an id the DBC does not define.
    #[inline]
    pub fn lookup(&self, id: CanId) -> Option<&Message> {
        self.message_index(id).map(|i| &self.messages[i])
    }

    pub fn message_by_name(&self, name: &str) -> Option<&Message> {
        self.messages.iter().rev().find(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests;
