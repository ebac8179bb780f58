//! Alert rules as data, and the alert a rule raises.
//!
//! A rule compares one [`Measure`] of a telemetry message with a threshold;
//! a device kind's rules ([`crate::domain::kind`]) compare a declared field
//! or watch for silence ([`evaluate_device`], [`silence`]). Either way the
//! alert is an [`Alert`], through the same cooldowns, log and topic.
//! Raising the alert (cooldowns, SNS, the alert log, the vehicle) is the
//! alerts function's work; deciding whether a message trips a rule is here so
//! that every part of the platform decides it the same way.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::device::{DeviceRecord, stream};
use crate::domain::device_id::DeviceId;
use crate::domain::kind::{self, Condition, Kind};
use crate::domain::measure::Measure;
use crate::domain::telemetry::Telemetry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// The vehicle kind's rules as `kinds/vehicle.toml` declares them
/// (over-temperature, low state of charge, cell imbalance), each on its measure.
pub fn vehicle_rules() -> Vec<Rule> {
    let Ok(rules) = vehicle_rules_with(|_| Ok::<_, std::convert::Infallible>(None));
    rules
}

/// The vehicle rules with a deployment's thresholds: `threshold(variable)`
/// gives the value of a rule's declared `threshold_variable`, `None` where
/// it is not set (the rule keeps its declared threshold).
pub fn vehicle_rules_with<E>(mut threshold: impl FnMut(&str) -> Result<Option<f64>, E>) -> Result<Vec<Rule>, E> {
    let mut rules = Vec::new();
    for r in &kind::vehicle().rules {
        let Condition::Threshold {
            field,
            comparison,
            threshold: declared,
        } = &r.condition
        else {
            continue;
        };
        // Every field of the vehicle kind is a measure (a test holds it).
        let Some(measure) = Measure::from_name(field) else {
            continue;
        };
        let set = match &r.threshold_variable {
            Some(variable) => threshold(variable)?,
            None => None,
        };
        rules.push(Rule {
            name: r.name.clone(),
            measure,
            comparison: *comparison,
            threshold: set.unwrap_or(*declared),
            severity: r.severity,
            cooldown: r.cooldown,
        });
    }
    Ok(rules)
}

/// The vehicle rules with the thresholds and the one cooldown a deployment
/// sets (the template's OverTemperatureC, LowSocPct, CellImbalanceV and
/// AlertCooldownSeconds).
pub fn default_rules(over_temp_c: f64, low_soc_pct: f64, imbalance_v: f64, cooldown: Duration) -> Vec<Rule> {
    let mut rules = vehicle_rules();
    for rule in &mut rules {
        rule.cooldown = cooldown;
        rule.threshold = match rule.measure {
            Measure::CellTempMaxC => over_temp_c,
            Measure::SocPct => low_soc_pct,
            Measure::CellVoltageSpreadV => imbalance_v,
            _ => rule.threshold,
        };
    }
    rules
}

/// What an alert's rule compared: a vehicle's measure or a device's field.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantity {
    Measure(Measure),
    Field {
        name: String,
        unit: String,
        description: String,
    },
}

impl Quantity {
    pub fn name(&self) -> &str {
        match self {
            Self::Measure(m) => m.name(),
            Self::Field { name, .. } => name,
        }
    }

    pub fn unit(&self) -> &str {
        match self {
            Self::Measure(m) => m.unit(),
            Self::Field { unit, .. } => unit,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Self::Measure(m) => m.description(),
            Self::Field { description, .. } => description,
        }
    }
}

/// What a silence rule's alert compares: seconds since the device was heard.
pub const SILENT_FOR_S: &str = "silent_for_s";

/// An alert that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The vehicle, or the device when `kind` names its kind.
    pub vehicle_id: DeviceId,
    /// The device's kind; `None` for a vehicle.
    pub kind: Option<String>,
    pub rule: String,
    pub severity: Severity,
    /// What the rule compares, with its value and threshold.
    pub measure: Quantity,
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
        format!("{}#{}#{}", self.stream(), self.seq, self.rule)
    }

    /// Whose log and cooldowns hold it: the vehicle id, or `<kind>/<id>`.
    pub fn stream(&self) -> String {
        match &self.kind {
            None => self.vehicle_id.to_string(),
            Some(kind) => stream(kind, self.vehicle_id.as_str()),
        }
    }

    pub fn unit(&self) -> &str {
        self.measure.unit()
    }

    /// The topic the vehicle or device hears its alerts on.
    pub fn device_topic(&self) -> String {
        match &self.kind {
            None => crate::domain::topic::alert_topic(&self.vehicle_id),
            Some(kind) => format!(
                "cmd/{}{kind}/{}/alert",
                crate::domain::kind::TOPIC_PREFIX,
                self.vehicle_id
            ),
        }
    }
}

