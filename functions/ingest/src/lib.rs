//! The `ingest` Lambda: telemetry posted over HTTPS (`POST /ingest`) by
//! devices that hold a key instead of an MQTT certificate, validated as the
//! MQTT path validates it and sent into the same telemetry queue.
//!
//! - [`service`]: the work (keys, rates, validation, the queue), knowing nothing of Lambda.
//! - [`router`]: the HTTP route, run by `lambda_http` in AWS and by plain axum on the local stack.
//! - [`Config`], [`Ingest::from_env`]: the wiring the Lambda's `main.rs` and the local stack share.
//!
//! The keys are made, listed and revoked by the `device-keys` command
//! (`src/bin/device_keys.rs`), in AWS and on the local stack alike.

pub mod router;
pub mod service;

use std::time::Duration;

use canopy::adapters::aws::dynamodb::{self, DynamoKeyStore, DynamoLedger, DynamoQuotaCounter};
use canopy::adapters::aws::iot::IotPublisher;
use canopy::adapters::aws::sqs::SqsQueue;
use canopy::domain::alert::{self, Rule};
use canopy::ports::messaging::DevicePublisher;
use canopy::runtime::env::{self, EnvError};

use crate::service::{AlertRoute, HttpIngest, IngestOptions};

/// Configuration from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `KEYS_TABLE`: the device keys.
    pub keys_table: String,
    /// `LEDGER_TABLE`: the telemetry function's ledger, read to tell duplicates.
    pub ledger_table: String,
    /// `QUOTA_TABLE`: requests per key and minute.
    pub quota_table: String,
    /// `TELEMETRY_QUEUE_URL`: where valid messages go, as the IoT rule sends them.
    pub queue_url: String,
    /// `ALERTS_RULE_NAME`: the alerts topic rule, where messages that may alert go.
    pub alerts_rule: String,
    /// The vehicle kind's alert rules with the thresholds the alerts
    /// function reads (`OVER_TEMPERATURE_C`, `LOW_SOC_PCT`, `CELL_IMBALANCE_V`).
    pub alert_rules: Vec<Rule>,
    /// `KEY_CACHE_SECONDS` (default 30, at most 300), `MAX_CLOCK_AHEAD_SECONDS`, `MAX_MESSAGE_AGE_SECONDS`.
    pub options: IngestOptions,
}

impl Config {
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        let cache_s: u64 = env::parse_or(vars, "KEY_CACHE_SECONDS", 30)?;
        if cache_s > 300 {
            return Err(EnvError {
                name: "KEY_CACHE_SECONDS".into(),
                problem: format!("{cache_s} is above 300: a revoked key would work for too long"),
            });
        }
        Ok(Self {
            keys_table: env::required(vars, "KEYS_TABLE")?,
            ledger_table: env::required(vars, "LEDGER_TABLE")?,
            quota_table: env::required(vars, "QUOTA_TABLE")?,
            queue_url: env::required(vars, "TELEMETRY_QUEUE_URL")?,
            alerts_rule: env::required(vars, "ALERTS_RULE_NAME")?,
            alert_rules: alert::vehicle_rules_with(|variable| env::parse(vars, variable))?,
            options: IngestOptions {
                clock: env::clock_bounds(vars)?,
                key_cache: Duration::from_secs(cache_s),
            },
        })
    }
}

/// The service as deployed: DynamoDB for keys, ledger and rates, SQS for
/// the queue, and IoT Core's Basic Ingest (`P`) to the alerts rule.
pub type Ingest<P = IotPublisher> = HttpIngest<DynamoKeyStore, SqsQueue, DynamoLedger, DynamoQuotaCounter, P>;

impl Ingest {
    pub fn from_env(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<Self, EnvError> {
        Self::from_env_with(vars, sdk, IotPublisher::new(sdk))
    }
}

impl<P: DevicePublisher> Ingest<P> {
    /// [`Ingest::from_env`], reaching the alerts rule through `publisher`
    /// (the local stack's broker, where IoT Core is not).
    pub fn from_env_with(vars: &impl env::Vars, sdk: &aws_config::SdkConfig, publisher: P) -> Result<Self, EnvError> {
        let config = Config::from_vars(vars)?;
        let client = dynamodb::client(sdk);
        Ok(HttpIngest::new(
            DynamoKeyStore::new(client.clone(), &config.keys_table),
            SqsQueue::new(sdk, &config.queue_url),
            DynamoLedger::new(client.clone(), &config.ledger_table),
            DynamoQuotaCounter::new(client, &config.quota_table),
            AlertRoute {
                publisher,
                rule_name: config.alerts_rule,
                rules: config.alert_rules,
            },
            config.options,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vars(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        [
            ("KEYS_TABLE", "keys"),
            ("LEDGER_TABLE", "ledger"),
            ("QUOTA_TABLE", "quota"),
            ("TELEMETRY_QUEUE_URL", "http://queue"),
            ("ALERTS_RULE_NAME", "AlertsTopicRule"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn the_environment_is_checked_at_start_up_by_name() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.options.key_cache, Duration::from_secs(30));
        let mut missing = vars(&[]);
        missing.remove("TELEMETRY_QUEUE_URL");
        assert_eq!(Config::from_vars(&missing).unwrap_err().name, "TELEMETRY_QUEUE_URL");
        let long = Config::from_vars(&vars(&[("KEY_CACHE_SECONDS", "3600")])).unwrap_err();
        assert_eq!(long.name, "KEY_CACHE_SECONDS");
        assert!(Config::from_vars(&vars(&[("KEY_CACHE_SECONDS", "soon")])).is_err());
    }
}
