//! Per vehicle and hour, what the fleet's statistics are made of: how many
//! samples, and each required measure's lowest, highest and sum, so a day
//! of the fleet is one small object instead of the day's archive. The
//! compactor writes it beside [`super::by_vehicle`], from each vehicle-date
//! it rewrites there (`functions/decoder/src/telemetry_index.rs`).
//!
//! `fleet_hourly/date=<YYYY-MM-DD>/<written µs>.parquet`
//!
//! | column | type |
//! | --- | --- |
//! | `vehicle_id` | STRING (dictionary) |
//! | `hour_us` | INT64, the hour's start |
//! | `messages` | INT64, samples in the hour |
//! | `<measure>_min`, `<measure>_max`, `<measure>_sum` | DOUBLE, for each of the eight required measures |
//! | `written_us` | INT64: when this copy was written |
//!
//! A date's object is written whole again, every row a copy of that time,
//! whenever a vehicle's samples of the date change; a reader that lists two
//! (the grace period before the older is deleted) keeps each vehicle-hour's
//! newest copy.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;

use super::archive::Sample;
use super::{LakeError, columns, write_object};
use crate::domain::measure::Measure;

pub const PREFIX: &str = "fleet_hourly/";
pub const HOUR_US: i64 = 3_600_000_000;

const MEASURES: usize = Measure::REQUIRED.len();

/// `fleet_hourly/date=<YYYY-MM-DD>/`: what a date is listed by.
pub fn partition(date: NaiveDate) -> String {
    format!("{PREFIX}date={}/", date.format("%Y-%m-%d"))
}

/// The object of a date written at `written_us`.
pub fn key(date: NaiveDate, written_us: i64) -> String {
    format!("{}{written_us}.parquet", partition(date))
}

/// A vehicle-hour's samples, aggregated.
#[derive(Debug, Clone, PartialEq)]
pub struct Hour {
    pub vehicle: Arc<str>,
    pub hour_us: i64,
    pub messages: u64,
    pub min: [f64; MEASURES],
    pub max: [f64; MEASURES],
    pub sum: [f64; MEASURES],
    pub written_us: i64,
}

impl Hour {
    fn index(measure: Measure) -> Option<usize> {
        Measure::REQUIRED.iter().position(|m| *m == measure)
    }

    /// The lowest value of a required measure in the hour (NaN for another).
    pub fn min(&self, measure: Measure) -> f64 {
        Self::index(measure).map_or(f64::NAN, |i| self.min[i])
    }

    pub fn max(&self, measure: Measure) -> f64 {
        Self::index(measure).map_or(f64::NAN, |i| self.max[i])
    }

    /// The mean of the hour's values.
    pub fn mean(&self, measure: Measure) -> f64 {
        Self::index(measure).map_or(f64::NAN, |i| self.sum[i] / self.messages as f64)
    }
}

/// The hours of one vehicle's `samples`, each summed in the order given,
/// ordered by hour.
pub fn hours<'a>(vehicle: &Arc<str>, samples: impl IntoIterator<Item = &'a Sample>, written_us: i64) -> Vec<Hour> {
    let mut by_hour: std::collections::BTreeMap<i64, Hour> = std::collections::BTreeMap::new();
    for s in samples {
        let hour_us = s.ts_us.div_euclid(HOUR_US) * HOUR_US;
        let hour = by_hour.entry(hour_us).or_insert_with(|| Hour {
            vehicle: vehicle.clone(),
            hour_us,
            messages: 0,
            min: [f64::INFINITY; MEASURES],
            max: [f64::NEG_INFINITY; MEASURES],
            sum: [0.0; MEASURES],
            written_us,
        });
        hour.messages += 1;
        for (i, &v) in s.values.iter().enumerate() {
            hour.min[i] = hour.min[i].min(v);
            hour.max[i] = hour.max[i].max(v);
            hour.sum[i] += v;
        }
    }
    by_hour.into_values().collect()
}

