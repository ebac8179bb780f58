//! `canopy-edge bench-codec` (hidden): the codec alone on frames held in
//! memory, for `make bench-decode` to set beside cantools doing the same.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use canopy::format::dbc::Database;

use super::input;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[arg(long)]
    pub dbc: PathBuf,
    #[arg(long)]
    pub candump: String,
    /// Decode the frames this many times; the fastest round counts.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let db = Database::load(&args.dbc)?;
    let start = Instant::now();
    // Held as a lake batch holds them: ids, and payloads in one buffer.
    let (mut ids, mut offsets, mut data) = (Vec::new(), vec![0usize], Vec::new());
    for frame in input::candump_frames(&args.candump)? {
        let frame = frame?;
        ids.push(frame.id);
        data.extend_from_slice(frame.data());
        offsets.push(data.len());
    }
    let parse_s = start.elapsed().as_secs_f64();
    let frames = ids.len();
    let mut values = Vec::with_capacity(128);
    let mut best = f64::INFINITY;
    let mut decoded_values = 0usize;
    for _ in 0..args.rounds {
        decoded_values = 0;
        let start = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            if let Some(m) = db.lookup(*id)
                && m.decode(&data[offsets[i]..offsets[i + 1]], &mut values).is_ok()
            {
                decoded_values += values.len();
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let report = serde_json::json!({
        "frames": frames,
        "values": decoded_values,
        "parse_seconds": parse_s,
        "decode_seconds": best,
        "decode_frames_per_second": frames as f64 / best,
    });
    println!("{report}");
    Ok(())
}
