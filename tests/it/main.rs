//! The one integration-test binary: handlers against moto on loopback, the
//! edge against moto and an MQTT broker, and the pipeline end to end.

mod api;
mod decoder;
mod e2e;
mod edge;
mod telemetry;
