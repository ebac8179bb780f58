//! Vector's binary logging format (BLF), as CANalyzer, CANoe and python-can
//! read and write it. No specification is published; the layout here is
//! the one python-can's `can.io.blf` and Toby Lorenz's `vector_blf` use:
//!
//! - a 144-byte file header (`LOGG`): sizes, object count, and the
//!   measurement's start and stop as SYSTEMTIME (UTC, to the millisecond);
//! - log containers (`LOBJ`, type 10) of zlib-compressed objects, up to
//!   128 KiB of objects each (an object may continue in the next container);
//! - in them, one object per frame: `CAN_MESSAGE` (1) for classic frames,
//!   `CAN_FD_MESSAGE` (100) for CAN FD, `CAN_ERROR_EXT` (73) for error
//!   frames (with their id and data), each with its time since the start in
//!   nanoseconds.
//!
//! The writer starts the measurement at the first frame's millisecond, so
//! every time comes back exact to the microsecond. The reader also takes
//! `CAN_MESSAGE2` (86) and `CAN_FD_MESSAGE_64` (101), as CANoe writes them,
//! and times in units of 10 µs; other objects are passed over.
//! Channels: [`super::channels`].

use std::io::{self, Read, Seek, SeekFrom, Write};

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use super::channels::{Channels, bus_of};
use super::frame::{CanFrame, CanId, FD_LENGTHS, FrameFlags};

const FILE_HEADER_SIZE: usize = 144;
const OBJECT_HEADER_SIZE: usize = 16;
const OBJECT_HEADER_V1_SIZE: usize = 16;
const CONTAINER_HEADER_SIZE: usize = 16;
/// Uncompressed bytes of objects per container, as Vector's tools write them.
const CONTAINER_BYTES: usize = 128 * 1024;
/// The most a file header, a file-level object or an inflated container
/// may claim: far above what any writer makes, far below what would
/// exhaust memory on a crafted file.
const MAX_HEADER: usize = 64 * 1024;
const MAX_OBJECT: usize = 64 * 1024 * 1024;

const CAN_MESSAGE: u32 = 1;
const LOG_CONTAINER: u32 = 10;
const CAN_ERROR_EXT: u32 = 73;
const CAN_MESSAGE2: u32 = 86;
const CAN_FD_MESSAGE: u32 = 100;
const CAN_FD_MESSAGE_64: u32 = 101;

const EXTENDED_ID: u32 = 0x8000_0000;
const REMOTE: u8 = 0x80;
const FD_EDL: u8 = 0x1;
const FD_BRS: u8 = 0x2;
const FD_ESI: u8 = 0x4;
/// Object time flags: units of 10 µs, or of 1 ns.
const TIME_TEN_MICS: u32 = 1;
const TIME_ONE_NANS: u32 = 2;

const NO_COMPRESSION: u16 = 0;
const ZLIB_DEFLATE: u16 = 2;

/// Writes frames as a BLF file; the header is completed by [`Self::finish`].
pub struct BlfWriter<W: Write + Seek> {
    out: W,
    start_us: i64,
    last_us: i64,
    channels: Channels,
    pending: Vec<u8>,
    objects: u32,
    uncompressed: u64,
}

