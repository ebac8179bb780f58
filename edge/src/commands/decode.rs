//! `canopy-edge decode`: DBC-decode a candump log or a raw lake file into
//! JSON lines (one object per frame, in order) or decoded lake Parquet.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use canopy::format::dbc::{Database, DecodeError, LoadOptions, Message, SignalValue};
use canopy::format::frame::CanFrame;
use canopy::format::lake::compact::BatchCopy;
use canopy::format::lake::decoded::{DecodedWriter, DecodedWriterOptions};
use canopy::format::lake::raw::RawFileReader;
use canopy::format::lake::transcode::{DecodeStats, FrameDecoder};

use super::input;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per input frame, in input order.
    Jsonl,
    /// The decoded lake format: long-format Parquet, sorted, ZSTD.
    Parquet,
    /// Only the counts: frames decoded, unknown ids, errors (JSON).
    Summary,
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
    /// Refuse the DBC problems cantools' strict mode refuses (overlapping
    /// signals, signals past the message, value tables of unknown signals,
    /// standard ids above 11 bits) instead of tolerating them with a warning.
    #[arg(long)]
    pub strict: bool,
    /// With `--format parquet`: also write the rollup tiers the cloud's
    /// decoder writes, as `<output>.rollup_1s.parquet` and so on for each tier.
    #[arg(long)]
    pub rollups: bool,
}

pub fn run(args: &DecodeArgs) -> Result<()> {
    let db = Database::load_with(&args.dbc, LoadOptions { strict: args.strict })?;
    for warning in db.warnings() {
        eprintln!("warning: {warning}");
    }
    if let (Format::Parquet, Some(raw)) = (args.format, &args.raw) {
        // Arrow batches straight to the decoder, as the cloud's decoder reads them.
        let batches = RawFileReader::open(raw)?;
        return write_parquet_reporting(&db, Input::Raw(batches), args);
    }
    let frames = input::open(args.candump.as_deref(), args.raw.as_deref())?;
    match args.format {
        Format::Jsonl => {
            let out: Box<dyn Write> = match &args.output {
                Some(path) => Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?),
                None => Box::new(io::stdout().lock()),
            };
            let mut out = BufWriter::with_capacity(1 << 16, out);
            write_jsonl(&db, frames, &mut out)?;
            out.flush().context("writing the output")?;
        }
        Format::Summary => {
            let mut decoder = FrameDecoder::new(&db);
            for frame in frames {
                let frame = frame?;
                decoder.decode(frame.id, frame.flags, frame.data());
            }
            println!("{}", serde_json::to_string(&decoder.stats)?);
        }
        Format::Parquet => write_parquet_reporting(&db, Input::Frames(frames), args)?,
    }
    Ok(())
}

/// Where the frames of a decoded Parquet file come from.
pub enum Input {
    Frames(input::Frames),
    Raw(RawFileReader),
}

/// `--format parquet`: writes the file and reports what was decoded.
fn write_parquet_reporting(db: &Database, input: Input, args: &DecodeArgs) -> Result<()> {
    let path = args.output.as_ref().context("--format parquet needs --output FILE")?;
    let stats = write_parquet(db, input, path, args.rollups)?;
    eprintln!(
        "{} frames: {} decoded into {} values, {} unknown ids, {} shorter than their DBC length, {} invalid, {} remote/error; \
         {} J1939 messages reassembled from transport frames, {} transfers broken",
        stats.frames,
        stats.decoded_frames,
        stats.values,
        stats.unknown_ids,
        stats.short_frames,
        stats.invalid_frames,
        stats.skipped_frames,
        stats.transport_messages,
        stats.broken_transfers
    );
    Ok(())
}

/// Decodes frames into a decoded lake file at `path`, and with `rollups`
/// its rollup tiers beside it (`<path>.<table>.parquet`).
pub fn write_parquet(db: &Database, input: Input, path: &std::path::Path, rollups: bool) -> Result<DecodeStats> {
    let name = path.display().to_string();
    let file = File::create(path).with_context(|| format!("creating {name}"))?;
    let options = DecodedWriterOptions {
        rollups,
        ..DecodedWriterOptions::default()
    };
    // The lake's batch is the file's stem (a raw object's, when it is one).
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let copy = BatchCopy::new(&stem, chrono::Utc::now().timestamp_micros());
    let mut writer = DecodedWriter::new(db, BufWriter::new(file), &name, &copy, options)?;
    let tier_path = |table: &str| format!("{name}.{table}.parquet");
    let mut tier_files = Vec::new();
    for (tier, _) in writer.rollup_sinks_mut() {
        let path = tier_path(tier.table);
        tier_files.push(File::create(&path).with_context(|| format!("creating {path}"))?);
    }
    // The tiers' bytes go to their files as they are written, so memory stays flat.
    let mut drain = |writer: &mut DecodedWriter<BufWriter<File>>| -> Result<()> {
        for ((tier, bytes), file) in writer.rollup_sinks_mut().zip(&mut tier_files) {
            file.write_all(bytes)
                .with_context(|| format!("writing {}", tier_path(tier.table)))?;
            bytes.clear();
        }
        Ok(())
    };
    let mut decoder = FrameDecoder::new(db);
    match input {
        Input::Frames(frames) => {
            for chunk in input::read_ahead(frames) {
                for (ts_us, id, flags, data) in chunk?.iter() {
                    decoder.decode_frame(ts_us, id, flags, data, &mut writer)?;
                }
                drain(&mut writer)?;
            }
        }
        Input::Raw(batches) => {
            // Read a batch ahead, on a thread of its own: reading the raw
            // object (0.11 s of CPU for 9.6 MB, perf) overlaps the decode.
            for batch in input::ahead(batches, 2) {
                decoder.decode_batch(&batch?, &mut writer)?;
                drain(&mut writer)?;
            }
        }
    }
    drain(&mut writer)?;
    decoder.finish();
    let (mut sink, _, tiers) = writer.finish_with_rollups()?;
    sink.flush().with_context(|| format!("writing {name}"))?;
    for (tier, mut file) in tiers.into_iter().zip(tier_files) {
        file.write_all(&tier.bytes)
            .with_context(|| format!("writing {}", tier_path(tier.tier.table)))?;
    }
    Ok(decoder.stats)
}

/// Writes the oracle's JSON-lines format.
pub fn write_jsonl(db: &Database, frames: impl Iterator<Item = Result<CanFrame>>, out: &mut impl Write) -> Result<()> {
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
        out.push_str(if v > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
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
