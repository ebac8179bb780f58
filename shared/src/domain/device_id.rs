//! Device identifiers, a vehicle's or a station's: they become S3 key parts,
//! MQTT topic levels and SQL literals, so only a strict alphabet is accepted.
//! Where only a vehicle is meant, the field or argument says so (`vehicle_id`).

use std::fmt;
use std::str::FromStr;

/// A device id: 1 to 64 characters of `A-Z a-z 0-9 _ -`, not starting with `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-', not starting with '-'")]
pub struct InvalidDeviceId(pub String);

impl DeviceId {
    pub const MAX_LEN: usize = 64;

    pub fn new(id: impl Into<String>) -> Result<Self, InvalidDeviceId> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && !id.starts_with('-')
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid { Ok(Self(id)) } else { Err(InvalidDeviceId(id)) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeviceId {
    type Err = InvalidDeviceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids_and_rejects_anything_that_could_escape() {
        for ok in ["veh-001", "VIN1HGCM82633A004352", "fleet_7", "a"] {
            assert!(DeviceId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a/b", "a=b", "a'b", "a b", "a.b", "é", &"x".repeat(65)] {
            assert!(DeviceId::new(bad).is_err(), "{bad}");
        }
    }
}
