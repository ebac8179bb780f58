//! The `alerts` Lambda: the IoT rule invokes it with telemetry that trips a
//! rule; it raises the alerts ([`canopy::alerts::raise`]): SNS, the alert
//! log, and the vehicle's alert topic, once per vehicle and rule per cooldown.

use std::time::{Duration, Instant};

use canopy::alerts::{self, Rule};
use canopy::env::{self, EnvError};
use canopy::metrics::{Metrics, Unit};
use canopy::tables::{AlertTables, DevicePublisher, Notifier};
use canopy::telemetry::Telemetry;
use serde_json::{Value, json};
use tracing::warn;

#[derive(Debug, Clone)]
pub struct Config {
    /// `ALERTS_TABLE`: the alert log and cooldowns.
    pub table: String,
    /// `ALERT_TOPIC_ARN`: the SNS topic people subscribe to.
    pub topic_arn: String,
    pub rules: Vec<Rule>,
    /// `ALERT_RETENTION_DAYS`: how long the log keeps an alert.
    pub retention: Duration,
}

impl Config {
    /// Rules from `ALERT_RULES` (a JSON array of rules) or, when unset, the
    /// platform's three rules with thresholds from `OVER_TEMPERATURE_C`,
    /// `LOW_SOC_PCT`, `CELL_IMBALANCE_V` and `ALERT_COOLDOWN_SECONDS`.
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(&env::Process)
    }

    /// From `vars`: the local stack passes the template's environment.
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        let rules = match vars.var("ALERT_RULES").filter(|s| !s.trim().is_empty()) {
            Some(json) => serde_json::from_str::<Vec<Rule>>(&json).map_err(|e| EnvError {
                name: "ALERT_RULES".into(),
                problem: format!("not a JSON array of rules: {e}"),
            })?,
            None => alerts::default_rules(
                env::parse_or(vars, "OVER_TEMPERATURE_C", 60.0)?,
                env::parse_or(vars, "LOW_SOC_PCT", 10.0)?,
                env::parse_or(vars, "CELL_IMBALANCE_V", 0.15)?,
                Duration::from_secs(env::parse_or(vars, "ALERT_COOLDOWN_SECONDS", 600)?),
            ),
        };
        if let Some(rule) = rules.iter().find(|r| !alerts::is_measure(&r.measure)) {
            return Err(EnvError {
                name: "ALERT_RULES".into(),
                problem: format!("rule {} names unknown measure {}", rule.name, rule.measure),
            });
        }
        let days: u64 = env::parse_or(vars, "ALERT_RETENTION_DAYS", 90)?;
        Ok(Self {
            table: env::required(vars, "ALERTS_TABLE")?,
            topic_arn: env::required(vars, "ALERT_TOPIC_ARN")?,
            rules,
            retention: Duration::from_secs(days * 24 * 3600),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AlertError(String);

pub struct Alerts<A, N, D> {
    tables: A,
    notifier: N,
    device: D,
    rules: Vec<Rule>,
    retention: Duration,
}

impl<A: AlertTables, N: Notifier, D: DevicePublisher> Alerts<A, N, D> {
    pub fn new(tables: A, notifier: N, device: D, rules: Vec<Rule>, retention: Duration) -> Self {
        Self {
            tables,
            notifier,
            device,
            rules,
            retention,
        }
    }

    /// Handles one telemetry message as the IoT rule delivers it. An invalid
    /// message is answered, not failed (a retry would not make it valid); a
    /// failure to send fails the invocation, so Lambda retries it.
    pub async fn handle(&self, event: Value) -> Result<Value, AlertError> {
        let started = Instant::now();
        let mut metrics = Metrics::new("alerts");
        let telemetry = match Telemetry::from_json(&event) {
            Ok(t) => t,
            Err(rejection) => {
                warn!(reason = %rejection, "message rejected");
                metrics.count("MessagesRejected", 1).emit();
                return Ok(json!({ "rejected": rejection.reason }));
            }
        };
        let raised = alerts::raise(
            &self.rules,
            &telemetry,
            &self.tables,
            &self.notifier,
            &self.device,
            self.retention,
        )
        .await;
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
                    .emit();
                Ok(json!({ "sent": r.sent, "suppressed": r.suppressed, "already_sent": r.already_sent }))
            }
            Err(e) => {
                metrics.count("AlertFailures", 1).emit();
                Err(AlertError(e.to_string()))
            }
        }
    }
}
