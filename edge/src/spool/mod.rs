//! The crash-safe spool: every frame read goes into an append-only segment
//! file before anything else happens to it. A batch of frames and the source
//! position after them go to the kernel in one `write`, so a killed process
//! loses nothing the kernel accepted and a restarted one resumes exactly after
//! it; `fdatasync` every `sync_interval_ms` bounds what a power cut can take.
//!
//! Layout of the spool directory:
//! - `segments/<seq>.seg`: open or not yet sealed batches (records below);
//! - `outbox/<vehicle>_<first µs>_<seq>.parquet`: sealed raw lake files,
//!   uploaded oldest first and deleted once S3 has them;
//! - `next_seq`, `cursor`: the next segment number and the source position of
//!   the last sealed frame, each replaced atomically.
//!
//! Records, each followed by a CRC-32 of its bytes (a torn tail is cut off):
//! - frame `F1 bus flags len id:u32 ts:i64 data[len]` (id bit 31: extended;
//!   no data bytes for a remote frame, whose `len` is the requested length);
//! - bus name `B1 index len name[len]`;
//! - source position `C1 position:u64`.
//!
//! The spool's writing side is here; by job, `record` is the segment
//! format, `layout` the directory and its atomic writes, and `seal`
//! turns closed segments into raw files.

mod layout;
mod record;
mod seal;

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use canopy::format::frame::{BusName, CanFrame};
use tracing::{info, warn};

use crate::agent_counters::AgentCounters;
use crate::config::{FullPolicy, SpoolConfig};
pub use layout::Layout;
use layout::{sync_dir, write_atomically};
pub use record::{Record, SegmentReader};
use record::{encode_bus, encode_cursor, encode_frame};
pub use seal::{key_of_outbox_file, seal};

/// A segment no longer written to, waiting to be sealed.
#[derive(Debug, Clone)]
pub struct ClosedSegment {
    pub path: PathBuf,
    pub seq: u64,
}

struct Segment {
    seq: u64,
    path: PathBuf,
    file: File,
    buses: Vec<BusName>,
    frames: u64,
    opened: Instant,
    last_sync: Instant,
    dirty: bool,
}

/// What was left by the previous run.
pub struct Recovered {
    /// Segments to seal, oldest first.
    pub segments: Vec<ClosedSegment>,
    /// The source position after the last frame spooled.
    pub cursor: Option<u64>,
}

/// The writing side of the spool, owned by the capture loop.
pub struct Spool {
    layout: Layout,
    config: SpoolConfig,
    active: Option<Segment>,
    next_seq: u64,
    buffer: Vec<u8>,
    used: Arc<AtomicU64>,
    counters: Arc<AgentCounters>,
}

impl Spool {
    /// Opens the spool directory, cutting off torn tails of old segments.
    pub fn open(config: &SpoolConfig, counters: Arc<AgentCounters>) -> Result<(Self, Recovered)> {
        let layout = Layout::new(&config.dir);
        layout.create()?;
        let mut cursor = layout.read_cursor();
        let mut next_seq: u64 = fs::read_to_string(&layout.next_seq)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1);
        // First pass: what each segment holds, and where its last source position ends.
        let mut found = Vec::new();
        for (seq, path) in layout.segments()? {
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let mut reader = SegmentReader::new(BufReader::new(file));
            let mut last_cursor_end = 0;
            while let Some(record) = reader
                .next_record()
                .with_context(|| format!("reading {}", path.display()))?
            {
                if let Record::Cursor(c) = record {
                    cursor = Some(cursor.map_or(c, |old| old.max(c)));
                    last_cursor_end = reader.valid_len;
                }
            }
            found.push((seq, path, reader.valid_len, last_cursor_end, reader.damaged));
        }
        // A source with positions (a replayed log) is read again from the last
        // position spooled, so frames after it are cut: they come again. A live
        // source keeps every whole record.
        let resumable = cursor.is_some();
        let mut segments = Vec::new();
        for (seq, path, valid_len, last_cursor_end, damaged) in found {
            let keep = if resumable { last_cursor_end } else { valid_len };
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if keep < len {
                if damaged || keep < valid_len {
                    warn!(segment = %path.display(), kept_bytes = keep, of = len, "cutting a segment back to its last whole batch");
                }
                OpenOptions::new().write(true).open(&path)?.set_len(keep)?;
            }
            info!(segment = %path.display(), bytes = keep, "recovered an unsealed segment");
            next_seq = next_seq.max(seq + 1);
            segments.push(ClosedSegment { path, seq });
        }
        for (seq, _) in layout.outbox_files()? {
            next_seq = next_seq.max(seq + 1);
        }
        let used = Arc::new(AtomicU64::new(layout.used_bytes()?));
        let spool = Self {
            layout,
            config: config.clone(),
            active: None,
            next_seq,
            buffer: Vec::with_capacity(1 << 20),
            used,
            counters,
        };
        Ok((spool, Recovered { segments, cursor }))
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Bytes used by the spool, shared with the sealer and the uploader.
    pub fn used(&self) -> Arc<AtomicU64> {
        self.used.clone()
    }

