//! `canopy-edge simulate`: simulated vehicles' CAN traffic to files, one per
//! vehicle: candump logs to replay, or raw lake Parquet.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use canopy::format::candump::write_frame;
use canopy::format::dbc::Database;
use canopy::format::lake::raw::RawWriter;

use crate::config::DriveCycleKind;
use crate::ev_model::{Params, Simulation};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Candump,
    Raw,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    #[arg(long, default_value = "dbc/ev_powertrain.dbc")]
    pub dbc: PathBuf,
    /// How many vehicles: sim-001, sim-002, ...
    #[arg(long, default_value_t = 1)]
    pub vehicles: usize,
    /// Vehicle id prefix.
    #[arg(long, default_value = "sim")]
    pub prefix: String,
    /// Simulated seconds.
    #[arg(long, default_value_t = 600.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "mixed")]
    pub cycle: Cycle,
    /// Vehicle number (1-based) whose pack develops an overheating module.
    #[arg(long)]
    pub overheat_vehicle: Option<usize>,
    #[arg(long, default_value_t = 7)]
    pub overheat_module: u8,
    /// Simulated seconds before the fault starts.
    #[arg(long, default_value_t = 120.0)]
    pub overheat_after: f64,
    /// Start of simulated time, µs since the epoch; now when absent.
    #[arg(long)]
    pub start_us: Option<i64>,
    #[arg(long, value_enum, default_value = "candump")]
    pub format: Output,
    /// Directory for `<vehicle>.log` or `<vehicle>.parquet`.
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Cycle {
    Urban,
    Highway,
    Mixed,
}

impl From<Cycle> for DriveCycleKind {
    fn from(c: Cycle) -> Self {
        match c {
            Cycle::Urban => Self::Urban,
            Cycle::Highway => Self::Highway,
            Cycle::Mixed => Self::Mixed,
        }
    }
}

/// Parameters of vehicle `n` (1-based) of a simulated fleet: its own seed and
/// starting charge, so no two vehicles drive alike.
pub fn fleet_params(n: usize, seed: u64, cycle: DriveCycleKind, start_us: i64) -> Params {
    Params {
        seed: seed.wrapping_mul(1000).wrapping_add(n as u64),
        cycle,
        overheat: None,
        start_us,
        initial_soc: 0.95 - 0.05 * ((n - 1) % 6) as f64,
    }
}

pub fn vehicle_name(prefix: &str, n: usize) -> String {
    format!("{prefix}-{n:03}")
}

pub fn run(args: &SimulateArgs) -> Result<()> {
    if args.vehicles == 0 {
        bail!("--vehicles: at least 1");
    }
    if args.overheat_vehicle.is_some_and(|v| v == 0 || v > args.vehicles) {
        bail!("--overheat-vehicle: a number from 1 to {}", args.vehicles);
    }
    let db = Arc::new(Database::load(&args.dbc)?);
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let start_us = args.start_us.unwrap_or_else(|| chrono::Utc::now().timestamp_micros());
    let end_us = start_us + (args.duration * 1e6) as i64;
    for n in 1..=args.vehicles {
        let name = vehicle_name(&args.prefix, n);
        let mut params = fleet_params(n, args.seed, args.cycle.into(), start_us);
        if args.overheat_vehicle == Some(n) {
            params.overheat = Some((args.overheat_module, args.overheat_after));
        }
        let mut sim = Simulation::new(db.clone(), &params)?;
        let start_km = sim.vehicle.state.odometer_km;
        let mut frames = 0u64;
        let path = match args.format {
            Output::Candump => {
                let path = args.output.join(format!("{name}.log"));
                let mut out =
                    BufWriter::new(File::create(&path).with_context(|| format!("creating {}", path.display()))?);
                while sim.next_time() < end_us {
                    write_frame(&mut out, &sim.next_frame()?)?;
                    frames += 1;
                }
                out.flush()?;
                path
            }
            Output::Raw => {
                let path = args.output.join(format!("{name}.parquet"));
                let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                let mut writer = RawWriter::new(BufWriter::new(file), &path.display().to_string())?;
                while sim.next_time() < end_us {
                    writer.push(sim.next_frame()?)?;
                    frames += 1;
                }
                let (mut sink, _) = writer.finish()?;
                sink.flush()?;
                path
            }
        };
        let state = &sim.vehicle.state;
        eprintln!(
            "{name}: {frames} frames to {}; SoC {:.1} %, hottest module {:.1} °C, {:.1} km driven",
            path.display(),
            state.soc_pct(),
            state.module_extreme(true).0,
            state.odometer_km - start_km,
        );
    }
    Ok(())
}
