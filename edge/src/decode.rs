//! `canopy-edge decode`: DBC-decode a candump log or a raw lake file into
//! JSON lines (one object per frame, in order) or decoded lake Parquet.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use canopy::candump::{BusNames, CandumpReader};
use canopy::dbc::{Database, DecodeError, Message, SignalValue};
use canopy::frame::CanFrame;
use canopy::lake::decode::{DecodeStats, FrameDecoder};
use canopy::lake::decoded::{DecodedWriter, DecodedWriterOptions};
use canopy::lake::raw::{RawBatch, RawFileReader};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per input frame, in input order.
    Jsonl,
    /// The decoded lake format: long-format Parquet, sorted, ZSTD.
    Parquet,
}

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// The DBC file.
    #[arg(long)]
    pub dbc: PathBuf,
    /// A candump log (`candump -l` format); `-` reads standard input.
    #[arg(long, conflicts_with = "raw", required_unless_present = "raw")]
    pub candump: Option<String>,
    /// A raw CAN Parquet file of the lake.
    #[arg(long)]
    pub raw: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Where to write; standard output when absent (JSON lines only).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn run(args: &DecodeArgs) -> Result<()> {
    let db = Database::load(&args.dbc)?;
    let frames: Box<dyn Iterator<Item = Result<CanFrame>>> = match (&args.candump, &args.raw) {
        (Some(path), _) => Box::new(candump_frames(path)?),
        (None, Some(path)) => Box::new(RawFrames::new(RawFileReader::open(path)?)),
        (None, None) => anyhow::bail!("give --candump or --raw"),
    };
    match args.format {
        Format::Jsonl => {
            let out: Box<dyn Write> = match &args.output {
                Some(path) => Box::new(
                    File::create(path).with_context(|| format!("creating {}", path.display()))?,
                ),
                None => Box::new(io::stdout().lock()),
            };
            let mut out = BufWriter::with_capacity(1 << 16, out);
            write_jsonl(&db, frames, &mut out)?;
            out.flush().context("writing the output")?;
        }
        Format::Parquet => {
            let path = args
                .output
                .as_ref()
                .context("--format parquet needs --output FILE")?;
            let stats = write_parquet(&db, frames, path)?;
            eprintln!(
                "{} frames: {} decoded into {} values, {} unknown ids, {} shorter than their DBC length, {} invalid, {} remote/error",
                stats.frames,
                stats.decoded_frames,
                stats.values,
                stats.unknown_ids,
                stats.short_frames,
                stats.invalid_frames,
                stats.skipped_frames
            );
        }
    }
    Ok(())
}

/// Decodes frames into a decoded lake file at `path`.
pub fn write_parquet(
    db: &Database,
    frames: impl Iterator<Item = Result<CanFrame>>,
    path: &std::path::Path,
) -> Result<DecodeStats> {
    let name = path.display().to_string();
    let file = File::create(path).with_context(|| format!("creating {name}"))?;
    let mut writer = DecodedWriter::new(
        db,
        BufWriter::new(file),
        &name,
        DecodedWriterOptions::default(),
    )?;
    let mut decoder = FrameDecoder::new(db);
    for frame in frames {
        let frame = frame?;
        decoder.decode_frame(
            frame.ts_us,
            frame.id,
            frame.flags,
            frame.data(),
            &mut writer,
        )?;
    }
    let (mut sink, _) = writer.finish()?;
    sink.flush().with_context(|| format!("writing {name}"))?;
    Ok(decoder.stats)
}

/// The frames of a raw lake file, batch by batch.
struct RawFrames {
    reader: RawFileReader,
    batch: Option<RawBatch>,
    next: usize,
    buses: BusNames,
}

impl RawFrames {
    fn new(reader: RawFileReader) -> Self {
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

fn candump_frames(path: &str) -> Result<impl Iterator<Item = Result<CanFrame>>> {
    let input: Box<dyn BufRead> = if path == "-" {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(path).with_context(|| format!("opening {path}"))?,
        ))
    };
    Ok(CandumpReader::new(input, path).map(|r| r.map_err(anyhow::Error::from)))
}

/// Writes the oracle's JSON-lines format.
pub fn write_jsonl(
    db: &Database,
    frames: impl Iterator<Item = Result<CanFrame>>,
    out: &mut impl Write,
) -> Result<()> {
    let mut values = Vec::new();
    let mut line = String::with_capacity(512);
    for frame in frames {
        let frame = frame?;
        line.clear();
        let message = db.lookup(frame.id);
        let result = message.map(|m| m.decode(frame.data(), &mut values));
        jsonl_line(&mut line, &frame, message, result, &values);
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

fn jsonl_line(
    line: &mut String,
    frame: &CanFrame,
    message: Option<&Message>,
    result: Option<Result<(), DecodeError>>,
    values: &[SignalValue],
) {
    use std::fmt::Write as _;
    let sec = frame.ts_us.div_euclid(1_000_000);
    let usec = frame.ts_us.rem_euclid(1_000_000);
    let _ = write!(
        line,
        "{{\"timestamp\":{sec}.{usec:06},\"can_id\":{},\"extended\":{},\"message\":",
        frame.id.raw(),
        frame.id.is_extended()
    );
    match message {
        None => line.push_str("null"),
        Some(m) => json_string(line, &m.name),
    }
    line.push_str(",\"signals\":");
    match (message, &result) {
        (Some(m), Some(Ok(()))) => {
            line.push('{');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                json_string(line, &m.signals[usize::from(v.signal)].name);
                line.push(':');
                json_number(line, v.value);
            }
            line.push('}');
        }
        _ => line.push_str("null"),
    }
    line.push_str(",\"error\":");
    match result {
        Some(Err(e)) => json_string(line, &e.to_string()),
        _ => line.push_str("null"),
    }
    line.push_str("}\n");
}

fn json_number(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v:?}");
    }
}

fn json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
