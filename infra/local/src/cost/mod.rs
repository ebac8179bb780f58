//! `make cost`: the standard workload of a vehicle-month priced from what
//! the local stack measured doing it. A few simulated vehicles drive through
//! a stack of their own, once per telemetry design; moto's request recorder
//! logs every AWS request (the edges', the functions', IoT Core's rule
//! actions, Lambda's queue pollers), the stack counts what moto does not see
//! (messages, rules, invocations and their durations), and a listing of the
//! bucket gives the bytes stored. Everything is scaled to the workload —
//! requests and messages by driving time, bytes and the decoder's time by
//! frames — and priced at `infra/prices.toml`.
//!
//! By job: `measure` runs a design and gathers what it did (reading
//! moto's request log with `recording`), `price` turns that into a bill
//! at the list prices of `prices`, and `report` lays the bills side by side.

mod measure;
mod price;
mod prices;
mod recording;
mod report;

use std::path::PathBuf;

use anyhow::Result;

pub use measure::{DESIGNS, Design, Measured, function_memory_gb, measure};
pub use price::{Line, price};
pub use prices::{
    ApiGatewayPrices, AthenaPrices, DynamoPrices, IotPrices, LambdaPrices, Prices, S3Prices, SnsPrices, SqsPrices,
};
pub use recording::{Call, classify, split_recording};
pub use report::report;

/// The standard workload the cost model prices, per vehicle and month.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub drive_hours_per_day: f64,
    pub days: f64,
    pub frames_per_second: f64,
    pub history_queries: f64,
}

impl Workload {
    pub const STANDARD: Workload = Workload {
        drive_hours_per_day: 2.0,
        days: 30.0,
        frames_per_second: 2_000.0,
        history_queries: 50.0,
    };

    /// The standard fleet: the same vehicles driving 8 hours a day.
    pub const FLEET_8H: Workload = Workload {
        drive_hours_per_day: 8.0,
        ..Workload::STANDARD
    };

    fn drive_seconds(&self) -> f64 {
        self.drive_hours_per_day * 3_600.0 * self.days
    }

    fn frames(&self) -> f64 {
        self.drive_seconds() * self.frames_per_second
    }
}

#[derive(Debug, Clone)]
pub struct CostOptions {
    pub template: PathBuf,
    pub prices: PathBuf,
    pub edge: PathBuf,
    pub dbc: PathBuf,
    pub vehicles: usize,
    pub seconds: u32,
}

/// `canopy-local cost`: every design measured once, then priced and
/// reported for the standard workload and for the 8 h/day fleet.
pub async fn run(options: &CostOptions) -> Result<String> {
    let prices = Prices::load(&options.prices)?;
    let mut measured = Vec::new();
    for design in DESIGNS {
        eprintln!(
            "measuring: {} ({} vehicles × {} s)...",
            design.name, options.vehicles, options.seconds
        );
        measured.push((design, measure(options, &design).await?));
    }
    let mut out = String::new();
    for (title, workload) in [
        ("The standard workload", Workload::STANDARD),
        ("The standard fleet, 8 h a day", Workload::FLEET_8H),
    ] {
        let bills: Vec<(Design, Measured, Vec<Line>)> = measured
            .iter()
            .map(|(design, (m, memory, cold_after))| {
                (*design, m.clone(), price(m, &prices, &workload, memory, *cold_after))
            })
            .collect();
        out.push_str(&format!("## {title}\n\n{}\n", report(&prices, &workload, &bills)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
