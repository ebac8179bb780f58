//! Where frames come from on the command line: a candump log or a raw lake file.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use canopy::format::candump::{BusNames, CandumpReader};
use canopy::format::frame::CanFrame;
use canopy::format::lake::raw::{RawBatch, RawFileReader};

pub type Frames = Box<dyn Iterator<Item = Result<CanFrame>> + Send>;

/// Frames of `--candump PATH` (`-` for standard input) or `--raw PATH`.
pub fn open(candump: Option<&str>, raw: Option<&Path>) -> Result<Frames> {
    match (candump, raw) {
        (Some(path), _) => Ok(Box::new(candump_frames(path)?)),
        (None, Some(path)) => Ok(Box::new(RawFrames::new(RawFileReader::open(path)?))),
        (None, None) => anyhow::bail!("give --candump or --raw"),
    }
}

pub fn candump_frames(path: &str) -> Result<impl Iterator<Item = Result<CanFrame>> + use<>> {
    let input: Box<dyn BufRead + Send> = if path == "-" {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(path).with_context(|| format!("opening {path}"))?,
        ))
    };
    Ok(CandumpReader::new(input, path).map(|r| r.map_err(anyhow::Error::from)))
}

/// The frames of a raw lake file, batch by batch.
pub struct RawFrames {
    reader: RawFileReader,
    batch: Option<RawBatch>,
    next: usize,
    buses: BusNames,
}

impl RawFrames {
    pub fn new(reader: RawFileReader) -> Self {
        Self {
            reader,
            batch: None,
            next: 0,
            buses: BusNames::default(),
        }
    }
}

impl Iterator for RawFrames {
    type Item = Result<CanFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = &self.batch
                && self.next < batch.len()
            {
                let i = self.next;
                self.next += 1;
                return Some(
                    batch
                        .row(i)
                        .map_err(anyhow::Error::from)
                        .and_then(|row| row.to_frame(&mut self.buses).map_err(anyhow::Error::from)),
                );
            }
            match self.reader.next()? {
                Ok(batch) => {
                    self.batch = Some(batch);
                    self.next = 0;
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// Frames read and parsed a chunk ahead on a thread of their own, so parsing
/// a log overlaps with what the caller does with its frames (decoding and
/// writing Parquet). The first error ends the stream, as it would the source.
pub fn read_ahead(frames: Frames) -> impl Iterator<Item = Result<CanFrame>> {
    const CHUNK: usize = 4_096;
    let (chunks, incoming) = std::sync::mpsc::sync_channel::<Vec<Result<CanFrame>>>(4);
    std::thread::spawn(move || {
        let mut frames = frames.peekable();
        while frames.peek().is_some() {
            let mut chunk = Vec::with_capacity(CHUNK);
            for frame in frames.by_ref().take(CHUNK) {
                let failed = frame.is_err();
                chunk.push(frame);
                if failed {
                    let _ = chunks.send(chunk);
                    return;
                }
            }
            // The caller stopped reading: so do we.
            if chunks.send(chunk).is_err() {
                return;
            }
        }
    });
    incoming.into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use canopy::format::frame::{CanId, FrameFlags};
    use std::sync::Arc;

    fn frame(ts_us: i64) -> CanFrame {
        let id = CanId::standard(0x100).expect("a standard id");
        CanFrame::new(ts_us, Arc::from("can0"), id, FrameFlags::empty(), &[1]).expect("a frame")
    }

    #[test]
    fn read_ahead_keeps_order_across_chunks_and_stops_at_the_first_error() {
        let all: Frames = Box::new((0..10_000).map(|t| Ok(frame(t))));
        let times: Vec<i64> = read_ahead(all).map(|f| f.expect("no error").ts_us).collect();
        assert_eq!(times, (0..10_000).collect::<Vec<_>>());

        let failing: Frames = Box::new((0..9_000).map(|t| {
            if t == 5_000 {
                Err(anyhow::anyhow!("line 5001: bad"))
            } else {
                Ok(frame(t))
            }
        }));
        let got: Vec<Result<CanFrame>> = read_ahead(failing).collect();
        assert_eq!(
            got.len(),
            5_001,
            "the frames before the error, then the error, then nothing"
        );
        assert!(got[..5_000].iter().all(Result::is_ok));
        assert_eq!(
            got[5_000].as_ref().err().map(ToString::to_string).as_deref(),
            Some("line 5001: bad")
        );
    }
}
