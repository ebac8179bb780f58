//! Where frames come from on the command line: a candump log or a raw lake file.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use canopy::format::candump::{BusNames, CandumpReader};
use canopy::format::frame::CanFrame;
use canopy::format::lake::raw::{RawBatch, RawFileReader};

pub type Frames = Box<dyn Iterator<Item = Result<CanFrame>>>;

/// Frames of `--candump PATH` (`-` for standard input) or `--raw PATH`.
pub fn open(candump: Option<&str>, raw: Option<&Path>) -> Result<Frames> {
    match (candump, raw) {
        (Some(path), _) => Ok(Box::new(candump_frames(path)?)),
        (None, Some(path)) => Ok(Box::new(RawFrames::new(RawFileReader::open(path)?))),
        (None, None) => anyhow::bail!("give --candump or --raw"),
    }
}

pub fn candump_frames(path: &str) -> Result<impl Iterator<Item = Result<CanFrame>> + use<>> {
    let input: Box<dyn BufRead> = if path == "-" {
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
