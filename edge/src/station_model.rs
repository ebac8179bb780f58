//! A battery-swap station, simulated: vehicles arrive at random along a
//! day curve (peaks at 8:00 and 18:00 UTC) and each takes a charged
//! battery, leaving its depleted one to charge; charging slows near full
//! (constant current to 80 %, then a taper); a slot faults now and then and
//! is out of service for a while. [`StationModel::status`] is the status
//! message `kinds/station.toml` declares.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde_json::{Value, json};

use crate::ev_model::Rng;

/// State of charge a battery counts as charged from (ready to swap).
pub const CHARGED_PCT: f64 = 95.0;
/// A slot's charger at full rate (kW) and the pack it fills (kWh).
const CHARGER_KW: f64 = 11.0;
const PACK_KWH: f64 = 40.0;
/// Vehicles an hour at the peaks, per slot.
const PEAK_ARRIVALS_PER_SLOT_H: f64 = 0.9;
/// A slot faults about once in this many hours, for 20 to 60 minutes.
const MEAN_HOURS_BETWEEN_FAULTS: f64 = 200.0;

#[derive(Debug, Clone)]
struct Slot {
    soc_pct: f64,
    temp_c: f64,
    /// Model seconds until the fault clears; 0 when in service.
    faulted_for_s: f64,
}

#[derive(Debug, Clone)]
pub struct StationModel {
    slots: Vec<Slot>,
    rng: Rng,
    swaps_today: u64,
    /// Vehicles that found no charged battery (the demo's summary reports them).
    pub missed_today: u64,
    day: u32,
    ambient_c: f64,
    grid_kw: f64,
}

impl StationModel {
    pub fn new(slots: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9).wrapping_add(11));
        let slots = (0..slots)
            .map(|_| Slot {
                soc_pct: 40.0 + rng.range(0.0, 1.0) * 60.0,
                temp_c: 25.0,
                faulted_for_s: 0.0,
            })
            .collect();
        Self {
            slots,
            rng,
            swaps_today: 0,
            missed_today: 0,
            day: 0,
            ambient_c: 20.0,
            grid_kw: 0.0,
        }
    }

    /// Vehicles an hour arriving at `hour` (UTC, fractional): a morning
    /// and an evening peak over a night-time floor.
    pub fn arrival_rate_per_h(&self, hour: f64) -> f64 {
        let peak = |at: f64, width: f64| (-((hour - at) / width).powi(2)).exp();
        let curve = 0.1 + 0.9 * (peak(8.0, 1.5) + peak(18.0, 2.0)).min(1.0);
        curve * PEAK_ARRIVALS_PER_SLOT_H * self.slots.len() as f64
    }

    /// Advances the model by `dt_s` model seconds, ending at `now`.
    pub fn step(&mut self, now: DateTime<Utc>, dt_s: f64) {
        if now.ordinal() != self.day {
            self.day = now.ordinal();
            self.swaps_today = 0;
            self.missed_today = 0;
        }
        let hour = f64::from(now.hour()) + f64::from(now.minute()) / 60.0;
        self.ambient_c = 14.0 + 8.0 * ((hour - 9.0) / 24.0 * std::f64::consts::TAU).sin();
        // Arrivals: Poisson over the step.
        let expected = self.arrival_rate_per_h(hour) * dt_s / 3600.0;
        for _ in 0..poisson(&mut self.rng, expected) {
            self.arrive();
        }
        let mut grid_kw = 1.5; // lights, cooling, the kiosk
        for slot in &mut self.slots {
            if slot.faulted_for_s > 0.0 {
                slot.faulted_for_s = (slot.faulted_for_s - dt_s).max(0.0);
                slot.temp_c += (self.ambient_c - slot.temp_c) * (dt_s / 900.0).min(1.0);
                continue;
            }
            if self.rng.range(0.0, 1.0) < dt_s / (MEAN_HOURS_BETWEEN_FAULTS * 3600.0) {
                slot.faulted_for_s = 1200.0 + self.rng.range(0.0, 1.0) * 2400.0;
                continue;
            }
            let kw = charging_kw(slot.soc_pct);
            slot.soc_pct = (slot.soc_pct + kw * dt_s / 3600.0 / PACK_KWH * 100.0).min(100.0);
            grid_kw += kw / 0.93; // the charger's losses
            // Heats with the charging power, cools towards ambient.
            let target = self.ambient_c + 1.6 * kw;
            slot.temp_c += (target - slot.temp_c) * (dt_s / 600.0).min(1.0);
        }
        self.grid_kw = grid_kw;
    }

    /// A vehicle swaps its depleted battery for the fullest charged one.
    fn arrive(&mut self) {
        let best = self
            .slots
            .iter_mut()
            .filter(|s| s.faulted_for_s == 0.0 && s.soc_pct >= CHARGED_PCT)
            .max_by(|a, b| a.soc_pct.total_cmp(&b.soc_pct));
        match best {
            Some(slot) => {
                slot.soc_pct = 8.0 + self.rng.range(0.0, 1.0) * 22.0;
                slot.temp_c += 4.0; // fresh off the road
                self.swaps_today += 1;
            }
            None => self.missed_today += 1,
        }
    }

    pub fn available(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.faulted_for_s == 0.0 && s.soc_pct >= CHARGED_PCT)
            .count()
    }

    /// The station's status message at `ts`, as `kinds/station.toml` declares it.
    pub fn status(&self, id: &str, ts: DateTime<Utc>, seq: u64) -> Value {
        let faulted = self.slots.iter().filter(|s| s.faulted_for_s > 0.0).count();
        let available = self.available();
        let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
        json!({
            "station_id": id,
            "ts": ts.to_rfc3339_opts(SecondsFormat::Millis, true),
            "seq": seq,
            "slots": self.slots.len(),
            "batteries_available": available,
            "charging": self.slots.len() - available - faulted,
            "faulted": faulted,
            "swaps_today": self.swaps_today,
            "temperature_c": round(self.ambient_c + 3.0, 1),
            "grid_power_kw": round(self.grid_kw, 2),
            "slot_soc_pct": self.slots.iter().map(|s| round(s.soc_pct, 1)).collect::<Vec<_>>(),
            "slot_temp_c": self.slots.iter().map(|s| round(s.temp_c, 1)).collect::<Vec<_>>(),
        })
    }
}

