//! AWS's list prices, as `infra/prices.toml` sets them: a file of their
//! own so that a price checked again is a change to data, not to code.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Prices {
    pub region: String,
    pub checked: String,
    pub iot: IotPrices,
    pub sqs: SqsPrices,
    pub sns: SnsPrices,
    pub dynamodb: DynamoPrices,
    pub s3: S3Prices,
    pub lambda: LambdaPrices,
    pub athena: AthenaPrices,
    pub api_gateway: ApiGatewayPrices,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IotPrices {
    pub messaging_per_million: f64,
    pub connectivity_per_million_minutes: f64,
    pub rules_triggered_per_million: f64,
    pub actions_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct SqsPrices {
    pub requests_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct SnsPrices {
    pub requests_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct DynamoPrices {
    pub write_units_per_million: f64,
    pub read_units_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct S3Prices {
    pub write_requests_per_thousand: f64,
    pub read_requests_per_thousand: f64,
    pub standard_gb_month: f64,
    pub glacier_ir_gb_month: f64,
    pub glacier_ir_transitions_per_thousand: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct LambdaPrices {
    pub gb_second: f64,
    pub requests_per_million: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct AthenaPrices {
    pub per_tb_scanned: f64,
    pub minimum_bytes_per_query: f64,
}
#[derive(Debug, Clone, Deserialize)]
pub struct ApiGatewayPrices {
    pub http_requests_per_million: f64,
}

impl Prices {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }
}
