//! The local stack: what AWS does for Canopy, played on one machine.

pub mod basic_ingest;
pub mod bench_api;
pub mod broker;
pub mod cost;
pub mod demo;
pub mod init_time;
pub mod latency;
pub mod live;
pub mod redrive;
pub mod resources;
pub mod services;
pub mod stack;
pub mod template;
