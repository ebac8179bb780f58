//! The telemetry measures: a typed handle on each field of the vehicle kind
//! (`kinds/vehicle.toml`, which gives its unit, meaning and range), used
//! wherever a measure is named (the edge's aggregator, validation, alert
//! rules, the state table, the archive).

use std::fmt;
use std::str::FromStr;

use crate::domain::kind::{self, Field};

/// A numeric measure of a telemetry message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    SocPct,
    PackVoltageV,
    PackCurrentA,
    CellVoltageMinV,
    CellVoltageMaxV,
    CellTempMinC,
    CellTempMaxC,
    SpeedKph,
    /// `cell_voltage_spread_v`: optional, and why, in `kinds/vehicle.toml`.
    CellVoltageSpreadV,
}

impl Measure {
    /// The fields every v1 message carries, in message order.
    pub const REQUIRED: [Measure; 8] = [
        Self::SocPct,
        Self::PackVoltageV,
        Self::PackCurrentA,
        Self::CellVoltageMinV,
        Self::CellVoltageMaxV,
        Self::CellTempMinC,
        Self::CellTempMaxC,
        Self::SpeedKph,
    ];

    /// The fields a message may leave out.
    pub const OPTIONAL: [Measure; 1] = [Self::CellVoltageSpreadV];

    /// Every measure: the required ones, then the optional ones.
    pub fn all() -> impl Iterator<Item = Measure> {
        Self::REQUIRED.into_iter().chain(Self::OPTIONAL)
    }

    /// The field's name in the message, the state table and the archive.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SocPct => "soc_pct",
            Self::PackVoltageV => "pack_voltage_v",
            Self::PackCurrentA => "pack_current_a",
            Self::CellVoltageMinV => "cell_voltage_min_v",
            Self::CellVoltageMaxV => "cell_voltage_max_v",
            Self::CellTempMinC => "cell_temp_min_c",
            Self::CellTempMaxC => "cell_temp_max_c",
            Self::SpeedKph => "speed_kph",
            Self::CellVoltageSpreadV => "cell_voltage_spread_v",
        }
    }

    /// Its declaration in `kinds/vehicle.toml`: unit, description, range.
    pub fn field(self) -> &'static Field {
        // A test holds the declaration to the measures one for one, so the
        // lookup cannot miss in a tested build.
        kind::vehicle()
            .field(self.name())
            .unwrap_or_else(|| panic!("kinds/vehicle.toml declares no field {}", self.name()))
    }

    pub fn unit(self) -> &'static str {
        &self.field().unit
    }

    /// What it means, for people (alert messages).
    pub fn description(self) -> &'static str {
        &self.field().description
    }

    /// Whether every v1 message carries it.
    pub fn is_required(self) -> bool {
        self.field().required
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::all().find(|m| m.name() == name)
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown measure {0:?}; the measures are {names}", names = Measure::all().map(Measure::name).collect::<Vec<_>>().join(", "))]
pub struct UnknownMeasure(pub String);

impl FromStr for Measure {
    type Err = UnknownMeasure;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| UnknownMeasure(s.to_string()))
    }
}

impl serde::Serialize for Measure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Measure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kind::FieldType;

    #[test]
    fn names_round_trip_and_are_unique() {
        for m in Measure::all() {
            assert_eq!(Measure::from_name(m.name()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
        }
        let mut names: Vec<&str> = Measure::all().map(Measure::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Measure::REQUIRED.len() + Measure::OPTIONAL.len());
        assert!(Measure::REQUIRED.iter().all(|m| m.is_required()));
        assert!(Measure::OPTIONAL.iter().all(|m| !m.is_required()));
    }

    #[test]
    fn the_measures_are_the_vehicle_kinds_fields_one_for_one() {
        let declared: Vec<&str> = kind::vehicle().fields.iter().map(|f| f.name.as_str()).collect();
        let measures: Vec<&str> = Measure::all().map(Measure::name).collect();
        assert_eq!(declared, measures, "kinds/vehicle.toml and Measure, in the same order");
        for m in Measure::all() {
            assert_eq!(m.field().ty, FieldType::Number, "{m}");
            assert!(!m.unit().is_empty() && !m.description().is_empty(), "{m}");
        }
        assert_eq!((Measure::CellTempMaxC.unit(), Measure::SpeedKph.unit()), ("°C", "km/h"));
        let rules: Vec<&str> = kind::vehicle().rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(rules, ["over-temperature", "low-state-of-charge", "cell-imbalance"]);
        let err = "cell_temp".parse::<Measure>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown measure \"cell_temp\"; the measures are soc_pct"),
            "{err}"
        );
    }
}
