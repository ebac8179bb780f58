//! `canopy-edge export`: the frames of raw lake files (as the bucket holds
//! them under `raw/`) in a window, on some buses, of some ids, as one log
//! for an engineer's tool: candump, Vector ASC or BLF, CSV. Times, ids,
//! flags (extended, FD, BRS, ESI, remote, error), the bus and the payload
//! are kept as captured; ASC keeps that a frame was an error frame, not its
//! error class. The files are read in the order given, each in its order.

use std::path::PathBuf;

use anyhow::{Context, Result};
use canopy::format::can_log::FrameFilter;
use canopy::format::frame::CanFrame;
use chrono::DateTime;

use super::input::{self, Frames, LogFormat};
use super::output;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Raw lake Parquet files.
    #[arg(long, num_args = 1.., required = true)]
    pub raw: Vec<PathBuf>,
    /// What to write; by default from the output's extension.
    #[arg(long, value_enum)]
    pub format: Option<LogFormat>,
    #[arg(long)]
    pub output: PathBuf,
    /// The window's start, RFC 3339 (inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// The window's end, RFC 3339 (exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Only these buses (names, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub bus: Vec<String>,
    /// Only these identifiers (hex, comma-separated, as candump writes them).
    #[arg(long, value_delimiter = ',')]
    pub ids: Vec<String>,
}

/// Which frames go out.
#[derive(Debug, Default, Clone)]
pub struct Window {
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub only: FrameFilter,
}

impl Window {
    fn from_args(args: &ExportArgs) -> Result<Self> {
        let time = |name: &str, s: &Option<String>| -> Result<Option<i64>> {
            s.as_deref()
                .map(|s| {
                    DateTime::parse_from_rfc3339(s)
                        .map(|t| t.timestamp_micros())
                        .with_context(|| format!("--{name} {s:?} is not an RFC 3339 time"))
                })
                .transpose()
        };
        let ids = (args.ids.iter())
            .map(|id| {
                u32::from_str_radix(id.trim().trim_start_matches("0x"), 16)
                    .with_context(|| format!("--ids: {id:?} is not a hex identifier"))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            from_us: time("from", &args.from)?,
            to_us: time("to", &args.to)?,
            only: FrameFilter {
                buses: args.bus.iter().map(|b| b.trim().to_string()).collect(),
                ids,
            },
        })
    }

    pub fn holds(&self, frame: &CanFrame) -> bool {
        self.from_us.is_none_or(|t| frame.ts_us >= t)
            && self.to_us.is_none_or(|t| frame.ts_us < t)
            && self.only.holds(frame)
    }
}

/// The frames of `files` in `window`, in order.
fn frames(files: &[PathBuf], window: &Window) -> Result<Frames> {
    let mut all: Vec<Frames> = Vec::with_capacity(files.len());
    for path in files {
        all.push(input::open_as(path, LogFormat::Raw)?);
    }
    let window = window.clone();
    Ok(Box::new(all.into_iter().flatten().filter(move |f| match f {
        Ok(frame) => window.holds(frame),
        Err(_) => true,
    })))
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let format = LogFormat::for_path(args.format, &args.output)?;
    let window = Window::from_args(args)?;
    // ASC and BLF start at the earliest frame: a pass to find it.
    let earliest = match format {
        LogFormat::Asc | LogFormat::Blf => output::earliest(frames(&args.raw, &window)?)?,
        _ => None,
    };
    let written = output::write(format, &args.output, frames(&args.raw, &window)?, earliest)?;
    output::report(&written, &args.output);
    Ok(())
}
