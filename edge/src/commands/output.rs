//! Where frames go on the command line: a file in one of the [`LogFormat`]s.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use canopy::format::can_log::LogWriter;
use canopy::format::channels::Channels;
use canopy::format::lake::raw::RawWriter;

use super::input::{Frames, LogFormat};

/// What [`write`] wrote.
pub struct Written {
    pub frames: u64,
    /// Each bus and its channel, in the formats that number them (ASC, BLF).
    pub channels: Option<Channels>,
}

/// Writes `frames` to `path` in `format`. ASC and BLF logs start at
/// `first_us` (the earliest frame's time when the caller knows it; else
/// the first frame's, and an earlier one after it is an error).
pub fn write(format: LogFormat, path: &Path, frames: Frames, first_us: Option<i64>) -> Result<Written> {
    let name = path.display().to_string();
    let file = File::create(path).with_context(|| format!("creating {name}"))?;
    let mut frames = frames.peekable();
    let first_us = match (first_us, frames.peek()) {
        (Some(t), _) => t,
        (None, Some(Ok(frame))) => frame.ts_us,
        (None, _) => 0,
    };
    let mut count = 0u64;
    let mut each = |f: &mut dyn FnMut(&canopy::format::frame::CanFrame) -> Result<()>| -> Result<()> {
        for frame in frames.by_ref() {
            f(&frame?).with_context(|| format!("writing {name}"))?;
            count += 1;
        }
        Ok(())
    };
    let channels = match format.log() {
        None => {
            let mut writer = RawWriter::new(BufWriter::new(file), &name)?;
            each(&mut |f| Ok(writer.push(f.clone())?))?;
            let (mut sink, _) = writer.finish()?;
            sink.flush()?;
            None
        }
        Some(log) => {
            let mut writer = LogWriter::new(log, BufWriter::new(file), first_us)?;
            each(&mut |f| Ok(writer.write(f)?))?;
            let channels = writer.channels().cloned();
            writer.finish()?;
            channels
        }
    };
    Ok(Written {
        frames: count,
        channels,
    })
}

/// The earliest frame's time (a pass over them), where a log starts in the
/// formats that start at it (ASC, BLF): a log need not be in time order.
pub fn earliest(frames: Frames) -> Result<Option<i64>> {
    let mut first: Option<i64> = None;
    for frame in frames {
        let t = frame?.ts_us;
        first = Some(first.map_or(t, |f| f.min(t)));
    }
    Ok(first)
}

/// Says on stderr how many frames went where, and which channel each bus became.
pub fn report(written: &Written, path: &Path) {
    eprintln!("{} frames written to {}", written.frames, path.display());
    if let Some(channels) = &written.channels {
        for (bus, channel) in channels.assigned() {
            eprintln!("  bus {bus} is channel {channel}");
        }
    }
}
