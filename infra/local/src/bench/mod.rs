//! The local stack's measurements, each a `canopy-local` command:
//! [`api`] (history queries, `make bench-api`), [`latency`] (publish → state,
//! upload → decoded, `make bench-local`) and [`init_time`] (each function's
//! start, `make bench-lambdas`).

pub mod api;
pub mod init_time;
pub mod latency;
