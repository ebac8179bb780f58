//! The telemetry summary: the configured BMS signals of each interval folded
//! into one telemetry sample. Levels are the interval's latest values; the
//! cell voltage and temperature extremes are extremes over the interval, so a
//! spike between two samples still reaches the alert rule.
//!
//! With alert rules configured, every frame that moves a rule's measure is
//! checked against it. A rule that starts to trip closes the interval at
//! once: its sample, stamped with that frame's time, goes out without
//! waiting for the interval or the publish interval, and the rest of the
//! interval counts toward the next sample (seqs stay unique and rising).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use canopy::domain::alert::Rule;
use canopy::domain::device_id::DeviceId;
use canopy::domain::measure::Measure;
use canopy::domain::telemetry::Telemetry;
use canopy::format::dbc::{Database, SignalValue};
use canopy::format::frame::CanFrame;
use chrono::DateTime;

use crate::config::SignalMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    Latest,
    Min,
    Max,
}

fn fold_of(m: Measure) -> Fold {
    match m {
        Measure::CellVoltageMinV | Measure::CellTempMinC => Fold::Min,
        Measure::CellVoltageMaxV | Measure::CellTempMaxC => Fold::Max,
        _ => Fold::Latest,
    }
}

const N: usize = Measure::REQUIRED.len();

/// A sample, and the alert rule whose tripping closed it early (it goes out at once).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub telemetry: Telemetry,
    pub tripped: Option<String>,
}

pub struct Aggregator {
    db: Arc<Database>,
    vehicle: DeviceId,
    interval_us: i64,
    /// Per DBC message index: (signal index, telemetry field slot).
    wanted: Vec<Vec<(u16, usize)>>,
    folds: [Fold; N],
    current: Option<i64>,
    values: [Option<f64>; N],
    last: [Option<f64>; N],
    /// The cell voltage min and max signals when one message carries both:
    /// their difference within a frame is the pack's instantaneous spread.
    spread_pair: Option<(usize, u16, u16)>,
    /// The widest instantaneous spread of the open interval.
    spread: Option<f64>,
    scratch: Vec<SignalValue>,
    rules: Vec<Rule>,
    /// Per rule: the telemetry slot of its measure (`None`: the spread).
    rule_slots: Vec<Option<usize>>,
    /// Per rule: whether its measure trips it now (a rule fires as it starts to).
    tripping: Vec<bool>,
}

impl Aggregator {
    /// Checks that every mapped `Message.Signal` exists in the DBC.
    pub fn new(
        db: Arc<Database>,
        vehicle: DeviceId,
        interval_ms: u64,
        map: &SignalMap,
        rules: &[Rule],
    ) -> Result<Self> {
        let mut wanted = vec![Vec::new(); db.messages().len()];
        let mut folds = [Fold::Latest; N];
        for (slot, (field, path)) in map.entries().into_iter().enumerate() {
            let (message, signal) = path.split_once('.').context("Message.Signal")?;
            let Some(mi) = db.messages().iter().position(|m| m.name == message) else {
                bail!("telemetry.signals.{field}: the DBC has no message {message}");
            };
            let Some(si) = db.messages()[mi].signal_index(signal) else {
                bail!("telemetry.signals.{field}: message {message} has no signal {signal}");
            };
            wanted[mi].push((si as u16, slot));
            folds[slot] = fold_of(field);
        }
        // The interval's min and max come from different moments (a voltage sag
        // under load moves both), so only a spread within one frame measures imbalance.
        let slot = |m: Measure| Measure::REQUIRED.iter().position(|r| *r == m);
        let spread_pair = (0..wanted.len()).find_map(|mi| {
            let of = |field: Option<usize>| wanted[mi].iter().find(|(_, s)| Some(*s) == field).map(|(sig, _)| *sig);
            Some((
                mi,
                of(slot(Measure::CellVoltageMinV))?,
                of(slot(Measure::CellVoltageMaxV))?,
            ))
        });
        Ok(Self {
            db,
            vehicle,
            interval_us: i64::try_from(interval_ms).unwrap_or(1000) * 1000,
            wanted,
            folds,
            current: None,
            values: [None; N],
            last: [None; N],
            spread_pair,
            spread: None,
            scratch: Vec::new(),
            rules: rules.to_vec(),
            rule_slots: rules.iter().map(|r| slot(r.measure)).collect(),
            tripping: vec![false; rules.len()],
        })
    }

