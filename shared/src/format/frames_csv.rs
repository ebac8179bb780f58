//! Frames as CSV, for spreadsheets and pandas: one row per frame, a header
//! row first.
//!
//! | column | value |
//! | --- | --- |
//! | `ts_us` | microseconds since the Unix epoch, UTC |
//! | `time` | the same, RFC 3339 |
//! | `bus` | the bus name |
//! | `id` | the identifier, hex without `0x` |
//! | `extended`, `fd`, `brs`, `esi`, `remote`, `error` | 0 or 1 |
//! | `dlc` | payload bytes (for a remote frame, the bytes asked for) |
//! | `data` | the payload, hex |

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat};

use super::frame::{CanFrame, FrameFlags, hex};

pub const HEADER: &str = "ts_us,time,bus,id,extended,fd,brs,esi,remote,error,dlc,data";

/// Writes frames as CSV rows, after the header.
pub struct CsvWriter<W: Write> {
    out: W,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        writeln!(out, "{HEADER}")?;
        Ok(Self { out })
    }

    /// What the log went to, as far as written.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn write(&mut self, frame: &CanFrame) -> io::Result<()> {
        let time = DateTime::from_timestamp_micros(frame.ts_us)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
            .unwrap_or_default();
        let bit = |flag: FrameFlags| u8::from(frame.flags.contains(flag));
        writeln!(
            self.out,
            "{},{time},{},{:X},{},{},{},{},{},{},{},{}",
            frame.ts_us,
            quoted(&frame.bus),
            frame.id.raw(),
            u8::from(frame.id.is_extended()),
            bit(FrameFlags::FD),
            bit(FrameFlags::BRS),
            bit(FrameFlags::ESI),
            bit(FrameFlags::REMOTE),
            bit(FrameFlags::ERROR),
            frame.dlc(),
            hex(frame.data()),
        )
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A field in quotes when it holds a comma, a quote or a line break.
fn quoted(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::format::frame::CanId;

    #[test]
    fn a_row_per_frame_under_the_header() {
        let mut w = CsvWriter::new(Vec::new()).unwrap();
        let fd = FrameFlags::FD.union(FrameFlags::BRS);
        w.write(
            &CanFrame::new(
                1_700_000_000_000_100,
                Arc::from("can1"),
                CanId::Extended(0x18FF50E5),
                fd,
                &[1, 0xAB],
            )
            .unwrap(),
        )
        .unwrap();
        w.write(&CanFrame::remote(1_700_000_000_000_200, Arc::from("a,b"), CanId::Standard(0x12), 4).unwrap())
            .unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            format!(
                "{HEADER}\n\
                 1700000000000100,2023-11-14T22:13:20.000100Z,can1,18FF50E5,1,1,1,0,0,0,2,01AB\n\
                 1700000000000200,2023-11-14T22:13:20.000200Z,\"a,b\",12,0,0,0,0,1,0,4,\n"
            )
        );
    }
}
