//! A physics-based EV, speaking `dbc/ev_powertrain.dbc`.
//!
//! A drive cycle sets the speed; road load (inertia, rolling resistance, drag)
//! gives wheel force, motor torque and speed, and electrical power; power over
//! pack voltage gives current. Each of the 96 cells integrates its own state
//! of charge (capacities vary cell to cell) and shows an open-circuit voltage
//! from an NMC curve less the drop over its internal resistance. Each of the
//! 12 modules heats by I²R and cools into the coolant loop; an optional fault
//! adds heat to one module until it overheats. Messages go out at the cycle
//! times the DBC gives (`GenMsgCycleTime`), encoded by the DBC codec.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use canopy::format::dbc::{Database, Message};
use canopy::format::frame::{BusName, CanFrame, FrameFlags};

use crate::config::DriveCycleKind;

pub const CELLS: usize = 96;
pub const MODULES: usize = 12;
const CELLS_PER_MODULE: usize = CELLS / MODULES;
/// Physics step.
const STEP_US: i64 = 10_000;

// Vehicle and pack constants: a mid-size EV with a 53 kWh, 96s1p NMC pack.
const MASS_KG: f64 = 1850.0;
const GRAVITY: f64 = 9.81;
const ROLLING: f64 = 0.011;
const AIR_DENSITY: f64 = 1.2;
const DRAG_AREA: f64 = 0.27 * 2.35;
const WHEEL_RADIUS_M: f64 = 0.34;
const GEAR_RATIO: f64 = 9.1;
const DRIVETRAIN_EFFICIENCY: f64 = 0.92;
const REGEN_LIMIT_W: f64 = 60_000.0;
const AUXILIARY_W: f64 = 450.0;
const CELL_CAPACITY_AH: f64 = 150.0;
const CELL_RESISTANCE_OHM: f64 = 0.0011;
const MODULE_HEAT_CAPACITY: f64 = 20_000.0; // J/K
const MODULE_TO_COOLANT: f64 = 15.0; // W/K
const FAULT_HEAT_W: f64 = 3_000.0;
const AMBIENT_C: f64 = 25.0;

/// Open-circuit voltage of an NMC cell by state of charge.
const OCV: [(f64, f64); 12] = [
    (0.00, 3.00),
    (0.05, 3.40),
    (0.10, 3.52),
    (0.20, 3.60),
    (0.30, 3.65),
    (0.40, 3.70),
    (0.50, 3.75),
    (0.60, 3.82),
    (0.70, 3.90),
    (0.80, 3.98),
    (0.90, 4.08),
    (1.00, 4.20),
];

pub fn ocv(soc: f64) -> f64 {
    let soc = soc.clamp(0.0, 1.0);
    let i = OCV.iter().position(|&(s, _)| s >= soc).unwrap_or(OCV.len() - 1).max(1);
    let ((s0, v0), (s1, v1)) = (OCV[i - 1], OCV[i]);
    v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
}

/// SplitMix64: small, fast, reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// What the simulated vehicle is doing, in physical units.
#[derive(Clone, Debug)]
pub struct State {
    pub t_s: f64,
    pub speed_mps: f64,
    pub accel_mps2: f64,
    pub odometer_km: f64,
    pub motor_rpm: f64,
    pub motor_torque_nm: f64,
    pub mech_power_kw: f64,
    pub pack_current_a: f64,
    pub pack_voltage_v: f64,
    pub cell_soc: [f64; CELLS],
    pub cell_v: [f64; CELLS],
    pub module_t: [f64; MODULES],
    pub coolant_in_c: f64,
    pub coolant_out_c: f64,
    pub inverter_c: f64,
    pub motor_c: f64,
    /// Frame counters for the multiplexed messages and alive counters.
    pub cell_group: u8,
    pub temp_group: u8,
    pub counter: u8,
}

impl State {
    pub fn soc_pct(&self) -> f64 {
        100.0 * self.cell_soc.iter().sum::<f64>() / CELLS as f64
    }
    pub fn cell_extreme(&self, max: bool) -> (f64, usize) {
        extreme(&self.cell_v, max)
    }
    pub fn module_extreme(&self, max: bool) -> (f64, usize) {
        extreme(&self.module_t, max)
    }
}

fn extreme(values: &[f64], max: bool) -> (f64, usize) {
    let mut best = (values[0], 0);
    for (i, &v) in values.iter().enumerate() {
        if (max && v > best.0) || (!max && v < best.0) {
            best = (v, i);
        }
    }
    best
}

