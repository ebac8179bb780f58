//! Device kinds as data: what a kind of device publishes, how its latest
//! state is keyed and what it alerts on, declared in a TOML file under
//! `kinds/` rather than written as code.
//!
//! A declaration names the kind, the message field that identifies a
//! device, its fields (type, unit, whether required, the valid range, and
//! limits relative to other fields) and its alert rules (a field against a
//! threshold, or a device silent for too long). The telemetry function
//! validates, archives and keeps the latest state from it; the alerts
//! function raises its rules; the API and the console list its devices.
//! A third kind is a third file under `kinds/`: [`Kinds::builtin`] holds
//! every file there but the vehicle's.
//!
//! Vehicles are a kind too, [`vehicle`] (`kinds/vehicle.toml`), read by the
//! same parser and checks: their fields' units, ranges and limits are what
//! the telemetry reader (`format::telemetry`) validates a sample against, and their rules
//! are the alerts function's vehicle rules. What stays a vehicle's own is
//! the message around the fields (one sample or several, with their peak,
//! from the DBC-driven edge) and its typed handle on them,
//! [`crate::domain::measure::Measure`], which a test holds to the
//! declaration one for one. So [`Kinds`], the kinds the device lane and the
//! `/<path>` routes serve, does not hold it.

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::alert::{Comparison, Severity};

/// The device kinds' declarations this build knows, by file: every
/// `kinds/*.toml` but the vehicle's, listed by `shared/build.rs`.
const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/device_kinds.rs"));

/// The vehicle kind's declaration.
const VEHICLE: (&str, &str) = ("kinds/vehicle.toml", include_str!("../../../kinds/vehicle.toml"));

/// What the topic segment of a declared kind starts with:
/// `dt/canopy-<kind>/<id>/status`.
pub const TOPIC_PREFIX: &str = "canopy-";

/// A declaration that cannot be used, naming the file and the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {problem}")]
pub struct KindError {
    pub file: String,
    pub key: String,
    pub problem: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// A whole number.
    Integer,
    /// A finite number.
    Number,
    /// A list of finite numbers (one per slot, per cell…).
    Numbers,
}

/// One field of a kind's messages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub required: bool,
    /// The lowest valid value (of each element, for a list).
    pub min: Option<f64>,
    /// The highest valid value (of each element, for a list).
    pub max: Option<f64>,
    /// A required field of the same type this one may not exceed (charged
    /// batteries ≤ slots, the coldest cell ≤ the hottest).
    pub at_most: Option<String>,
    /// An integer field a list's length must equal (a value per slot).
    pub length: Option<String>,
}

fn yes() -> bool {
    true
}

/// What trips a kind's alert rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `field comparison threshold`; a list trips when any element does.
    Threshold {
        field: String,
        comparison: Comparison,
        threshold: f64,
    },
    /// The device has published nothing for this long.
    Silent { after: Duration },
}

/// An alert rule of a kind.
#[derive(Debug, Clone, PartialEq)]
pub struct KindRule {
    pub name: String,
    pub condition: Condition,
    pub severity: Severity,
    pub cooldown: Duration,
    /// The environment variable, set from a template parameter, by which a
    /// deployment replaces the declared threshold (none: it keeps it).
    pub threshold_variable: Option<String>,
}

/// A device kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Kind {
    /// Lowercase letters, digits and '-': the topic's `canopy-<name>`, the
    /// archive's `devices/<name>/`, the state table's partition.
    pub name: String,
    pub title: String,
    /// The API's collection of its devices: `/<path>`, `/<path>/{id}`…
    pub path: String,
    pub id_field: String,
    pub publish_interval: Duration,
    pub fields: Vec<Field>,
    pub rules: Vec<KindRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindFile {
    kind: String,
    title: String,
    path: String,
    id_field: String,
    publish_interval_s: u64,
    fields: Vec<Field>,
    #[serde(default)]
    alerts: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    field: Option<String>,
    comparison: Option<String>,
    threshold: Option<f64>,
    silent_for_s: Option<u64>,
    severity: String,
    cooldown_s: u64,
    threshold_variable: Option<String>,
}

