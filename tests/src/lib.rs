//! Support for the `it` tests: the local services, fixtures.

pub mod fixtures;
pub mod local;
pub mod messages;
pub mod mqtt;
pub mod proxy;
