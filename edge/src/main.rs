//! `canopy-edge`: the vehicle-side agent of Canopy.

mod decode;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(&args),
    }
}
