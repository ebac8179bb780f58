//! What every binary needs at its edges.
//!
//! - [`env`]: configuration from environment variables, validated with messages naming the variable.
//! - [`logging`]: JSON logs in Lambda, text logs on the command line.
//! - [`metrics`]: counters as CloudWatch Embedded Metric Format.
//! - [`text`]: cutting untrusted text short for messages.

pub mod env;
pub mod logging;
pub mod metrics;
pub mod text;
