//! Canopy's common library: what the edge agent, the Lambda functions and the
//! local stack share, in layers that depend only downwards (a unit test,
//! `layering`, checks it):
//!
//! | layer | what it holds | may use |
//! | --- | --- | --- |
//! | [`format`], [`domain`] | the core, no I/O. `format`: bytes and text in and out (CAN frames, candump, the DBC codec, the lake's Parquet formats and keys, the telemetry message). `domain`: plain types and rules (vehicle ids, telemetry measures, alert rules, LTTB) | each other, `runtime` |
//! | [`ports`] | the traits services call for I/O: object store, latest state, ledger, alert log, notifier, device publisher | the core |
//! | [`services`] | what more than one function does through the ports (the DBC each vehicle is decoded with) | the ports and the core |
//! | [`adapters`] | the ports on AWS (a cargo feature per service) and in memory (feature `memory`, with fault injection and the contract suites every adapter passes) | all of the above |
//!
//! [`runtime`] is what every binary needs at its edges: configuration from the
//! environment, logs, metrics, message text.
//!
//! Services with one user (decoding an object, ingesting telemetry, raising
//! alerts, answering history queries) live next to it, in `functions/<name>/`.

pub mod adapters;
pub mod domain;
pub mod format;
pub mod ports;
pub mod runtime;
pub mod services;

#[cfg(test)]
mod layering;