/// Parameters of one simulated vehicle.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    pub cycle: DriveCycleKind,
    /// The module (1..=12) that overheats, and when the fault starts.
    pub overheat: Option<(u8, f64)>,
    pub start_us: i64,
    pub initial_soc: f64,
}

/// A drive cycle: phases of (target speed, duration), with bounded acceleration.
struct DriveCycle {
    kind: DriveCycleKind,
    rng: Rng,
    target_mps: f64,
    phase_left_s: f64,
    highway: bool,
}

impl DriveCycle {
    fn new(kind: DriveCycleKind, seed: u64) -> Self {
        Self {
            kind,
            rng: Rng::new(seed.wrapping_mul(31).wrapping_add(7)),
            target_mps: 0.0,
            phase_left_s: 5.0,
            highway: kind == DriveCycleKind::Highway,
        }
    }

    fn target(&mut self, dt: f64) -> f64 {
        self.phase_left_s -= dt;
        if self.phase_left_s <= 0.0 {
            if self.kind == DriveCycleKind::Mixed && self.rng.range(0.0, 1.0) < 0.15 {
                self.highway = !self.highway;
            }
            let (kph, seconds) = if self.highway {
                (self.rng.range(95.0, 130.0), self.rng.range(20.0, 60.0))
            } else if self.target_mps > 0.5 && self.rng.range(0.0, 1.0) < 0.4 {
                (0.0, self.rng.range(5.0, 20.0)) // a stop
            } else {
                (self.rng.range(25.0, 55.0), self.rng.range(10.0, 35.0))
            };
            self.target_mps = kph / 3.6;
            self.phase_left_s = seconds;
        }
        self.target_mps
    }
}

/// The vehicle's physics.
pub struct Vehicle {
    pub state: State,
    cycle: DriveCycle,
    capacity_ah: [f64; CELLS],
    resistance: [f64; CELLS],
    ocv_offset: [f64; CELLS],
    overheat: Option<(usize, f64)>,
}

impl Vehicle {
    pub fn new(params: &Params) -> Self {
        let mut rng = Rng::new(params.seed);
        let mut capacity_ah = [0.0; CELLS];
        let mut resistance = [0.0; CELLS];
        let mut ocv_offset = [0.0; CELLS];
        let mut cell_soc = [0.0; CELLS];
        for i in 0..CELLS {
            capacity_ah[i] = CELL_CAPACITY_AH * rng.range(0.985, 1.015);
            resistance[i] = CELL_RESISTANCE_OHM * rng.range(0.9, 1.1);
            ocv_offset[i] = rng.range(-0.003, 0.003);
            cell_soc[i] = (params.initial_soc + rng.range(-0.004, 0.004)).clamp(0.0, 1.0);
        }
        let mut module_t = [0.0; MODULES];
        for t in &mut module_t {
            *t = AMBIENT_C + rng.range(-0.5, 0.5);
        }
        let mut vehicle = Self {
            state: State {
                t_s: 0.0,
                speed_mps: 0.0,
                accel_mps2: 0.0,
                odometer_km: 12_000.0 + rng.range(0.0, 30_000.0),
                motor_rpm: 0.0,
                motor_torque_nm: 0.0,
                mech_power_kw: 0.0,
                pack_current_a: 0.0,
                pack_voltage_v: 0.0,
                cell_soc,
                cell_v: [0.0; CELLS],
                module_t,
                coolant_in_c: AMBIENT_C,
                coolant_out_c: AMBIENT_C,
                inverter_c: AMBIENT_C,
                motor_c: AMBIENT_C,
                cell_group: 0,
                temp_group: 0,
                counter: 0,
            },
            cycle: DriveCycle::new(params.cycle, params.seed),
            capacity_ah,
            resistance,
            ocv_offset,
            overheat: params
                .overheat
                .map(|(m, after)| (usize::from(m.clamp(1, MODULES as u8)) - 1, after)),
        };
        vehicle.update_voltages();
        vehicle
    }

    fn update_voltages(&mut self) {
        let s = &mut self.state;
        for i in 0..CELLS {
            s.cell_v[i] = ocv(s.cell_soc[i]) + self.ocv_offset[i] - s.pack_current_a * self.resistance[i];
        }
        s.pack_voltage_v = s.cell_v.iter().sum();
    }

