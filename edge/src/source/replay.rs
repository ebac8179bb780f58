//! Replaying a candump log, in real time or accelerated, resumable by byte
//! offset: after a restart the log continues after the last frame spooled.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use canopy::format::candump::{BusNames, parse_line};
use canopy::format::frame::CanFrame;

use super::{Pacer, Source, Status};

pub struct Replay {
    path: PathBuf,
    input: BufReader<File>,
    /// Byte offset after the last line read.
    offset: u64,
    line_no: u64,
    line: String,
    buses: BusNames,
    pacer: Pacer,
    /// Added to every timestamp (rebasing the log to now).
    shift_us: Option<i64>,
    rebase: bool,
    next: Option<(CanFrame, u64)>,
}

impl Replay {
    /// Opens the log at `resume_at` (a byte offset a previous run spooled), or its start.
    pub fn open(path: &Path, speed: f64, rebase: bool, resume_at: Option<u64>) -> Result<Self> {
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let offset = resume_at.unwrap_or(0);
        file.seek(SeekFrom::Start(offset))
            .with_context(|| format!("seeking {} to {offset}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 16, file),
            offset,
            line_no: 0,
            line: String::new(),
            buses: BusNames::default(),
            pacer: Pacer::new(speed),
            shift_us: None,
            rebase,
            next: None,
        })
    }

    /// The next frame and the offset after it, or `None` at the end.
    fn peek(&mut self) -> Result<Option<&(CanFrame, u64)>> {
        while self.next.is_none() {
            self.line.clear();
            let n = self
                .input
                .read_line(&mut self.line)
                .with_context(|| format!("reading {}", self.path.display()))?;
            if n == 0 {
                return Ok(None);
            }
            self.offset += n as u64;
            self.line_no += 1;
            let text = self.line.trim();
            if text.is_empty() {
                continue;
            }
            let mut frame = parse_line(text, &mut self.buses).with_context(|| {
                format!(
                    "{} (line {} after the start or resume point)",
                    self.path.display(),
                    self.line_no
                )
            })?;
            if self.rebase {
                let shift = *self.shift_us.get_or_insert_with(|| now_us() - frame.ts_us);
                frame.ts_us += shift;
            }
            self.next = Some((frame, self.offset));
        }
        Ok(self.next.as_ref())
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Source for Replay {
    fn read(&mut self, out: &mut Vec<CanFrame>, max: usize, wait: Duration) -> Result<Status> {
        let mut cursor = None;
        while out.len() < max {
            let Some(ts_us) = self.peek()?.map(|(frame, _)| frame.ts_us) else {
                return Ok(if cursor.is_some() {
                    Status::Frames { cursor }
                } else {
                    Status::End
                });
            };
            let delay = self.pacer.wait_for(ts_us);
            if !delay.is_zero() {
                if cursor.is_some() {
                    break; // hand over what is due now
                }
                if delay > wait {
                    std::thread::sleep(wait);
                    break;
                }
                std::thread::sleep(delay);
            }
            if let Some((frame, offset)) = self.next.take() {
                out.push(frame);
                cursor = Some(offset);
            }
        }
        Ok(Status::Frames { cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: usize) -> tempfile::NamedTempFile {
        let mut text = String::new();
        for i in 0..lines {
            text.push_str(&format!("(1700000000.{:06}) can0 123#{:02X}\n", i * 1000, i));
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn resumes_exactly_after_the_last_position_read() {
        let file = log(100);
        let mut replay = Replay::open(file.path(), 0.0, false, None).unwrap();
        let mut out = Vec::new();
        let Status::Frames { cursor: Some(at) } = replay.read(&mut out, 40, Duration::ZERO).unwrap() else {
            panic!()
        };
        assert_eq!(out.len(), 40);
        let mut again = Replay::open(file.path(), 0.0, false, Some(at)).unwrap();
        let mut rest = Vec::new();
        while let Status::Frames { .. } = again.read(&mut rest, 1000, Duration::ZERO).unwrap() {}
        assert_eq!(rest.len(), 60);
        assert_eq!(rest[0].data(), &[40]);
    }

    #[test]
    fn paces_in_real_time_and_rebases_to_now() {
        let file = log(5); // frames 1 ms apart
        let mut replay = Replay::open(file.path(), 1.0, true, None).unwrap();
        let start = std::time::Instant::now();
        let mut out = Vec::new();
        while let Status::Frames { .. } = replay.read(&mut out, 100, Duration::from_millis(10)).unwrap() {}
        assert_eq!(out.len(), 5);
        assert!(start.elapsed() >= Duration::from_millis(4));
        assert!((out[0].ts_us - now_us()).abs() < 5_000_000);
    }

    #[test]
    fn a_bad_line_names_the_file_and_line() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "(1.000000) can0 123#00\nnonsense\n").unwrap();
        let mut replay = Replay::open(file.path(), 0.0, false, None).unwrap();
        let err = replay.read(&mut Vec::new(), 10, Duration::ZERO).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }
}