/// The alert as JSON (the API, SNS bodies, the vehicle's alert topic): the
/// measure's unit is spelled out for readers.
impl Serialize for Alert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AlertJson {
            vehicle_id: self.kind.is_none().then_some(&self.vehicle_id),
            kind: self.kind.as_deref(),
            device_id: self.kind.is_some().then_some(self.vehicle_id.as_str()),
            rule: &self.rule,
            severity: self.severity,
            measure: self.measure.name(),
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

/// An alert as the API, the live stream and the alert notifications send
/// it: a vehicle's names its `vehicle_id`; a declared device's its `kind`
/// and `device_id`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct AlertJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = false))]
    vehicle_id: Option<&'a DeviceId>,
    /// The device's kind (`station`…); absent for a vehicle.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = false))]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = false))]
    device_id: Option<&'a str>,
    rule: &'a str,
    severity: Severity,
    /// What the rule compares (a telemetry field, or `silent_for_s`).
    measure: &'a str,
    value: f64,
    comparison: Comparison,
    threshold: f64,
    unit: &'a str,
    /// The time of the message that tripped the rule (RFC 3339).
    ts: &'a str,
    ts_us: i64,
    seq: u64,
}

/// An alert's schema is that of what it serializes to.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Alert {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <AlertJson as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Alert {
    fn name() -> std::borrow::Cow<'static, str> {
        "Alert".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <AlertJson as utoipa::ToSchema>::schemas(schemas);
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
                kind: None,
                rule: rule.name.clone(),
                severity: rule.severity,
                measure: Quantity::Measure(rule.measure),
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

/// The alerts status `r` trips among `kind`'s threshold rules. A list
/// field trips when any element does; the alert carries the element
/// furthest past the threshold.
pub fn evaluate_device(kind: &Kind, r: &DeviceRecord) -> Vec<Alert> {
    kind.rules
        .iter()
        .filter_map(|rule| {
            let Condition::Threshold {
                field,
                comparison,
                threshold,
            } = &rule.condition
            else {
                return None;
            };
            let worst = r
                .values
                .get(field)?
                .values()
                .filter(|v| comparison.trips(*v, *threshold))
                .reduce(|a, b| match comparison {
                    Comparison::Above => a.max(b),
                    Comparison::Below => a.min(b),
                })?;
            let declared = kind.field(field);
            Some(device_alert(
                kind,
                r,
                rule,
                Quantity::Field {
                    name: field.clone(),
                    unit: declared.map(|f| f.unit.clone()).unwrap_or_default(),
                    description: declared.map(|f| f.description.clone()).unwrap_or_default(),
                },
                (worst, *comparison, *threshold),
            ))
        })
        .collect()
}

/// The alerts of `kind`'s silence rules for a device whose last status
/// `last` the cloud heard at `heard_at_ms`, at server time `now_ms`. The alert is the silence's, named after the last
/// status heard (its `ts` and `seq`), so every check during one silence
/// raises the same alert and the cooldown holds back the repeats.
pub fn silence(kind: &Kind, last: &DeviceRecord, heard_at_ms: i64, now_ms: i64) -> Vec<Alert> {
    let silent_ms = now_ms.saturating_sub(heard_at_ms);
    kind.silent_rules()
        .filter(|(_, after)| i128::from(silent_ms) > after.as_millis() as i128)
        .map(|(rule, after)| {
            device_alert(
                kind,
                last,
                rule,
                Quantity::Field {
                    name: SILENT_FOR_S.into(),
                    unit: "s".into(),
                    description: "silence".into(),
                },
                ((silent_ms / 1000) as f64, Comparison::Above, after.as_secs() as f64),
            )
        })
        .collect()
}

fn device_alert(
    kind: &Kind,
    r: &DeviceRecord,
    rule: &crate::domain::kind::KindRule,
    measure: Quantity,
    (value, comparison, threshold): (f64, Comparison, f64),
) -> Alert {
    Alert {
        vehicle_id: r.id.clone(),
        kind: Some(kind.name.clone()),
        rule: rule.name.clone(),
        severity: rule.severity,
        measure,
        value,
        comparison,
        threshold,
        ts: r.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ts_us: r.ts_us(),
        seq: r.seq,
    }
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
