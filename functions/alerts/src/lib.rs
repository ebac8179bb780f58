//! The `alerts` Lambda: the IoT rule invokes it with telemetry that trips a
//! rule; it raises the alerts through SNS, the alert log, and the vehicle's
//! alert topic, once per vehicle and rule per cooldown.
//!
//! - [`Config`]: its environment, validated at start-up.
//! - [`AlertsHandler`]: the handler, built by [`AlertsHandler::from_env`]
//!   (the Lambda's `main.rs` and the local stack call the same constructor).
//! - [`raise`]: the work, knowing nothing of Lambda.

pub mod raise;

use std::time::{Duration, Instant};

use canopy::adapters::aws::dynamodb::{self, DynamoAlertLog};
use canopy::adapters::aws::iot::IotPublisher;
use canopy::adapters::aws::sns::SnsNotifier;
use canopy::domain::alert::{self, Rule};
use canopy::format::telemetry::{ClockBounds, Message};
use canopy::ports::alert_log::AlertLog;
use canopy::ports::messaging::{DevicePublisher, Notifier};
use canopy::runtime::env::{self, EnvError};
use canopy::runtime::metrics::{Metrics, MetricsSink, Unit};
use serde::Serialize;
use serde_json::Value;
use tracing::warn;

use crate::raise::Raiser;

#[derive(Debug, Clone)]
pub struct Config {
    /// `ALERTS_TABLE`: the alert log and cooldowns.
    pub table: String,
    /// `ALERT_TOPIC_ARN`: the SNS topic people subscribe to.
    pub topic_arn: String,
    pub rules: Vec<Rule>,
    /// `ALERT_RETENTION_DAYS`: how long the log keeps an alert.
    pub retention: Duration,
    /// `MAX_CLOCK_AHEAD_SECONDS`, `MAX_MESSAGE_AGE_SECONDS`: how far a
    /// message's `ts` may be from the time IoT Core received it.
    pub clock: ClockBounds,
}

