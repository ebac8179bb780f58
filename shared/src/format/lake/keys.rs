//! Object keys of the data lake: Hive partitions by vehicle and UTC date.
//!
//! `raw/vehicle_id=<id>/date=<YYYY-MM-DD>/<id>_<first µs>_<seq>.parquet`, and
//! the decoded object of a raw object under `decoded/` with the same
//! partitions and stem. Keys are deterministic, so a retried upload or a
//! repeated S3 notification overwrites instead of duplicating.

use chrono::{DateTime, NaiveDate};

use crate::domain::device_id::DeviceId;

pub const RAW_PREFIX: &str = "raw/";
pub const DECODED_PREFIX: &str = "decoded/";
pub const TELEMETRY_PREFIX: &str = "telemetry/";
pub const DBC_PREFIX: &str = "dbc/";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "object key {key:?} is not a raw lake key ({problem}); expected raw/vehicle_id=<id>/date=<YYYY-MM-DD>/<id>_<first µs>_<seq>.parquet"
)]
pub struct KeyError {
    pub key: String,
    pub problem: &'static str,
}

/// The earliest and (not included) latest first-frame time a raw key may
/// name: 2000-01-01 and 2100-01-01 UTC. A CAN log is of this century, and the
/// arithmetic on these times (hour ends, lateness) stays far from overflow.
pub const MIN_TS_US: i64 = 946_684_800_000_000;
pub const MAX_TS_US: i64 = 4_102_444_800_000_000;

/// The UTC date of a timestamp in microseconds since the epoch.
pub fn date_of(ts_us: i64) -> NaiveDate {
    DateTime::from_timestamp_micros(ts_us).unwrap_or_default().date_naive()
}

/// The parts of a raw object's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawKey {
    pub vehicle: DeviceId,
    pub date: NaiveDate,
    pub first_ts_us: i64,
    pub seq: u64,
}

impl RawKey {
    /// The key of a sealed batch whose first frame is at `first_ts_us`.
    pub fn new(vehicle: DeviceId, first_ts_us: i64, seq: u64) -> Self {
        Self {
            date: date_of(first_ts_us),
            vehicle,
            first_ts_us,
            seq,
        }
    }

    /// `<id>_<first µs>_<seq>`: the batch's name in every table of the lake.
    pub fn stem(&self) -> String {
        format!("{}_{}_{:06}", self.vehicle, self.first_ts_us, self.seq)
    }

    fn partitions(&self) -> String {
        format!("vehicle_id={}/date={}", self.vehicle, self.date.format("%Y-%m-%d"))
    }

    pub fn raw_key(&self) -> String {
        format!("{RAW_PREFIX}{}/{}.parquet", self.partitions(), self.stem())
    }

    /// The decoded object of this raw object: same partitions, same stem.
    pub fn decoded_key(&self) -> String {
        format!("{DECODED_PREFIX}{}/{}.parquet", self.partitions(), self.stem())
    }

    /// A rollup tier's object of this raw object: the tier's prefix, same
    /// partitions, same stem.
    pub fn rollup_key(&self, tier: &super::rollup::Tier) -> String {
        format!("{}{}/{}.parquet", tier.prefix, self.partitions(), self.stem())
    }

    /// Parses a raw key (already URL-decoded).
    pub fn parse(key: &str) -> Result<Self, KeyError> {
        let err = |problem| KeyError {
            key: key.to_string(),
            problem,
        };
        let rest = key
            .strip_prefix(RAW_PREFIX)
            .ok_or_else(|| err("it does not start with raw/"))?;
        let mut parts = rest.split('/');
        let (Some(vehicle_part), Some(date_part), Some(file), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err("it does not have three parts after raw/"));
        };
        let vehicle = vehicle_part
            .strip_prefix("vehicle_id=")
            .ok_or_else(|| err("no vehicle_id= partition"))?;
        let vehicle = DeviceId::new(vehicle).map_err(|_| err("the vehicle id is not valid"))?;
        let date = date_part
            .strip_prefix("date=")
            .ok_or_else(|| err("no date= partition"))?;
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| err("the date is not YYYY-MM-DD"))?;
        let stem = file
            .strip_suffix(".parquet")
            .ok_or_else(|| err("the file name does not end in .parquet"))?;
        let mut fields = stem.rsplitn(3, '_');
        let (Some(seq), Some(first), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(err("the file name is not <id>_<first µs>_<seq>"));
        };
        if id != vehicle.as_str() {
            return Err(err("the file name's vehicle differs from the partition's"));
        }
        let first_ts_us: i64 = first.parse().map_err(|_| err("the first timestamp is not a number"))?;
        if !(MIN_TS_US..MAX_TS_US).contains(&first_ts_us) {
            return Err(err("the first timestamp is not between 2000 and 2100"));
        }
        let seq = seq.parse().map_err(|_| err("the sequence number is not a number"))?;
        let parsed = Self {
            vehicle,
            date,
            first_ts_us,
            seq,
        };
        // One object, one spelling: `_7` and `_000007`, or a date that is not
        // the first frame's, would name the same decoded object twice.
        if Self::new(parsed.vehicle.clone(), first_ts_us, seq).raw_key() != key {
            return Err(err(
                "it is not in canonical form (raw/vehicle_id=<id>/date=<date of the first frame>/<id>_<first µs>_<6-digit seq>.parquet)",
            ));
        }
        Ok(parsed)
    }
}