    /// Takes a frame; pushes to `out` the sample of an interval that just
    /// ended, and one closed early by a rule that started to trip.
    pub fn observe(&mut self, frame: &CanFrame, out: &mut Vec<Sample>) {
        let k = frame.ts_us.div_euclid(self.interval_us);
        match self.current {
            Some(current) if k > current => {
                out.extend(self.finish(current, None).map(|telemetry| Sample {
                    telemetry,
                    tripped: None,
                }));
                self.current = Some(k);
            }
            None => self.current = Some(k),
            _ => {} // a late frame counts toward the open interval
        }
        let Some(index) = self.db.message_index(frame.id) else {
            return;
        };
        if self.wanted[index].is_empty()
            || self.db.messages()[index]
                .decode(frame.data(), &mut self.scratch)
                .is_err()
        {
            return;
        }
        for &(signal, slot) in &self.wanted[index] {
            let Some(v) = self.scratch.iter().find(|v| v.signal == signal) else {
                continue;
            };
            let value = v.value;
            let entry = &mut self.values[slot];
            *entry = Some(match (self.folds[slot], *entry) {
                (Fold::Min, Some(old)) => old.min(value),
                (Fold::Max, Some(old)) => old.max(value),
                _ => value,
            });
        }
        if let Some((mi, min_signal, max_signal)) = self.spread_pair
            && mi == index
        {
            let value = |signal: u16| self.scratch.iter().find(|v| v.signal == signal).map(|v| v.value);
            if let (Some(min), Some(max)) = (value(min_signal), value(max_signal)) {
                let spread = max - min;
                self.spread = Some(self.spread.map_or(spread, |old: f64| old.max(spread)));
            }
        }
        if let Some(rule) = self.starts_to_trip(index) {
            let current = self.current.unwrap_or(k);
            if let Some(telemetry) = self.finish(current, Some(frame.ts_us)) {
                self.current = Some(current + 1);
                out.push(Sample {
                    telemetry,
                    tripped: Some(rule),
                });
            } else {
                // Not every field seen yet: no sample to send; try again on the next frame.
                self.tripping.iter_mut().for_each(|t| *t = false);
            }
        }
    }

    /// The first rule the frame of DBC message `index` makes start to trip.
    fn starts_to_trip(&mut self, index: usize) -> Option<String> {
        let mut fired = None;
        let rules = self.rules.iter().zip(&self.rule_slots).zip(self.tripping.iter_mut());
        for ((rule, slot), tripping) in rules {
            let value = match slot {
                None => match self.spread_pair {
                    Some((mi, ..)) if mi == index => self.spread,
                    _ => continue,
                },
                // Only a frame that carries the measure can move it.
                Some(slot) if self.wanted[index].iter().any(|(_, s)| s == slot) => self.values[*slot],
                Some(_) => continue,
            };
            let Some(value) = value else { continue };
            let trips = rule.comparison.trips(value, rule.threshold);
            if trips && !*tripping && fired.is_none() {
                fired = Some(rule.name.clone());
            }
            *tripping = trips;
        }
        fired
    }

    /// The sample of the open interval (at the end of a finite source).
    pub fn flush(&mut self) -> Option<Telemetry> {
        let current = self.current.take()?;
        self.finish(current, None)
    }

