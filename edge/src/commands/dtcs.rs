//! `canopy-edge dtcs`: the DM1 messages of a CAN log (single frames and
//! transport-protocol transfers, reassembled), one JSON line each:
//! `{"ts_us", "source_address", "lamps": {"mil", "red_stop", "amber_warning",
//! "protect"}, "dtcs": [{"spn", "fmi", "oc"}]}`. Transfers that could not be
//! completed are counted on stderr, by why.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Result;
use canopy::format::j1939::dm1::{self, Dtc, Lamps, PGN_DM1};
use canopy::format::j1939::transport::Reassembler;
use serde::Serialize;

use super::input::{self, LogFormat};

#[derive(Debug, clap::Args)]
pub struct DtcsArgs {
    /// A candump log; `-` reads standard input.
    #[arg(long, conflicts_with = "input", required_unless_present = "input")]
    pub candump: Option<String>,
    /// A log in any format the tools read (its format from its extension).
    #[arg(long)]
    pub input: Option<PathBuf>,
}

#[derive(Serialize)]
struct Line<'a> {
    ts_us: i64,
    source_address: u8,
    lamps: Lamps,
    dtcs: &'a [Dtc],
}

pub fn run(args: &DtcsArgs) -> Result<()> {
    let frames = match (&args.candump, &args.input) {
        (Some(candump), _) => input::open(Some(candump), None)?,
        (None, Some(path)) => input::open_as(path, LogFormat::for_path(None, path)?)?,
        (None, None) => anyhow::bail!("give --candump or --input"),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut transfers = Reassembler::default();
    for frame in frames {
        let frame = frame?;
        if !frame.id.is_extended() || frame.is_remote() || frame.is_error() {
            continue;
        }
        let raw = frame.id.raw();
        let (ts_us, source_address, data) = if frame.id.pgn() == Some(PGN_DM1) {
            (frame.ts_us, (raw & 0xFF) as u8, frame.data().to_vec())
        } else {
            match transfers.push(frame.ts_us, raw, frame.data()) {
                Some(m) if m.pgn == PGN_DM1 => (m.ts_us, m.source_address, m.data),
                _ => continue,
            }
        };
        if let Some(dm1) = dm1::parse(&data) {
            let line = Line {
                ts_us,
                source_address,
                lamps: dm1.lamps,
                dtcs: &dm1.dtcs,
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    transfers.finish();
    let broken: u64 = transfers.broken().values().sum();
    let mut why: Vec<String> = (transfers.broken().iter())
        .map(|(reason, n)| format!("{reason:?} {n}"))
        .collect();
    why.sort();
    eprintln!(
        "{broken} broken transfers{}",
        if why.is_empty() {
            String::new()
        } else {
            format!(": {}", why.join(", "))
        }
    );
    Ok(())
}
