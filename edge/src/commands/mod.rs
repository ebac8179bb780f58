//! The command-line tools beside the agent: `simulate`, `station`, `decode`,
//! `convert`, `export`, `dtcs` and the hidden `bench-codec`, each in its own module;
//! [`input`], where their frames come from, and [`output`], where they go.
//!
//! All of them are laptop tools, behind the `tools` feature (on by default):
//! the binary shipped to vehicles (`make edge-dist`, `make edge-arm`) leaves
//! them out, and with them the simulators, the Parquet reader and the decoded
//! lake's writer.

#[cfg(feature = "tools")]
pub mod bench_codec;
#[cfg(feature = "tools")]
pub mod convert;
#[cfg(feature = "tools")]
pub mod decode;
#[cfg(feature = "tools")]
pub mod dtcs;
#[cfg(feature = "tools")]
pub mod export;
#[cfg(feature = "tools")]
pub mod input;
#[cfg(feature = "tools")]
pub mod output;
#[cfg(feature = "tools")]
pub mod simulate;
#[cfg(feature = "tools")]
pub mod station;
