//! The telemetry measures: one name, unit and meaning for each numeric field
//! of the telemetry message, used wherever a measure is named (the edge's
//! aggregator, validation, alert rules, the state table, the archive).

use std::fmt;
use std::str::FromStr;

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
    /// The widest spread between the highest and lowest cell voltage within
    /// one BMS frame over the interval. Optional in v1: `cell_voltage_max_v -
    /// cell_voltage_min_v` mixes moments (a sag under load moves both
    /// extremes) and so overstates imbalance.
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

    pub const fn unit(self) -> &'static str {
        match self {
            Self::SocPct => "%",
            Self::PackVoltageV | Self::CellVoltageMinV | Self::CellVoltageMaxV | Self::CellVoltageSpreadV => "V",
            Self::PackCurrentA => "A",
            Self::CellTempMinC | Self::CellTempMaxC => "°C",
            Self::SpeedKph => "km/h",
        }
    }

    /// What it means, for people (alert messages).
    pub const fn description(self) -> &'static str {
        match self {
            Self::SocPct => "state of charge",
            Self::PackVoltageV => "pack voltage",
            Self::PackCurrentA => "pack current",
            Self::CellVoltageMinV => "lowest cell voltage",
            Self::CellVoltageMaxV => "highest cell voltage",
            Self::CellTempMinC => "coldest cell temperature",
            Self::CellTempMaxC => "hottest cell temperature",
            Self::SpeedKph => "speed",
            Self::CellVoltageSpreadV => "cell voltage spread (max - min)",
        }
    }

    /// Whether every v1 message carries it.
    pub fn is_required(self) -> bool {
        !Self::OPTIONAL.contains(&self)
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
        let err = "cell_temp".parse::<Measure>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown measure \"cell_temp\"; the measures are soc_pct"),
            "{err}"
        );
    }
}
