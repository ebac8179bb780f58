//! `canopy-local`: the local stack's command line.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "canopy-local",
    version,
    about = "Canopy's local stack: AWS's part, played on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an MQTT broker on loopback until stopped.
    Broker {
        #[arg(long, default_value = "127.0.0.1:1883")]
        listen: SocketAddr,
    },
}

fn main() -> anyhow::Result<()> {
    canopy::logging::init_text();
    match Cli::parse().command {
        Command::Broker { listen } => canopy_local::broker::run(listen)?,
    }
    Ok(())
}
