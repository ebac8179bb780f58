//! Canopy's common library: what the edge agent, the Lambda functions and the
//! local stack share.
//!
//! - [`frame`]: the CAN frame.
//! - [`candump`]: the can-utils log format, read as a stream and written.
//! - [`dbc`]: the DBC codec (decode and encode), exact to cantools.

pub mod candump;
pub mod dbc;
pub mod frame;
pub mod lake;
pub mod vehicle;
