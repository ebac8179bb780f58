//! Sealing: a closed segment becomes raw lake files in the outbox, one per
//! UTC date its frames fall on, named so that sealing it again after a
//! crash writes the same files.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use canopy::domain::device_id::DeviceId;
use canopy::format::lake::keys::RawKey;
use canopy::format::lake::raw::RawWriter;

use super::ClosedSegment;
use super::layout::{Layout, create_private, sync_dir};
use super::record::{Record, SegmentReader};

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
