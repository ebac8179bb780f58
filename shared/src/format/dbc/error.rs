//! Errors of loading a DBC, decoding a frame and encoding a payload.

/// A DBC file could not be loaded. Names the file and, where known, the line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{source_name}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    pub source_name: String,
    pub line: Option<usize>,
    pub message: String,
}

/// A problem lenient loading tolerated: what it was and what was done, with
/// the file and, where known, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: tolerated: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadWarning {
    pub source_name: String,
    pub line: Option<usize>,
    pub message: String,
}

/// A frame of a known message could not be decoded. The texts follow cantools'.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("Wrong data size: {actual} instead of {expected} bytes")]
    WrongLength { actual: usize, expected: usize },
    #[error("expected multiplexer id {expected}, but got {got} (multiplexer {multiplexer})")]
    UnknownMultiplexerValue {
        multiplexer: String,
        got: i128,
        expected: String,
    },
    #[error("multiplexer {multiplexer} has the non-integer value {value}")]
    MultiplexerNotInteger { multiplexer: String, value: f64 },
    #[error("unpacking failed: float signal {signal} has {length} bits (16, 32 or 64 are possible)")]
    Unpacking { signal: String, length: u32 },
}

/// Physical values could not be encoded into a payload.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("message {message}: no value given for signal {signal}")]
    MissingValue { message: String, signal: String },
    #[error("message {message}: signal {signal} value {value} is outside what its {length} bits hold ({min} to {max})")]
    OutOfRange {
        message: String,
        signal: String,
        value: f64,
        length: u32,
        min: f64,
        max: f64,
    },
    #[error("message {message}: multiplexer {multiplexer} value {value} selects no signals")]
    UnknownMultiplexerValue {
        message: String,
        multiplexer: String,
        value: f64,
    },
    #[error("message {message}: signal {signal} cannot be encoded ({reason})")]
    Unsupported {
        message: String,
        signal: String,
        reason: &'static str,
    },
}