/// The API's own top-level routes, which no device kind's `path` may take.
pub const RESERVED_PATHS: [&str; 10] = [
    "vehicles",
    "alerts",
    "signals",
    "fleet",
    "health",
    "docs",
    "assets",
    "openapi.json",
    "ingest",
    "live",
];

/// The fields every message has besides the declared ones.
pub const ENVELOPE: [&str; 2] = ["ts", "seq"];

impl Kind {
    /// Parses and checks the declaration in `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, KindError> {
        let error = |(key, problem): (String, String)| KindError {
            file: file.to_string(),
            key,
            problem,
        };
        let raw: KindFile = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| format!("line {}", text[..s.start].lines().count().max(1)))
                .unwrap_or_else(|| "document".into());
            error((key, e.message().to_string()))
        })?;
        check_head(&raw).map_err(error)?;
        check_fields(&raw).map_err(error)?;
        let rules = rules(&raw).map_err(error)?;
        Ok(Self {
            name: raw.kind,
            title: raw.title,
            path: raw.path,
            id_field: raw.id_field,
            publish_interval: Duration::from_secs(raw.publish_interval_s),
            fields: raw.fields,
            rules,
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The topic segment of this kind: `canopy-<name>`.
    pub fn topic_segment(&self) -> String {
        format!("{TOPIC_PREFIX}{}", self.name)
    }

    /// The topic a device of this kind publishes its status to.
    pub fn topic(&self, id: &str) -> String {
        format!("dt/{}/{id}/status", self.topic_segment())
    }

    /// The longest silence any of its rules allows, if one watches for it.
    pub fn silent_rules(&self) -> impl Iterator<Item = (&KindRule, Duration)> {
        self.rules.iter().filter_map(|r| match r.condition {
            Condition::Silent { after } => Some((r, after)),
            Condition::Threshold { .. } => None,
        })
    }
}

/// A problem with a kind's declaration: the key at fault and what is wrong.
type Problem = (String, String);

/// The kind's own keys: its names and its publish interval.
fn check_head(raw: &KindFile) -> Result<(), Problem> {
    if !is_kind_name(&raw.kind) {
        return Err((
            "kind".into(),
            format!("{:?}: use lowercase letters, digits and '-'", raw.kind),
        ));
    }
    if !is_kind_name(&raw.path) {
        return Err((
            "path".into(),
            format!("{:?}: use lowercase letters, digits and '-'", raw.path),
        ));
    }
    if !is_field_name(&raw.id_field) {
        return Err((
            "id_field".into(),
            format!("{:?}: use lowercase letters, digits and '_'", raw.id_field),
        ));
    }
    if raw.publish_interval_s == 0 {
        return Err(("publish_interval_s".into(), "must be at least 1".into()));
    }
    Ok(())
}

/// Each declared field, in order: its name (unique, and none of the
/// envelope's or the id field), its range, and the fields it refers to.
fn check_fields(raw: &KindFile) -> Result<(), Problem> {
    let mut names = BTreeSet::from([raw.id_field.as_str()]);
    names.extend(ENVELOPE);
    for (i, f) in raw.fields.iter().enumerate() {
        let key = |k: &str| format!("fields[{i}].{k}");
        if !is_field_name(&f.name) {
            return Err((
                key("name"),
                format!("{:?}: use lowercase letters, digits and '_'", f.name),
            ));
        }
        if !names.insert(f.name.as_str()) {
            return Err((
                key("name"),
                format!("{:?} is declared twice (or is ts, seq or the id field)", f.name),
            ));
        }
        check_field_bounds(&raw.fields, f).map_err(|(k, problem)| (key(k), problem))?;
    }
    Ok(())
}

/// A field's `min`, `max`, `at_most` and `length`: a range that is not
/// empty, and references to required fields of the right type.
fn check_field_bounds(fields: &[Field], f: &Field) -> Result<(), (&'static str, String)> {
    if let (Some(lo), Some(hi)) = (f.min, f.max)
        && lo > hi
    {
        return Err(("min", format!("{lo} is above max {hi}")));
    }
    let required = |name: &str, ty: FieldType| fields.iter().any(|g| g.name == name && g.ty == ty && g.required);
    if let Some(other) = &f.at_most
        && (f.ty == FieldType::Numbers || !required(other, f.ty))
    {
        return Err((
            "at_most",
            format!("{other:?} is not a required field of this kind of the same type (integer or number)"),
        ));
    }
    if let Some(other) = &f.length
        && !required(other, FieldType::Integer)
    {
        return Err((
            "length",
            format!("{other:?} is not a required integer field of this kind"),
        ));
    }
    if f.length.is_some() && f.ty != FieldType::Numbers {
        return Err(("length", "only a list (type \"numbers\") has a length".into()));
    }
    Ok(())
}

/// The kind's alert rules, each checked, their names unique.
fn rules(raw: &KindFile) -> Result<Vec<KindRule>, Problem> {
    let rules = raw
        .alerts
        .iter()
        .enumerate()
        .map(|(i, r)| rule(&raw.fields, r).map_err(|(k, problem)| (format!("alerts[{i}].{k}"), problem)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rule_names = BTreeSet::new();
    if let Some(twice) = rules.iter().find(|r| !rule_names.insert(r.name.as_str())) {
        return Err(("alerts".into(), format!("rule {:?} is declared twice", twice.name)));
    }
    Ok(rules)
}

fn rule(fields: &[Field], r: &RuleFile) -> Result<KindRule, (&'static str, String)> {
    let severity = Severity::from_name(&r.severity)
        .ok_or_else(|| ("severity", format!("{:?}: use info, warning or critical", r.severity)))?;
    if r.name.is_empty()
        || !r
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(("name", format!("{:?}: use lowercase letters, digits and '-'", r.name)));
    }
    let condition = match (&r.field, r.silent_for_s) {
        (Some(field), None) => {
            if !fields.iter().any(|f| &f.name == field) {
                return Err(("field", format!("{field:?} is not a field of this kind")));
            }
            let symbol = r.comparison.as_deref().unwrap_or_default();
            let comparison = Comparison::from_symbol(symbol)
                .ok_or_else(|| ("comparison", format!("{symbol:?}: use \">\" or \"<\"")))?;
            let threshold = r
                .threshold
                .filter(|t| t.is_finite())
                .ok_or_else(|| ("threshold", "a finite number is required with field".to_string()))?;
            Condition::Threshold {
                field: field.clone(),
                comparison,
                threshold,
            }
        }
        (None, Some(s)) if s > 0 => Condition::Silent {
            after: Duration::from_secs(s),
        },
        _ => {
            return Err((
                "field",
                "give either field (with comparison and threshold) or silent_for_s > 0".into(),
            ));
        }
    };
    let threshold_variable = match (&r.threshold_variable, &condition) {
        (None, _) => None,
        (Some(variable), Condition::Threshold { .. }) if is_variable_name(variable) => Some(variable.clone()),
        (Some(variable), Condition::Threshold { .. }) => {
            return Err((
                "threshold_variable",
                format!("{variable:?}: use uppercase letters, digits and '_'"),
            ));
        }
        (Some(_), Condition::Silent { .. }) => {
            return Err(("threshold_variable", "only a rule with a threshold has one".into()));
        }
    };
    Ok(KindRule {
        name: r.name.clone(),
        condition,
        severity,
        cooldown: Duration::from_secs(r.cooldown_s),
        threshold_variable,
    })
}

/// An environment variable's name as the template sets them: `LOW_SOC_PCT`.
fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn is_kind_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// The vehicle kind (`kinds/vehicle.toml`), parsed once. It is checked by
/// a test, so a bad declaration fails the build's tests, never a function.
pub fn vehicle() -> &'static Kind {
    static VEHICLE_KIND: LazyLock<Kind> = LazyLock::new(|| {
        Kind::parse(VEHICLE.0, VEHICLE.1).unwrap_or_else(|e| panic!("built-in kind declaration: {e}"))
    });
    &VEHICLE_KIND
}

/// The device kinds one deployment serves (the vehicle kind has its own lane).
#[derive(Debug, Clone, PartialEq)]
pub struct Kinds(Vec<Kind>);

impl Kinds {
    /// The device kinds' declarations under `kinds/`, compiled in and parsed
    /// once. They are checked by a test, so a bad one fails the build's
    /// tests, never a running function.
    pub fn builtin() -> Self {
        static BUILTIN_KINDS: LazyLock<Kinds> = LazyLock::new(|| {
            Kinds::from_declarations(BUILTIN).unwrap_or_else(|e| panic!("built-in kind declaration: {e}"))
        });
        BUILTIN_KINDS.clone()
    }

    pub fn from_declarations(files: &[(&str, &str)]) -> Result<Self, KindError> {
        let kinds = files
            .iter()
            .map(|(file, text)| {
                let kind = Kind::parse(file, text)?;
                if RESERVED_PATHS.contains(&kind.path.as_str()) || kind.name == vehicle().name {
                    return Err(KindError {
                        file: file.to_string(),
                        key: "path".into(),
                        problem: format!(
                            "kind {:?} at path {:?}: the API's own routes are {RESERVED_PATHS:?}, and vehicles have their own lane",
                            kind.name, kind.path
                        ),
                    });
                }
                Ok(kind)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (mut names, mut paths) = (BTreeSet::new(), BTreeSet::new());
        if let Some(twice) = kinds.iter().find(|k| !names.insert(k.name.as_str())) {
            return Err(KindError {
                file: "kinds/".into(),
                key: "kind".into(),
                problem: format!("{:?} is declared twice", twice.name),
            });
        }
        if let Some(twice) = kinds.iter().find(|k| !paths.insert(k.path.as_str())) {
            return Err(KindError {
                file: "kinds/".into(),
                key: "path".into(),
                problem: format!("{:?} is the path of two kinds", twice.path),
            });
        }
        Ok(Self(kinds))
    }

    pub fn get(&self, name: &str) -> Option<&Kind> {
        self.0.iter().find(|k| k.name == name)
    }

    /// The kind of a topic segment `canopy-<name>`.
    pub fn of_topic_segment(&self, segment: &str) -> Option<&Kind> {
        segment.strip_prefix(TOPIC_PREFIX).and_then(|name| self.get(name))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Kind> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_declarations_are_valid() {
        let kinds = Kinds::builtin();
        let station = kinds.get("station").expect("station");
        assert_eq!(station.id_field, "station_id");
        assert_eq!(station.path, "stations");
        assert_eq!(station.topic("st-01"), "dt/canopy-station/st-01/status");
        assert_eq!(kinds.of_topic_segment("canopy-station"), Some(station));
        assert_eq!(kinds.of_topic_segment("station"), None);
        assert!(station.field("slot_temp_c").is_some_and(|f| f.ty == FieldType::Numbers));
        assert_eq!(station.silent_rules().count(), 1);
        let vehicle = vehicle();
        assert_eq!(
            (vehicle.name.as_str(), vehicle.id_field.as_str()),
            ("vehicle", "vehicle_id")
        );
        assert_eq!(kinds.get("vehicle"), None, "vehicles have their own lane");
        assert_eq!(
            vehicle.field("cell_temp_min_c").and_then(|f| f.at_most.as_deref()),
            Some("cell_temp_max_c")
        );
    }

    fn parse(text: &str) -> Result<Kind, KindError> {
        Kind::parse("k.toml", text)
    }

    const HEAD: &str =
        "kind = \"pump\"\ntitle = \"Pump\"\npath = \"pumps\"\nid_field = \"pump_id\"\npublish_interval_s = 10\n";

    #[test]
    fn errors_name_the_key_at_fault() {
        let cases = [
            ("[[fields]]\nname = \"flow\"\ntype = \"text\"\n", "line"),
            ("[[fields]]\nname = \"Flow\"\ntype = \"number\"\n", "fields[0].name"),
            ("[[fields]]\nname = \"seq\"\ntype = \"number\"\n", "fields[0].name"),
            (
                "[[fields]]\nname = \"a\"\ntype = \"number\"\nmin = 2\nmax = 1\n",
                "fields[0].min",
            ),
            (
                "[[fields]]\nname = \"a\"\ntype = \"number\"\nat_most = \"b\"\n",
                "fields[0].at_most",
            ),
            (
                "[[fields]]\nname = \"a\"\ntype = \"number\"\nat_most = \"b\"\n[[fields]]\nname = \"b\"\ntype = \"integer\"\n",
                "fields[0].at_most",
            ),
            (
                "[[fields]]\nname = \"a\"\ntype = \"numbers\"\nlength = \"b\"\n[[fields]]\nname = \"b\"\ntype = \"number\"\n",
                "fields[0].length",
            ),
            (
                "[[fields]]\nname = \"a\"\ntype = \"number\"\n[[alerts]]\nname = \"x\"\nfield = \"b\"\ncomparison = \">\"\nthreshold = 1\nseverity = \"info\"\ncooldown_s = 1\n",
                "alerts[0].field",
            ),
            (
                "[[fields]]\nname = \"a\"\ntype = \"number\"\n[[alerts]]\nname = \"x\"\nfield = \"a\"\ncomparison = \">=\"\nthreshold = 1\nseverity = \"info\"\ncooldown_s = 1\n",
                "alerts[0].comparison",
            ),
            (
                "[[fields]]\nname = \"a\"\ntype = \"number\"\n[[alerts]]\nname = \"x\"\nseverity = \"info\"\ncooldown_s = 1\n",
                "alerts[0].field",
            ),
            (
                "[[fields]]\nname = \"a\"\ntype = \"number\"\n[[alerts]]\nname = \"x\"\nfield = \"a\"\ncomparison = \">\"\nthreshold = 1\nseverity = \"info\"\ncooldown_s = 1\nthreshold_variable = \"a-limit\"\n",
                "alerts[0].threshold_variable",
            ),
            (
                "[[fields]]\nname = \"a\"\ntype = \"number\"\n[[alerts]]\nname = \"x\"\nsilent_for_s = 60\nseverity = \"info\"\ncooldown_s = 1\nthreshold_variable = \"A\"\n",
                "alerts[0].threshold_variable",
            ),
        ];
        for (from, to) in [("\"pumps\"", "\"vehicles\""), ("\"pump\"", "\"vehicle\"")] {
            let text = format!(
                "{}[[fields]]\nname = \"a\"\ntype = \"number\"\n",
                HEAD.replace(from, to)
            );
            let taken = Kinds::from_declarations(&[("k.toml", &text)]).unwrap_err();
            assert_eq!((taken.file.as_str(), taken.key.as_str()), ("k.toml", "path"), "{taken}");
        }
        for (body, key) in cases {
            let err = parse(&format!("{HEAD}{body}")).unwrap_err();
            assert!(err.key.starts_with(key), "{body}: {err}");
            assert!(err.to_string().starts_with("k.toml: "), "{err}");
        }
    }

    #[test]
    fn a_minimal_kind_is_a_few_lines() {
        let pump = parse(&format!(
            "{HEAD}[[fields]]\nname = \"flow_l_min\"\ntype = \"number\"\nunit = \"l/min\"\n"
        ))
        .unwrap();
        assert_eq!(pump.fields.len(), 1);
        assert!(pump.fields[0].required);
        assert!(pump.rules.is_empty());
        let twice = Kinds::from_declarations(&[("a.toml", &pump_text()), ("b.toml", &pump_text())]).unwrap_err();
        assert!(twice.problem.contains("declared twice"), "{twice}");
    }

    fn pump_text() -> String {
        format!("{HEAD}[[fields]]\nname = \"flow\"\ntype = \"number\"\n")
    }
}