impl<W: Write + Seek> BlfWriter<W> {
    /// A log whose measurement starts at `first_us` (the earliest frame's
    /// time, to the millisecond): no frame may come before it.
    pub fn new(mut out: W, first_us: i64) -> io::Result<Self> {
        let start_us = first_us.div_euclid(1000) * 1000;
        // SYSTEMTIME's years.
        if !DateTime::from_timestamp_micros(start_us).is_some_and(|t| (1601..=9999).contains(&t.year())) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{first_us} µs is no date a BLF log can start at"),
            ));
        }
        out.write_all(&[0u8; FILE_HEADER_SIZE])?;
        Ok(Self {
            out,
            start_us,
            last_us: start_us,
            channels: Channels::default(),
            pending: Vec::with_capacity(2 * CONTAINER_BYTES),
            objects: 0,
            uncompressed: FILE_HEADER_SIZE as u64,
        })
    }

    /// What the log went to, as far as written.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn write(&mut self, frame: &CanFrame) -> io::Result<()> {
        let since_ns = (frame.ts_us.checked_sub(self.start_us))
            .and_then(|us| u64::try_from(us).ok())
            .and_then(|us| us.checked_mul(1000))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "a frame at {} µs is before the log's start or centuries after it",
                        frame.ts_us
                    ),
                )
            })?;
        let channel = self.channels.channel(&frame.bus);
        let mut id = frame.id.raw();
        if frame.id.is_extended() {
            id |= EXTENDED_ID;
        }
        let flags = if frame.is_remote() { REMOTE } else { 0 };
        let mut body = Vec::with_capacity(84);
        let kind = if frame.is_error() {
            let data = frame.data();
            body.extend(channel.to_le_bytes());
            body.extend([0u8; 2]); // length
            body.extend([0u8; 4]); // flags
            body.extend([0u8, 0]); // ecc, position
            body.push(data.len().min(8) as u8);
            body.push(0);
            body.extend([0u8; 4]); // frame length
            body.extend(id.to_le_bytes());
            body.extend([0u8; 4]); // extended flags, padding
            let mut eight = [0u8; 8];
            eight[..data.len().min(8)].copy_from_slice(&data[..data.len().min(8)]);
            body.extend(eight);
            CAN_ERROR_EXT
        } else if frame.is_fd() {
            let data = frame.data();
            let dlc = FD_LENGTHS.iter().position(|&l| l == data.len()).unwrap_or(15) as u8;
            let mut fd = FD_EDL;
            if frame.flags.contains(FrameFlags::BRS) {
                fd |= FD_BRS;
            }
            if frame.flags.contains(FrameFlags::ESI) {
                fd |= FD_ESI;
            }
            body.extend(channel.to_le_bytes());
            body.extend([flags, dlc]);
            body.extend(id.to_le_bytes());
            body.extend([0u8; 4]); // frame length
            body.extend([0u8, fd, data.len() as u8]); // bit count, FD flags, valid bytes
            body.extend([0u8; 5]);
            let mut sixty_four = [0u8; 64];
            sixty_four[..data.len()].copy_from_slice(data);
            body.extend(sixty_four);
            CAN_FD_MESSAGE
        } else {
            let mut eight = [0u8; 8];
            eight[..frame.data().len()].copy_from_slice(frame.data());
            body.extend(channel.to_le_bytes());
            body.extend([flags, frame.dlc()]);
            body.extend(id.to_le_bytes());
            body.extend(eight);
            CAN_MESSAGE
        };
        let size = OBJECT_HEADER_SIZE + OBJECT_HEADER_V1_SIZE + body.len();
        self.pending.extend(b"LOBJ");
        self.pending
            .extend(((OBJECT_HEADER_SIZE + OBJECT_HEADER_V1_SIZE) as u16).to_le_bytes());
        self.pending.extend(1u16.to_le_bytes());
        self.pending.extend((size as u32).to_le_bytes());
        self.pending.extend(kind.to_le_bytes());
        self.pending.extend(TIME_ONE_NANS.to_le_bytes());
        self.pending.extend([0u8; 4]); // client index, object version
        self.pending.extend(since_ns.to_le_bytes());
        self.pending.extend(&body);
        self.pending.extend(std::iter::repeat_n(0u8, size % 4));
        self.objects += 1;
        self.last_us = self.last_us.max(frame.ts_us);
        while self.pending.len() >= CONTAINER_BYTES {
            self.container(CONTAINER_BYTES)?;
        }
        Ok(())
    }

    /// The first `n` pending bytes as one compressed container.
    fn container(&mut self, n: usize) -> io::Result<()> {
        let mut z = ZlibEncoder::new(Vec::with_capacity(n / 4), Compression::default());
        z.write_all(&self.pending[..n])?;
        let compressed = z.finish()?;
        let size = OBJECT_HEADER_SIZE + CONTAINER_HEADER_SIZE + compressed.len();
        let mut header = Vec::with_capacity(OBJECT_HEADER_SIZE + CONTAINER_HEADER_SIZE);
        header.extend(b"LOBJ");
        header.extend((OBJECT_HEADER_SIZE as u16).to_le_bytes());
        header.extend(1u16.to_le_bytes());
        header.extend((size as u32).to_le_bytes());
        header.extend(LOG_CONTAINER.to_le_bytes());
        header.extend(ZLIB_DEFLATE.to_le_bytes());
        header.extend([0u8; 6]);
        header.extend((n as u32).to_le_bytes());
        header.extend([0u8; 4]);
        self.out.write_all(&header)?;
        self.out.write_all(&compressed)?;
        self.out.write_all(&[0u8; 3][..size % 4])?;
        self.uncompressed += (OBJECT_HEADER_SIZE + CONTAINER_HEADER_SIZE + n) as u64;
        self.pending.drain(..n);
        Ok(())
    }

    /// Each bus and the channel it was written as.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Writes what is pending and the file header; the writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.pending.is_empty() {
            self.container(self.pending.len())?;
        }
        let file_size = self.out.stream_position()?;
        let mut header = Vec::with_capacity(FILE_HEADER_SIZE);
        header.extend(b"LOGG");
        header.extend((FILE_HEADER_SIZE as u32).to_le_bytes());
        // Application 0 (unknown) 0.0.0; BLF 2.6.8.1, as python-can writes.
        header.extend([0u8, 0, 0, 0, 2, 6, 8, 1]);
        header.extend(file_size.to_le_bytes());
        header.extend(self.uncompressed.to_le_bytes());
        header.extend(self.objects.to_le_bytes());
        header.extend(0u32.to_le_bytes());
        header.extend(system_time(self.start_us));
        header.extend(system_time(self.last_us));
        header.resize(FILE_HEADER_SIZE, 0);
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header)?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// SYSTEMTIME of `us` (UTC, to the millisecond).
fn system_time(us: i64) -> Vec<u8> {
    let t = DateTime::from_timestamp_micros(us).unwrap_or_default();
    [
        t.year() as u16,
        t.month() as u16,
        t.weekday().num_days_from_sunday() as u16,
        t.day() as u16,
        t.hour() as u16,
        t.minute() as u16,
        t.second() as u16,
        (t.timestamp_subsec_millis()) as u16,
    ]
    .iter()
    .flat_map(|v| v.to_le_bytes())
    .collect()
}

