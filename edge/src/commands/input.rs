//! Where frames come from on the command line: a candump log, a raw lake
//! file, or a Vector ASC or BLF log ([`LogFormat`], from the file's extension
//! unless named).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use canopy::format::asc::AscReader;
use canopy::format::blf::BlfReader;
use canopy::format::candump::{BusNames, CandumpReader};
use canopy::format::frame::{CanFrame, CanId, FrameFlags, MAX_CLASSIC_PAYLOAD};
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

/// The formats of CAN logs the tools read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Raw lake Parquet (`.parquet`).
    Raw,
    /// can-utils candump log (`.log`, `.candump`).
    Candump,
    /// Vector ASC, text (`.asc`).
    Asc,
    /// Vector BLF, binary (`.blf`).
    Blf,
    /// CSV, one row per frame (`.csv`; written only).
    Csv,
}

impl LogFormat {
    /// The log format it is; none for the lake's raw Parquet.
    pub fn log(self) -> Option<canopy::format::can_log::LogFormat> {
        use canopy::format::can_log::LogFormat as Log;
        match self {
            Self::Raw => None,
            Self::Candump => Some(Log::Candump),
            Self::Asc => Some(Log::Asc),
            Self::Blf => Some(Log::Blf),
            Self::Csv => Some(Log::Csv),
        }
    }

    /// The format a file's extension names.
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "parquet" => Self::Raw,
            "log" | "candump" => Self::Candump,
            "asc" => Self::Asc,
            "blf" => Self::Blf,
            "csv" => Self::Csv,
            _ => return None,
        })
    }

    /// `format`, or the one `path`'s extension names.
    pub fn for_path(format: Option<Self>, path: &Path) -> Result<Self> {
        format.or_else(|| Self::of(path)).with_context(|| {
            format!(
                "{}: name its format (--format) or use an extension: .parquet, .log, .asc, .blf, .csv",
                path.display()
            )
        })
    }
}

/// The frames of the file at `path` in `format` (`-`: candump on standard input).
pub fn open_as(path: &Path, format: LogFormat) -> Result<Frames> {
    let name = path.display().to_string();
    let file = || File::open(path).with_context(|| format!("opening {name}"));
    Ok(match format {
        LogFormat::Raw => Box::new(RawFrames::new(RawFileReader::open(path)?)),
        LogFormat::Candump => Box::new(candump_frames(&name)?),
        LogFormat::Asc => Box::new(
            AscReader::new(BufReader::with_capacity(1 << 16, file()?)).map(move |r| r.with_context(|| name.clone())),
        ),
        LogFormat::Blf => Box::new(
            BlfReader::new(BufReader::with_capacity(1 << 16, file()?))
                .with_context(|| name.clone())?
                .map(move |r| r.with_context(|| name.clone())),
        ),
        LogFormat::Csv => anyhow::bail!("{name}: CSV is written, not read"),
    })
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

/// Frames as the decoder takes them, a chunk at a time, in columns and
/// without their bus names: a classic frame moves its 8 bytes, not a
/// 64-byte array, and the bus name's reference count never crosses threads
/// (`perf` on `decode --format parquet`: dropping the frames' bus names on
/// the decoding thread, after the parsing thread had counted them, was a
/// tenth of that thread's time).
#[derive(Default)]
pub struct FrameChunk {
    ts_us: Vec<i64>,
    ids: Vec<CanId>,
    flags: Vec<FrameFlags>,
    /// Where each frame's payload ends in `bytes`.
    ends: Vec<u32>,
    bytes: Vec<u8>,
}

impl FrameChunk {
    fn with_capacity(frames: usize) -> Self {
        Self {
            ts_us: Vec::with_capacity(frames),
            ids: Vec::with_capacity(frames),
            flags: Vec::with_capacity(frames),
            ends: Vec::with_capacity(frames),
            bytes: Vec::with_capacity(frames * MAX_CLASSIC_PAYLOAD),
        }
    }

    fn push(&mut self, frame: &CanFrame) {
        self.ts_us.push(frame.ts_us);
        self.ids.push(frame.id);
        self.flags.push(frame.flags);
        self.bytes.extend_from_slice(frame.data());
        // A chunk holds a few thousand frames of at most 64 bytes.
        self.ends.push(self.bytes.len() as u32);
    }

    pub fn is_empty(&self) -> bool {
        self.ts_us.is_empty()
    }

    /// Each frame's time, id, flags and payload, in order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, CanId, FrameFlags, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.ts_us
            .iter()
            .zip(&self.ids)
            .zip(&self.flags)
            .zip(starts.zip(&self.ends))
            .map(|(((&ts, &id), &flags), (start, &end))| (ts, id, flags, &self.bytes[start as usize..end as usize]))
    }
}

