//! Raw frames out: a vehicle's frames of a window, as the raw lake holds
//! them, written as a CAN log for an engineer's tool (candump, Vector ASC or
//! BLF, CSV), the same writers as `canopy-edge export`.
//!
//! An answer is at most [`ANSWER_BYTES`] of log: a Lambda function's answer
//! is at most 6 MB, and a binary one travels base64-encoded. A window with
//! more is cut after the frames of one timestamp, and the answer says where
//! the next request starts ([`Export::next_from_us`]), so a caller walks a
//! long window in pieces and gets every frame once.
//!
//! The raw objects of the window's dates are listed (one LIST per date, at
//! once), ordered by their first frame, and read a few at a time, in order,
//! each object's frames in time order; each frame keeps the time, bus,
//! identifier, flags and payload it was captured with.

use std::io::Cursor;

use bytes::Bytes;
use canopy::domain::device_id::DeviceId;
use canopy::format::can_log::{FrameFilter, LogFormat, LogWriter};
use canopy::format::candump::BusNames;
use canopy::format::frame::CanFrame;
use canopy::format::lake::keys::{RAW_PREFIX, RawKey};
use canopy::format::lake::raw::RawFileReader;
use futures::future::{BoxFuture, try_join_all};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::history::{HistoryError, TimeRange};

/// Log bytes one answer carries at most.
pub const ANSWER_BYTES: u64 = 4 * 1024 * 1024;
/// The longest window one request may ask for.
pub const MAX_WINDOW_US: i64 = 24 * 3600 * 1_000_000;
/// Raw objects read at once.
const READ_AHEAD: usize = 4;

/// The raw lake's objects, by key ([`RawReads`] of the object store in AWS
/// and on the local stack; [`MemoryRaw`] in tests).
pub trait RawReads: Send + Sync {
    /// The keys under `prefix`.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, HistoryError>>;
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, HistoryError>>;
}

/// What a caller asked for: a vehicle's frames in a window, of some buses and ids, in one format.
#[derive(Debug, Clone)]
pub struct Asked {
    pub vehicle: DeviceId,
    pub window: TimeRange,
    pub only: FrameFilter,
    pub format: LogFormat,
}

impl Asked {
    fn holds(&self, frame: &CanFrame) -> bool {
        (self.window.from_us..self.window.to_us).contains(&frame.ts_us) && self.only.holds(frame)
    }
}

/// A log of the asked frames, whole or up to where it was cut.
#[derive(Debug)]
pub struct Export {
    pub log: Vec<u8>,
    pub frames: u64,
    /// Where the frames left out start, when the answer was cut.
    pub next_from_us: Option<i64>,
}

/// The log of what `asked` names, at most about `answer_bytes` of it.
pub async fn export(raw: &dyn RawReads, asked: &Asked, answer_bytes: u64) -> Result<Export, HistoryError> {
    let objects = objects(raw, asked).await?;
    let mut writer = LogWriter::new(asked.format, Cursor::new(Vec::new()), asked.window.from_us).map_err(failed)?;
    let mut frames = 0u64;
    let mut cut_after: Option<i64> = None;
    let mut next_from_us = None;
    let mut bodies = stream::iter(objects)
        .map(|key| async move {
            let body = raw.get(&key).await?;
            Ok::<_, HistoryError>((key, body))
        })
        .buffered(READ_AHEAD);
    'objects: while let Some((key, body)) = bodies.try_next().await? {
        for frame in frames_in(&key, body, asked)? {
            match cut_after {
                Some(t) if frame.ts_us != t => {
                    next_from_us = Some(frame.ts_us);
                    break 'objects;
                }
                _ => {}
            }
            writer.write(&frame).map_err(failed)?;
            frames += 1;
            if cut_after.is_none() && writer.get_ref().get_ref().len() as u64 >= answer_bytes {
                // The rest of this time's frames still go in: the next
                // request starts at a time, and must not repeat a frame.
                cut_after = Some(frame.ts_us);
            }
        }
    }
    let log = writer.finish().map_err(failed)?.into_inner();
    Ok(Export {
        log,
        frames,
        next_from_us,
    })
}