    /// Advances the physics by `dt` seconds.
    pub fn step(&mut self, dt: f64) {
        let target = self.cycle.target(dt);
        let s = &mut self.state;
        s.t_s += dt;
        let max_step = if target > s.speed_mps { 2.2 * dt } else { 3.0 * dt };
        let new_speed = s.speed_mps + (target - s.speed_mps).clamp(-max_step, max_step);
        s.accel_mps2 = (new_speed - s.speed_mps) / dt;
        s.speed_mps = new_speed;
        s.odometer_km += s.speed_mps * dt / 1000.0;

        let rolling = if s.speed_mps > 0.01 {
            ROLLING * MASS_KG * GRAVITY
        } else {
            0.0
        };
        let force = MASS_KG * s.accel_mps2 + rolling + 0.5 * AIR_DENSITY * DRAG_AREA * s.speed_mps * s.speed_mps;
        let wheel_power = force * s.speed_mps;
        s.motor_rpm = s.speed_mps / WHEEL_RADIUS_M * GEAR_RATIO * 60.0 / std::f64::consts::TAU;
        let electrical = if wheel_power >= 0.0 {
            wheel_power / DRIVETRAIN_EFFICIENCY
        } else {
            (wheel_power * DRIVETRAIN_EFFICIENCY).max(-REGEN_LIMIT_W)
        };
        // Torque the motor delivers: regeneration beyond its limit is braked by friction.
        let motor_power = if wheel_power >= 0.0 {
            wheel_power
        } else {
            electrical / DRIVETRAIN_EFFICIENCY
        };
        let omega = s.motor_rpm * std::f64::consts::TAU / 60.0;
        s.motor_torque_nm = if omega > 1.0 { motor_power / omega } else { 0.0 };
        s.mech_power_kw = motor_power / 1000.0;
        let voltage = s.pack_voltage_v.max(200.0);
        s.pack_current_a = (electrical + AUXILIARY_W) / voltage;

        let current = s.pack_current_a;
        for i in 0..CELLS {
            s.cell_soc[i] = (s.cell_soc[i] - current * dt / (3600.0 * self.capacity_ah[i])).clamp(0.0, 1.0);
        }
        let coolant = s.coolant_in_c;
        let mut heat_to_coolant = 0.0;
        for m in 0..MODULES {
            let r: f64 = self.resistance[m * CELLS_PER_MODULE..(m + 1) * CELLS_PER_MODULE]
                .iter()
                .sum();
            let mut heat = current * current * r;
            if let Some((module, after)) = self.overheat
                && module == m
                && s.t_s >= after
            {
                heat += FAULT_HEAT_W;
            }
            let cooling = MODULE_TO_COOLANT * (s.module_t[m] - coolant);
            s.module_t[m] += (heat - cooling) * dt / MODULE_HEAT_CAPACITY;
            heat_to_coolant += cooling;
        }
        // The chiller holds the coolant near 22 °C once the pack is warm.
        let hottest = s.module_t.iter().cloned().fold(f64::MIN, f64::max);
        let setpoint = if hottest > 32.0 { 22.0 } else { AMBIENT_C };
        s.coolant_in_c += ((setpoint - s.coolant_in_c) * 0.02 + heat_to_coolant / 40_000.0) * dt;
        s.coolant_out_c = s.coolant_in_c + heat_to_coolant / (4180.0 * 0.15);
        let drive_heat = (s.mech_power_kw.abs() * 0.04).max(0.0);
        s.inverter_c += ((AMBIENT_C + 5.0 + drive_heat * 3.0 - s.inverter_c) * 0.01) * dt;
        s.motor_c += ((AMBIENT_C + 8.0 + drive_heat * 5.0 - s.motor_c) * 0.005) * dt;
        self.update_voltages();
    }
}

/// Picks a signal's physical value from the vehicle's state.
type Pick = Box<dyn Fn(&State) -> f64 + Send>;

/// One scheduled message: its index in the DBC and a value source per signal.
struct Scheduled {
    message: usize,
    cycle_us: i64,
    picks: Vec<Pick>,
    fd: bool,
}

/// A vehicle on the bus: the physics, and its messages at their cycle times.
pub struct Simulation {
    db: Arc<Database>,
    pub vehicle: Vehicle,
    schedule: Vec<Scheduled>,
    queue: BinaryHeap<Reverse<(i64, usize)>>,
    now_us: i64,
    bus: BusName,
    rng: Rng,
}

