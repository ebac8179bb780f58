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

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use canopy::domain::device_id::DeviceId;
use canopy::format::frame::{BusName, CanFrame, CanId, FrameFlags};
use canopy::format::lake::keys::RawKey;
use canopy::format::lake::raw::RawWriter;
use tracing::{info, warn};

use crate::agent_counters::AgentCounters;
use crate::config::{FullPolicy, SpoolConfig};

const FRAME: u8 = 0xF1;
const BUS: u8 = 0xB1;
const CURSOR: u8 = 0xC1;
const EXTENDED_BIT: u32 = 1 << 31;

/// A record read back from a segment.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Frame(CanFrame),
    Cursor(u64),
}

fn crc(bytes: &[u8]) -> [u8; 4] {
    crc32fast::hash(bytes).to_le_bytes()
}

/// Appends the record of one frame to `out`.
fn encode_frame(out: &mut Vec<u8>, bus: u8, frame: &CanFrame) {
    let start = out.len();
    let id = match frame.id {
        CanId::Standard(id) => u32::from(id),
        CanId::Extended(id) => id | EXTENDED_BIT,
    };
    out.extend_from_slice(&[FRAME, bus, frame.flags.bits(), frame.dlc()]);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&frame.ts_us.to_le_bytes());
    out.extend_from_slice(frame.data());
    let sum = crc(&out[start..]);
    out.extend_from_slice(&sum);
}

fn encode_bus(out: &mut Vec<u8>, index: u8, name: &str) {
    let start = out.len();
    let name = &name.as_bytes()[..name.len().min(255)];
    out.extend_from_slice(&[BUS, index, name.len() as u8]);
    out.extend_from_slice(name);
    let sum = crc(&out[start..]);
    out.extend_from_slice(&sum);
}

fn encode_cursor(out: &mut Vec<u8>, position: u64) {
    let start = out.len();
    out.push(CURSOR);
    out.extend_from_slice(&position.to_le_bytes());
    let sum = crc(&out[start..]);
    out.extend_from_slice(&sum);
}

/// Reads a segment's records up to its end or its first damaged record.
pub struct SegmentReader<R> {
    input: R,
    buses: Vec<BusName>,
    /// Bytes of whole, valid records read so far.
    pub valid_len: u64,
    /// Set when reading stopped at a damaged or cut record.
    pub damaged: bool,
}

impl<R: Read> SegmentReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            buses: Vec::new(),
            valid_len: 0,
            damaged: false,
        }
    }

    fn read_exact_or_end(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.input.read(&mut buf[filled..])? {
                0 => return Ok(false),
                n => filled += n,
            }
        }
        Ok(true)
    }

    /// The next record; `None` at the end or at damage (see `damaged`).
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            let mut kind = [0u8; 1];
            if !self.read_exact_or_end(&mut kind)? {
                return Ok(None);
            }
            let mut record = vec![kind[0]];
            let body_len = match kind[0] {
                FRAME => {
                    let mut head = [0u8; 15];
                    if !self.read_exact_or_end(&mut head)? {
                        return self.stop();
                    }
                    record.extend_from_slice(&head);
                    let flags = FrameFlags::from_bits_truncate(head[1]);
                    if flags.contains(FrameFlags::REMOTE) {
                        0
                    } else {
                        usize::from(head[2])
                    }
                }
                BUS => {
                    let mut head = [0u8; 2];
                    if !self.read_exact_or_end(&mut head)? {
                        return self.stop();
                    }
                    record.extend_from_slice(&head);
                    usize::from(head[1])
                }
                CURSOR => 8,
                _ => return self.stop(),
            };
            let mut rest = vec![0u8; body_len + 4];
            if !self.read_exact_or_end(&mut rest)? {
                return self.stop();
            }
            record.extend_from_slice(&rest[..body_len]);
            if crc(&record) != rest[body_len..] {
                return self.stop();
            }
            let len = record.len() as u64 + 4;
            match kind[0] {
                FRAME => {
                    let Some(frame) = self.decode_frame(&record) else {
                        return self.stop();
                    };
                    self.valid_len += len;
                    return Ok(Some(Record::Frame(frame)));
                }
                BUS => {
                    let index = usize::from(record[1]);
                    let name = String::from_utf8_lossy(&record[3..]).into_owned();
                    if index != self.buses.len() {
                        return self.stop();
                    }
                    self.buses.push(Arc::from(name));
                    self.valid_len += len;
                }
                _ => {
                    let mut position = [0u8; 8];
                    position.copy_from_slice(&record[1..9]);
                    self.valid_len += len;
                    return Ok(Some(Record::Cursor(u64::from_le_bytes(position))));
                }
            }
        }
    }

    fn stop(&mut self) -> io::Result<Option<Record>> {
        self.damaged = true;
        Ok(None)
    }

    fn decode_frame(&self, r: &[u8]) -> Option<CanFrame> {
        let bus = self.buses.get(usize::from(r[1]))?.clone();
        let flags = FrameFlags::from_bits_truncate(r[2]);
        let dlc = r[3];
        let id = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        let id = if id & EXTENDED_BIT != 0 {
            CanId::extended(id & !EXTENDED_BIT)?
        } else {
            CanId::standard(id)?
        };
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&r[8..16]);
        let ts_us = i64::from_le_bytes(ts);
        if flags.contains(FrameFlags::REMOTE) {
            CanFrame::remote(ts_us, bus, id, dlc).ok()
        } else {
            CanFrame::new(ts_us, bus, id, flags, &r[16..]).ok()
        }
    }
}