/// A Poisson draw of mean `lambda` (Knuth's: a step's few arrivals).
fn poisson(rng: &mut Rng, lambda: f64) -> u32 {
    let limit = (-lambda).exp();
    let (mut k, mut p) = (0, rng.range(0.0, 1.0));
    while p > limit && k < 1_000 {
        k += 1;
        p *= rng.range(0.0, 1.0);
    }
    k
}

/// Constant current to 80 %, then a linear taper to a trickle at 100 %.
pub fn charging_kw(soc_pct: f64) -> f64 {
    if soc_pct >= 100.0 {
        0.0
    } else if soc_pct <= 80.0 {
        CHARGER_KW
    } else {
        CHARGER_KW * (0.05 + 0.95 * (100.0 - soc_pct) / 20.0)
    }
}

#[cfg(test)]
mod tests {
    use canopy::domain::device::DeviceRecord;
    use canopy::domain::kind::Kinds;

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-12-02T{hour:02}:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn every_status_is_valid_for_the_station_declaration() {
        let kinds = Kinds::builtin();
        let mut model = StationModel::new(8, 3);
        for i in 0..2880 {
            let now = at(0) + chrono::Duration::seconds(i * 30);
            model.step(now, 30.0);
            let mut m = model.status("st-01", now, i as u64);
            m["topic_kind"] = "canopy-station".into();
            let r = DeviceRecord::from_json(&kinds, &m).unwrap_or_else(|e| panic!("status {i}: {e}: {m}"));
            assert_eq!(r.seq, i as u64);
        }
        assert!(model.swaps_today > 0 || model.missed_today > 0, "vehicles came");
    }

    #[test]
    fn charging_slows_near_full() {
        assert_eq!(charging_kw(50.0), CHARGER_KW);
        assert!(charging_kw(90.0) < CHARGER_KW / 1.5);
        assert!(charging_kw(99.0) < charging_kw(90.0));
        assert_eq!(charging_kw(100.0), 0.0);
    }

    #[test]
    fn the_day_has_a_morning_and_an_evening_peak() {
        let model = StationModel::new(8, 1);
        let rate = |h: f64| model.arrival_rate_per_h(h);
        assert!(rate(8.0) > 4.0 * rate(3.0));
        assert!(rate(18.0) > 4.0 * rate(13.5) / 2.0);
        assert!(rate(18.0) > rate(13.0));
    }

    #[test]
    fn a_swap_takes_the_fullest_charged_battery() {
        let mut model = StationModel::new(3, 1);
        for (slot, soc) in model.slots.iter_mut().zip([96.0, 99.5, 40.0]) {
            slot.soc_pct = soc;
        }
        model.arrive();
        assert!(model.slots[1].soc_pct < 31.0, "the 99.5 % battery went");
        assert_eq!((model.swaps_today, model.available()), (1, 1));
        model.arrive();
        model.arrive();
        assert_eq!((model.swaps_today, model.missed_today, model.available()), (2, 1, 0));
    }
}