impl Simulation {
    pub fn new(db: Arc<Database>, params: &Params) -> Result<Self> {
        let mut schedule = Vec::new();
        for (index, message) in db.messages().iter().enumerate() {
            let picks = message
                .signals
                .iter()
                .map(|s| pick(&message.name, &s.name))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("simulating message {}", message.name))?;
            let cycle_us = i64::from(message.cycle_time_ms.unwrap_or(100)) * 1000;
            schedule.push(Scheduled {
                message: index,
                cycle_us,
                picks,
                fd: message.is_fd,
            });
        }
        if schedule.is_empty() {
            bail!("the DBC has no messages to simulate");
        }
        let mut rng = Rng::new(params.seed.wrapping_add(99));
        let mut queue = BinaryHeap::new();
        for (i, s) in schedule.iter().enumerate() {
            // Messages start staggered within their first cycle, as real ECUs do.
            let offset = (rng.range(0.0, 1.0) * s.cycle_us as f64) as i64;
            queue.push(Reverse((params.start_us + offset, i)));
        }
        Ok(Self {
            db,
            vehicle: Vehicle::new(params),
            schedule,
            queue,
            now_us: params.start_us,
            bus: Arc::from("can0"),
            rng,
        })
    }

    /// Time of the next frame.
    pub fn next_time(&self) -> i64 {
        self.queue.peek().map_or(self.now_us, |Reverse((t, _))| *t)
    }

    /// The next frame, with the physics advanced to its time.
    pub fn next_frame(&mut self) -> Result<CanFrame> {
        let Some(Reverse((t, i))) = self.queue.pop() else {
            bail!("empty schedule")
        };
        while self.now_us + STEP_US <= t {
            self.now_us += STEP_US;
            self.vehicle.step(STEP_US as f64 / 1e6);
        }
        let jitter = (self.rng.range(-0.02, 0.02) * self.schedule[i].cycle_us as f64) as i64;
        self.queue.push(Reverse((t + self.schedule[i].cycle_us + jitter, i)));

        let scheduled = &self.schedule[i];
        let message: &Message = &self.db.messages()[scheduled.message];
        let state = &self.vehicle.state;
        let payload = message.encode(|index, _| Some(scheduled.picks[index](state)))?;
        let s = &mut self.vehicle.state;
        s.counter = s.counter.wrapping_add(1);
        if message.name == "BMS_CellVoltages" {
            s.cell_group = (s.cell_group + 1) % (CELLS / 4) as u8;
        }
        if message.name == "BMS_ModuleTemperatures" {
            s.temp_group = (s.temp_group + 1) % 2;
        }
        let flags = if scheduled.fd {
            FrameFlags::FD.union(FrameFlags::BRS)
        } else {
            FrameFlags::empty()
        };
        Ok(CanFrame::new(t, self.bus.clone(), message.id, flags, &payload)?)
    }
}