/// Decodes an object key as S3 event notifications carry it: URL-encoded,
/// with `+` for spaces.
pub fn decode_s3_event_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_decoded_keys_share_partitions_and_stem() {
        let key = RawKey::new(DeviceId::new("veh-1").unwrap(), 1_700_000_000_000_100, 7);
        assert_eq!(
            key.raw_key(),
            "raw/vehicle_id=veh-1/date=2023-11-14/veh-1_1700000000000100_000007.parquet"
        );
        assert_eq!(
            key.decoded_key(),
            "decoded/vehicle_id=veh-1/date=2023-11-14/veh-1_1700000000000100_000007.parquet"
        );
        assert_eq!(RawKey::parse(&key.raw_key()).unwrap(), key);
    }

    #[test]
    fn vehicle_ids_with_underscores_parse() {
        let key = RawKey::new(DeviceId::new("fleet_a_7").unwrap(), 1_700_000_000_000_005, 123_456_789);
        assert_eq!(RawKey::parse(&key.raw_key()).unwrap(), key);
    }

    #[test]
    fn bad_keys_say_what_is_wrong() {
        for (key, problem) in [
            (
                "decoded/vehicle_id=a/date=2024-01-01/a_1_1.parquet",
                "it does not start with raw/",
            ),
            (
                "raw/vehicle_id=a/date=2024-13-01/a_1_1.parquet",
                "the date is not YYYY-MM-DD",
            ),
            (
                "raw/vehicle_id=a/date=2024-01-01/b_1_1.parquet",
                "the file name's vehicle differs from the partition's",
            ),
            (
                "raw/vehicle_id=a/date=2024-01-01/a_1_1.csv",
                "the file name does not end in .parquet",
            ),
            (
                "raw/vehicle_id=a/a_1_1.parquet",
                "it does not have three parts after raw/",
            ),
            (
                "raw/vehicle_id=a'/date=2024-01-01/a_1_1.parquet",
                "the vehicle id is not valid",
            ),
        ] {
            assert_eq!(RawKey::parse(key).unwrap_err().problem, problem, "{key}");
        }
    }

    #[test]
    fn one_object_has_one_spelling() {
        let canonical = "raw/vehicle_id=veh-1/date=2023-11-14/veh-1_1700000000000100_000007.parquet";
        assert!(RawKey::parse(canonical).is_ok());
        for other in [
            "raw/vehicle_id=veh-1/date=2023-11-14/veh-1_1700000000000100_7.parquet",
            "raw/vehicle_id=veh-1/date=2023-11-14/veh-1_01700000000000100_000007.parquet",
            "raw/vehicle_id=veh-1/date=2023-11-15/veh-1_1700000000000100_000007.parquet",
        ] {
            let err = RawKey::parse(other).unwrap_err();
            assert!(err.problem.starts_with("it is not in canonical form"), "{other}: {err}");
        }
    }

    #[test]
    fn a_first_frame_time_outside_this_century_is_refused() {
        for (first, date) in [
            (i64::MAX, "1970-01-01"),
            (i64::MIN, "1970-01-01"),
            (0, "1970-01-01"),
            (MAX_TS_US, "2100-01-01"),
        ] {
            let key = format!("raw/vehicle_id=v/date={date}/v_{first}_000001.parquet");
            assert_eq!(
                RawKey::parse(&key).unwrap_err().problem,
                "the first timestamp is not between 2000 and 2100",
                "{key}"
            );
        }
        let last = MAX_TS_US - 1;
        let key = format!("raw/vehicle_id=v/date={}/v_{last}_000001.parquet", date_of(last));
        assert!(RawKey::parse(&key).is_ok());
    }

    #[test]
    fn event_keys_are_url_decoded() {
        assert_eq!(
            decode_s3_event_key("raw/vehicle_id%3Dv1/date%3D2025-01-01/x+y.parquet"),
            "raw/vehicle_id=v1/date=2025-01-01/x y.parquet"
        );
        assert_eq!(decode_s3_event_key("100%25"), "100%");
        assert_eq!(decode_s3_event_key("bad%zz"), "bad%zz");
        assert_eq!(decode_s3_event_key("end%2"), "end%2");
    }
}
