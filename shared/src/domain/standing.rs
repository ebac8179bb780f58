//! What a vehicle is doing, as the fleet's counts and indexes keep it: its
//! status, from its newest message, and when it was last heard, in
//! [`HEARD_BUCKET_MS`] steps so that a vehicle reporting every few seconds
//! moves in the indexes once per step, not per message.

use serde::{Deserialize, Serialize};

use super::telemetry::Telemetry;

/// The step of "last heard" in the fleet's indexes.
pub const HEARD_BUCKET_MS: i64 = 5 * 60 * 1000;

/// The fleet's sorted listings move a vehicle every this many steps (15
/// minutes), or when its status changes: its readings are taken then, and
/// "last heard" sorts by these longer steps. Each move rewrites its sorted
/// entries in a transaction, so this is what they cost (docs/fleet.md).
pub const RANK_STEPS: i64 = 3;

/// How long a vehicle may go unheard before it counts as silent, unless configured.
pub const DEFAULT_SILENT_AFTER_MS: i64 = 15 * 60 * 1000;

/// How long a vehicle counts as alerting after it last tripped a rule (in
/// whole steps, so it ends up to one step later).
pub const ALERTING_FOR_MS: i64 = 15 * 60 * 1000;

/// Below this speed a vehicle stands (km/h).
const MOVING_KPH: f64 = 1.0;
/// Current into the pack (negative: charge or regeneration) that, standing, is charging (A).
const CHARGING_A: f64 = -1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Driving,
    Charging,
    /// Heard, standing, not charging.
    Parked,
    /// Not heard for longer than the silence allowance.
    Silent,
}

impl Status {
    pub const ALL: [Status; 4] = [Self::Driving, Self::Charging, Self::Parked, Self::Silent];

    pub fn name(self) -> &'static str {
        match self {
            Self::Driving => "driving",
            Self::Charging => "charging",
            Self::Parked => "parked",
            Self::Silent => "silent",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// What `t` says the vehicle is doing: never silent, a message is a sign of life.
    pub fn of(t: &Telemetry) -> Self {
        if t.speed_kph >= MOVING_KPH {
            Self::Driving
        } else if t.pack_current_a <= CHARGING_A {
            Self::Charging
        } else {
            Self::Parked
        }
    }
}

/// What the fleet's counts count and its listings filter by: a status, or
/// alerting, which a vehicle is beside its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    Status(Status),
    /// Tripped an alert rule within [`ALERTING_FOR_MS`].
    Alerting,
}

