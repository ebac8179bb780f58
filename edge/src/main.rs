//! `canopy-edge`: the vehicle-side agent of Canopy.

mod bench;
mod convert;
mod decode;
mod input;

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
    /// Decode a candump log or raw lake file with a DBC.
    Decode(decode::DecodeArgs),
    /// Convert between candump logs and raw lake Parquet.
    Convert(convert::ConvertArgs),
    /// Time the DBC codec alone on frames held in memory (for `make bench-decode`).
    #[command(hide = true)]
    BenchCodec(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::BenchCodec(args) => bench::run(&args),
    }
}
