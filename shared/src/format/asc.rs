//! Vector's ASC log (ASCII), as CANalyzer, CANoe and python-can write it:
//! a header with the measurement's start, then one line per event.
//!
//! ```text
//! date Tue Nov 14 22:13:20.000 2023
//! base hex  timestamps absolute
//! internal events logged
//! Begin Triggerblock Tue Nov 14 22:13:20.000 2023
//!    0.000000 Start of measurement
//!    0.000100 1  123             Rx   d 8 00 11 22 33 44 55 66 77
//!    0.000200 2  18FF50E5x       Rx   d 2 01 02
//!    0.000300 CANFD   3 Rx        123                                   1 0 9 12 00 … 0 0 3000 0 0 0 0 0
//!    0.000400 1  123             Rx   r 4
//!    0.000500 1  ErrorFrame
//! End TriggerBlock
//! ```
//!
//! Times are seconds since the trigger block's start, to the microsecond;
//! the start is written to the millisecond, so the writer starts the block
//! at the first frame's millisecond and every time comes back exact. The
//! dates are UTC (CANalyzer writes the recording machine's local time; a
//! reader that takes them as local time is off by its UTC offset). An error
//! frame is written as `ErrorFrame`: the format has no field for its error
//! class, so its id and data are not kept. Channels: [`super::channels`].

use std::io::{self, BufRead, Write};

use chrono::{DateTime, Datelike, NaiveDateTime};

use super::channels::{Channels, bus_of};
use super::frame::{CanFrame, CanId, FD_LENGTHS, FrameFlags};

/// Writes frames as an ASC log.
pub struct AscWriter<W: Write> {
    out: W,
    start_us: i64,
    channels: Channels,
}

impl<W: Write> AscWriter<W> {
    /// A log whose measurement starts at `first_us` (the earliest frame's
    /// time, to the millisecond): no frame may come before it.
    pub fn new(mut out: W, first_us: i64) -> io::Result<Self> {
        let start_us = first_us.div_euclid(1000) * 1000;
        let date = (DateTime::from_timestamp_micros(start_us))
            .filter(|t| (1..=9999).contains(&t.year()))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{first_us} µs is no date an ASC log can start at"),
                )
            })?
            .format("%a %b %d %H:%M:%S%.3f %Y");
        write!(
            out,
            "date {date}\nbase hex  timestamps absolute\ninternal events logged\n// version 9.0.0\n\
             Begin Triggerblock {date}\n   0.000000 Start of measurement\n"
        )?;
        Ok(Self {
            out,
            start_us,
            channels: Channels::default(),
        })
    }

    /// What the log went to, as far as written.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn write(&mut self, frame: &CanFrame) -> io::Result<()> {
        let since = frame.ts_us.saturating_sub(self.start_us);
        if since < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a frame at {} µs is before the log's start", frame.ts_us),
            ));
        }
        let time = format!("{}.{:06}", since / 1_000_000, since % 1_000_000);
        let channel = self.channels.channel(&frame.bus);
        let id = ascii_id(frame.id);
        let data = spaced_hex(frame.data());
        if frame.is_error() && frame.is_fd() {
            writeln!(self.out, "{time:>11} CANFD {channel:>3} Rx   ErrorFrame")
        } else if frame.is_error() {
            writeln!(self.out, "{time:>11} {channel}  ErrorFrame")
        } else if frame.is_fd() {
            let (brs, esi) = (
                u8::from(frame.flags.contains(FrameFlags::BRS)),
                u8::from(frame.flags.contains(FrameFlags::ESI)),
            );
            let len = frame.data().len();
            let dlc = FD_LENGTHS.iter().position(|&l| l == len).unwrap_or(15);
            // The message flags: EDL, BRS and ESI, as CANoe sets them.
            let flags = 0x1000 | (u32::from(brs) << 13) | (u32::from(esi) << 14);
            writeln!(
                self.out,
                "{time:>11} CANFD {channel:>3} Rx   {id:>8}  {:>32} {brs} {esi} {dlc:x} {len:>2} {data} {:>8} {:>4} {flags:>8X} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "", 0, 0, 0, 0, 0, 0, 0
            )
        } else if frame.is_remote() {
            writeln!(self.out, "{time:>11} {channel}  {id:<15} Rx   r {:x}", frame.dlc())
        } else {
            let dlc = frame.dlc();
            let gap = if data.is_empty() { "" } else { " " };
            writeln!(self.out, "{time:>11} {channel}  {id:<15} Rx   d {dlc:x}{gap}{data}")
        }
    }

    /// Each bus and the channel it was written as.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Ends the trigger block; the writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"End TriggerBlock\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn ascii_id(id: CanId) -> String {
    if id.is_extended() {
        format!("{:X}x", id.raw())
    } else {
        format!("{:X}", id.raw())
    }
}

