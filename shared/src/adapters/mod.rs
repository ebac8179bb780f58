//! The ports ([`crate::ports`]) on real services and in memory.
//!
//! - [`aws`]: S3, DynamoDB, SNS and IoT Core, one cargo feature per service so
//!   a binary compiles only the SDKs it calls.
//! - [`memory`] (feature `memory`): every port in memory, with fault injection
//!   (fail the next calls, delay them), for the services' unit tests.
//! - [`contract`] (feature `memory`): what every adapter of a port must do,
//!   as test suites run against both the memory and the AWS adapters.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "memory")]
pub mod contract;
#[cfg(feature = "memory")]
pub mod memory;
