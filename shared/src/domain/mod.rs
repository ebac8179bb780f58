//! Plain types and rules with no I/O.
//!
//! - [`vehicle`]: the vehicle id, checked once where it enters.
//! - [`access`]: which vehicles a signed-in user reads.
//! - [`measure`]: the telemetry measures by name, unit and meaning.
//! - [`alert`]: alert rules as data, evaluating them, and the alert they raise.
//! - [`lttb`]: downsampling a series for a chart.
//! - [`device_key`]: the keys devices post telemetry over HTTPS with.

pub mod access;
pub mod alert;
pub mod device_key;
pub mod kind;
pub mod lttb;
pub mod measure;
pub mod vehicle;
