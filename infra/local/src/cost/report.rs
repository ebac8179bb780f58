//! The report: each part per vehicle-month for every design, side by side,
//! then what each design's run measured, so a price can be traced back.

use super::measure::{Design, Measured};
use super::price::Line;
use super::{Prices, Workload};

/// The report: each part per vehicle-month for every design, side by side.
pub fn report(prices: &Prices, workload: &Workload, bills: &[(Design, Measured, Vec<Line>)]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Per vehicle-month: {} h a day for {} days, telemetry at 1 Hz, {} CAN frames/s while driving ({:.0} M frames), {} history queries; {} list prices checked {} (infra/prices.toml).",
        workload.drive_hours_per_day,
        workload.days,
        workload.frames_per_second,
        workload.frames() / 1e6,
        workload.history_queries,
        prices.region,
        prices.checked
    );
    if let Some((_, m, _)) = bills.first() {
        let _ = writeln!(
            out,
            "Measured: {} simulated vehicles × {} s each ({:.0} frames), scaled by driving time (requests, messages) and by frames (bytes, the decoder's time){}.",
            m.vehicles,
            m.drive_seconds / m.vehicles.max(1) as f64,
            m.frames,
            if cfg!(debug_assertions) {
                "; a debug build, so Lambda durations are an upper bound"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out);
    let header: Vec<&str> = bills.iter().map(|(d, ..)| d.name).collect();
    let _ = writeln!(out, "| part | {} |", header.join(" | "));
    let _ = writeln!(out, "| --- |{}", " ---: |".repeat(bills.len()));
    let parts: Vec<&'static str> = bills
        .first()
        .map(|(_, _, l)| l.iter().map(|l| l.part).collect())
        .unwrap_or_default();
    for (i, part) in parts.iter().enumerate() {
        let cells: Vec<String> = bills.iter().map(|(_, _, l)| format!("${:.4}", l[i].dollars)).collect();
        let _ = writeln!(out, "| {part} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = bills
        .iter()
        .map(|(_, _, l)| format!("**${:.3}**", l.iter().map(|l| l.dollars).sum::<f64>()))
        .collect();
    let _ = writeln!(out, "| **per vehicle-month** | {} |", totals.join(" | "));
    for (design, m, lines) in bills {
        let _ = writeln!(out, "\n{}:", design.name);
        for l in lines {
            let _ = writeln!(out, "- {}: ${:.4} — {}", l.part, l.dollars, l.driver);
        }
        let stored: Vec<String> = m
            .stored
            .iter()
            .map(|(p, (bytes, n))| format!("{p} {n} objects, {:.2} B/frame", *bytes as f64 / m.frames.max(1.0)))
            .collect();
        let _ = writeln!(out, "- measured, stored: {}", stored.join("; "));
        let s3: Vec<String> = m.s3.iter().map(|((a, p), n)| format!("{a} {p} {n}")).collect();
        let _ = writeln!(out, "- measured, S3 requests: {}", s3.join(", "));
    }
    out
}
