//! The one integration-test binary: the AWS adapters' contracts and the
//! handlers against moto on loopback, the edge against moto and an MQTT
//! broker, and the pipeline end to end.

mod api;
mod catalogs;
mod compaction;
mod contracts;
mod cost;
mod decoder;
mod e2e;
mod edge;
mod faults;
mod ingest;
mod init;
mod live;
mod redrive;
mod stations;
mod support;
mod telemetry;
mod telemetry_index;