impl Config {
    /// Rules from `ALERT_RULES` (a JSON array of rules) or, when unset, the
    /// platform's three rules with thresholds from `OVER_TEMPERATURE_C`,
    /// `LOW_SOC_PCT`, `CELL_IMBALANCE_V` and `ALERT_COOLDOWN_SECONDS`.
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        let rules = match vars.var("ALERT_RULES").filter(|s| !s.trim().is_empty()) {
            Some(json) => serde_json::from_str::<Vec<Rule>>(&json).map_err(|e| EnvError {
                name: "ALERT_RULES".into(),
                problem: format!("not a JSON array of rules: {e}"),
            })?,
            None => alert::default_rules(
                env::parse_or(vars, "OVER_TEMPERATURE_C", 60.0)?,
                env::parse_or(vars, "LOW_SOC_PCT", 10.0)?,
                env::parse_or(vars, "CELL_IMBALANCE_V", 0.15)?,
                Duration::from_secs(env::parse_or(vars, "ALERT_COOLDOWN_SECONDS", 600)?),
            ),
        };
        let days: u64 = env::parse_or(vars, "ALERT_RETENTION_DAYS", 90)?;
        Ok(Self {
            table: env::required(vars, "ALERTS_TABLE")?,
            topic_arn: env::required(vars, "ALERT_TOPIC_ARN")?,
            rules,
            retention: Duration::from_secs(days * 24 * 3600),
            clock: env::clock_bounds(vars)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AlertError(String);

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AlertsResponse {
    /// The message was not valid telemetry: answered, not failed (a retry would not make it valid).
    Rejected { rejected: String },
    Raised {
        sent: u64,
        suppressed: u64,
        already_sent: u64,
    },
}

/// The handler: one telemetry message as the IoT rule delivers it.
pub struct AlertsHandler<A, N, D> {
    raiser: Raiser<A, N, D>,
    clock: ClockBounds,
    metrics: MetricsSink,
}

impl AlertsHandler<DynamoAlertLog, SnsNotifier, IotPublisher> {
    /// The function as deployed: configuration from `vars`, DynamoDB, SNS and IoT Core.
    pub fn from_env(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<Self, EnvError> {
        let config = Config::from_vars(vars)?;
        let raiser = Raiser {
            log: DynamoAlertLog::new(dynamodb::client(sdk), &config.table),
            notifier: SnsNotifier::new(sdk, &config.topic_arn),
            device: IotPublisher::new(sdk),
            rules: config.rules,
            retention: config.retention,
        };
        Ok(Self::new(raiser).with_clock(config.clock))
    }
}

impl<A: AlertLog, N: Notifier, D: DevicePublisher> AlertsHandler<A, N, D> {
    pub fn new(raiser: Raiser<A, N, D>) -> Self {
        Self {
            raiser,
            clock: ClockBounds::default(),
            metrics: MetricsSink::default(),
        }
    }

    pub fn with_clock(mut self, clock: ClockBounds) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
    }

    /// Handles one message. A failure to send fails the invocation, so
    /// Lambda retries it; the cooldown keeps the retry from sending twice.
    pub async fn handle(&self, event: Value) -> Result<AlertsResponse, AlertError> {
        let started = Instant::now();
        let mut metrics = Metrics::new("alerts");
        let now_ms = chrono::Utc::now().timestamp_millis();
        // A v1 message is one sample; of a v2 message, the valid samples count.
        let checked = Message::from_json(&event).and_then(|m| m.within_clock(self.clock, now_ms).into_valid());
        let samples = match checked {
            Ok(samples) => samples,
            Err(rejection) => {
                warn!(reason = %rejection, "message rejected");
                metrics.count("MessagesRejected", 1).emit(self.metrics);
                return Ok(AlertsResponse::Rejected {
                    rejected: rejection.reason,
                });
            }
        };
        let raised = self.raiser.raise_samples(&samples, now_ms).await;
        metrics.add(
            "DurationMs",
            started.elapsed().as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        );
        match raised {
            Ok(r) => {
                metrics
                    .count("AlertsSent", r.sent)
                    .count("AlertsSuppressed", r.suppressed)
                    .count("AlertsAlreadySent", r.already_sent)
                    .count("VehicleNotifyFailures", r.vehicle_notify_failures)
                    .emit(self.metrics);
                Ok(AlertsResponse::Raised {
                    sent: r.sent,
                    suppressed: r.suppressed,
                    already_sent: r.already_sent,
                })
            }
            Err(e) => {
                metrics.count("AlertFailures", 1).emit(self.metrics);
                Err(AlertError(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use canopy::adapters::memory::{MemoryAlertLog, MemoryDevicePublisher, MemoryNotifier};

    use super::*;

    #[tokio::test]
    async fn the_sample_events_are_answered() {
        let vars = std::collections::BTreeMap::from([
            ("ALERTS_TABLE".to_string(), "t".to_string()),
            ("ALERT_TOPIC_ARN".to_string(), "arn".to_string()),
        ]);
        let config = Config::from_vars(&vars).unwrap();
        let handler = AlertsHandler::new(Raiser {
            log: MemoryAlertLog::default(),
            notifier: MemoryNotifier::default(),
            device: MemoryDevicePublisher::default(),
            rules: config.rules,
            retention: config.retention,
        });
        let hot: Value = serde_json::from_str(include_str!("../../../events/telemetry-hot.json")).unwrap();
        assert!(matches!(
            handler.handle(hot).await.unwrap(),
            AlertsResponse::Raised { sent: 1, .. }
        ));
        // Three hot samples of one v2 message: one alert, from the first.
        let hot_v2: Value = serde_json::from_str(include_str!("../../../events/telemetry-v2-hot.json")).unwrap();
        assert!(matches!(
            handler.handle(hot_v2).await.unwrap(),
            AlertsResponse::Raised {
                sent: 1,
                suppressed: 0,
                ..
            }
        ));
        let sent = handler.raiser.notifier.sent();
        assert!(sent.last().unwrap().body.contains("61.20 °C"), "{sent:?}");
        let cool: Value = serde_json::from_str(include_str!("../../../events/telemetry.json")).unwrap();
        assert!(matches!(
            handler.handle(cool).await.unwrap(),
            AlertsResponse::Raised { sent: 0, .. }
        ));
        assert!(matches!(
            handler.handle(serde_json::json!({"v": 1})).await.unwrap(),
            AlertsResponse::Rejected { .. }
        ));
    }

    #[test]
    fn an_unknown_measure_in_the_rules_names_the_variable_and_the_measure() {
        let vars = std::collections::BTreeMap::from([
            ("ALERTS_TABLE".to_string(), "t".to_string()),
            ("ALERT_TOPIC_ARN".to_string(), "arn".to_string()),
            (
                "ALERT_RULES".to_string(),
                r#"[{"name":"x","measure":"oil","comparison":">","threshold":1,"severity":"info","cooldown":1}]"#
                    .to_string(),
            ),
        ]);
        let err = Config::from_vars(&vars).unwrap_err().to_string();
        assert!(
            err.contains("ALERT_RULES") && err.contains("unknown measure \"oil\""),
            "{err}"
        );
    }
}
