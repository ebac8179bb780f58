//! The can-utils `candump -l` log format, read as a stream and written.
//!
//! ```text
//! (1700000000.000100) can0 1F0#0011223344556677      classic, 11-bit id
//! (1700000000.000200) can0 18FF50E5#0102             classic, 29-bit id
//! (1700000000.000300) can1 123##1<up to 64 bytes>    CAN FD, flags nibble (1 = BRS, 2 = ESI)
//! (1700000000.000400) can0 123#R4                    remote request for 4 bytes
//! (1700000000.000500) can0 20000080#0000000000000000 error frame (CAN_ERR_FLAG in the id)
//! ```
//! The digit count of the id is the only sign of the IDE bit: 3 digits are a
//! standard id, 8 an extended one.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

use crate::format::frame::{BusName, CanFrame, CanId, FrameFlags, MAX_CLASSIC_PAYLOAD, MAX_PAYLOAD};

/// SocketCAN's error-frame flag, as it appears in a logged id.
const CAN_ERR_FLAG: u32 = 0x2000_0000;
const FD_FLAG_BRS: u8 = 0x1;
const FD_FLAG_ESI: u8 = 0x2;

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("expected a timestamp in parentheses, like (1700000000.000100)")]
    Timestamp,
    #[error("missing interface name after the timestamp")]
    MissingBus,
    #[error("missing frame after the interface name")]
    MissingFrame,
    #[error("expected <id>#<data> or <id>##<flags><data>, found {0:?}")]
    FrameSyntax(String),
    #[error("identifier {0:?} must be 3 (standard) or 8 (extended) hex digits")]
    IdLength(String),
    #[error("identifier {0:?} is not hexadecimal")]
    IdHex(String),
    #[error("standard identifier 0x{0:X} does not fit in 11 bits")]
    StandardIdRange(u32),
    #[error("payload {0:?} is not an even number of hex digits")]
    DataHex(String),
    #[error("payload of {len} bytes is longer than the {max} bytes this frame type allows")]
    DataLength { len: usize, max: usize },
    #[error("CAN FD flags {0:?} must be one hex digit")]
    FdFlags(String),
    #[error("remote request length {0:?} must be one hex digit from 0 to 8")]
    RemoteLength(String),
    #[error("unexpected text after the frame: {0:?}")]
    Trailing(String),
    #[error("line is not valid UTF-8")]
    Utf8,
    #[error("line is longer than {MAX_LINE} bytes, which no candump frame needs")]
    TooLong,
    #[error("interface name {0:?} is longer than {MAX_BUS_NAME} characters (Linux's limit)")]
    BusName(String),
    #[error("more than {MAX_BUSES} interface names in one log")]
    TooManyBuses,
}

/// The longest line a frame needs (a CAN FD frame on a 15-character
/// interface is under 200 bytes); longer lines are refused unread.
pub const MAX_LINE: usize = 512;
/// Linux interface names have at most 15 characters.
pub const MAX_BUS_NAME: usize = 15;
/// Interfaces one log may name: the interning table stays small.
pub const MAX_BUSES: usize = 64;

/// A candump input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CandumpError {
    #[error("{source_name}:{line}: {kind}")]
    Line {
        source_name: Arc<str>,
        line: u64,
        kind: LineError,
    },
    #[error("{source_name}: {error}")]
    Io { source_name: Arc<str>, error: io::Error },
}

/// Interns bus names so a million frames share a handful of allocations.
#[derive(Default)]
pub struct BusNames {
    names: Vec<BusName>,
}

impl BusNames {
    /// The interned name, checked against the limits of a log line.
    pub fn checked(&mut self, name: &str) -> Result<BusName, LineError> {
        if name.len() > MAX_BUS_NAME {
            return Err(LineError::BusName(name.chars().take(40).collect()));
        }
        if self.names.len() >= MAX_BUSES && !self.names.iter().any(|n| &**n == name) {
            return Err(LineError::TooManyBuses);
        }
        Ok(self.get(name))
    }

    pub fn get(&mut self, name: &str) -> BusName {
        if let Some(found) = self.names.iter().find(|n| &***n == name) {
            return found.clone();
        }
        let interned: BusName = Arc::from(name);
        self.names.push(interned.clone());
        interned
    }
}