/// What is wrong with a BLF file, and where.
#[derive(Debug, thiserror::Error)]
pub enum BlfError {
    #[error("not a BLF file: it does not start with LOGG")]
    NotBlf,
    #[error("at byte {offset}: {problem}")]
    Object { offset: u64, problem: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads the CAN and CAN FD frames of a BLF file, in its order.
pub struct BlfReader<R: Read> {
    input: R,
    /// Where the next file-level object starts.
    offset: u64,
    start_us: i64,
    /// Objects out of containers, not yet read.
    buffer: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: Read> BlfReader<R> {
    pub fn new(mut input: R) -> Result<Self, BlfError> {
        let mut header = [0u8; 72];
        input.read_exact(&mut header).map_err(|_| BlfError::NotBlf)?;
        if &header[..4] != b"LOGG" {
            return Err(BlfError::NotBlf);
        }
        let header_size = u32le(&header, 4) as usize;
        if header_size > MAX_HEADER {
            return Err(BlfError::Object {
                offset: 4,
                problem: format!("a file header of {header_size} bytes"),
            });
        }
        let mut rest = vec![0u8; header_size.saturating_sub(header.len())];
        input.read_exact(&mut rest)?;
        let start_us = from_system_time(&header[40..56]);
        Ok(Self {
            input,
            offset: header_size as u64,
            start_us,
            buffer: Vec::new(),
            at: 0,
            done: false,
        })
    }

    fn error(&self, problem: impl Into<String>) -> BlfError {
        BlfError::Object {
            offset: self.offset,
            problem: problem.into(),
        }
    }

    /// The next file-level object into the buffer (a container's objects,
    /// or an object stored as it is); false at the end of the file.
    fn fill(&mut self) -> Result<bool, BlfError> {
        let mut head = [0u8; OBJECT_HEADER_SIZE];
        match read_full(&mut self.input, &mut head)? {
            0 => return Ok(false),
            n if n < head.len() => return Err(self.error("the file ends inside an object's header")),
            _ => {}
        }
        if &head[..4] != b"LOBJ" {
            return Err(self.error("expected an object (LOBJ)"));
        }
        let size = u32le(&head, 8) as usize;
        let kind = u32le(&head, 12);
        if !(OBJECT_HEADER_SIZE..=MAX_OBJECT).contains(&size) {
            return Err(self.error(format!("an object of {size} bytes")));
        }
        let mut body = vec![0u8; size - OBJECT_HEADER_SIZE];
        self.input
            .read_exact(&mut body)
            .map_err(|_| self.error("the file ends inside an object"))?;
        let mut padding = [0u8; 3];
        let pad = size % 4;
        read_full(&mut self.input, &mut padding[..pad])?;
        self.buffer.drain(..self.at);
        self.at = 0;
        if kind == LOG_CONTAINER {
            if body.len() < CONTAINER_HEADER_SIZE {
                return Err(self.error("a container without its header"));
            }
            let method = u16::from_le_bytes([body[0], body[1]]);
            let data = &body[CONTAINER_HEADER_SIZE..];
            match method {
                NO_COMPRESSION => self.buffer.extend_from_slice(data),
                ZLIB_DEFLATE => {
                    ZlibDecoder::new(data)
                        .take(MAX_OBJECT as u64)
                        .read_to_end(&mut self.buffer)
                        .map_err(|e| self.error(format!("a container does not inflate: {e}")))?;
                }
                other => return Err(self.error(format!("compression method {other} is not zlib"))),
            }
        } else {
            self.buffer.extend_from_slice(&head);
            self.buffer.extend_from_slice(&body);
        }
        self.offset += (size + pad) as u64;
        Ok(true)
    }

    /// The next whole object of the buffer, or `None` when it ends inside one.
    fn object(&mut self) -> Result<Option<(u32, i64, Vec<u8>)>, BlfError> {
        // Objects are padded with up to 3 zeros (writers differ on how many): skip them.
        let mut skipped = 0;
        loop {
            let rest = &self.buffer[self.at..];
            if rest.len() < 4 {
                return Ok(None);
            }
            if rest.starts_with(b"LOBJ") {
                break;
            }
            if rest[0] != 0 || skipped == 7 {
                return Err(self.error("expected an object (LOBJ) inside a container"));
            }
            self.at += 1;
            skipped += 1;
        }
        let b = &self.buffer[self.at..];
        if b.len() < OBJECT_HEADER_SIZE {
            return Ok(None);
        }
        let header_size = usize::from(u16::from_le_bytes([b[4], b[5]]));
        let version = u16::from_le_bytes([b[6], b[7]]);
        let size = u32le(b, 8) as usize;
        let kind = u32le(b, 12);
        if size < header_size || header_size < OBJECT_HEADER_SIZE + 16 {
            return Err(self.error(format!("an object of {size} bytes with a header of {header_size}")));
        }
        if b.len() < size {
            return Ok(None);
        }
        let flags = u32le(b, 16);
        // Versions 1 and 2 of the header keep the time at the same place.
        if version != 1 && version != 2 {
            return Err(self.error(format!("object header version {version}")));
        }
        let raw_time = u64::from_le_bytes([b[24], b[25], b[26], b[27], b[28], b[29], b[30], b[31]]);
        let since_us = if flags == TIME_TEN_MICS {
            i64::try_from(raw_time).unwrap_or(i64::MAX).saturating_mul(10)
        } else {
            // Nanoseconds, to the nearest microsecond.
            (raw_time.saturating_add(500) / 1000) as i64
        };
        let body = b[header_size..size].to_vec();
        self.at += size;
        Ok(Some((kind, self.start_us.saturating_add(since_us), body)))
    }

    fn frame(&self, kind: u32, ts_us: i64, b: &[u8]) -> Result<Option<CanFrame>, BlfError> {
        let need = |n: usize| {
            if b.len() < n {
                Err(self.error(format!("an object of type {kind} of {} bytes, {n} expected", b.len())))
            } else {
                Ok(())
            }
        };
        let id_of = |raw: u32| {
            CanId::new(raw & 0x1FFF_FFFF, raw & EXTENDED_ID != 0).ok_or_else(|| self.error("identifier out of range"))
        };
        let bad = |e: super::frame::FrameError| self.error(e.to_string());
        let frame = match kind {
            CAN_MESSAGE | CAN_MESSAGE2 => {
                need(16)?;
                let bus = bus_of(u16::from_le_bytes([b[0], b[1]]));
                let (flags, dlc) = (b[2], b[3]);
                let id = id_of(u32le(b, 4))?;
                if flags & REMOTE != 0 {
                    CanFrame::remote(ts_us, bus, id, dlc.min(8)).map_err(bad)?
                } else {
                    CanFrame::new(ts_us, bus, id, FrameFlags::empty(), &b[8..8 + usize::from(dlc.min(8))])
                        .map_err(bad)?
                }
            }
            CAN_FD_MESSAGE => {
                need(84)?;
                let bus = bus_of(u16::from_le_bytes([b[0], b[1]]));
                let (flags, dlc) = (b[2], b[3]);
                let id = id_of(u32le(b, 4))?;
                let (fd, valid) = (b[13], usize::from(b[14]).min(64));
                if fd & FD_EDL == 0 {
                    if flags & REMOTE != 0 {
                        CanFrame::remote(ts_us, bus, id, dlc.min(8)).map_err(bad)?
                    } else {
                        CanFrame::new(ts_us, bus, id, FrameFlags::empty(), &b[20..20 + valid.min(8)]).map_err(bad)?
                    }
                } else {
                    CanFrame::new(
                        ts_us,
                        bus,
                        id,
                        fd_flags(fd & FD_BRS != 0, fd & FD_ESI != 0),
                        &b[20..20 + valid],
                    )
                    .map_err(bad)?
                }
            }
            CAN_FD_MESSAGE_64 => {
                need(40)?;
                let bus = bus_of(u16::from(b[0]));
                let (dlc, valid) = (b[1], usize::from(b[2]).min(64));
                let id = id_of(u32le(b, 4))?;
                let flags = u32le(b, 12);
                let mut data = b[40..].to_vec();
                data.resize(valid, 0);
                if flags & 0x1000 == 0 {
                    if flags & 0x0010 != 0 {
                        CanFrame::remote(ts_us, bus, id, dlc.min(8)).map_err(bad)?
                    } else {
                        CanFrame::new(ts_us, bus, id, FrameFlags::empty(), &data[..valid.min(8)]).map_err(bad)?
                    }
                } else {
                    CanFrame::new(
                        ts_us,
                        bus,
                        id,
                        fd_flags(flags & 0x2000 != 0, flags & 0x4000 != 0),
                        &data,
                    )
                    .map_err(bad)?
                }
            }
            CAN_ERROR_EXT => {
                need(32)?;
                let bus = bus_of(u16::from_le_bytes([b[0], b[1]]));
                let dlc = usize::from(b[10]).min(8);
                let id = id_of(u32le(b, 16))?;
                CanFrame::new(ts_us, bus, id, FrameFlags::ERROR, &b[24..24 + dlc]).map_err(bad)?
            }
            _ => return Ok(None),
        };
        Ok(Some(frame))
    }
}

fn fd_flags(brs: bool, esi: bool) -> FrameFlags {
    let mut flags = FrameFlags::FD;
    if brs {
        flags.insert(FrameFlags::BRS);
    }
    if esi {
        flags.insert(FrameFlags::ESI);
    }
    flags
}

impl<R: Read> Iterator for BlfReader<R> {
    type Item = Result<CanFrame, BlfError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.object() {
                Ok(Some((kind, ts_us, body))) => match self.frame(kind, ts_us, &body) {
                    Ok(Some(frame)) => return Some(Ok(frame)),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                },
                Ok(None) => match self.fill() {
                    Ok(true) => continue,
                    Ok(false) => {
                        self.done = true;
                        if self.buffer[self.at..].iter().any(|&b| b != 0) {
                            return Some(Err(self.error("the file ends inside an object")));
                        }
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A SYSTEMTIME (UTC) in µs; 0 when it is no date.
fn from_system_time(b: &[u8]) -> i64 {
    let v: Vec<u32> = b
        .chunks(2)
        .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    NaiveDate::from_ymd_opt(v[0] as i32, v[1], v[3])
        .and_then(|d| d.and_hms_milli_opt(v[4], v[5], v[6], v[7]))
        .map_or(0, |t| t.and_utc().timestamp_micros())
}

/// Reads until `buf` is full or the input ends; how much was read.
fn read_full<R: Read>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut read = 0;
    while read < buf.len() {
        match input.read(&mut buf[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn frames(n: usize) -> Vec<CanFrame> {
        let bus = |i: usize| -> super::super::frame::BusName { Arc::from(format!("can{}", i % 3)) };
        let t0 = 1_700_000_000_123_456i64;
        (0..n)
            .map(|i| {
                let ts = t0 + i as i64 * 137;
                match i % 5 {
                    0 => CanFrame::new(
                        ts,
                        bus(i),
                        CanId::Standard((i % 0x7FF) as u16),
                        FrameFlags::empty(),
                        &[i as u8; 8],
                    ),
                    1 => CanFrame::new(
                        ts,
                        bus(i),
                        CanId::Extended(0x18FF_0000 | i as u32 & 0xFFFF),
                        FrameFlags::empty(),
                        &[1, 2],
                    ),
                    2 => CanFrame::new(
                        ts,
                        bus(i),
                        CanId::Standard(0x100),
                        fd_flags(i % 2 == 0, i % 3 == 0),
                        &[9; 48],
                    ),
                    3 => CanFrame::remote(ts, bus(i), CanId::Standard(0x55), 3),
                    _ => CanFrame::new(
                        ts,
                        bus(i),
                        CanId::Standard(0x4),
                        FrameFlags::ERROR,
                        &[0, 4, 0, 0, 0, 0, 0, 0],
                    ),
                }
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn frames_written_read_back_the_same_across_containers() {
        // Enough frames for several containers, objects split between them.
        let written = frames(10_000);
        let mut writer = BlfWriter::new(io::Cursor::new(Vec::new()), written[0].ts_us).unwrap();
        for f in &written {
            writer.write(f).unwrap();
        }
        let bytes = writer.finish().unwrap().into_inner();
        assert_eq!(&bytes[..4], b"LOGG");
        assert_eq!(
            u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
            bytes.len() as u64
        );
        assert_eq!(u32le(&bytes, 32), 10_000, "objects");
        let read: Vec<CanFrame> = BlfReader::new(&bytes[..]).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), written.len());
        assert_eq!(read, written);
    }

    #[test]
    fn a_cut_file_and_another_format_are_errors() {
        let written = frames(50);
        let mut writer = BlfWriter::new(io::Cursor::new(Vec::new()), written[0].ts_us).unwrap();
        for f in &written {
            writer.write(f).unwrap();
        }
        let bytes = writer.finish().unwrap().into_inner();
        let cut = &bytes[..bytes.len() - 10];
        let last = BlfReader::new(cut).unwrap().last().unwrap();
        assert!(last.is_err(), "{last:?}");
        assert!(matches!(
            BlfReader::new(&b"(1700000000.000100) can0 123#00"[..]),
            Err(BlfError::NotBlf)
        ));
    }
}
