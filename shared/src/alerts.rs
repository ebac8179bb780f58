//! Alert rules as data, and raising alerts without alert storms.
//!
//! A rule compares one measure of a telemetry message (or a derived one, like
//! the cell-voltage spread) with a threshold. A rule that trips sends one
//! alert per vehicle per cooldown window: the window is claimed by a
//! conditional write, so concurrent invocations and retries agree on who
//! sends. Each alert goes to people (SNS), to the alert log (newest first,
//! with a TTL) and to the vehicle (`cmd/canopy/<id>/alert`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use crate::tables::{Alert, AlertTables, DevicePublisher, Notifier};
use crate::telemetry::{Telemetry, alert_topic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<")]
    Below,
}

impl Comparison {
    fn trips(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::Below => value < threshold,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Above => ">",
            Self::Below => "<",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// A rule: `measure comparison threshold`, with a severity and a cooldown.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rule {
    pub name: String,
    /// A telemetry field (`cell_temp_max_c`) or `cell_voltage_spread_v`.
    pub measure: String,
    pub comparison: Comparison,
    pub threshold: f64,
    pub severity: Severity,
    #[serde(with = "seconds")]
    pub cooldown: Duration,
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// What a measure means, for people.
fn describe(measure: &str) -> (&'static str, &'static str) {
    match measure {
        "cell_temp_max_c" => ("hottest cell temperature", "°C"),
        "cell_temp_min_c" => ("coldest cell temperature", "°C"),
        "soc_pct" => ("state of charge", "%"),
        "cell_voltage_spread_v" => ("cell voltage spread (max - min)", "V"),
        "cell_voltage_min_v" => ("lowest cell voltage", "V"),
        "cell_voltage_max_v" => ("highest cell voltage", "V"),
        "pack_voltage_v" => ("pack voltage", "V"),
        "pack_current_a" => ("pack current", "A"),
        "speed_kph" => ("speed", "km/h"),
        _ => ("value", ""),
    }
}

/// A measure of a message, derived ones included.
pub fn measure(t: &Telemetry, name: &str) -> Option<f64> {
    match name {
        // The edge's instantaneous spread when it sends one; else the interval's extremes.
        "cell_voltage_spread_v" => Some(
            t.extra
                .get(crate::telemetry::CELL_VOLTAGE_SPREAD)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(t.cell_voltage_max_v - t.cell_voltage_min_v),
        ),
        other => t.measure(other),
    }
}

/// The measures a rule may name.
pub fn is_measure(name: &str) -> bool {
    name == "cell_voltage_spread_v" || crate::telemetry::MEASURES.contains(&name)
}

/// The platform's rules: over-temperature, low state of charge, cell imbalance.
pub fn default_rules(over_temp_c: f64, low_soc_pct: f64, imbalance_v: f64, cooldown: Duration) -> Vec<Rule> {
    vec![
        Rule {
            name: "over-temperature".into(),
            measure: "cell_temp_max_c".into(),
            comparison: Comparison::Above,
            threshold: over_temp_c,
            severity: Severity::Critical,
            cooldown,
        },
        Rule {
            name: "low-state-of-charge".into(),
            measure: "soc_pct".into(),
            comparison: Comparison::Below,
            threshold: low_soc_pct,
            severity: Severity::Warning,
            cooldown,
        },
        Rule {
            name: "cell-imbalance".into(),
            measure: "cell_voltage_spread_v".into(),
            comparison: Comparison::Above,
            threshold: imbalance_v,
            severity: Severity::Warning,
            cooldown,
        },
    ]
}

/// The alerts `t` trips.
pub fn evaluate(rules: &[Rule], t: &Telemetry) -> Vec<Alert> {
    rules
        .iter()
        .filter_map(|rule| {
            let value = measure(t, &rule.measure)?;
            rule.comparison.trips(value, rule.threshold).then(|| Alert {
                vehicle_id: t.vehicle_id.clone(),
                rule: rule.name.clone(),
                severity: rule.severity.as_str().to_string(),
                measure: rule.measure.clone(),
                value,
                comparison: rule.comparison.symbol().to_string(),
                threshold: rule.threshold,
                unit: describe(&rule.measure).1.to_string(),
                ts: t.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ts_us: t.ts_us(),
                seq: t.seq,
            })
        })
        .collect()
}

/// The SNS subject (at most 100 characters) and body of an alert.
pub fn message(alert: &Alert) -> (String, String) {
    let (what, unit) = describe(&alert.measure);
    let words = if alert.comparison == ">" {
        Comparison::Above.words()
    } else {
        Comparison::Below.words()
    };
    let subject = format!(
        "[{}] {}: {} {:.1} {} {} {} {}",
        alert.severity.to_uppercase(),
        alert.vehicle_id,
        what,
        alert.value,
        unit,
        words,
        alert.threshold,
        unit
    );
    let subject: String = subject.chars().take(100).collect();
    let body = format!(
        "Vehicle {vehicle} reported a {what} of {value:.2} {unit} at {ts}, {words} the {rule} threshold of {threshold} {unit}.\n\
         Severity: {severity}. Further alerts of this rule for this vehicle are held back for the rule's cooldown.\n\n{json}\n",
        vehicle = alert.vehicle_id,
        value = alert.value,
        ts = alert.ts,
        rule = alert.rule,
        threshold = alert.threshold,
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert {alert}: {message}")]
pub struct RaiseError {
    pub alert: String,
    pub message: String,
}

/// Raises the alerts `t` trips.
pub async fn raise<A: AlertTables, N: Notifier, D: DevicePublisher>(
    rules: &[Rule],
    t: &Telemetry,
    tables: &A,
    notifier: &N,
    device: &D,
    retention: Duration,
) -> Result<Raised, RaiseError> {
    let mut raised = Raised::default();
    for alert in evaluate(rules, t) {
        let fail = |e: &dyn std::fmt::Display| RaiseError {
            alert: alert.id(),
            message: e.to_string(),
        };
        let cooldown = rules
            .iter()
            .find(|r| r.name == alert.rule)
            .map_or(Duration::ZERO, |r| r.cooldown);
        let until_us = alert.ts_us + i64::try_from(cooldown.as_micros()).unwrap_or(i64::MAX);
        if !tables.claim_cooldown(&alert, until_us).await.map_err(|e| fail(&e))? {
            raised.suppressed += 1;
            info!(alert = %alert.id(), "held back: within the cooldown of an earlier alert");
            continue;
        }
        if tables.recorded(&alert).await.map_err(|e| fail(&e))? {
            raised.already_sent += 1;
            continue;
        }
        let (subject, body) = message(&alert);
        let attributes = [
            ("vehicle_id", alert.vehicle_id.as_str()),
            ("rule", alert.rule.as_str()),
            ("severity", alert.severity.as_str()),
        ];
        notifier
            .notify(&subject, &body, &attributes)
            .await
            .map_err(|e| fail(&e))?;
        // Telling the vehicle is best effort: failing here would send the email again.
        let payload = json!({"alert": &alert, "message": subject}).to_string().into_bytes();
        if let Err(e) = device.publish(&alert_topic(&alert.vehicle_id), payload).await {
            raised.vehicle_notify_failures += 1;
            warn!(alert = %alert.id(), error = %e, "alert not delivered to the vehicle");
        }
        let expires_at_s = alert.ts_us / 1_000_000 + i64::try_from(retention.as_secs()).unwrap_or(i64::MAX / 2);
        tables.record(&alert, expires_at_s).await.map_err(|e| fail(&e))?;
        raised.sent += 1;
        info!(alert = %alert.id(), %subject, "alert sent");
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn telemetry(temp_max: f64, soc: f64, vmin: f64, vmax: f64) -> Telemetry {
        Telemetry::from_json(
            &json!({"v":1,"vehicle_id":"sim-003","ts":"2023-11-14T22:13:20Z","seq":9,
            "soc_pct":soc,"pack_voltage_v":380,"pack_current_a":10,"cell_voltage_min_v":vmin,"cell_voltage_max_v":vmax,
            "cell_temp_min_c":20,"cell_temp_max_c":temp_max,"speed_kph":50}),
        )
        .unwrap()
    }

    #[test]
    fn each_default_rule_trips_on_its_measure() {
        let rules = default_rules(60.0, 10.0, 0.1, Duration::from_secs(600));
        assert!(evaluate(&rules, &telemetry(59.9, 50.0, 3.9, 3.95)).is_empty());
        let names = |t| evaluate(&rules, &t).into_iter().map(|a| a.rule).collect::<Vec<_>>();
        assert_eq!(names(telemetry(60.5, 50.0, 3.9, 3.95)), ["over-temperature"]);
        assert_eq!(names(telemetry(30.0, 8.0, 3.9, 3.95)), ["low-state-of-charge"]);
        assert_eq!(names(telemetry(30.0, 50.0, 3.7, 3.95)), ["cell-imbalance"]);
    }

    #[test]
    fn messages_read_well_and_carry_the_json() {
        let rules = default_rules(60.0, 10.0, 0.1, Duration::from_secs(600));
        let alert = evaluate(&rules, &telemetry(63.5, 50.0, 3.9, 3.95)).remove(0);
        let (subject, body) = message(&alert);
        assert_eq!(
            subject,
            "[CRITICAL] sim-003: hottest cell temperature 63.5 °C above 60 °C"
        );
        assert!(body.starts_with(
            "Vehicle sim-003 reported a hottest cell temperature of 63.50 °C at 2023-11-14T22:13:20.000Z"
        ));
        assert!(body.contains("\"rule\": \"over-temperature\""));
        assert_eq!(alert.id(), "sim-003#9#over-temperature");
    }

    #[test]
    fn rules_parse_from_json() {
        let rules: Vec<Rule> = serde_json::from_str(
            r#"[{"name":"hot","measure":"cell_temp_max_c","comparison":">","threshold":55,"severity":"critical","cooldown":300}]"#,
        )
        .unwrap();
        assert_eq!(rules[0].cooldown, Duration::from_secs(300));
        assert_eq!(rules[0].comparison, Comparison::Above);
    }
}
