//! Canopy's common library: what the edge agent, the Lambda functions and the
//! local stack share.
//!
//! - [`frame`]: the CAN frame.
//! - [`candump`]: the can-utils log format, read as a stream and written.
//! - [`dbc`]: the DBC codec (decode and encode), exact to cantools.
//! - [`lake`]: the data lake's Parquet formats and object keys.
//! - [`decoder`]: decoding a raw lake object into its decoded object.
//! - [`history`], [`lttb`]: signal history and fleet statistics, downsampled for charts.
//! - [`store`], [`aws`]: storage and messaging traits, and their AWS implementations.
//! - [`metrics`], [`logging`], [`env`]: what every binary needs at its edges.

pub mod alerts;
#[cfg(feature = "aws")]
pub mod aws;
pub mod candump;
pub mod dbc;
pub mod decoder;
pub mod env;
pub mod frame;
pub mod history;
pub mod ingest;
pub mod lake;
pub mod logging;
pub mod lttb;
pub mod metrics;
pub mod store;
pub mod tables;
pub mod telemetry;
pub mod text;
pub mod vehicle;