/// Where each signal of the EV network gets its value.
fn pick(message: &str, signal: &str) -> Result<Pick> {
    let cell = |prefix: &str| signal.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok());
    if let Some(n) = cell("CellVoltage").filter(|n| (1..=CELLS).contains(n)) {
        return Ok(Box::new(move |s| s.cell_v[n - 1].clamp(1.5, 5.5)));
    }
    if let Some(n) = cell("ModuleTemp").filter(|n| (1..=MODULES).contains(n)) {
        return Ok(Box::new(move |s| s.module_t[n - 1].clamp(-40.0, 87.5)));
    }
    let counter = |s: &State| f64::from(s.counter % 16);
    Ok(match (message, signal) {
        (_, "PackVoltage") => Box::new(|s| s.pack_voltage_v.clamp(0.0, 500.0)),
        (_, "PackCurrent") => Box::new(|s| s.pack_current_a.clamp(-1000.0, 1000.0)),
        (_, "StateOfCharge") => Box::new(|s| s.soc_pct().clamp(0.0, 100.0)),
        (_, "StateOfHealth") => Box::new(|_| 97.0),
        (_, "BmsState") => Box::new(|_| 3.0),
        (_, "ContactorsClosed") => Box::new(|_| 1.0),
        (_, "IsolationFault") => Box::new(|_| 0.0),
        (_, "CellVoltageMax") => Box::new(|s| s.cell_extreme(true).0),
        (_, "CellVoltageMin") => Box::new(|s| s.cell_extreme(false).0),
        (_, "CellVoltageMaxIdx") => Box::new(|s| (s.cell_extreme(true).1 + 1) as f64),
        (_, "CellVoltageMinIdx") => Box::new(|s| (s.cell_extreme(false).1 + 1) as f64),
        (_, "BalancingActive") => Box::new(|s| f64::from(u8::from(s.soc_pct() > 80.0))),
        (_, "CellTempMax") => Box::new(|s| s.module_extreme(true).0.clamp(-40.0, 87.5)),
        (_, "CellTempMin") => Box::new(|s| s.module_extreme(false).0.clamp(-40.0, 87.5)),
        (_, "CellTempMaxModule") => Box::new(|s| (s.module_extreme(true).1 + 1) as f64),
        (_, "CellTempMinModule") => Box::new(|s| (s.module_extreme(false).1 + 1) as f64),
        (_, "CoolingRequest") => Box::new(|s| match s.module_extreme(true).0 {
            t if t > 45.0 => 3.0,
            t if t > 38.0 => 2.0,
            t if t > 32.0 => 1.0,
            _ => 0.0,
        }),
        (_, "HeatingRequest") => Box::new(|s| f64::from(u8::from(s.module_extreme(false).0 < 5.0))),
        (_, "EnergyRemaining") => Box::new(|s| (s.soc_pct() / 100.0 * 53.3 * 1000.0).round() / 1000.0),
        (_, "PowerLimitDischarge") => Box::new(|s| if s.module_extreme(true).0 > 55.0 { 60.0 } else { 150.0 }),
        (_, "PowerLimitCharge") => Box::new(|s| if s.soc_pct() > 90.0 { 20.0 } else { 60.0 }),
        (_, "CellVoltageGroup") => Box::new(|s| f64::from(s.cell_group)),
        (_, "CellVoltageCounter") => Box::new(|s| f64::from(s.counter)),
        (_, "ModuleTempGroup") => Box::new(|s| f64::from(s.temp_group)),
        (_, "BalancingMaskCells01to64") | (_, "BalancingMaskCells65to96") => Box::new(|_| 0.0),
        (_, "BalancingCurrentMax") => Box::new(|_| 0.0),
        (_, "LifetimeThroughput") => Box::new(|s| (s.odometer_km * 0.45 / 10.0).round() * 10.0),
        (_, "TorqueRequest") | (_, "MotorTorque") => Box::new(|s| s.motor_torque_nm.clamp(-450.0, 450.0)),
        (_, "SpeedLimitForward") => Box::new(|_| 16000.0),
        (_, "SpeedLimitReverse") => Box::new(|_| 3000.0),
        (_, "InverterEnable") => Box::new(|_| 1.0),
        (_, "TorqueAliveCounter") | (_, "PackAliveCounter") | (_, "McuAliveCounter") => Box::new(counter),
        (_, "TorqueChecksum") => Box::new(|s| f64::from(s.counter.wrapping_mul(37))),
        (_, "MotorSpeed") => Box::new(|s| s.motor_rpm.clamp(-16000.0, 16000.0)),
        (_, "InverterTemp") => Box::new(|s| s.inverter_c.clamp(-40.0, 150.0)),
        (_, "MotorTemp") => Box::new(|s| s.motor_c.clamp(-40.0, 180.0)),
        (_, "McuState") => Box::new(|_| 4.0),
        (_, "DerateActive") => Box::new(|_| 0.0),
        (_, "DcBusVoltage") => Box::new(|s| s.pack_voltage_v.clamp(0.0, 1000.0)),
        (_, "DcBusCurrent") => Box::new(|s| s.pack_current_a.clamp(-1000.0, 1000.0)),
        (_, "MechanicalPower") => Box::new(|s| s.mech_power_kw.clamp(-300.0, 300.0)),
        (_, "VehicleSpeed") => Box::new(|s| (s.speed_mps * 3.6).clamp(0.0, 250.0)),
        (_, "AcceleratorPedal") => Box::new(|s| (s.mech_power_kw.max(0.0) / 1.5).clamp(0.0, 100.0)),
        (_, "BrakePedal") => Box::new(|s| (-s.accel_mps2 * 25.0).clamp(0.0, 100.0)),
        (_, "GearSelector") => Box::new(|_| 3.0),
        (_, "DriveMode") => Box::new(|_| 2.0),
        (_, "Odometer") => Box::new(|s| s.odometer_km.clamp(0.0, 1_677_721.5)),
        (_, "CoolantInletTemp") => Box::new(|s| s.coolant_in_c.clamp(-40.0, 140.0)),
        (_, "CoolantOutletTemp") => Box::new(|s| s.coolant_out_c.clamp(-40.0, 140.0)),
        (_, "PumpSpeed") => Box::new(|s| if s.module_extreme(true).0 > 30.0 { 80.0 } else { 35.0 }),
        (_, "CoolantFlowRate") => Box::new(|s| if s.module_extreme(true).0 > 30.0 { 12.0 } else { 6.0 }),
        (_, "RadiatorFanDuty") => Box::new(|s| ((s.coolant_in_c - 25.0) * 10.0).clamp(0.0, 100.0)),
        (_, "ChillerActive") => Box::new(|s| f64::from(u8::from(s.module_extreme(true).0 > 32.0))),
        (_, "ValvePosition") => Box::new(|_| 2.0),
        (_, "MaxChargeVoltage") => Box::new(|_| 403.2),
        (_, "MaxChargeCurrent") => Box::new(|_| 0.0),
        (_, "ChargeControl") => Box::new(|_| 1.0),
        (_, "OutputVoltage") | (_, "OutputCurrent") | (_, "AcInputVoltage") => Box::new(|_| 0.0),
        (_, "HardwareFault") | (_, "ChargerOverTemperature") | (_, "AcInputFault") => Box::new(|_| 0.0),
        (_, "ChargerState") => Box::new(|_| 7.0),
        (_, "ChargerTemp") => Box::new(|_| AMBIENT_C),
        _ => bail!("no simulated value for signal {signal}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Arc<Database> {
        Arc::new(Database::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../dbc/ev_powertrain.dbc")).unwrap())
    }

    fn params(overheat: Option<(u8, f64)>) -> Params {
        Params {
            seed: 7,
            cycle: DriveCycleKind::Mixed,
            overheat,
            start_us: 1_700_000_000_000_000,
            initial_soc: 0.85,
        }
    }

    #[test]
    fn the_ocv_curve_is_monotonic_and_bounded() {
        let mut last = 0.0;
        for i in 0..=100 {
            let v = ocv(f64::from(i) / 100.0);
            assert!(v >= last && (3.0..=4.2).contains(&v));
            last = v;
        }
    }

    #[test]
    fn driving_drains_the_pack_and_every_message_goes_out_at_its_rate() {
        let db = db();
        let mut sim = Simulation::new(db.clone(), &params(None)).unwrap();
        let mut counts = std::collections::HashMap::new();
        let mut last_ts = 0;
        let mut values = Vec::new();
        let end = 1_700_000_000_000_000 + 300_000_000;
        while sim.next_time() < end {
            let f = sim.next_frame().unwrap();
            assert!(f.ts_us >= last_ts, "frames come in time order");
            last_ts = f.ts_us;
            let m = db.lookup(f.id).unwrap();
            m.decode(f.data(), &mut values).unwrap();
            *counts.entry(m.name.clone()).or_insert(0u32) += 1;
        }
        // 300 s: a 10 ms message about 30,000 times, a 1 s one about 300.
        assert!(
            (29_000..=31_000).contains(&counts["MCU_Status"]),
            "{}",
            counts["MCU_Status"]
        );
        assert!((290..=310).contains(&counts["OBC_Status"]), "{}", counts["OBC_Status"]);
        let s = &sim.vehicle.state;
        assert!(s.soc_pct() < 85.0 && s.soc_pct() > 70.0, "soc {}", s.soc_pct());
        assert!(s.odometer_km > 12_000.0);
        let (vmax, _) = s.cell_extreme(true);
        let (vmin, _) = s.cell_extreme(false);
        assert!(vmax > vmin && vmax - vmin < 0.1, "{vmin}..{vmax}");
        assert!(s.module_extreme(true).0 < 45.0, "a healthy pack stays cool");
    }

    #[test]
    fn an_overheating_module_passes_60_degrees() {
        let mut sim = Simulation::new(db(), &params(Some((7, 60.0)))).unwrap();
        while sim.next_time() < 1_700_000_000_000_000 + 600_000_000 {
            sim.next_frame().unwrap();
        }
        let (t, module) = sim.vehicle.state.module_extreme(true);
        assert_eq!(module, 6);
        assert!(t > 60.0, "{t}");
    }
}
