//! Bytes and text in and out, without I/O: each module reads and writes one
//! format.
//!
//! - [`frame`]: the CAN frame.
//! - [`candump`]: the can-utils log format, read as a stream and written.
//! - [`dbc`]: the DBC codec (decode and encode), exact to cantools.
//! - [`lake`]: the data lake's Parquet formats and object keys, and
//!   [`lake::transcode`] from raw frames to decoded values.
//! - [`telemetry`]: the telemetry message the edge publishes.

pub mod candump;
pub mod dbc;
pub mod device;
pub mod frame;
pub mod lake;
pub mod telemetry;
