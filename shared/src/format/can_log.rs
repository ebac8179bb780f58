//! One writer for the CAN logs engineers' tools read: candump, Vector ASC
//! and BLF, CSV. The command line writes them to files and the API into
//! its answers; the formats themselves live in their own modules.

use std::io::{self, Seek, Write};

use super::asc::AscWriter;
use super::blf::BlfWriter;
use super::candump::write_frame;
use super::channels::Channels;
use super::frame::CanFrame;
use super::frames_csv::CsvWriter;

/// A CAN log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// can-utils candump log (`.log`).
    Candump,
    /// Vector ASC, text (`.asc`).
    Asc,
    /// Vector BLF, binary (`.blf`).
    Blf,
    /// One row per frame (`.csv`).
    Csv,
}

impl LogFormat {
    pub const ALL: [LogFormat; 4] = [Self::Candump, Self::Asc, Self::Blf, Self::Csv];

    /// The name a caller asks for it by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Candump => "candump",
            Self::Asc => "asc",
            Self::Blf => "blf",
            Self::Csv => "csv",
        }
    }

    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// A file's extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Candump => "log",
            other => other.name(),
        }
    }

    /// The media type an HTTP answer of this format carries.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Candump | Self::Asc => "text/plain; charset=utf-8",
            Self::Blf => "application/octet-stream",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// The buses and identifiers a log keeps; an empty set keeps every one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FrameFilter {
    /// Bus names.
    pub buses: std::collections::BTreeSet<String>,
    /// Identifiers without flags.
    pub ids: std::collections::BTreeSet<u32>,
}

impl FrameFilter {
    pub fn holds(&self, frame: &CanFrame) -> bool {
        (self.buses.is_empty() || self.buses.contains(&*frame.bus))
            && (self.ids.is_empty() || self.ids.contains(&frame.id.raw()))
    }
}

/// Writes frames in one [`LogFormat`] to `W`.
pub enum LogWriter<W: Write + Seek> {
    Candump(W),
    Asc(AscWriter<W>),
    Blf(BlfWriter<W>),
    Csv(CsvWriter<W>),
}

impl<W: Write + Seek> LogWriter<W> {
    /// A log of `format`; ASC and BLF logs start at `first_us` (no frame may
    /// come before it: the earliest frame's time).
    pub fn new(format: LogFormat, out: W, first_us: i64) -> io::Result<Self> {
        Ok(match format {
            LogFormat::Candump => Self::Candump(out),
            LogFormat::Asc => Self::Asc(AscWriter::new(out, first_us)?),
            LogFormat::Blf => Self::Blf(BlfWriter::new(out, first_us)?),
            LogFormat::Csv => Self::Csv(CsvWriter::new(out)?),
        })
    }

    pub fn write(&mut self, frame: &CanFrame) -> io::Result<()> {
        match self {
            Self::Candump(out) => write_frame(out, frame),
            Self::Asc(w) => w.write(frame),
            Self::Blf(w) => w.write(frame),
            Self::Csv(w) => w.write(frame),
        }
    }

    /// What the log went to, as far as written (BLF holds back up to a
    /// container's worth, about 128 KB before compression).
    pub fn get_ref(&self) -> &W {
        match self {
            Self::Candump(out) => out,
            Self::Asc(w) => w.get_ref(),
            Self::Blf(w) => w.get_ref(),
            Self::Csv(w) => w.get_ref(),
        }
    }

    /// Each bus and its channel, in the formats that number them (ASC, BLF).
    pub fn channels(&self) -> Option<&Channels> {
        match self {
            Self::Asc(w) => Some(w.channels()),
            Self::Blf(w) => Some(w.channels()),
            Self::Candump(_) | Self::Csv(_) => None,
        }
    }

    /// Ends the log (BLF writes its header and last container); the output, flushed.
    pub fn finish(self) -> io::Result<W> {
        let mut out = match self {
            Self::Candump(out) => out,
            Self::Asc(w) => w.finish()?,
            Self::Blf(w) => w.finish()?,
            Self::Csv(w) => w.finish()?,
        };
        out.flush()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_named_and_written() {
        let frame = CanFrame::new(
            1_700_000_000_123_456,
            crate::format::frame::BusName::from("can0"),
            crate::format::frame::CanId::standard(0x123).unwrap(),
            crate::format::frame::FrameFlags::empty(),
            &[1, 2, 3],
        )
        .unwrap();
        for format in LogFormat::ALL {
            assert_eq!(LogFormat::named(format.name()), Some(format));
            let mut writer = LogWriter::new(format, io::Cursor::new(Vec::new()), frame.ts_us).unwrap();
            writer.write(&frame).unwrap();
            let bytes = writer.finish().unwrap().into_inner();
            assert!(!bytes.is_empty(), "{format:?}");
        }
        assert_eq!(LogFormat::named("mf4"), None);
        assert_eq!(LogFormat::Candump.extension(), "log");
    }
}
