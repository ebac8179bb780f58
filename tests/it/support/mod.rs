//! What the `it` tests share beyond `canopy_tests` (which the benches use
//! too): the one HTTP client and moto's Cognito over it, reading the lake
//! back, and waiting for the pipeline.

pub mod cognito;
pub mod http;
pub mod lake;
pub mod poll;