impl Filter {
    pub const ALL: [Filter; 5] = [
        Self::Status(Status::Driving),
        Self::Status(Status::Charging),
        Self::Status(Status::Parked),
        Self::Status(Status::Silent),
        Self::Alerting,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Status(status) => status.name(),
            Self::Alerting => "alerting",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl From<Status> for Filter {
    fn from(status: Status) -> Self {
        Self::Status(status)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{name}` is none of driving, charging, parked, silent, alerting"
            ))
        })
    }
}

/// What the fleet's listings sort by, besides id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// When the vehicle was last heard (its five-minute step).
    LastHeard,
    /// State of charge, in whole percent.
    SocPct,
    /// The hottest cell, in whole °C.
    CellTempMaxC,
}

impl Order {
    pub const ALL: [Order; 3] = [Self::LastHeard, Self::SocPct, Self::CellTempMaxC];

    /// As the API and the latest state name the field.
    pub fn name(self) -> &'static str {
        match self {
            Self::LastHeard => "last_heard",
            Self::SocPct => "soc_pct",
            Self::CellTempMaxC => "cell_temp_max_c",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// A vehicle's readings as the fleet's sorted listings rank it, in whole
/// units (none where a reading is not a number).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readings {
    pub soc_pct: Option<i64>,
    pub cell_temp_max_c: Option<i64>,
}

impl Readings {
    pub fn of(t: &Telemetry) -> Self {
        // Saturating: a reading past i64 is a corrupt one, ranked at the end.
        let whole = |v: f64| v.is_finite().then(|| v.floor() as i64);
        Self {
            soc_pct: whole(t.soc_pct),
            cell_temp_max_c: whole(t.cell_temp_max_c),
        }
    }
}

/// A vehicle's status, when it was last heard (in [`HEARD_BUCKET_MS`] steps
/// since the epoch), and its readings then.
///
/// The readings ride along: a vehicle moves in the indexes when its status
/// or step changes ([`Standing::moved_from`]), and its readings are taken
/// when it also moves in the sorted listings ([`Standing::reranked_from`]),
/// so they rank it by readings at most [`RANK_STEPS`] steps old without a
/// write per reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub status: Status,
    pub heard: i64,
    pub readings: Readings,
}

impl Standing {
    /// As `t` tells it: heard when the cloud received it (its own clock when that is unknown).
    pub fn of(t: &Telemetry) -> Self {
        let heard_ms = t.received_at_ms.unwrap_or(t.ts_us() / 1000);
        Self {
            status: Status::of(t),
            heard: heard_bucket(heard_ms),
            readings: Readings::of(t),
        }
    }

    /// A standing with no readings (a vehicle's status alone).
    pub fn new(status: Status, heard: i64) -> Self {
        Self {
            status,
            heard,
            readings: Readings::default(),
        }
    }

    /// Whether the vehicle moved in the indexes since `old`: its status or its step changed.
    pub fn moved_from(&self, old: &Standing) -> bool {
        (self.status, self.heard) != (old.status, old.heard)
    }

    /// Whether the vehicle moves in the sorted listings since `old`: its
    /// status changed, or it was heard in a later span of [`RANK_STEPS`] steps.
    pub fn reranked_from(&self, old: &Standing) -> bool {
        self.status != old.status || self.heard.div_euclid(RANK_STEPS) != old.heard.div_euclid(RANK_STEPS)
    }

    /// Where `order` ranks the vehicle; none without that reading.
    pub fn rank(&self, order: Order) -> Option<i64> {
        match order {
            // The span's first step, so a rank reads as a step.
            Order::LastHeard => Some(self.heard.div_euclid(RANK_STEPS) * RANK_STEPS),
            Order::SocPct => self.readings.soc_pct,
            Order::CellTempMaxC => self.readings.cell_temp_max_c,
        }
    }
}

/// The step `ms` (since the epoch) falls in.
pub fn heard_bucket(ms: i64) -> i64 {
    ms.div_euclid(HEARD_BUCKET_MS)
}

/// Vehicles last heard in a step before this one, at `now_ms`, are silent.
pub fn silent_before(now_ms: i64, silent_after_ms: i64) -> i64 {
    heard_bucket(now_ms - silent_after_ms)
}

/// Vehicles whose last tripped rule was in a step before this one, at
/// `now_ms`, no longer count as alerting.
pub fn calm_before(now_ms: i64) -> i64 {
    heard_bucket(now_ms - ALERTING_FOR_MS)
}

/// How many vehicles have each status, their total, and how many of them are alerting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: i64,
    pub driving: i64,
    pub charging: i64,
    pub parked: i64,
    pub silent: i64,
    pub alerting: i64,
}

impl Counts {
    /// Counts `n` more with `filter`; the total counts statuses (each vehicle has one).
    pub fn add(&mut self, filter: impl Into<Filter>, n: i64) {
        let filter = filter.into();
        if let Filter::Status(_) = filter {
            self.total += n;
        }
        *self.field(filter) += n;
    }

    pub fn get(&self, filter: impl Into<Filter>) -> i64 {
        match filter.into() {
            Filter::Status(Status::Driving) => self.driving,
            Filter::Status(Status::Charging) => self.charging,
            Filter::Status(Status::Parked) => self.parked,
            Filter::Status(Status::Silent) => self.silent,
            Filter::Alerting => self.alerting,
        }
    }

    fn field(&mut self, filter: Filter) -> &mut i64 {
        match filter {
            Filter::Status(Status::Driving) => &mut self.driving,
            Filter::Status(Status::Charging) => &mut self.charging,
            Filter::Status(Status::Parked) => &mut self.parked,
            Filter::Status(Status::Silent) => &mut self.silent,
            Filter::Alerting => &mut self.alerting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::device_id::DeviceId;

    /// A message at the epoch: SoC, pack V and A, cell V min/max, cell °C min/max, km/h.
    fn with(speed: f64, current: f64) -> Telemetry {
        let measures = [80.0, 370.0, current, 3.9, 4.0, 25.0, 30.0, speed];
        Telemetry::from_measures(
            DeviceId::new("veh-1").expect("id"),
            chrono::DateTime::UNIX_EPOCH,
            1,
            measures,
        )
    }

    #[test]
    fn moving_is_driving_even_regenerating_and_standing_with_current_in_is_charging() {
        assert_eq!(Status::of(&with(52.0, -12.5)), Status::Driving);
        assert_eq!(Status::of(&with(0.0, -30.0)), Status::Charging);
        assert_eq!(Status::of(&with(0.0, 2.0)), Status::Parked);
        assert_eq!(Status::of(&with(0.5, -0.5)), Status::Parked);
    }

    #[test]
    fn a_vehicle_is_heard_in_five_minute_steps_by_the_clouds_clock() {
        let mut t = with(0.0, 0.0);
        t.received_at_ms = Some(HEARD_BUCKET_MS * 7 + 1);
        assert_eq!(Standing::of(&t).heard, 7);
        assert_eq!(Standing::of(&t).rank(Order::SocPct), Some(80));
        assert_eq!(Standing::of(&t).rank(Order::CellTempMaxC), Some(30));
        assert_eq!(
            Standing::of(&t).rank(Order::LastHeard),
            Some(6),
            "in spans of three steps"
        );
        assert_eq!(silent_before(HEARD_BUCKET_MS * 10, DEFAULT_SILENT_AFTER_MS), 7);
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
        assert!(
            names
                .iter()
                .all(|n| Status::from_name(n).is_some_and(|s| s.name() == *n))
        );
        assert!(Filter::ALL.iter().all(|f| Filter::from_name(f.name()) == Some(*f)));
        assert_eq!(calm_before(HEARD_BUCKET_MS * 10), 7);
    }

    #[test]
    fn alerting_is_counted_beside_the_status_not_in_the_total() {
        let mut counts = Counts::default();
        counts.add(Status::Driving, 2);
        counts.add(Filter::Alerting, 1);
        assert_eq!((counts.total, counts.driving, counts.alerting), (2, 2, 1));
        assert_eq!(counts.get(Filter::Alerting), 1);
        let parsed: Filter = serde_json::from_str("\"alerting\"").expect("a filter");
        assert_eq!(parsed, Filter::Alerting);
        let refused = serde_json::from_str::<Filter>("\"asleep\"").expect_err("no such filter");
        assert!(refused.to_string().contains("asleep"), "{refused}");
    }
}