// The parser splits with byte searches and decodes hex through a table: a
// log line is some 40 bytes, and the general string searchers' set-up cost
// more than the search (`perf` on `canopy-edge decode --format summary`).

/// `text` split at the first `byte` (which neither part keeps).
fn split_at_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let i = text.bytes().position(|b| b == byte)?;
    // `byte` is ASCII, so both sides are on character boundaries.
    Some((&text[..i], &text[i + 1..]))
}

/// The next field of ASCII-whitespace-separated `text`, and what follows it.
fn next_field(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if text.is_empty() {
        return None;
    }
    let end = text.bytes().position(|b| b.is_ascii_whitespace()).unwrap_or(text.len());
    Some((&text[..end], &text[end..]))
}

/// Parses one log line (without its line ending).
pub fn parse_line(line: &str, buses: &mut BusNames) -> Result<CanFrame, LineError> {
    let line = line.trim();
    match parse_common(line.as_bytes(), buses) {
        Some(frame) => Ok(frame),
        None => parse_line_general(line, buses),
    }
}

/// The line nearly every log is made of, `(<seconds>.<fraction>) <bus>
/// <id>#<hex pairs>` (a classic data frame: no dots, no direction, no raw
/// DLC), read in one pass over its bytes; `None` for any other line, which
/// [`parse_line_general`] then reads or names the problem of. Where this
/// reads a line, the general parser reads the same frame from it (a test
/// and the candump fuzz target check). `perf`: the general parser's several
/// passes were the most of `decode --format parquet`'s busiest thread.
fn parse_common(line: &[u8], buses: &mut BusNames) -> Option<CanFrame> {
    let mut at = 1;
    if line.first() != Some(&b'(') {
        return None;
    }
    let digits = |at: &mut usize, max: usize| -> Option<(i64, usize)> {
        let (start, mut value) = (*at, 0i64);
        while let Some(d) = line.get(*at).filter(|b| b.is_ascii_digit()) {
            if *at - start == max {
                return None;
            }
            value = value * 10 + i64::from(d - b'0');
            *at += 1;
        }
        Some((value, *at - start)).filter(|(_, n)| *n > 0)
    };
    let (sec, _) = digits(&mut at, 12)?;
    if line.get(at) != Some(&b'.') {
        return None;
    }
    at += 1;
    let (fraction, places) = digits(&mut at, 9)?;
    let micros = match places {
        ..=6 => fraction * 10i64.pow(6 - places as u32),
        _ => fraction / 10i64.pow(places as u32 - 6),
    };
    if line.get(at..at + 2) != Some(&b") "[..]) {
        return None;
    }
    at += 2;
    let bus_start = at;
    while line.get(at).is_some_and(|b| b.is_ascii_graphic()) {
        at += 1;
    }
    let bus = std::str::from_utf8(&line[bus_start..at])
        .ok()
        .filter(|b| !b.is_empty())?;
    if line.get(at) != Some(&b' ') {
        return None;
    }
    at += 1;
    let id_start = at;
    let mut raw: u32 = 0;
    while let Some(&nibble) = line.get(at).map(|&b| &HEX[usize::from(b)]).filter(|&&n| n != NOT_HEX) {
        if at - id_start == 8 {
            return None;
        }
        raw = (raw << 4) | u32::from(nibble);
        at += 1;
    }
    let id = match at - id_start {
        3 => CanId::standard(raw)?,
        8 if raw & CAN_ERR_FLAG == 0 => CanId::extended(raw)?,
        _ => return None,
    };
    if line.get(at) != Some(&b'#') {
        return None;
    }
    let payload = &line[at + 1..];
    if !payload.len().is_multiple_of(2) || payload.len() / 2 > MAX_CLASSIC_PAYLOAD {
        return None;
    }
    let mut data = [0u8; MAX_CLASSIC_PAYLOAD];
    for (byte, pair) in data.iter_mut().zip(payload.chunks_exact(2)) {
        let (high, low) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        if high == NOT_HEX || low == NOT_HEX {
            return None;
        }
        *byte = (high << 4) | low;
    }
    let bus = buses.checked(bus).ok()?;
    Some(frame(
        sec * 1_000_000 + micros,
        bus,
        id,
        FrameFlags::empty(),
        &data[..payload.len() / 2],
    ))
}

