//! What the `it` tests share beyond `canopy_tests` (which the benches use
//! too): reading the lake back, and waiting for the pipeline.

pub mod lake;
pub mod poll;
