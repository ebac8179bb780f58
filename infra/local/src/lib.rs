//! The local stack: what AWS does for Canopy, played on one machine.

pub mod broker;
pub mod resources;
pub mod services;