    fn open_segment(&mut self) -> Result<()> {
        let seq = self.next_seq;
        self.next_seq += 1;
        write_atomically(&self.layout.next_seq, self.next_seq.to_string().as_bytes())?;
        let path = self.layout.segments.join(format!("{seq:020}.seg"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        sync_dir(&self.layout.segments);
        self.active = Some(Segment {
            seq,
            path,
            file,
            buses: Vec::new(),
            frames: 0,
            opened: Instant::now(),
            last_sync: Instant::now(),
            dirty: false,
        });
        Ok(())
    }

    /// Appends frames, then the source position after them, in one write.
    /// Returns the frames dropped for lack of room (policy `drop-newest`).
    pub fn append(&mut self, frames: &[CanFrame], cursor: Option<u64>) -> Result<u64> {
        if frames.is_empty() && cursor.is_none() {
            return Ok(0);
        }
        if self.used.load(Ordering::Relaxed) >= self.config.max_bytes && !self.make_room()? {
            self.counters
                .frames_dropped
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
            warn!(
                frames = frames.len(),
                cap = self.config.max_bytes,
                "spool full: new frames dropped (policy drop-newest)"
            );
            return Ok(frames.len() as u64);
        }
        if self.active.is_none() {
            self.open_segment()?;
        }
        let Some(segment) = self.active.as_mut() else {
            unreachable!("opened above")
        };
        self.buffer.clear();
        for frame in frames {
            let bus = match segment.buses.iter().position(|b| *b == frame.bus) {
                Some(i) => i as u8,
                None => {
                    let i = segment.buses.len();
                    if i > u8::MAX as usize {
                        anyhow::bail!("more than 256 buses in one segment");
                    }
                    encode_bus(&mut self.buffer, i as u8, &frame.bus);
                    segment.buses.push(frame.bus.clone());
                    i as u8
                }
            };
            encode_frame(&mut self.buffer, bus, frame);
        }
        if let Some(position) = cursor {
            encode_cursor(&mut self.buffer, position);
        }
        segment
            .file
            .write_all(&self.buffer)
            .with_context(|| format!("writing {}", segment.path.display()))?;
        segment.frames += frames.len() as u64;
        segment.dirty = true;
        self.used.fetch_add(self.buffer.len() as u64, Ordering::Relaxed);
        self.counters
            .frames_spooled
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        Ok(0)
    }

    /// Applies the full policy; true when there is room again.
    fn make_room(&mut self) -> Result<bool> {
        // Recount: the uploader may have freed space since.
        self.used.store(self.layout.used_bytes()?, Ordering::Relaxed);
        if self.used.load(Ordering::Relaxed) < self.config.max_bytes {
            return Ok(true);
        }
        if self.config.full_policy == FullPolicy::DropNewest {
            return Ok(false);
        }
        for (_, path) in self.layout.outbox_files()? {
            if self.used.load(Ordering::Relaxed) < self.config.max_bytes {
                break;
            }
            let frames = parquet_rows(&path).unwrap_or(0);
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
            self.used
                .fetch_sub(size.min(self.used.load(Ordering::Relaxed)), Ordering::Relaxed);
            self.counters.frames_dropped.fetch_add(frames, Ordering::Relaxed);
            warn!(file = %path.display(), frames, cap = self.config.max_bytes, "spool full: oldest sealed batch dropped (policy drop-oldest)");
        }
        Ok(self.used.load(Ordering::Relaxed) < self.config.max_bytes)
    }

    /// fdatasync when the sync interval has passed.
    pub fn sync_if_due(&mut self) -> Result<()> {
        if let Some(s) = self.active.as_mut()
            && s.dirty
            && s.last_sync.elapsed() >= Duration::from_millis(self.config.sync_interval_ms)
        {
            s.file
                .sync_data()
                .with_context(|| format!("syncing {}", s.path.display()))?;
            s.last_sync = Instant::now();
            s.dirty = false;
        }
        Ok(())
    }

    /// The active segment, closed, if it is due for sealing (age or size).
    pub fn seal_if_due(&mut self) -> Result<Option<ClosedSegment>> {
        let due = self.active.as_ref().is_some_and(|s| {
            s.frames > 0
                && (s.opened.elapsed().as_secs_f64() >= self.config.seal_after_s
                    || s.frames >= self.config.seal_max_frames)
        });
        if due { self.close() } else { Ok(None) }
    }

    /// Closes the active segment (synced) for sealing.
    pub fn close(&mut self) -> Result<Option<ClosedSegment>> {
        let Some(segment) = self.active.take() else {
            return Ok(None);
        };
        segment
            .file
            .sync_data()
            .with_context(|| format!("syncing {}", segment.path.display()))?;
        Ok(Some(ClosedSegment {
            path: segment.path,
            seq: segment.seq,
        }))
    }
}

fn parquet_rows(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).ok()?;
    use parquet::file::reader::FileReader;
    Some(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

#[cfg(test)]
mod tests;