/// Frames read and parsed a chunk ahead on a thread of their own, so parsing
/// a log overlaps with what the caller does with its frames (decoding and
/// writing Parquet). The first error ends the stream, after the chunk of the
/// frames before it, as it would the source.
pub fn read_ahead(frames: Frames) -> impl Iterator<Item = Result<FrameChunk>> {
    const CHUNK: usize = 4_096;
    let mut frames = frames.peekable();
    // The error that ended a chunk, to send after it; then nothing more.
    let mut failed: Option<anyhow::Error> = None;
    let mut ended = false;
    let chunks = std::iter::from_fn(move || {
        if ended {
            return None;
        }
        if let Some(e) = failed.take() {
            ended = true;
            return Some(Err(e));
        }
        frames.peek()?;
        let mut chunk = FrameChunk::with_capacity(CHUNK);
        for frame in frames.by_ref().take(CHUNK) {
            match frame {
                Ok(frame) => chunk.push(&frame),
                Err(e) if chunk.is_empty() => {
                    ended = true;
                    return Some(Err(e));
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        Some(Ok(chunk))
    });
    ahead(chunks, 4)
}

/// The items of `items`, made `depth` ahead on a thread of their own, so
/// making them (reading and decompressing a raw file's batches) overlaps
/// with what the caller does with them. When the caller stops reading, the
/// thread stops at its next item.
pub fn ahead<T: Send + 'static>(
    items: impl Iterator<Item = T> + Send + 'static,
    depth: usize,
) -> impl Iterator<Item = T> {
    let (made, incoming) = std::sync::mpsc::sync_channel::<T>(depth);
    std::thread::spawn(move || {
        for item in items {
            if made.send(item).is_err() {
                return;
            }
        }
    });
    incoming.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(ts_us: i64) -> CanFrame {
        let id = CanId::standard(0x100).expect("a standard id");
        CanFrame::new(ts_us, Arc::from("can0"), id, FrameFlags::empty(), &[t_byte(ts_us), 2]).expect("a frame")
    }

    #[test]
    fn read_ahead_keeps_order_across_chunks_and_stops_at_the_first_error() {
        let all: Frames = Box::new((0..10_000).map(|t| Ok(frame(t))));
        let mut times = Vec::new();
        for chunk in read_ahead(all) {
            for (ts, id, flags, data) in chunk.expect("no error").iter() {
                assert_eq!(
                    (id.raw(), flags, data),
                    (0x100, FrameFlags::empty(), &[t_byte(ts), 2][..])
                );
                times.push(ts);
            }
        }
        assert_eq!(times, (0..10_000).collect::<Vec<_>>());

        let failing: Frames = Box::new((0..9_000).map(|t| {
            if t == 5_000 {
                Err(anyhow::anyhow!("line 5001: bad"))
            } else {
                Ok(frame(t))
            }
        }));
        let got: Vec<Result<FrameChunk>> = read_ahead(failing).collect();
        let (error, chunks) = got.split_last().expect("chunks");
        assert_eq!(
            chunks
                .iter()
                .map(|c| c.as_ref().map_or(0, |c| c.iter().count()))
                .sum::<usize>(),
            5_000,
            "the frames before the error, then the error, then nothing"
        );
        assert_eq!(
            error.as_ref().err().map(ToString::to_string).as_deref(),
            Some("line 5001: bad")
        );
    }

    #[test]
    fn ahead_keeps_order_and_stops_with_its_reader() {
        assert_eq!(ahead(0..10_000, 2).collect::<Vec<_>>(), (0..10_000).collect::<Vec<_>>());
        let (made, counted) = std::sync::mpsc::channel();
        let first: Vec<u64> = ahead(
            (0..u64::MAX).inspect(move |&i| {
                let _ = made.send(i);
            }),
            2,
        )
        .take(3)
        .collect();
        assert_eq!(first, [0, 1, 2]);
        // The thread made at most the three taken, the two queued and the one it was sending.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut made_count = 0;
        while counted
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_ok()
        {
            made_count += 1;
        }
        assert!(made_count <= 6, "made {made_count}");
    }

    #[test]
    fn a_chunk_keeps_each_payload_whole() {
        let mut chunk = FrameChunk::default();
        let id = CanId::extended(0x18FF_50E5).expect("an extended id");
        let fd = CanFrame::new(7, Arc::from("can1"), id, FrameFlags::FD, &[9; 64]).expect("an FD frame");
        let remote = CanFrame::remote(8, Arc::from("can0"), id, 4).expect("a remote frame");
        for f in [&frame(1), &fd, &remote, &frame(2)] {
            chunk.push(f);
        }
        let got: Vec<_> = chunk
            .iter()
            .map(|(ts, _, flags, data)| (ts, flags, data.to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                (1, FrameFlags::empty(), vec![1, 2]),
                (7, FrameFlags::FD, vec![9; 64]),
                (8, FrameFlags::REMOTE, vec![]),
                (2, FrameFlags::empty(), vec![2, 2]),
            ]
        );
    }

    fn t_byte(ts: i64) -> u8 {
        (ts % 256) as u8
    }
}