fn spaced_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        let gap = if i > 0 { " " } else { "" };
        let _ = write!(out, "{gap}{b:02X}");
    }
    out
}

/// What is wrong with an ASC log, and on which line.
#[derive(Debug, thiserror::Error)]
pub enum AscError {
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads the CAN and CAN FD frames of an ASC log, in its order. Other
/// events (statistics, comments, J1939 transport, markers) are passed over;
/// a CAN line that does not parse is an error naming its line.
pub struct AscReader<R: BufRead> {
    lines: io::Lines<R>,
    line: usize,
    base: u32,
    relative: bool,
    start_us: i64,
    last_us: i64,
}

impl<R: BufRead> AscReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            lines: input.lines(),
            line: 0,
            base: 16,
            relative: false,
            start_us: 0,
            last_us: 0,
        }
    }

    fn error(&self, problem: impl Into<String>) -> AscError {
        AscError::Line {
            line: self.line,
            problem: problem.into(),
        }
    }

    /// The frame of one line, if it holds one.
    fn parse(&mut self, line: &str) -> Result<Option<CanFrame>, AscError> {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { return Ok(None) };
        match first.to_ascii_lowercase().as_str() {
            "date" => {
                self.start_us = self.date(line.trim_start().split_once(char::is_whitespace).map(|(_, d)| d))?;
                return Ok(None);
            }
            "base" => {
                self.base = if words.next().is_some_and(|b| b.eq_ignore_ascii_case("dec")) {
                    10
                } else {
                    16
                };
                self.relative = words.nth(1).is_some_and(|t| t.eq_ignore_ascii_case("relative"));
                return Ok(None);
            }
            "begin" => {
                // "Begin Triggerblock <date>"
                let date = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|weekday| line.find(weekday).map(|at| &line[at..]));
                self.start_us = self.date(date)?;
                self.last_us = self.start_us;
                return Ok(None);
            }
            _ => {}
        }
        let Some(seconds) = parse_seconds(first) else {
            return Ok(None);
        };
        let ts_us = if self.relative {
            self.last_us.saturating_add(seconds)
        } else {
            self.start_us.saturating_add(seconds)
        };
        // Relative times count from the event before, whatever it was.
        self.last_us = ts_us;
        let rest: Vec<&str> = words.collect();
        match rest.first().copied() {
            Some("CANFD") => self.fd(ts_us, &rest[1..]),
            Some(channel) if channel.bytes().all(|b| b.is_ascii_digit()) => self.classic(ts_us, channel, &rest[1..]),
            _ => Ok(None),
        }
    }

    fn date(&self, text: Option<&str>) -> Result<i64, AscError> {
        let text = text.unwrap_or_default().trim();
        // The weekday first, then the date: "Tue Nov 14 22:13:20.000 2023".
        let without_weekday = text.split_once(char::is_whitespace).map_or("", |(_, d)| d.trim());
        ["%b %d %H:%M:%S%.f %Y", "%b %d %I:%M:%S%.f %p %Y", "%b %d %H:%M:%S %Y"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(without_weekday, f).ok())
            .map(|t| t.and_utc().timestamp_micros())
            .ok_or_else(|| self.error(format!("{text:?} is not a date like \"Tue Nov 14 22:13:20.000 2023\"")))
    }

    fn number(&self, text: &str, what: &str) -> Result<u32, AscError> {
        u32::from_str_radix(text, self.base).map_err(|_| self.error(format!("{what} {text:?} is not a number")))
    }

    fn id(&self, text: &str) -> Result<CanId, AscError> {
        let (digits, extended) = match text.strip_suffix(['x', 'X']) {
            Some(d) => (d, true),
            None => (text, false),
        };
        let raw = self.number(digits, "identifier")?;
        CanId::new(raw, extended).ok_or_else(|| self.error(format!("identifier {text} is out of range")))
    }

    fn bytes(&self, words: &[&str], n: usize) -> Result<Vec<u8>, AscError> {
        if words.len() < n {
            return Err(self.error(format!("{n} data bytes expected, {} found", words.len())));
        }
        words[..n]
            .iter()
            .map(|w| u8::from_str_radix(w, self.base).map_err(|_| self.error(format!("data byte {w:?} is not a byte"))))
            .collect()
    }

    /// `<channel> <id> <dir> d <dlc> <data…>`, `… r [<dlc>]` or `<channel> ErrorFrame`.
    fn classic(&self, ts_us: i64, channel: &str, rest: &[&str]) -> Result<Option<CanFrame>, AscError> {
        let bus = bus_of(channel.parse().map_err(|_| self.error("channel out of range"))?);
        if rest.first().is_some_and(|w| w.eq_ignore_ascii_case("ErrorFrame")) {
            let frame = CanFrame::new(ts_us, bus, CanId::Standard(0), FrameFlags::ERROR, &[]);
            return frame.map(Some).map_err(|e| self.error(e.to_string()));
        }
        let [id, direction, kind, rest @ ..] = rest else {
            return Err(self.error("expected <id> <Rx|Tx> <d|r> <dlc> <data>"));
        };
        if !is_direction(direction) {
            // Another event of the channel: statistics, a J1939 transfer, a status.
            return Ok(None);
        }
        let id = self.id(id)?;
        let frame = match kind.to_ascii_lowercase().as_str() {
            "r" => {
                let dlc = rest.first().map_or(Ok(0), |d| self.number(d, "DLC"))?;
                CanFrame::remote(ts_us, bus, id, u8::try_from(dlc).unwrap_or(u8::MAX))
            }
            "d" => {
                let dlc = self.number(rest.first().copied().unwrap_or_default(), "DLC")?;
                let data = self.bytes(&rest[1.min(rest.len())..], dlc.min(8) as usize)?;
                CanFrame::new(ts_us, bus, id, FrameFlags::empty(), &data)
            }
            other => return Err(self.error(format!("{other:?} is neither d (data) nor r (remote)"))),
        };
        frame.map(Some).map_err(|e| self.error(e.to_string()))
    }

    /// `CANFD <channel> <dir> <id> [<name>] <brs> <esi> <dlc> <length> <data…> …`.
    fn fd(&self, ts_us: i64, rest: &[&str]) -> Result<Option<CanFrame>, AscError> {
        let [channel, direction, id, rest @ ..] = rest else {
            return Err(self.error("expected CANFD <channel> <Rx|Tx> <id> …"));
        };
        if !is_direction(direction) {
            return Ok(None);
        }
        let bus = bus_of(channel.parse().map_err(|_| self.error("channel out of range"))?);
        if id.eq_ignore_ascii_case("ErrorFrame") {
            let flags = FrameFlags::ERROR.union(FrameFlags::FD);
            let frame = CanFrame::new(ts_us, bus, CanId::Standard(0), flags, &[]);
            return frame.map(Some).map_err(|e| self.error(e.to_string()));
        }
        let id = self.id(id)?;
        // A symbolic name may stand before BRS; BRS and ESI are 0 or 1.
        let rest = match rest.first() {
            Some(&w) if w != "0" && w != "1" => &rest[1..],
            _ => rest,
        };
        let [brs, esi, _dlc, length, data @ ..] = rest else {
            return Err(self.error("expected <brs> <esi> <dlc> <length> <data>"));
        };
        let length: usize = length.parse().map_err(|_| self.error(format!("length {length:?}")))?;
        let mut flags = FrameFlags::FD;
        if *brs == "1" {
            flags.insert(FrameFlags::BRS);
        }
        if *esi == "1" {
            flags.insert(FrameFlags::ESI);
        }
        let data = self.bytes(data, length)?;
        CanFrame::new(ts_us, bus, id, flags, &data)
            .map(Some)
            .map_err(|e| self.error(e.to_string()))
    }
}