impl<R: Read> Iterator for SegmentReader<R> {
    type Item = io::Result<Record>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

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

/// Where the spool's files are.
#[derive(Debug, Clone)]
pub struct Layout {
    pub segments: PathBuf,
    pub outbox: PathBuf,
    next_seq: PathBuf,
    cursor: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        Self {
            segments: dir.join("segments"),
            outbox: dir.join("outbox"),
            next_seq: dir.join("next_seq"),
            cursor: dir.join("cursor"),
        }
    }

    /// The spool's folders, readable by this user only: they hold the
    /// vehicle's raw CAN traffic.
    fn create(&self) -> Result<()> {
        for dir in [&self.segments, &self.outbox] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        for dir in [
            &self.segments,
            &self.outbox,
            self.segments.parent().unwrap_or(Path::new(".")),
        ] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private", dir.display()))?;
        }
        Ok(())
    }

    /// Sealed files in the outbox, oldest (lowest sequence number) first.
    pub fn outbox_files(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.outbox).with_context(|| format!("reading {}", self.outbox.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "parquet")
                && let Some(seq) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.rsplit('_').next())
                    .and_then(|s| s.parse().ok())
            {
                files.push((seq, path));
            }
        }
        files.sort();
        Ok(files)
    }

    fn segments(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.segments).with_context(|| format!("reading {}", self.segments.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "seg")
                && let Some(seq) = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok())
            {
                found.push((seq, path));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Bytes held in segments and the outbox.
    pub fn used_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for dir in [&self.segments, &self.outbox] {
            for entry in fs::read_dir(dir)? {
                total += entry?.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        Ok(total)
    }

    pub fn read_cursor(&self) -> Option<u64> {
        fs::read_to_string(&self.cursor)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn write_cursor(&self, position: u64) -> Result<()> {
        write_atomically(&self.cursor, position.to_string().as_bytes())
    }
}

/// Creates (or truncates) a file only this user may read or write.
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Replaces `path` with `bytes` so a crash leaves the old or the new file, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = create_private(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_data()?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
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

/// What sealing a segment produced.
#[derive(Debug)]
pub struct Sealed {
    /// The raw files written, in the order their first frames came: one per
    /// UTC date the segment's frames fall on (usually one).
    pub files: Vec<PathBuf>,
    pub frames: u64,
}

/// Raw files a segment's sealing keeps open at once. Frames around midnight
/// can interleave dates (two buses whose clocks differ by a second), so
/// two are open; a third date closes the earliest, and a frame of that date
/// coming later still starts a file of its own.
const OPEN_DATES: usize = 2;

/// One raw file being written while a segment is sealed.
struct Outfile {
    key: RawKey,
    tmp: PathBuf,
    writer: RawWriter<io::BufWriter<File>>,
}

/// Seals a closed segment into raw lake files in the outbox, then deletes the
/// segment.
///
/// Every raw file holds frames of one UTC date only, the date in its key: the
/// lake is partitioned by date and readers open only the dates a query's
/// range touches, so a file whose frames ran past midnight would hide them
/// from a query of the next day. A segment that spans midnight is written as
/// one file per date. Each file's name (and S3 key) follows from the vehicle,
/// its first frame's time and the segment number, so sealing the same segment
/// again after a crash writes the same files.
pub fn seal(segment: &ClosedSegment, vehicle: &DeviceId, layout: &Layout, used: &AtomicU64) -> Result<Sealed> {
    let file = File::open(&segment.path).with_context(|| format!("opening {}", segment.path.display()))?;
    let segment_size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = SegmentReader::new(BufReader::with_capacity(1 << 18, file));
    // Every file started, in the order started; `open`: the ones frames may still go to.
    let mut files: Vec<Outfile> = Vec::new();
    let mut open: Vec<usize> = Vec::with_capacity(OPEN_DATES);
    let mut cursor = None;
    let mut frames = 0u64;
    while let Some(record) = reader
        .next_record()
        .with_context(|| format!("reading {}", segment.path.display()))?
    {
        match record {
            Record::Cursor(c) => cursor = Some(c),
            Record::Frame(frame) => {
                let date = canopy::format::lake::keys::date_of(frame.ts_us);
                let at = match open.iter().copied().find(|&i| files[i].key.date == date) {
                    Some(at) => at,
                    None => {
                        if open.len() == OPEN_DATES
                            && let Some(earliest) = (0..open.len()).min_by_key(|&o| files[open[o]].key.date)
                        {
                            open.remove(earliest);
                        }
                        let key = unique_key(&files, vehicle, frame.ts_us, segment.seq);
                        files.push(Outfile::create(key, layout)?);
                        open.push(files.len() - 1);
                        files.len() - 1
                    }
                };
                files[at].writer.push(frame)?;
                frames += 1;
            }
        }
    }
    let files = files
        .into_iter()
        .map(|out| out.finish(layout, used))
        .collect::<Result<Vec<_>>>()?;
    if let Some(position) = cursor {
        let position = layout.read_cursor().map_or(position, |old| old.max(position));
        layout.write_cursor(position)?;
    }
    fs::remove_file(&segment.path).with_context(|| format!("deleting {}", segment.path.display()))?;
    sync_dir(&layout.segments);
    used.fetch_sub(segment_size.min(used.load(Ordering::Relaxed)), Ordering::Relaxed);
    Ok(Sealed { files, frames })
}

/// The key of a segment's next file: its first frame's time, moved on by a
/// microsecond in the rare case an earlier file of the segment has it
/// (a date seen again after a third one closed it).
fn unique_key(taken: &[Outfile], vehicle: &DeviceId, mut first_ts_us: i64, seq: u64) -> RawKey {
    while taken.iter().any(|f| f.key.first_ts_us == first_ts_us) {
        first_ts_us += 1;
    }
    RawKey::new(vehicle.clone(), first_ts_us, seq)
}

impl Outfile {
    fn create(key: RawKey, layout: &Layout) -> Result<Self> {
        let tmp = layout.outbox.join(format!("{}.parquet.tmp", file_stem(&key)));
        let out = create_private(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let writer = RawWriter::new(io::BufWriter::with_capacity(1 << 20, out), &tmp.display().to_string())?;
        Ok(Self { key, tmp, writer })
    }

    /// Finishes the file and moves it into the outbox under its final name.
    fn finish(self, layout: &Layout, used: &AtomicU64) -> Result<PathBuf> {
        let (sink, _) = self.writer.finish()?;
        let out = sink
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        out.sync_all()?;
        let size = out.metadata().map(|m| m.len()).unwrap_or(0);
        let path = layout.outbox.join(format!("{}.parquet", file_stem(&self.key)));
        fs::rename(&self.tmp, &path).with_context(|| format!("renaming {}", self.tmp.display()))?;
        sync_dir(&layout.outbox);
        used.fetch_add(size, Ordering::Relaxed);
        Ok(path)
    }
}

/// `<vehicle>_<first µs>_<seq>`: the object key's file name without `.parquet`.
pub fn file_stem(key: &RawKey) -> String {
    let raw = key.raw_key();
    let name = raw.rsplit('/').next().unwrap_or_default();
    name.trim_end_matches(".parquet").to_string()
}

/// The object key of a sealed file in the outbox.
pub fn key_of_outbox_file(path: &Path, vehicle: &DeviceId) -> Option<RawKey> {
    let stem = path.file_stem()?.to_str()?;
    let mut parts = stem.rsplitn(3, '_');
    let seq = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    (parts.next()? == vehicle.as_str()).then(|| RawKey::new(vehicle.clone(), first, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize, start: i64) -> Vec<CanFrame> {
        let buses: [BusName; 2] = [Arc::from("can0"), Arc::from("can1")];
        (0..n)
            .map(|i| {
                let bus = buses[i % 2].clone();
                match i % 4 {
                    0 => CanFrame::new(
                        start + i as i64,
                        bus,
                        CanId::Standard(0x100),
                        FrameFlags::empty(),
                        &[i as u8; 8],
                    )
                    .unwrap(),
                    1 => CanFrame::new(
                        start + i as i64,
                        bus,
                        CanId::Extended(0x18FF50E5),
                        FrameFlags::FD,
                        &[7; 64],
                    )
                    .unwrap(),
                    2 => CanFrame::remote(start + i as i64, bus, CanId::Standard(0x7FF), 3).unwrap(),
                    _ => CanFrame::new(start + i as i64, bus, CanId::Standard(1), FrameFlags::empty(), &[]).unwrap(),
                }
            })
            .collect()
    }

    fn config(dir: &Path) -> SpoolConfig {
        SpoolConfig {
            dir: dir.to_path_buf(),
            sync_interval_ms: 10,
            seal_after_s: 3600.0,
            seal_max_frames: 1_000_000,
            max_bytes: 1 << 30,
            full_policy: FullPolicy::DropOldest,
        }
    }

    fn read_all(path: &Path) -> (Vec<Record>, bool) {
        let mut reader = SegmentReader::new(BufReader::new(File::open(path).unwrap()));
        let records: Vec<Record> = reader.by_ref().map(|r| r.unwrap()).collect();
        (records, reader.damaged)
    }

    #[test]
    fn only_this_user_can_read_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        let (mut spool, _) = Spool::open(&config(&root), Arc::default()).unwrap();
        spool.append(&frames(4, 0), Some(4)).unwrap();
        let segment = spool.close().unwrap().unwrap().path;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("segments")), 0o700);
        assert_eq!(mode(&root.join("outbox")), 0o700);
        assert_eq!(mode(&segment), 0o600);
        assert_eq!(mode(&root.join("next_seq")), 0o600);
    }

    #[test]
    fn frames_and_cursors_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, recovered) = Spool::open(&config(dir.path()), Arc::default()).unwrap();
        assert!(recovered.segments.is_empty() && recovered.cursor.is_none());
        let written = frames(10, 1000);
        spool.append(&written[..6], Some(6)).unwrap();
        spool.append(&written[6..], Some(10)).unwrap();
        let closed = spool.close().unwrap().unwrap();
        let (records, damaged) = read_all(&closed.path);
        assert!(!damaged);
        let mut expected: Vec<Record> = written[..6].iter().cloned().map(Record::Frame).collect();
        expected.push(Record::Cursor(6));
        expected.extend(written[6..].iter().cloned().map(Record::Frame));
        expected.push(Record::Cursor(10));
        assert_eq!(records, expected);
    }

    #[test]
    fn a_torn_tail_is_cut_at_recovery_and_the_cursor_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(&config(dir.path()), Arc::default()).unwrap();
        spool.append(&frames(5, 0), Some(5)).unwrap();
        spool.append(&frames(5, 5), Some(10)).unwrap();
        let path = spool.close().unwrap().unwrap().path;
        drop(spool);
        // A power cut in the middle of the second batch's last record.
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (_, recovered) = Spool::open(&config(dir.path()), Arc::default()).unwrap();
        assert_eq!(recovered.segments.len(), 1);
        assert_eq!(
            recovered.cursor,
            Some(5),
            "the damaged batch's cursor is gone, so its frames are read again"
        );
        let (records, damaged) = read_all(&path);
        assert!(!damaged, "the tail was cut");
        assert_eq!(
            records.iter().filter(|r| matches!(r, Record::Frame(_))).count(),
            5,
            "back to the last whole batch"
        );
        assert_eq!(records.last(), Some(&Record::Cursor(5)));
    }

    #[test]
    fn sealing_writes_a_deterministic_raw_file_and_keeps_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let (mut spool, _) = Spool::open(&cfg, Arc::default()).unwrap();
        let written = frames(100, 1_700_000_000_000_000);
        spool.append(&written, Some(100)).unwrap();
        let closed = spool.close().unwrap().unwrap();
        let copy = dir.path().join("copy.seg");
        fs::copy(&closed.path, &copy).unwrap();
        let vehicle = DeviceId::new("veh-1").unwrap();
        let sealed = seal(&closed, &vehicle, spool.layout(), &spool.used()).unwrap();
        assert_eq!(sealed.frames, 100);
        assert_eq!(sealed.files.len(), 1);
        let file = sealed.files[0].clone();
        assert_eq!(file.file_name().unwrap(), "veh-1_1700000000000000_000001.parquet");
        assert!(!closed.path.exists());
        assert_eq!(spool.layout().read_cursor(), Some(100));
        let key = key_of_outbox_file(&file, &vehicle).unwrap();
        assert_eq!(
            key.raw_key(),
            "raw/vehicle_id=veh-1/date=2023-11-14/veh-1_1700000000000000_000001.parquet"
        );
        // Sealing the same segment again (a crash before the delete) gives the same file.
        let first = fs::read(&file).unwrap();
        fs::rename(&copy, &closed.path).unwrap();
        seal(&closed, &vehicle, spool.layout(), &spool.used()).unwrap();
        assert_eq!(fs::read(&file).unwrap(), first);
        // The frames survive: read the raw file back.
        assert_eq!(read_raw(&file), written);
    }

    fn read_raw(file: &Path) -> Vec<CanFrame> {
        let mut read = Vec::new();
        let mut buses = canopy::format::candump::BusNames::default();
        for batch in canopy::format::lake::raw::RawFileReader::open(file).unwrap() {
            let batch = batch.unwrap();
            for i in 0..batch.len() {
                read.push(batch.row(i).unwrap().to_frame(&mut buses).unwrap());
            }
        }
        read
    }

    #[test]
    fn a_segment_over_midnight_seals_one_file_per_utc_date() {
        use canopy::format::lake::keys::date_of;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let (mut spool, _) = Spool::open(&cfg, Arc::default()).unwrap();
        const MIDNIGHT: i64 = 1_700_006_400_000_000; // 2023-11-15T00:00Z
        const DAY: i64 = 86_400_000_000;
        // Two buses whose clocks differ: dates interleave around midnight,
        // then a replay jumps a day ahead and a straggler of the first date
        // comes after the third date closed it.
        let mut written = frames(40, MIDNIGHT - 20);
        for (i, f) in written.iter_mut().enumerate() {
            if i % 2 == 1 {
                f.ts_us -= 15;
            }
        }
        written.extend(frames(10, MIDNIGHT + DAY + 5));
        written.extend(frames(3, MIDNIGHT - 1_000));
        spool.append(&written, Some(53)).unwrap();
        let closed = spool.close().unwrap().unwrap();
        let copy = dir.path().join("copy.seg");
        fs::copy(&closed.path, &copy).unwrap();
        let vehicle = DeviceId::new("veh-1").unwrap();
        let sealed = seal(&closed, &vehicle, spool.layout(), &spool.used()).unwrap();
        assert_eq!(sealed.frames, 53);
        let keys: Vec<RawKey> = sealed
            .files
            .iter()
            .map(|f| key_of_outbox_file(f, &vehicle).unwrap())
            .collect();
        let dates: Vec<String> = keys.iter().map(|k| k.date.to_string()).collect();
        assert_eq!(dates, ["2023-11-14", "2023-11-15", "2023-11-16", "2023-11-14"]);
        let mut read = Vec::new();
        for (file, key) in sealed.files.iter().zip(&keys) {
            let frames = read_raw(file);
            assert!(
                frames.iter().any(|f| f.ts_us == key.first_ts_us),
                "{key:?} is named by the first frame it was given"
            );
            assert!(
                frames.iter().all(|f| date_of(f.ts_us) == key.date),
                "{key:?} holds its date only"
            );
            read.extend(frames);
        }
        let mut expected = written.clone();
        read.sort_by_key(|f| format!("{f:?}"));
        expected.sort_by_key(|f| format!("{f:?}"));
        assert_eq!(read, expected, "every frame once");
        // Sealing again after a crash writes the same files.
        let first: Vec<Vec<u8>> = sealed.files.iter().map(|f| fs::read(f).unwrap()).collect();
        fs::rename(&copy, &closed.path).unwrap();
        let again = seal(&closed, &vehicle, spool.layout(), &spool.used()).unwrap();
        assert_eq!(again.files, sealed.files);
        let second: Vec<Vec<u8>> = again.files.iter().map(|f| fs::read(f).unwrap()).collect();
        assert_eq!(first, second);
    }

    #[test]
    fn a_full_spool_drops_by_its_policy_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.max_bytes = 16 * 1024 * 1024;
        cfg.full_policy = FullPolicy::DropNewest;
        let counters = Arc::new(AgentCounters::default());
        let (mut spool, _) = Spool::open(&cfg, counters.clone()).unwrap();
        spool.used.store(cfg.max_bytes, Ordering::Relaxed); // pretend the disk budget is used up...
        fs::write(
            spool.layout().outbox.join("veh-1_1_000001.parquet"),
            vec![0u8; 17 * 1024 * 1024],
        )
        .unwrap();
        assert_eq!(spool.append(&frames(10, 0), None).unwrap(), 10);
        assert_eq!(counters.frames_dropped.load(Ordering::Relaxed), 10);

        cfg.full_policy = FullPolicy::DropOldest;
        let (mut spool, _) = Spool::open(&cfg, counters.clone()).unwrap();
        assert_eq!(
            spool.append(&frames(10, 0), None).unwrap(),
            0,
            "the oldest batch made room"
        );
        assert!(spool.layout().outbox_files().unwrap().is_empty());
    }
}
