//! `redecode`: decode raw lake objects now, outside Lambda — after a DBC
//! changed, to backfill, or to measure the decoder (`make bench-decoder`).
//! Same code path as the Lambda: an S3 notification per object, handled.

#![recursion_limit = "256"]

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use canopy::adapters::aws::s3::S3Store;
use canopy::ports::store::ObjectStore;
use canopy_decoder::Decoder;
use canopy_decoder::event::DecoderEvent;
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Decode raw lake objects into the decoded lake, as the decoder Lambda does")]
struct Args {
    /// The lake's bucket.
    #[arg(long, env = "DATA_BUCKET")]
    bucket: String,
    /// S3 endpoint (the local stack); AWS when absent.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// Every raw object under this prefix (`raw/vehicle_id=sim-001/`).
    #[arg(long, conflicts_with = "keys")]
    prefix: Option<String>,
    /// Raw object keys.
    keys: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    canopy::runtime::logging::init_text();
    let args = Args::parse();
    // The Lambda's configuration, with the bucket from the command line.
    let mut vars: BTreeMap<String, String> = std::env::vars().collect();
    vars.insert("DATA_BUCKET".into(), args.bucket.clone());
    let sdk = match &args.endpoint {
        Some(endpoint) => canopy::adapters::aws::config_for_endpoint(endpoint).await,
        None => canopy::adapters::aws::config().await,
    };
    let store = S3Store::new(&sdk, &args.bucket);
    let keys = match &args.prefix {
        Some(prefix) => store
            .list(prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.ends_with(".parquet"))
            .collect(),
        None => args.keys.clone(),
    };
    if keys.is_empty() {
        bail!("no objects: give keys or a --prefix that has some");
    }
    let decoder = Decoder::from_env(&vars, &sdk).context("decoder configuration")?;
    for key in keys {
        let started = Instant::now();
        let event: DecoderEvent = serde_json::from_value(
            json!({"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": args.bucket}, "object": {"key": key}}}]}),
        )?;
        let outcome = decoder.handle(event).await;
        let seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(_) => println!("{}", json!({"key": key, "ok": true, "seconds": seconds})),
            Err(e) => {
                println!(
                    "{}",
                    json!({"key": key, "ok": false, "error": e.to_string(), "seconds": seconds})
                );
                bail!("{key}: {e}");
            }
        }
    }
    Ok(())
}