fn is_direction(word: &str) -> bool {
    word.eq_ignore_ascii_case("Rx") || word.eq_ignore_ascii_case("Tx")
}

/// `12.345678` as µs; `None` for anything else.
fn parse_seconds(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.')?;
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // To the microsecond: digits past the sixth are dropped, missing ones are zeros.
    let micros =
        (fraction.bytes().chain(std::iter::repeat(b'0')).take(6)).fold(0i64, |m, d| m * 10 + i64::from(d - b'0'));
    whole.parse::<i64>().ok()?.checked_mul(1_000_000)?.checked_add(micros)
}

impl<R: BufRead> Iterator for AscReader<R> {
    type Item = Result<CanFrame, AscError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next()? {
                Ok(line) => line,
                Err(e) => return Some(Err(e.into())),
            };
            self.line += 1;
            match self.parse(&line) {
                Ok(Some(frame)) => return Some(Ok(frame)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn frames() -> Vec<CanFrame> {
        let bus = |s: &str| -> super::super::frame::BusName { Arc::from(s) };
        let t0 = 1_700_000_000_123_456;
        vec![
            CanFrame::new(
                t0,
                bus("can0"),
                CanId::Standard(0x123),
                FrameFlags::empty(),
                &[0, 0x11, 0xFF],
            )
            .unwrap(),
            CanFrame::new(
                t0 + 1,
                bus("can1"),
                CanId::Extended(0x18FF_50E5),
                FrameFlags::empty(),
                &[1, 2, 3, 4, 5, 6, 7, 8],
            )
            .unwrap(),
            CanFrame::new(
                t0 + 250,
                bus("can2"),
                CanId::Standard(0x7FF),
                FrameFlags::FD.union(FrameFlags::BRS),
                &[0xAB; 12],
            )
            .unwrap(),
            CanFrame::new(
                t0 + 1_000_000,
                bus("can2"),
                CanId::Extended(0x1234),
                FrameFlags::FD.union(FrameFlags::ESI),
                &[7; 64],
            )
            .unwrap(),
            CanFrame::remote(t0 + 2_000_001, bus("can0"), CanId::Standard(0x10), 4).unwrap(),
            CanFrame::new(
                t0 + 2_000_002,
                bus("can0"),
                CanId::Standard(0x11),
                FrameFlags::empty(),
                &[],
            )
            .unwrap(),
            CanFrame::new(t0 + 3_000_000, bus("can1"), CanId::Standard(0), FrameFlags::ERROR, &[]).unwrap(),
        ]
    }

    #[test]
    fn frames_written_read_back_the_same_to_the_microsecond() {
        let written = frames();
        let mut writer = AscWriter::new(Vec::new(), written[0].ts_us).unwrap();
        for f in &written {
            writer.write(f).unwrap();
        }
        let text = writer.finish().unwrap();
        let read: Vec<CanFrame> = AscReader::new(&text[..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(read, written, "{}", String::from_utf8_lossy(&text));
    }

    #[test]
    fn a_frame_before_the_start_and_a_broken_line_are_errors_that_say_where() {
        let written = frames();
        let mut writer = AscWriter::new(Vec::new(), written[1].ts_us + 1000).unwrap();
        assert!(writer.write(&written[0]).is_err());
        let text = "date Tue Nov 14 22:13:20.000 2023\nbase hex  timestamps absolute\n\
                    Begin Triggerblock Tue Nov 14 22:13:20.000 2023\n   0.000100 1  1G3   Rx   d 1 00\n";
        let err = AscReader::new(text.as_bytes()).next().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "line 4: identifier \"1G3\" is not a number");
        let text = "   0.000100 1  123   Rx   d 4 00 01\n";
        let err = AscReader::new(text.as_bytes()).next().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "line 1: 4 data bytes expected, 2 found");
    }

    #[test]
    fn decimal_logs_relative_times_names_and_other_events_read_as_canalyzer_means_them() {
        let text = "date Tue Nov 14 10:13:20.000 pm 2023\nbase dec  timestamps relative\nno internal events logged\n\
                    Begin Triggerblock Tue Nov 14 10:13:20.000 pm 2023\n   0.000000 Start of measurement\n\
                    0.001000 1  291   Rx   d 2 0 255\n\
                    0.000500 1  Statistic: D 0 R 0 XD 0 XR 0 E 0 O 0 B 0.00%\n\
                    0.002000 2  1234x Tx   r 8\n\
                    0.000010 CANFD   1 Rx 256 EngineData 1 0 9 12 1 2 3 4 5 6 7 8 9 10 11 12 0 0 3000 0 0 0 0 0\n\
                    0.000100 2  ErrorFrame\nEnd TriggerBlock\n";
        let start = 1_700_000_000_000_000; // 2023-11-14T22:13:20Z
        let frames: Vec<CanFrame> = AscReader::new(text.as_bytes()).collect::<Result<_, _>>().unwrap();
        let times: Vec<i64> = frames.iter().map(|f| f.ts_us - start).collect();
        assert_eq!(times, [1_000, 3_500, 3_510, 3_610], "each time from the event before");
        assert_eq!(
            (frames[0].id, frames[0].data()),
            (CanId::Standard(291), &[0u8, 255][..])
        );
        assert!(frames[1].is_remote() && frames[1].id == CanId::Extended(1234) && &*frames[1].bus == "can1");
        assert_eq!(frames[2].id, CanId::Standard(256));
        assert_eq!(frames[2].flags, FrameFlags::FD.union(FrameFlags::BRS));
        assert_eq!(frames[2].data(), (1..=12).collect::<Vec<u8>>().as_slice());
        assert!(frames[3].is_error());
    }
}