/// Parses one log line (without its line ending) the long way, whatever its
/// shape: what [`parse_line`] falls back to, and checks its fast path against.
pub fn parse_line_general(line: &str, buses: &mut BusNames) -> Result<CanFrame, LineError> {
    let line = line.trim();
    let rest = line.strip_prefix('(').ok_or(LineError::Timestamp)?;
    let (ts, rest) = split_at_byte(rest, b')').ok_or(LineError::Timestamp)?;
    let ts_us = parse_timestamp(ts)?;

    let (bus, rest) = next_field(rest).ok_or(LineError::MissingBus)?;
    let (frame, rest) = next_field(rest).ok_or(LineError::MissingFrame)?;
    // Newer can-utils may append the direction (R or T) after the frame.
    if let Some((direction, rest)) = next_field(rest) {
        if direction != "R" && direction != "T" {
            return Err(LineError::Trailing(direction.to_string()));
        }
        if let Some((other, _)) = next_field(rest) {
            return Err(LineError::Trailing(other.to_string()));
        }
    }
    parse_frame(ts_us, buses.checked(bus)?, frame)
}

fn parse_timestamp(ts: &str) -> Result<i64, LineError> {
    let (sec, frac) = split_at_byte(ts, b'.').ok_or(LineError::Timestamp)?;
    if sec.is_empty() || sec.len() > 12 || frac.is_empty() || frac.len() > 9 {
        return Err(LineError::Timestamp);
    }
    if !sec.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineError::Timestamp);
    }
    // At most 12 digits: no overflow.
    let sec = sec.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
    let mut micros: i64 = 0;
    for i in 0..6 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        micros = micros * 10 + digit;
    }
    Ok(sec * 1_000_000 + micros)
}

fn parse_frame(ts_us: i64, bus: BusName, text: &str) -> Result<CanFrame, LineError> {
    let (id_text, body) = split_at_byte(text, b'#').ok_or_else(|| LineError::FrameSyntax(text.to_string()))?;
    let (mut id, mut flags) = parse_id(id_text)?;
    let mut data = [0u8; MAX_PAYLOAD];

    if let Some(fd_body) = body.strip_prefix('#') {
        let mut chars = fd_body.chars();
        let flag_digit = chars.next().ok_or_else(|| LineError::FdFlags(String::new()))?;
        let fd_flags = flag_digit
            .to_digit(16)
            .ok_or_else(|| LineError::FdFlags(flag_digit.to_string()))? as u8;
        flags.insert(FrameFlags::FD);
        if fd_flags & FD_FLAG_BRS != 0 {
            flags.insert(FrameFlags::BRS);
        }
        if fd_flags & FD_FLAG_ESI != 0 {
            flags.insert(FrameFlags::ESI);
        }
        let len = parse_hex_payload(chars.as_str(), &mut data, MAX_PAYLOAD)?;
        return Ok(frame(ts_us, bus, id, flags, &data[..len]));
    }

    if let Some(dlc) = body.strip_prefix('R') {
        let len = match dlc {
            "" => 0,
            d if d.len() == 1 => match d.chars().next().and_then(|c| c.to_digit(16)) {
                Some(n) if n <= 8 => n as u8,
                _ => return Err(LineError::RemoteLength(d.to_string())),
            },
            d => return Err(LineError::RemoteLength(d.to_string())),
        };
        if flags.contains(FrameFlags::ERROR) {
            // An error frame is never a remote request; keep the id readable.
            id = CanId::Extended(id.raw());
        }
        return CanFrame::remote(ts_us, bus, id, len).map_err(|_| LineError::RemoteLength(dlc.to_string()));
    }

    // A classic 8-byte frame may carry its raw DLC (9..F) as "_X"; the payload is the same.
    let body = match split_at_byte(body, b'_') {
        Some((payload, dlc)) if dlc.len() == 1 && dlc.chars().all(|c| c.is_ascii_hexdigit()) => payload,
        Some(_) => return Err(LineError::DataHex(body.to_string())),
        None => body,
    };
    let len = parse_hex_payload(body, &mut data, MAX_CLASSIC_PAYLOAD)?;
    Ok(frame(ts_us, bus, id, flags, &data[..len]))
}

