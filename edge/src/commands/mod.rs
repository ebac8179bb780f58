//! The command-line tools beside the agent: `simulate`, `station`, `decode`, `convert`
//! and the hidden `bench-codec`, each in its own module, and [`input`], where
//! their frames come from.

pub mod bench_codec;
pub mod convert;
pub mod decode;
pub mod input;
pub mod simulate;
pub mod station;