pub fn schema() -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "vehicle_id",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("hour_us", DataType::Int64, false),
        Field::new("messages", DataType::Int64, false),
    ];
    for m in Measure::REQUIRED {
        for part in ["min", "max", "sum"] {
            fields.push(Field::new(format!("{}_{part}", m.name()), DataType::Float64, false));
        }
    }
    fields.push(Field::new("written_us", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// One object of `hours`, in the order given, every row a copy written at `written_us`.
pub fn write(name: &str, hours: &[Hour], written_us: i64) -> Result<Vec<u8>, LakeError> {
    let source: Arc<str> = Arc::from(name);
    let n = hours.len();
    let mut vehicle = StringDictionaryBuilder::<Int32Type>::new();
    let mut hour = Int64Builder::with_capacity(n);
    let mut messages = Int64Builder::with_capacity(n);
    let mut parts: Vec<Float64Builder> = (0..3 * MEASURES).map(|_| Float64Builder::with_capacity(n)).collect();
    for h in hours {
        vehicle.append_value(h.vehicle.as_ref());
        hour.append_value(h.hour_us);
        messages.append_value(i64::try_from(h.messages).unwrap_or(i64::MAX));
        for i in 0..MEASURES {
            parts[3 * i].append_value(h.min[i]);
            parts[3 * i + 1].append_value(h.max[i]);
            parts[3 * i + 2].append_value(h.sum[i]);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(vehicle.finish()),
        Arc::new(hour.finish()),
        Arc::new(messages.finish()),
    ];
    columns.extend(parts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(Int64Array::from(vec![written_us; n])));
    write_object(&source, schema(), columns, &["hour_us", "messages"])
}

/// The hours of an object's record batches.
pub fn rows(batches: &[RecordBatch], name: &str) -> Result<Vec<Hour>, LakeError> {
    let source: Arc<str> = Arc::from(name);
    let mut out = Vec::new();
    for batch in batches {
        let vehicles = columns::strings(batch, "vehicle_id", &source)?;
        let hour = columns::ints(batch, "hour_us", &source)?;
        let messages = columns::ints(batch, "messages", &source)?;
        let written = columns::ints(batch, "written_us", &source)?;
        let mut parts = Vec::with_capacity(3 * MEASURES);
        for m in Measure::REQUIRED {
            for part in ["min", "max", "sum"] {
                parts.push(columns::floats(batch, &format!("{}_{part}", m.name()), &source)?);
            }
        }
        let mut interned: HashMap<&str, Arc<str>> = HashMap::new();
        for (row, name) in vehicles.iter().enumerate() {
            let part = |i: usize| -> [f64; MEASURES] { std::array::from_fn(|m| parts[3 * m + i].value(row)) };
            out.push(Hour {
                vehicle: interned.entry(name).or_insert_with(|| Arc::from(*name)).clone(),
                hour_us: hour.value(row),
                messages: u64::try_from(messages.value(row))
                    .map_err(|_| LakeError::schema(&source, "messages", "a negative count"))?,
                min: part(0),
                max: part(1),
                sum: part(2),
                written_us: written.value(row),
            });
        }
    }
    Ok(out)
}

/// The hours of the object `body`.
pub fn read(body: bytes::Bytes, name: &str) -> Result<Vec<Hour>, LakeError> {
    rows(&columns::batches(body, &Arc::from(name))?, name)
}

/// Each vehicle-hour from its newest copy, ordered by vehicle and hour.
pub fn newest(hours: Vec<Hour>) -> Vec<Hour> {
    let mut kept: HashMap<(Arc<str>, i64), Hour> = HashMap::new();
    for h in hours {
        match kept.get(&(h.vehicle.clone(), h.hour_us)) {
            Some(k) if k.written_us >= h.written_us => {}
            _ => {
                kept.insert((h.vehicle.clone(), h.hour_us), h);
            }
        }
    }
    let mut out: Vec<Hour> = kept.into_values().collect();
    out.sort_by(|a, b| (&a.vehicle, a.hour_us).cmp(&(&b.vehicle, b.hour_us)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts_us: i64, soc: f64, speed: f64) -> Sample {
        Sample {
            ts_us,
            seq: ts_us,
            values: [soc, 400.0, 10.0, 3.9, 4.0, 20.0, 25.0, speed],
        }
    }

    #[test]
    fn a_vehicles_samples_make_its_hours_and_read_back() {
        let v: Arc<str> = Arc::from("veh-1");
        let samples = [
            sample(HOUR_US - 1, 50.0, 10.0),
            sample(HOUR_US, 49.0, 30.0),
            sample(HOUR_US + 5, 48.0, 50.0),
        ];
        let hours = hours(&v, &samples, 7);
        assert_eq!(hours.len(), 2);
        assert_eq!((hours[0].hour_us, hours[0].messages), (0, 1));
        let h = &hours[1];
        assert_eq!((h.hour_us, h.messages), (HOUR_US, 2));
        assert_eq!(
            (
                h.min(Measure::SocPct),
                h.max(Measure::SocPct),
                h.mean(Measure::SpeedKph)
            ),
            (48.0, 49.0, 40.0)
        );
        let back = read(write("t", &hours, 7).unwrap().into(), "t").unwrap();
        assert_eq!(back, hours);
    }

    #[test]
    fn each_vehicle_hour_is_read_from_its_newest_copy() {
        let v: Arc<str> = Arc::from("veh-1");
        let old = hours(&v, &[sample(0, 50.0, 0.0)], 1);
        let new = hours(&v, &[sample(0, 50.0, 0.0), sample(1, 40.0, 0.0)], 2);
        let other = hours(&Arc::from("veh-0"), &[sample(0, 10.0, 0.0)], 1);
        let kept = newest([old, new.clone(), other.clone()].concat());
        assert_eq!(kept, [other, new].concat());
    }
}