fn frame(ts_us: i64, bus: BusName, id: CanId, flags: FrameFlags, data: &[u8]) -> CanFrame {
    // Lengths are checked by the caller, so this cannot fail.
    match CanFrame::new(ts_us, bus, id, flags, data) {
        Ok(f) => f,
        Err(e) => unreachable!("payload length checked before: {e}"),
    }
}

fn parse_id(text: &str) -> Result<(CanId, FrameFlags), LineError> {
    let bad = || LineError::IdHex(text.to_string());
    if text.is_empty() {
        return Err(bad());
    }
    let mut value: u32 = 0;
    for b in text.bytes() {
        let nibble = HEX[usize::from(b)];
        if nibble == NOT_HEX {
            return Err(bad());
        }
        value = value.checked_mul(16).ok_or_else(bad)? | u32::from(nibble);
    }
    match text.len() {
        3 => CanId::standard(value)
            .map(|id| (id, FrameFlags::empty()))
            .ok_or(LineError::StandardIdRange(value)),
        8 if value & CAN_ERR_FLAG != 0 => Ok((CanId::Extended(value & CanId::MAX_EXTENDED), FrameFlags::ERROR)),
        8 => CanId::extended(value)
            .map(|id| (id, FrameFlags::empty()))
            .ok_or_else(|| LineError::IdHex(text.to_string())),
        _ => Err(LineError::IdLength(text.to_string())),
    }
}

/// Each byte's value as a hex digit, or [`NOT_HEX`].
const HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
const NOT_HEX: u8 = 0xff;

/// Hex pairs, optionally separated by dots (`11.22.33`), into `out`.
fn parse_hex_payload(text: &str, out: &mut [u8; MAX_PAYLOAD], max: usize) -> Result<usize, LineError> {
    let bytes = text.as_bytes();
    // The common case: pairs without dots, one table look-up a digit.
    if bytes.len().is_multiple_of(2) && bytes.len() / 2 <= max {
        let mut ok = true;
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let (high, low) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
            ok &= high != NOT_HEX && low != NOT_HEX;
            out[i] = (high << 4) | (low & 0x0f);
        }
        if ok {
            return Ok(bytes.len() / 2);
        }
    }
    let mut len = 0;
    let mut high: Option<u8> = None;
    for b in text.bytes() {
        if b == b'.' && high.is_none() {
            continue;
        }
        let nibble = match HEX[usize::from(b)] {
            NOT_HEX => return Err(LineError::DataHex(text.to_string())),
            n => n,
        };
        match high.take() {
            None => high = Some(nibble),
            Some(h) => {
                if len == max {
                    return Err(LineError::DataLength { len: len + 1, max });
                }
                out[len] = (h << 4) | nibble;
                len += 1;
            }
        }
    }
    if high.is_some() {
        return Err(LineError::DataHex(text.to_string()));
    }
    Ok(len)
}

/// Streams frames from a candump log; each item is a frame or the error of one line.
pub struct CandumpReader<R> {
    input: R,
    source_name: Arc<str>,
    line: u64,
    buf: Vec<u8>,
    buses: BusNames,
}

impl<R: BufRead> CandumpReader<R> {
    /// `source_name` (a path, or `-` for standard input) is named in every error.
    pub fn new(input: R, source_name: &str) -> Self {
        Self {
            input,
            source_name: Arc::from(source_name),
            line: 0,
            buf: Vec::with_capacity(256),
            buses: BusNames::default(),
        }
    }

    fn io_error(&self, error: io::Error) -> CandumpError {
        CandumpError::Io {
            source_name: self.source_name.clone(),
            error,
        }
    }

    fn line_error(&self, kind: LineError) -> CandumpError {
        CandumpError::Line {
            source_name: self.source_name.clone(),
            line: self.line,
            kind,
        }
    }
}

