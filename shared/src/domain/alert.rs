//! Alert rules as data, and the alert a rule raises.
//!
//! A rule compares one [`Measure`] of a telemetry message with a threshold.
//! Raising the alert (cooldowns, SNS, the alert log, the vehicle) is the
//! alerts function's work; deciding whether a message trips a rule is here so
//! that every part of the platform decides it the same way.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::measure::Measure;
use crate::domain::vehicle::VehicleId;
use crate::format::telemetry::Telemetry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<")]
    Below,
}

impl Comparison {
    pub fn trips(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::Below => value < threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Above => ">",
            Self::Below => "<",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }

    pub fn from_symbol(symbol: &str) -> Option<Self> {
        [Self::Above, Self::Below].into_iter().find(|c| c.symbol() == symbol)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Info, Self::Warning, Self::Critical]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule: `measure comparison threshold`, with a severity and a cooldown.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rule {
    pub name: String,
    pub measure: Measure,
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

/// The platform's rules: over-temperature, low state of charge, cell imbalance.
pub fn default_rules(over_temp_c: f64, low_soc_pct: f64, imbalance_v: f64, cooldown: Duration) -> Vec<Rule> {
    vec![
        Rule {
            name: "over-temperature".into(),
            measure: Measure::CellTempMaxC,
            comparison: Comparison::Above,
            threshold: over_temp_c,
            severity: Severity::Critical,
            cooldown,
        },
        Rule {
            name: "low-state-of-charge".into(),
            measure: Measure::SocPct,
            comparison: Comparison::Below,
            threshold: low_soc_pct,
            severity: Severity::Warning,
            cooldown,
        },
        Rule {
            name: "cell-imbalance".into(),
            measure: Measure::CellVoltageSpreadV,
            comparison: Comparison::Above,
            threshold: imbalance_v,
            severity: Severity::Warning,
            cooldown,
        },
    ]
}

/// An alert that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub vehicle_id: VehicleId,
    pub rule: String,
    pub severity: Severity,
    /// What the rule compares, with its value and threshold.
    pub measure: Measure,
    pub value: f64,
    pub comparison: Comparison,
    pub threshold: f64,
    /// The telemetry message that tripped the rule.
    pub ts: String,
    pub ts_us: i64,
    pub seq: u64,
}

impl Alert {
    /// The alert's identity: retries of the same message raise the same alert.
    pub fn id(&self) -> String {
        format!("{}#{}#{}", self.vehicle_id, self.seq, self.rule)
    }

    pub fn unit(&self) -> &'static str {
        self.measure.unit()
    }
}

/// The alert as JSON (the API, SNS bodies, the vehicle's alert topic): the
/// measure's unit is spelled out for readers.
impl Serialize for Alert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            vehicle_id: &'a VehicleId,
            rule: &'a str,
            severity: Severity,
            measure: Measure,
            value: f64,
            comparison: Comparison,
            threshold: f64,
            unit: &'static str,
            ts: &'a str,
            ts_us: i64,
            seq: u64,
        }
        Json {
            vehicle_id: &self.vehicle_id,
            rule: &self.rule,
            severity: self.severity,
            measure: self.measure,
            value: self.value,
            comparison: self.comparison,
            threshold: self.threshold,
            unit: self.unit(),
            ts: &self.ts,
            ts_us: self.ts_us,
            seq: self.seq,
        }
        .serialize(s)
    }
}

/// The alerts `t` trips.
pub fn evaluate(rules: &[Rule], t: &Telemetry) -> Vec<Alert> {
    rules
        .iter()
        .filter_map(|rule| {
            let value = t.value(rule.measure);
            rule.comparison.trips(value, rule.threshold).then(|| Alert {
                vehicle_id: t.vehicle_id.clone(),
                rule: rule.name.clone(),
                severity: rule.severity,
                measure: rule.measure,
                value,
                comparison: rule.comparison,
                threshold: rule.threshold,
                ts: t.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ts_us: t.ts_us(),
                seq: t.seq,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn telemetry(temp_max: f64, soc: f64, vmin: f64, vmax: f64) -> Telemetry {
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
    fn the_edges_spread_wins_over_the_intervals_extremes() {
        let rules = default_rules(60.0, 10.0, 0.1, Duration::from_secs(600));
        let mut t = telemetry(30.0, 50.0, 3.7, 3.95);
        t.cell_voltage_spread_v = Some(0.05);
        assert!(evaluate(&rules, &t).is_empty());
    }

    #[test]
    fn alerts_serialize_with_their_unit_and_names() {
        let rules = default_rules(60.0, 10.0, 0.1, Duration::from_secs(600));
        let alert = evaluate(&rules, &telemetry(63.5, 50.0, 3.9, 3.95)).remove(0);
        let v = serde_json::to_value(&alert).unwrap();
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["comparison"], ">");
        assert_eq!(v["measure"], "cell_temp_max_c");
        assert_eq!(v["unit"], "°C");
        assert_eq!(alert.id(), "sim-003#9#over-temperature");
    }

    #[test]
    fn rules_parse_from_json_and_name_unknown_measures() {
        let rules: Vec<Rule> = serde_json::from_str(
            r#"[{"name":"hot","measure":"cell_temp_max_c","comparison":">","threshold":55,"severity":"critical","cooldown":300}]"#,
        )
        .unwrap();
        assert_eq!(rules[0].cooldown, Duration::from_secs(300));
        assert_eq!(rules[0].comparison, Comparison::Above);
        assert_eq!(rules[0].measure, Measure::CellTempMaxC);
        let err = serde_json::from_str::<Vec<Rule>>(
            r#"[{"name":"hot","measure":"temp","comparison":">","threshold":55,"severity":"critical","cooldown":300}]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown measure \"temp\""), "{err}");
    }
}
