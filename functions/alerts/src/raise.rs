//! Raising the alerts of one message without alert storms, knowing nothing
//! of Lambda. A rule that trips sends one alert per vehicle per cooldown
//! window: the window is claimed by a conditional write, so concurrent
//! invocations and retries agree on who sends. Each alert goes to people
//! (the notifier), to the alert log (newest first, with a TTL) and the
//! fleet's feeds it belongs to, and to the
//! vehicle (`cmd/canopy/<id>/alert`).

use std::time::Duration;

use canopy::domain::access::VehicleGroups;
use canopy::domain::alert::{Alert, Rule, SILENT_FOR_S, evaluate, evaluate_device, silence};
use canopy::domain::device::DeviceRecord;
use canopy::domain::kind::Kind;
use canopy::domain::telemetry::Telemetry;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::device_state::DeviceState;
use canopy::ports::messaging::{DevicePublisher, Notifier};
use serde_json::json;
use tracing::{info, warn};

/// The notification's subject (at most 100 characters, SNS's limit) and body.
pub fn message(alert: &Alert) -> (String, String) {
    let (what, unit, words) = (alert.measure.description(), alert.unit(), alert.comparison.words());
    let subject = format!(
        "[{}] {}: {} {:.1} {} {} {} {}",
        alert.severity.as_str().to_uppercase(),
        alert.vehicle_id,
        what,
        alert.value,
        unit,
        words,
        alert.threshold,
        unit
    );
    let subject: String = subject.chars().take(100).collect();
    let (who, whom) = match &alert.kind {
        None => (format!("Vehicle {}", alert.vehicle_id), "vehicle".to_string()),
        Some(kind) => (format!("The {kind} {}", alert.vehicle_id), kind.clone()),
    };
    let what_happened = if alert.measure.name() == SILENT_FOR_S {
        format!(
            "{who} has not been heard from for {value:.0} s, longer than the {rule} rule's {threshold} s; its last status was at {ts}.",
            value = alert.value,
            rule = alert.rule,
            threshold = alert.threshold,
            ts = alert.ts,
        )
    } else {
        format!(
            "{who} reported a {what} of {value:.2} {unit} at {ts}, {words} the {rule} threshold of {threshold} {unit}.",
            value = alert.value,
            ts = alert.ts,
            rule = alert.rule,
            threshold = alert.threshold,
        )
    };
    let body = format!(
        "{what_happened}\n\
         Severity: {severity}. Further alerts of this rule for this {whom} are held back for the rule's cooldown.\n\n{json}\n",
        severity = alert.severity,
        json = serde_json::to_string_pretty(alert).unwrap_or_default(),
    );
    (subject, body)
}

/// What raising the alerts of one message did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raised {
    pub sent: u64,
    /// Held back: the vehicle's window for the rule was taken.
    pub suppressed: u64,
    /// Sent by an earlier try of the same message.
    pub already_sent: u64,
    pub vehicle_notify_failures: u64,
}