impl<R: BufRead> Iterator for CandumpReader<R> {
    type Item = Result<CanFrame, CandumpError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            let limit = MAX_LINE as u64 + 1;
            match (&mut self.input).take(limit).read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => return Some(Err(self.io_error(error))),
            }
            self.line += 1;
            if self.buf.len() > MAX_LINE && self.buf.last() != Some(&b'\n') {
                // Memory stays bounded: the rest of the line is skipped, not read into the buffer.
                if let Err(error) = skip_line(&mut self.input) {
                    return Some(Err(self.io_error(error)));
                }
                return Some(Err(self.line_error(LineError::TooLong)));
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t.trim(),
                Err(_) => return Some(Err(self.line_error(LineError::Utf8))),
            };
            if text.is_empty() {
                continue;
            }
            return Some(parse_line(text, &mut self.buses).map_err(|kind| self.line_error(kind)));
        }
    }
}

/// Consumes input up to and including the next newline, or to the end.
fn skip_line(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = available.len();
                input.consume(n);
            }
        }
    }
}

/// Writes one frame as a candump log line, newline included.
pub fn write_frame<W: Write>(out: &mut W, frame: &CanFrame) -> io::Result<()> {
    let sec = frame.ts_us.div_euclid(1_000_000);
    let usec = frame.ts_us.rem_euclid(1_000_000);
    write!(out, "({sec}.{usec:06}) {} ", frame.bus)?;
    if frame.is_error() {
        write!(out, "{:08X}", CAN_ERR_FLAG | frame.id.raw())?;
    } else {
        write!(out, "{}", frame.id)?;
    }
    if frame.is_remote() {
        out.write_all(b"#R")?;
        if frame.dlc() > 0 {
            write!(out, "{:X}", frame.dlc())?;
        }
    } else if frame.is_fd() {
        let mut fd_flags = 0;
        if frame.flags.contains(FrameFlags::BRS) {
            fd_flags |= FD_FLAG_BRS;
        }
        if frame.flags.contains(FrameFlags::ESI) {
            fd_flags |= FD_FLAG_ESI;
        }
        write!(out, "##{fd_flags:X}{}", crate::format::frame::hex(frame.data()))?;
    } else {
        write!(out, "#{}", crate::format::frame::hex(frame.data()))?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<CanFrame, LineError> {
        parse_line(line, &mut BusNames::default())
    }

    fn round_trip(line: &str) {
        let frame = parse(line).unwrap();
        let mut out = Vec::new();
        write_frame(&mut out, &frame).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim_end(), line);
    }

    #[test]
    fn reads_classic_frames() {
        let f = parse("(1700000000.000100) can0 1F0#0011223344556677").unwrap();
        assert_eq!(f.ts_us, 1_700_000_000_000_100);
        assert_eq!(&*f.bus, "can0");
        assert_eq!(f.id, CanId::Standard(0x1F0));
        assert_eq!(f.data(), &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
        assert!(!f.is_fd());
    }

    #[test]
    fn digit_count_decides_the_id_type() {
        assert_eq!(parse("(1.0) can0 00000123#").unwrap().id, CanId::Extended(0x123));
        assert_eq!(parse("(1.0) can0 123#").unwrap().id, CanId::Standard(0x123));
        assert_eq!(
            parse("(1.0) can0 0123#").unwrap_err(),
            LineError::IdLength("0123".into())
        );
        assert_eq!(parse("(1.0) can0 923#").unwrap_err(), LineError::StandardIdRange(0x923));
    }

    #[test]
    fn reads_fd_frames_and_flags() {
        let f = parse("(1700000000.000001) can1 123##3AABB").unwrap();
        assert!(f.is_fd());
        assert!(f.flags.contains(FrameFlags::BRS));
        assert!(f.flags.contains(FrameFlags::ESI));
        assert_eq!(f.data(), &[0xAA, 0xBB]);
        let long = format!("(1.000000) can0 123##1{}", "AB".repeat(64));
        assert_eq!(parse(&long).unwrap().data().len(), 64);
        let too_long = format!("(1.000000) can0 123##1{}", "AB".repeat(65));
        assert_eq!(
            parse(&too_long).unwrap_err(),
            LineError::DataLength { len: 65, max: 64 }
        );
    }

    #[test]
    fn classic_frames_are_limited_to_eight_bytes() {
        assert_eq!(
            parse("(1.0) can0 123#001122334455667788").unwrap_err(),
            LineError::DataLength { len: 9, max: 8 }
        );
    }

    #[test]
    fn remote_and_error_frames() {
        let r = parse("(1.000000) can0 123#R4").unwrap();
        assert!(r.is_remote());
        assert_eq!(r.dlc(), 4);
        let e = parse("(1.000000) can0 20000080#0000000000000000").unwrap();
        assert!(e.is_error());
        assert_eq!(e.id.raw(), 0x80);
    }

    #[test]
    fn writes_what_it_reads() {
        for line in [
            "(1700000000.000100) can0 1F0#0011223344556677",
            "(1700000000.000100) can0 18FF50E5#01",
            "(1700000000.999999) vcan1 7FF##1AABBCCDDEEFF0011",
            "(1700000000.000000) can0 123#",
            "(1700000000.000000) can0 123#R",
            "(1700000000.000000) can0 123#R8",
            "(1700000000.000000) can0 20000080#0000000000000000",
        ] {
            round_trip(line);
        }
    }

    #[test]
    fn accepts_dots_direction_and_raw_dlc() {
        assert_eq!(
            parse("(1.000000) can0 123#11.22.33").unwrap().data(),
            &[0x11, 0x22, 0x33]
        );
        assert_eq!(parse("(1.000000) can0 123#11 R").unwrap().data(), &[0x11]);
        assert_eq!(parse("(1.000000) can0 123#1122334455667788_C").unwrap().data().len(), 8);
    }

    #[test]
    fn malformed_lines_name_the_problem() {
        assert_eq!(parse("1.0 can0 123#").unwrap_err(), LineError::Timestamp);
        assert_eq!(parse("(1.0)").unwrap_err(), LineError::MissingBus);
        assert_eq!(parse("(1.0) can0").unwrap_err(), LineError::MissingFrame);
        assert_eq!(
            parse("(1.0) can0 123").unwrap_err(),
            LineError::FrameSyntax("123".into())
        );
        assert_eq!(parse("(1.0) can0 12G#").unwrap_err(), LineError::IdHex("12G".into()));
        assert_eq!(
            parse("(1.0) can0 123#ABC").unwrap_err(),
            LineError::DataHex("ABC".into())
        );
        assert_eq!(
            parse("(1.0) can0 123#00 extra").unwrap_err(),
            LineError::Trailing("extra".into())
        );
    }

    #[test]
    fn reader_names_source_and_line_and_skips_blank_lines() {
        let input = "(1.000000) can0 123#00\r\n\n(2.000000) can0 bad\n(3.000000) can0 124#01\n";
        let items: Vec<_> = CandumpReader::new(input.as_bytes(), "drive.log").collect();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok());
        let err = items[1].as_ref().unwrap_err().to_string();
        assert_eq!(
            err,
            "drive.log:3: expected <id>#<data> or <id>##<flags><data>, found \"bad\""
        );
        assert_eq!(items[2].as_ref().unwrap().id, CanId::Standard(0x124));
    }

    #[test]
    fn lines_across_the_readers_buffer_read_as_lines_within_it() {
        let mut input = b"(1.000000) can0 123#00\r\n\n  \n(2.000000) can0 bad\n".to_vec();
        input.extend_from_slice(b"(2.500000) can0 1\xff3#00\n(3.000000) vcan12 18FF50E5##1");
        input.extend_from_slice("AB".repeat(64).as_bytes());
        input.extend_from_slice(b"\n(4.000000) can0 124#01");
        let read = |capacity: usize| -> Vec<String> {
            let reader = io::BufReader::with_capacity(capacity, &input[..]);
            CandumpReader::new(reader, "x.log")
                .map(|item| match item {
                    Ok(f) => format!("{} {} {:?} {:?}", f.ts_us, f.bus, f.id, f.data()),
                    Err(e) => e.to_string(),
                })
                .collect()
        };
        let whole = read(1 << 16);
        assert_eq!(whole.len(), 5, "{whole:?}");
        assert_eq!(whole[2], "x.log:5: line is not valid UTF-8");
        assert!(whole[4].starts_with("4000000 can0"), "{whole:?}");
        // Every line crosses a 7-byte buffer's end.
        assert_eq!(read(7), whole);
    }

    /// Lines near the common shape, each cut, doubled or changed at every
    /// byte: where the one-pass parser reads a line, it reads what the
    /// general parser reads, and it leaves every line it refuses to it.
    #[test]
    fn the_common_lines_read_as_the_general_parser_reads_them() {
        let seeds = [
            "(1700000000.000100) can0 1F0#0011223344556677",
            "(1700000000.1) vcan12 18FF50E5#0102",
            "(1.123456789) can0 7FF#",
            "(999999999999.000001) can0 123#aBcD",
            "(1700000000.000100) can0 800#00",
            "(1700000000.000100) can0 20000080#0000000000000000",
            "(1700000000.000100) can0 123#R4",
            "(1700000000.000100) can0 123##1AB",
            "(1700000000.000100) can0 123#11.22",
            "(1700000000.000100) can0 123#1122 R",
            "(1700000000.000100)  can0\t123#11_9",
            "(1700000000.000100) can\u{e9} 123#11",
        ];
        let replacements = [
            b'0', b'9', b'a', b'F', b'g', b'#', b'.', b' ', b'(', b')', b'\t', b'R', b'_',
        ];
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for seed in seeds {
            let bytes = seed.as_bytes();
            for i in 0..=bytes.len() {
                lines.push(bytes[..i].to_vec());
                let mut doubled = bytes.to_vec();
                if i < bytes.len() {
                    doubled.insert(i, bytes[i]);
                    lines.push(doubled);
                    for &r in &replacements {
                        let mut changed = bytes.to_vec();
                        changed[i] = r;
                        lines.push(changed);
                    }
                }
            }
        }
        let (mut fast, mut total) = (0, 0);
        for line in &lines {
            let Ok(text) = std::str::from_utf8(line) else { continue };
            let text = text.trim();
            total += 1;
            let general = parse_line_general(text, &mut BusNames::default());
            if let Some(frame) = parse_common(text.as_bytes(), &mut BusNames::default()) {
                fast += 1;
                assert_eq!(general.as_ref(), Ok(&frame), "{text:?}");
            }
            assert_eq!(parse(text), general, "{text:?}");
        }
        assert!(fast > 200 && fast < total / 2, "{fast} of {total} read the quick way");
    }

    #[test]
    fn timestamps_keep_microseconds() {
        assert_eq!(parse("(12.5) can0 123#").unwrap().ts_us, 12_500_000);
        assert_eq!(parse("(12.123456789) can0 123#").unwrap().ts_us, 12_123_456);
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn an_endless_line_is_refused_without_reading_it_and_the_next_line_reads() {
        let mut text = String::from("(1700000000.000100) can0 123#");
        text.push_str(&"AB".repeat(100_000));
        text.push_str("\n(1700000000.000200) can0 124#01\n");
        let mut reader = CandumpReader::new(text.as_bytes(), "long.log");
        let err = reader.next().unwrap().unwrap_err().to_string();
        assert_eq!(
            err,
            "long.log:1: line is longer than 512 bytes, which no candump frame needs"
        );
        assert!(reader.buf.capacity() < 4096, "the buffer never held the line");
        let frame = reader.next().unwrap().unwrap();
        assert_eq!(frame.id, crate::format::frame::CanId::Standard(0x124));
        assert!(reader.next().is_none());
    }

    #[test]
    fn interface_names_are_bounded_in_length_and_number() {
        let mut buses = BusNames::default();
        let long = "(1700000000.000100) an_interface_name_too_long 123#01";
        assert!(matches!(parse_line(long, &mut buses), Err(LineError::BusName(_))));
        for i in 0..MAX_BUSES {
            parse_line(&format!("(1.0) can{i} 123#01"), &mut buses).unwrap();
        }
        assert_eq!(
            parse_line("(1.0) vcan9999 123#01", &mut buses).unwrap_err(),
            LineError::TooManyBuses
        );
        assert!(
            parse_line("(1.0) can0 123#01", &mut buses).is_ok(),
            "known names still read"
        );
    }
}
