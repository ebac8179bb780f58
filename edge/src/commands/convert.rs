//! `canopy-edge convert`: candump log to raw lake Parquet and back.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use canopy::format::candump::write_frame;
use canopy::format::lake::raw::RawWriter;

use super::input;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Raw lake Parquet.
    Raw,
    /// candump log.
    Candump,
}

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// A candump log; `-` reads standard input.
    #[arg(long, conflicts_with = "raw", required_unless_present = "raw")]
    pub candump: Option<String>,
    /// A raw lake Parquet file.
    #[arg(long)]
    pub raw: Option<PathBuf>,
    /// What to write: raw Parquet from a candump log, a candump log from raw Parquet.
    #[arg(long, value_enum)]
    pub to: Option<Target>,
    #[arg(long)]
    pub output: PathBuf,
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    let frames = input::open(args.candump.as_deref(), args.raw.as_deref())?;
    let target = args.to.unwrap_or(if args.raw.is_some() {
        Target::Candump
    } else {
        Target::Raw
    });
    let name = args.output.display().to_string();
    let file = File::create(&args.output).with_context(|| format!("creating {name}"))?;
    let mut count = 0u64;
    match target {
        Target::Raw => {
            let mut writer = RawWriter::new(BufWriter::new(file), &name)?;
            for frame in frames {
                writer.push(frame?)?;
                count += 1;
            }
            let (mut sink, _) = writer.finish()?;
            sink.flush().with_context(|| format!("writing {name}"))?;
        }
        Target::Candump => {
            let mut out = BufWriter::new(file);
            for frame in frames {
                write_frame(&mut out, &frame?).with_context(|| format!("writing {name}"))?;
                count += 1;
            }
            out.flush().with_context(|| format!("writing {name}"))?;
        }
    }
    eprintln!("{count} frames written to {name}");
    Ok(())
}