impl Raised {
    /// Counts what `other` did too.
    pub fn add(&mut self, other: &Raised) {
        self.sent += other.sent;
        self.suppressed += other.suppressed;
        self.already_sent += other.already_sent;
        self.vehicle_notify_failures += other.vehicle_notify_failures;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert {alert}: {message}")]
pub struct RaiseError {
    pub alert: String,
    pub message: String,
}

/// The alerts service over its three ports.
pub struct Raiser<A, N, D> {
    pub log: A,
    pub notifier: N,
    pub device: D,
    pub rules: Vec<Rule>,
    /// How long the log keeps an alert.
    pub retention: Duration,
    /// Which fleet feeds a vehicle's alerts go to (the fleet's, and each of its groups').
    pub groups: VehicleGroups,
}

impl<A: AlertLog, N: Notifier, D: DevicePublisher> Raiser<A, N, D> {
    /// Raises the alerts `t` trips; `now_ms` is the server's clock, used when
    /// the message does not say when IoT Core received it. Cooldowns and the
    /// log's expiry run on the server's time, never the vehicle's: a clock
    /// far off can neither hold back a later alert nor keep a row forever.
    ///
    /// A failure before the notification is sent fails the whole message, so
    /// its retry sends it; after, only the log write can fail, and a retry
    /// finds the cooldown its own and sends again only if the log does not
    /// hold the alert.
    pub async fn raise(&self, t: &Telemetry, now_ms: i64) -> Result<Raised, RaiseError> {
        self.raise_samples(std::slice::from_ref(t), now_ms).await
    }

    /// Raises the alerts of a message's samples (in seq order): for each
    /// rule, the first sample that trips it; a later one would only meet the
    /// cooldown the first claims.
    pub async fn raise_samples(&self, samples: &[Telemetry], now_ms: i64) -> Result<Raised, RaiseError> {
        let raised = Raised::default();
        let Some(first) = samples.first() else {
            return Ok(raised);
        };
        let server_us = first.server_time_ms(now_ms).saturating_mul(1000);
        let mut alerts: Vec<Alert> = Vec::new();
        for t in samples {
            for alert in evaluate(&self.rules, t) {
                if !alerts.iter().any(|a| a.rule == alert.rule) {
                    alerts.push(alert);
                }
            }
        }
        let cooldown = |alert: &Alert| {
            self.rules
                .iter()
                .find(|r| r.name == alert.rule)
                .map_or(Duration::ZERO, |r| r.cooldown)
        };
        self.raise_all(&alerts, cooldown, server_us, raised).await
    }

    /// Raises the alerts a device's status trips among its kind's rules.
    pub async fn raise_device(&self, kind: &Kind, r: &DeviceRecord, now_ms: i64) -> Result<Raised, RaiseError> {
        let server_us = r.server_time_ms(now_ms).saturating_mul(1000);
        self.raise_all(
            &evaluate_device(kind, r),
            |a| kind_cooldown(kind, a),
            server_us,
            Raised::default(),
        )
        .await
    }

    /// Raises the silence alerts of a kind's devices, as of server time `now_ms`.
    pub async fn raise_silent(&self, kind: &Kind, states: &[DeviceState], now_ms: i64) -> Result<Raised, RaiseError> {
        let alerts: Vec<Alert> = states
            .iter()
            .flat_map(|s| silence(kind, &s.record, s.heard_at_ms(), now_ms))
            .collect();
        let server_us = now_ms.saturating_mul(1000);
        self.raise_all(&alerts, |a| kind_cooldown(kind, a), server_us, Raised::default())
            .await
    }

    async fn raise_all(
        &self,
        alerts: &[Alert],
        cooldown: impl Fn(&Alert) -> Duration,
        server_us: i64,
        mut raised: Raised,
    ) -> Result<Raised, RaiseError> {
        for alert in alerts {
            self.raise_one(alert, cooldown(alert), server_us, &mut raised)
                .await
                .map_err(|message| RaiseError {
                    alert: alert.id(),
                    message,
                })?;
        }
        Ok(raised)
    }

    async fn raise_one(
        &self,
        alert: &Alert,
        cooldown: Duration,
        server_us: i64,
        raised: &mut Raised,
    ) -> Result<(), String> {
        let until_us = server_us.saturating_add(i64::try_from(cooldown.as_micros()).unwrap_or(i64::MAX));
        if !self
            .log
            .claim_cooldown(alert, server_us, until_us)
            .await
            .map_err(|e| e.to_string())?
        {
            raised.suppressed += 1;
            info!(alert = %alert.id(), "held back: within the cooldown of an earlier alert");
            return Ok(());
        }
        if self.log.recorded(alert).await.map_err(|e| e.to_string())? {
            raised.already_sent += 1;
            return Ok(());
        }
        let (subject, body) = message(alert);
        let attributes = [
            ("vehicle_id", alert.vehicle_id.as_str()),
            ("kind", alert.kind.as_deref().unwrap_or("vehicle")),
            ("rule", alert.rule.as_str()),
            ("severity", alert.severity.as_str()),
        ];
        self.notifier
            .notify(&subject, &body, &attributes)
            .await
            .map_err(|e| e.to_string())?;
        // Telling the vehicle is best effort: failing here would send the email again.
        let payload = json!({"alert": alert, "message": subject}).to_string().into_bytes();
        if let Err(e) = self.device.publish(&alert.device_topic(), payload).await {
            raised.vehicle_notify_failures += 1;
            warn!(alert = %alert.id(), error = %e, "alert not delivered to the vehicle");
        }
        let expires_at_s = server_us / 1_000_000 + i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX / 2);
        // The fleet's feed lists vehicles' alerts; a device's stay in its own log.
        let views = match alert.kind {
            None => self.groups.views_of(alert.vehicle_id.as_str()),
            Some(_) => Vec::new(),
        };
        self.log
            .record(alert, &views, expires_at_s)
            .await
            .map_err(|e| e.to_string())?;
        raised.sent += 1;
        info!(alert = %alert.id(), %subject, "alert sent");
        Ok(())
    }
}

/// A device alert's cooldown: its kind's rule's.
fn kind_cooldown(kind: &Kind, alert: &Alert) -> Duration {
    kind.rules
        .iter()
        .find(|r| r.name == alert.rule)
        .map_or(Duration::ZERO, |r| r.cooldown)
}

#[cfg(test)]
#[path = "raise_tests.rs"]
mod tests;