/// The frames of raw object `key` that `asked` names, in time order (the
/// lake sorts an object's frames within each row group; across them, a
/// frame of one bus may come a little after a later one of another).
fn frames_in(key: &str, body: Bytes, asked: &Asked) -> Result<Vec<CanFrame>, HistoryError> {
    let mut buses = BusNames::default();
    let mut frames = Vec::new();
    for batch in RawFileReader::from_bytes(body, key).map_err(failed)? {
        let batch = batch.map_err(failed)?;
        for i in 0..batch.len() {
            let frame = batch
                .row(i)
                .map_err(failed)?
                .to_frame(&mut buses)
                .map_err(|e| failed(format!("{key}: row {i}: {e}")))?;
            if asked.holds(&frame) {
                frames.push(frame);
            }
        }
    }
    // Stable: frames of one time keep the order they were captured in.
    frames.sort_by_key(|f| f.ts_us);
    Ok(frames)
}

/// The raw objects that may hold frames of the window, in the order of their first frames.
async fn objects(raw: &dyn RawReads, asked: &Asked) -> Result<Vec<String>, HistoryError> {
    let (first, last) = asked.window.dates();
    let prefixes: Vec<String> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| {
            format!(
                "{RAW_PREFIX}vehicle_id={}/date={}/",
                asked.vehicle,
                d.format("%Y-%m-%d")
            )
        })
        .collect();
    let listed = try_join_all(prefixes.iter().map(|p| raw.list(p))).await?;
    let mut keyed: Vec<(i64, u64, String)> = listed
        .into_iter()
        .flatten()
        .filter_map(|key| RawKey::parse(&key).ok().map(|k| (k.first_ts_us, k.seq, key)))
        .collect();
    keyed.sort();
    // An object holds frames from its first up to the next object's first.
    let keep: Vec<bool> = (0..keyed.len())
        .map(|i| keyed[i].0 < asked.window.to_us && keyed.get(i + 1).is_none_or(|next| next.0 > asked.window.from_us))
        .collect();
    Ok(keyed
        .into_iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(|((_, _, key), _)| key)
        .collect())
}

fn failed(e: impl ToString) -> HistoryError {
    HistoryError::Failed {
        query_id: "(raw)".into(),
        message: e.to_string(),
    }
}

/// Raw objects in memory, by key: for tests and the fuzz target.
#[derive(Default)]
pub struct MemoryRaw {
    pub objects: std::sync::Mutex<std::collections::BTreeMap<String, Bytes>>,
}

impl MemoryRaw {
    pub fn put(&self, key: &str, body: impl Into<Bytes>) {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_string(), body.into());
    }
}

impl RawReads for MemoryRaw {
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, HistoryError>> {
        let objects = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys = objects.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        Box::pin(async move { Ok(keys) })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Bytes, HistoryError>> {
        let objects = self.objects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let body = objects
            .get(key)
            .cloned()
            .ok_or_else(|| failed(format!("{key}: no such object")));
        Box::pin(async move { body })
    }
}

#[cfg(test)]
mod tests {
    use canopy::format::candump::parse_line;
    use canopy::format::frame::{CanId, FrameFlags};
    use canopy::format::lake::raw::RawWriter;

    use std::collections::BTreeSet;

    use super::*;

    const T0: i64 = 1_700_000_000_000_000;

