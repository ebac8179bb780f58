//! `canopy-edge convert`: a CAN log from one format to another, raw lake
//! Parquet, candump, Vector ASC and BLF in; any of them or CSV out. A log
//! converted to raw Parquet keeps its own times, ready for a backfill upload.

use std::path::PathBuf;

use anyhow::Result;

use super::input::{self, LogFormat};
use super::output;

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// The log to read; its format from its extension unless `--format` names it.
    #[arg(long, conflicts_with_all = ["candump", "raw"], required_unless_present_any = ["candump", "raw"])]
    pub input: Option<PathBuf>,
    /// The input's format, when its extension does not say.
    #[arg(long, value_enum)]
    pub format: Option<LogFormat>,
    /// A candump log; `-` reads standard input.
    #[arg(long, conflicts_with = "raw")]
    pub candump: Option<String>,
    /// A raw lake Parquet file.
    #[arg(long)]
    pub raw: Option<PathBuf>,
    /// What to write; by default from the output's extension (without one
    /// it names, raw Parquet from a candump log, a candump log from raw Parquet).
    #[arg(long, value_enum)]
    pub to: Option<LogFormat>,
    #[arg(long)]
    pub output: PathBuf,
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    // The file and its format; standard input (`--candump -`) is no file.
    let (path, from) = match (&args.input, &args.candump, &args.raw) {
        (Some(path), _, _) => (path.clone(), LogFormat::for_path(args.format, path)?),
        (None, Some(candump), _) => (PathBuf::from(candump), LogFormat::Candump),
        (None, None, Some(raw)) => (raw.clone(), LogFormat::Raw),
        (None, None, None) => anyhow::bail!("give --input, --candump or --raw"),
    };
    // An output whose extension names no format gets the other of raw and candump.
    let to = match (args.to, LogFormat::of(&args.output)) {
        (Some(to), _) => to,
        (None, Some(by_name)) => by_name,
        (None, None) if from == LogFormat::Raw => LogFormat::Candump,
        (None, None) => LogFormat::Raw,
    };
    let stdin = path.as_os_str() == "-";
    let earliest = match to {
        LogFormat::Asc | LogFormat::Blf if !stdin => output::earliest(input::open_as(&path, from)?)?,
        _ => None,
    };
    let frames = if stdin {
        input::open(Some("-"), None)?
    } else {
        input::open_as(&path, from)?
    };
    let written = output::write(to, &args.output, frames, earliest)?;
    output::report(&written, &args.output);
    Ok(())
}
