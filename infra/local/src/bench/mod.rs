//! The local stack's measurements, each a `canopy-local` command:
//! [`api`] (history queries, `make bench-api`, with [`api_cold`]: the API
//! function's first chart after a cold start, and [`api_telemetry`]: trips
//! and fleet statistics), [`latency`] (publish → state,
//! upload → decoded, `make bench-local`), [`init_time`] (each function's
//! start, `make bench-lambdas`) and [`fleet`] (fleet-wide reads at 1,000 to
//! 100,000 vehicles, `make bench-fleet`).

pub mod api;
pub mod api_cold;
pub mod api_telemetry;
pub mod fleet;
pub mod init_time;
pub mod latency;
pub mod latency_proxy;
pub mod s3_model;
