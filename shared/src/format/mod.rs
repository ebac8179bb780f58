//! Bytes and text in and out, without I/O: each module reads and writes one
//! format.
//!
//! - [`frame`]: the CAN frame.
//! - [`candump`]: the can-utils log format, read as a stream and written.
//! - [`dbc`]: the DBC codec (decode and encode), exact to cantools.
//! - [`lake`]: the data lake's Parquet formats and object keys, and
//!   [`lake::transcode`] from raw frames to decoded values.
//! - [`telemetry`]: the telemetry message the edge publishes.
//! - [`j1939`]: the transport protocol's reassembly and DM1 trouble codes.
//! - [`asc`], [`blf`], [`frames_csv`]: CAN logs for engineers' tools
//!   (Vector's ASCII and binary logs, a plain CSV), with [`channels`]
//!   numbering the buses as they do.

pub mod asc;
pub mod blf;
pub mod can_log;
pub mod candump;
pub mod channels;
pub mod dbc;
pub mod device;
pub mod frame;
pub mod frames_csv;
pub mod j1939;
pub mod lake;
pub mod telemetry;
