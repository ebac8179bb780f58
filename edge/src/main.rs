//! `canopy-edge`: the vehicle-side agent of Canopy.
//!
//! `run` is the agent: [`source`] captures frames (SocketCAN, candump replay,
//! or, in the laptop build, the simulator over `ev_model`), [`spool`] keeps them crash-safe and
//! seals batches, [`upload`] ships sealed batches to S3, and [`aggregator`]
//! folds BMS signals into telemetry that [`mqtt`] publishes. [`agent`] wires
//! them under a [`config`]. The other commands are in [`commands`].

mod agent;
mod agent_counters;
mod aggregator;
mod commands;
mod config;
#[cfg(feature = "tools")]
mod ev_model;
mod iot_credentials;
mod mqtt;
mod source;
mod spool;
#[cfg(feature = "tools")]
mod station_model;
mod upload;

#[cfg(feature = "tools")]
use commands::{bench_codec, convert, decode, dtcs, export, simulate, station};

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "canopy-edge",
    version,
    about = "Canopy's vehicle agent: capture, spool, upload, telemetry, decode"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: capture, spool, seal, upload, publish telemetry.
    Run {
        /// The agent's TOML configuration.
        #[arg(long)]
        config: std::path::PathBuf,
        /// Only check the configuration and the files it names (DBC,
        /// certificates, keys), then exit.
        #[arg(long)]
        check: bool,
    },
    /// Simulate vehicles' CAN traffic into files (candump or raw Parquet).
    #[cfg(feature = "tools")]
    Simulate(simulate::SimulateArgs),
    /// An edge for a battery-swap station: its model, published over MQTT.
    #[cfg(feature = "tools")]
    Station(station::StationArgs),
    /// Decode a candump log or raw lake file with a DBC.
    #[cfg(feature = "tools")]
    Decode(decode::DecodeArgs),
    /// Convert a CAN log between raw lake Parquet, candump, Vector ASC and BLF (and CSV out).
    #[cfg(feature = "tools")]
    Convert(convert::ConvertArgs),
    /// Raw lake files' frames in a window, as a candump, ASC, BLF or CSV log.
    #[cfg(feature = "tools")]
    Export(export::ExportArgs),
    /// The J1939 DM1 trouble codes of a CAN log, transport-protocol transfers reassembled, as JSON lines.
    #[cfg(feature = "tools")]
    Dtcs(dtcs::DtcsArgs),
    /// Time the DBC codec alone on frames held in memory (for `make bench-decode`).
    #[command(hide = true)]
    #[cfg(feature = "tools")]
    BenchCodec(bench_codec::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config: path, check } => {
            canopy::runtime::logging::init_text();
            let config = config::Config::load(&path)?;
            if check {
                agent::check(&config).with_context(|| format!("in {}", path.display()))?;
                println!("{}: ok", path.display());
                return Ok(());
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let counters = runtime.block_on(agent::run(config))?;
            // The final counters on stdout, for scripts (logs go to stderr).
            println!("{counters}");
            Ok(())
        }
        #[cfg(feature = "tools")]
        Command::Simulate(args) => simulate::run(&args),
        #[cfg(feature = "tools")]
        Command::Station(args) => station::run(&args),
        #[cfg(feature = "tools")]
        Command::Decode(args) => decode::run(&args),
        #[cfg(feature = "tools")]
        Command::Convert(args) => convert::run(&args),
        #[cfg(feature = "tools")]
        Command::Export(args) => export::run(&args),
        #[cfg(feature = "tools")]
        Command::Dtcs(args) => dtcs::run(&args),
        #[cfg(feature = "tools")]
        Command::BenchCodec(args) => bench_codec::run(&args),
    }
}
