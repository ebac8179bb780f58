//! The traits services call for I/O, one job each. Every port has an AWS
//! adapter and an in-memory one (in `adapters`), and a contract suite
//! both pass (`adapters::contract`).
//!
//! | port | job | AWS |
//! | --- | --- | --- |
//! | [`store::ObjectStore`] | objects, ranges, multipart uploads | S3 |
//! | [`state::LatestStateStore`] | each vehicle's newest telemetry | DynamoDB |
//! | [`ledger::Ledger`] | which archive object holds a (vehicle, seq) | DynamoDB |
//! | [`alert_log::AlertLog`] | the alert log, its cooldown windows and the fleet's alert feeds | DynamoDB |
//! | [`directory::VehicleDirectory`] | which vehicles each view of the fleet lists | DynamoDB |
//! | [`quota::QuotaCounter`] | requests per caller and window | DynamoDB |
//! | [`messaging::Notifier`] | alerts to people | SNS |
//! | [`messaging::DevicePublisher`] | messages to vehicles | IoT Core's data plane |
//! | [`keys::KeyStore`] | the keys devices post telemetry with | DynamoDB |
//! | [`queue::MessageQueue`] | messages into a queue | SQS |
//! | [`live::ConnectionStore`] | the live stream's connections and subscriptions | DynamoDB |
//! | [`live::ConnectionPoster`] | a message to one open connection | API Gateway's management API |
//! | [`live::TokenVerifier`] | who holds an access token | Cognito |

pub mod alert_log;
pub mod device_state;
pub mod directory;
pub mod keys;
pub mod ledger;
pub mod live;
pub mod messaging;
pub mod queue;
pub mod quota;
pub mod state;
pub mod store;

/// A table read or write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table {table}: {message}")]
pub struct TableError {
    pub table: String,
    pub message: String,
}

/// One page of a listing, and where the next starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Which of `partitions` an index keeps `key` in (FNV-1a: stable across
/// builds and machines, so every writer and reader agrees).
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let hash = key
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash % partitions.max(1)
}
