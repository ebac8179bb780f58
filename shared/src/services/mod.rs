//! What more than one function does with the ports: services written once
//! against the port traits, so every user gets the same behaviour.
//!
//! - [`dbc_cache`]: the DBC each vehicle's data is decoded with (the decoder
//!   decodes with it, the API lists and checks signals with it).

pub mod dbc_cache;