    /// The sample of interval `k`, stamped with its end or, closed early, `at_us`.
    fn finish(&mut self, k: i64, at_us: Option<i64>) -> Option<Telemetry> {
        let mut merged = [0.0; N];
        let mut ready = true;
        for ((merged, value), last) in merged.iter_mut().zip(self.values.iter_mut()).zip(self.last.iter_mut()) {
            match value.take().or(*last) {
                Some(v) => {
                    *merged = v;
                    *last = Some(v);
                }
                None => ready = false,
            }
        }
        let spread = self.spread.take();
        if !ready {
            return None; // not every field seen yet (just started)
        }
        // Stamped with the interval's end; seq is the interval's number, so it
        // stays unique and increasing across restarts.
        let end_us = at_us.unwrap_or((k + 1) * self.interval_us);
        let ts = DateTime::from_timestamp_micros(end_us)?;
        let mut t = Telemetry::from_measures(self.vehicle.clone(), ts, u64::try_from(k + 1).ok()?, merged);
        t.cell_voltage_spread_v = spread;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canopy::format::frame::FrameFlags;

    fn db() -> Arc<Database> {
        Arc::new(Database::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../dbc/ev_powertrain.dbc")).unwrap())
    }

    fn frame(db: &Database, ts_us: i64, message: &str, values: &[(&str, f64)]) -> CanFrame {
        let m = db.message_by_name(message).unwrap();
        let payload = m.encode_named_or_minimum(values).unwrap();
        CanFrame::new(ts_us, Arc::from("can0"), m.id, FrameFlags::empty(), &payload).unwrap()
    }

    fn all_fields(db: &Database, ts: i64, temp_max: f64) -> Vec<CanFrame> {
        vec![
            frame(
                db,
                ts,
                "BMS_PackStatus",
                &[("StateOfCharge", 80.0), ("PackVoltage", 380.0), ("PackCurrent", 12.5)],
            ),
            frame(
                db,
                ts + 1,
                "BMS_CellVoltageSummary",
                &[("CellVoltageMin", 3.9), ("CellVoltageMax", 3.95)],
            ),
            frame(
                db,
                ts + 2,
                "BMS_TemperatureSummary",
                &[("CellTempMin", 25.0), ("CellTempMax", temp_max)],
            ),
            frame(db, ts + 3, "VCU_VehicleStatus", &[("VehicleSpeed", 50.0)]),
        ]
    }

    fn aggregator(db: &Arc<Database>, rules: &[Rule]) -> Aggregator {
        Aggregator::new(
            db.clone(),
            DeviceId::new("v1").unwrap(),
            1000,
            &SignalMap::default(),
            rules,
        )
        .unwrap()
    }

    #[test]
    fn extremes_over_the_interval_keep_a_short_spike() {
        let db = db();
        let mut agg = aggregator(&db, &[]);
        let t0 = 1_700_000_000_000_000;
        let mut out = Vec::new();
        for (i, temp) in [30.0, 61.5, 31.0].iter().enumerate() {
            for f in all_fields(&db, t0 + i as i64 * 300_000, *temp) {
                agg.observe(&f, &mut out);
            }
        }
        assert!(out.is_empty(), "the interval is still open");
        agg.observe(
            &frame(&db, t0 + 1_000_000, "VCU_VehicleStatus", &[("VehicleSpeed", 10.0)]),
            &mut out,
        );
        let t = &out[0].telemetry;
        assert_eq!(
            t.cell_temp_max_c, 61.5,
            "the spike in the middle is the interval's maximum"
        );
        assert_eq!(t.speed_kph, 50.0);
        assert_eq!(t.ts_us(), t0 + 1_000_000);
        assert_eq!(t.seq, 1_700_000_001);
        // The next interval carries levels over and starts its extremes afresh.
        let last = agg.flush().unwrap();
        assert_eq!(last.speed_kph, 10.0);
        assert_eq!(
            last.cell_temp_max_c, 61.5,
            "unseen in the interval: the last known value"
        );
        assert_eq!(last.seq, 1_700_000_002);
    }

    #[test]
    fn the_spread_is_measured_within_a_frame_not_across_the_interval() {
        let db = db();
        let mut agg = aggregator(&db, &[]);
        let t0 = 1_700_000_000_000_000;
        for f in all_fields(&db, t0, 30.0) {
            agg.observe(&f, &mut Vec::new());
        }
        // A sag under load: every cell drops, the spread stays 40 mV.
        agg.observe(
            &frame(
                &db,
                t0 + 500_000,
                "BMS_CellVoltageSummary",
                &[("CellVoltageMin", 3.70), ("CellVoltageMax", 3.74)],
            ),
            &mut Vec::new(),
        );
        let t = agg.flush().unwrap();
        assert_eq!((t.cell_voltage_min_v, t.cell_voltage_max_v), (3.7, 3.95));
        let spread = t.cell_voltage_spread_v.unwrap();
        assert!((spread - 0.05).abs() < 1e-9, "{spread}");
        assert!(t.value(Measure::CellVoltageSpreadV) < 0.06);
    }

    #[test]
    fn nothing_is_sent_before_every_field_was_seen() {
        let db = db();
        let mut agg = aggregator(&db, &[]);
        let mut out = Vec::new();
        agg.observe(&frame(&db, 0, "BMS_PackStatus", &[("StateOfCharge", 80.0)]), &mut out);
        agg.observe(&frame(&db, 2_000_000, "BMS_PackStatus", &[]), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_rule_that_starts_to_trip_sends_its_sample_at_once_and_once() {
        let db = db();
        let rules = canopy::domain::alert::default_rules(60.0, 10.0, 0.1, std::time::Duration::from_secs(600));
        let mut agg = aggregator(&db, &rules);
        let t0 = 1_700_000_000_000_000;
        let mut out = Vec::new();
        for f in all_fields(&db, t0, 30.0) {
            agg.observe(&f, &mut out);
        }
        assert!(out.is_empty());
        // 400 ms into the interval the pack runs hot: its sample goes now.
        let hot = frame(
            &db,
            t0 + 400_000,
            "BMS_TemperatureSummary",
            &[("CellTempMin", 25.0), ("CellTempMax", 61.0)],
        );
        agg.observe(&hot, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tripped.as_deref(), Some("over-temperature"));
        assert_eq!(
            out[0].telemetry.ts_us(),
            t0 + 400_000,
            "stamped with the frame that tripped"
        );
        assert_eq!(out[0].telemetry.seq, 1_700_000_001);
        assert_eq!(out[0].telemetry.cell_temp_max_c, 61.0);
        // Still hot: nothing more at once; the rest of the interval goes to the next sample.
        let hotter = frame(
            &db,
            t0 + 700_000,
            "BMS_TemperatureSummary",
            &[("CellTempMin", 25.0), ("CellTempMax", 62.0)],
        );
        agg.observe(&hotter, &mut out);
        agg.observe(
            &frame(&db, t0 + 1_200_000, "VCU_VehicleStatus", &[("VehicleSpeed", 20.0)]),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        agg.observe(
            &frame(&db, t0 + 2_100_000, "VCU_VehicleStatus", &[("VehicleSpeed", 20.0)]),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!((out[1].telemetry.seq, out[1].tripped.as_deref()), (1_700_000_002, None));
        assert_eq!(
            out[1].telemetry.cell_temp_max_c, 62.0,
            "what came after the early close"
        );
        assert_eq!(out[1].telemetry.ts_us(), t0 + 2_000_000);
        // Cooled down, then hot again: at once again.
        agg.observe(
            &frame(
                &db,
                t0 + 2_200_000,
                "BMS_TemperatureSummary",
                &[("CellTempMin", 25.0), ("CellTempMax", 40.0)],
            ),
            &mut out,
        );
        agg.observe(
            &frame(
                &db,
                t0 + 3_300_000,
                "BMS_TemperatureSummary",
                &[("CellTempMin", 25.0), ("CellTempMax", 41.0)],
            ),
            &mut out,
        );
        agg.observe(
            &frame(
                &db,
                t0 + 3_500_000,
                "BMS_TemperatureSummary",
                &[("CellTempMin", 25.0), ("CellTempMax", 65.0)],
            ),
            &mut out,
        );
        let tripped: Vec<_> = out.iter().filter_map(|s| s.tripped.as_deref()).collect();
        assert_eq!(tripped, ["over-temperature", "over-temperature"]);
        let seqs: Vec<u64> = out.iter().map(|s| s.telemetry.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }

    #[test]
    fn a_mapping_to_a_missing_signal_names_the_field() {
        let map = SignalMap {
            speed_kph: "VCU_VehicleStatus.Velocity".into(),
            ..SignalMap::default()
        };
        let err = Aggregator::new(db(), DeviceId::new("v1").unwrap(), 1000, &map, &[])
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "telemetry.signals.speed_kph: message VCU_VehicleStatus has no signal Velocity"
        );
    }
}
