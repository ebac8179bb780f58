//! The local stack: what AWS does for Canopy, played on one machine.
//!
//! - The emulator: [`stack`] runs the template ([`template`] reads it,
//!   [`resources`] creates its tables, [`services`] starts moto and the
//!   broker, [`broker`] and [`basic_ingest`] are IoT Core's MQTT side,
//!   [`live`] the WebSocket API and the table streams, [`redrive`] SQS's
//!   dead-letter move).
//! - [`demo`]: a simulated fleet through the stack (`make demo`); [`fleet`]:
//!   a fleet of thousands seeded straight into its tables (`up --fleet`).
//! - [`cost`]: dollars per vehicle-month measured on the stack (`make cost`).
//! - [`bench`]: latency, history queries and init times (`make bench-*`).

pub mod basic_ingest;
pub mod bench;
pub mod broker;
pub mod cost;
pub mod demo;
pub mod fleet;
pub mod live;
pub mod redrive;
pub mod resources;
pub mod services;
pub mod stack;
pub mod template;