    /// Two raw objects of a minute each: a frame every 10 ms alternating
    /// can0 and can1, ids 0x100 and 0x18FEF100 (extended), and at each
    /// second three frames at the same time.
    fn lake() -> (MemoryRaw, Vec<CanFrame>) {
        let raw = MemoryRaw::default();
        let vehicle = DeviceId::new("veh-001").unwrap();
        let mut all = Vec::new();
        for (seq, start) in [(1, T0), (2, T0 + 60_000_000)] {
            let mut writer = RawWriter::new(Vec::new(), "test").unwrap();
            for i in 0..6_000i64 {
                let ts_us = start + i * 10_000;
                let repeats = if i % 100 == 0 { 3 } else { 1 };
                for r in 0..repeats {
                    let (bus, id) = match (i + r) % 2 {
                        0 => ("can0", CanId::standard(0x100).unwrap()),
                        _ => ("can1", CanId::new(0x18FE_F100, true).unwrap()),
                    };
                    let frame = CanFrame::new(ts_us, bus.into(), id, FrameFlags::empty(), &[r as u8; 8]).unwrap();
                    writer.push(frame.clone()).unwrap();
                    all.push(frame);
                }
            }
            let (body, _) = writer.finish().unwrap();
            raw.put(&RawKey::new(vehicle.clone(), start, seq).raw_key(), body);
        }
        (raw, all)
    }

    fn asked(from_us: i64, to_us: i64) -> Asked {
        Asked {
            vehicle: DeviceId::new("veh-001").unwrap(),
            window: TimeRange { from_us, to_us },
            only: FrameFilter::default(),
            format: LogFormat::Candump,
        }
    }

    fn frames_of(log: &[u8]) -> Vec<CanFrame> {
        let mut buses = BusNames::default();
        std::str::from_utf8(log)
            .unwrap()
            .lines()
            .map(|line| parse_line(line, &mut buses).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_window_of_some_buses_and_ids_is_every_such_frame_as_captured() {
        let (raw, all) = lake();
        let mut a = asked(T0 + 30_000_000, T0 + 90_000_000);
        a.only.buses = BTreeSet::from(["can1".to_string()]);
        a.only.ids = BTreeSet::from([0x18FE_F100]);
        let export = export(&raw, &a, ANSWER_BYTES).await.unwrap();
        let expected: Vec<&CanFrame> = all.iter().filter(|f| a.holds(f)).collect();
        assert_eq!(export.next_from_us, None);
        assert_eq!(export.frames, expected.len() as u64);
        let got = frames_of(&export.log);
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            expected,
            "both objects, in order, exactly"
        );
        assert!(got.iter().all(|f| &*f.bus == "can1" && f.id.is_extended()));

        a.only.ids = BTreeSet::from([0x100]);
        assert_eq!(export_frames(&raw, &a).await, 0, "0x100 is on can0 only");
    }

    async fn export_frames(raw: &MemoryRaw, a: &Asked) -> u64 {
        export(raw, a, ANSWER_BYTES).await.unwrap().frames
    }

    #[tokio::test]
    async fn a_cut_answer_names_where_the_next_starts_and_the_pieces_hold_every_frame_once() {
        let (raw, all) = lake();
        let mut from_us = T0 + 500_000;
        let to_us = T0 + 120_000_000;
        let mut pieces = 0;
        let mut got = Vec::new();
        loop {
            let export = export(&raw, &asked(from_us, to_us), 20_000).await.unwrap();
            got.extend(frames_of(&export.log));
            pieces += 1;
            match export.next_from_us {
                Some(next) => {
                    assert!(
                        export.log.len() >= 20_000 && export.log.len() < 21_000,
                        "{}",
                        export.log.len()
                    );
                    assert!(next > from_us);
                    from_us = next;
                }
                None => break,
            }
        }
        let expected: Vec<CanFrame> = all.into_iter().filter(|f| f.ts_us >= T0 + 500_000).collect();
        assert!(pieces > 10, "{pieces}");
        assert_eq!(got, expected, "every frame once, the repeated times too");
    }

    #[tokio::test]
    async fn each_format_is_written_and_an_empty_window_is_an_empty_log() {
        let (raw, _) = lake();
        for format in LogFormat::ALL {
            let a = Asked {
                format,
                ..asked(T0, T0 + 1_000_000)
            };
            let export = export(&raw, &a, ANSWER_BYTES).await.unwrap();
            assert_eq!(export.frames, 102, "{format:?}");
        }
        let none = export(&raw, &asked(T0 - 10_000_000, T0), ANSWER_BYTES).await.unwrap();
        assert_eq!((none.frames, none.log.len()), (0, 0));
    }
}
