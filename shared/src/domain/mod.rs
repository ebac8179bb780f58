//! Plain types and rules with no I/O.
//!
//! - [`device_id`]: a device's id (a vehicle's or a station's), checked once where it enters.
//! - [`telemetry`]: a vehicle's validated telemetry sample and its clock bounds.
//! - [`device`]: a validated status message of a device of a declared kind.
//! - [`rejection`]: why a message was refused, and the field at fault.
//! - [`topic`]: a vehicle's MQTT topics.
//! - [`access`]: which vehicles a signed-in user reads.
//! - [`standing`]: what a vehicle is doing (driving, charging, parked, silent), as the fleet counts it.
//! - [`measure`]: the telemetry measures by name, unit and meaning.
//! - [`alert`]: alert rules as data, evaluating them, and the alert they raise.
//! - [`lttb`]: downsampling a series for a chart.
//! - [`device_key`]: the keys devices post telemetry over HTTPS with.

pub mod access;
pub mod alert;
pub mod device;
pub mod device_id;
pub mod device_key;
pub mod kind;
pub mod lttb;
pub mod measure;
pub mod rejection;
pub mod standing;
pub mod telemetry;
pub mod topic;
