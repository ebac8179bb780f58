//! `device-keys`: make, list and revoke the keys devices post telemetry
//! with. The same command serves AWS (the stack's `DeviceKeysTableName`
//! output, credentials from the environment) and the local stack
//! (`--endpoint` its moto, the table `DeviceKeysTable`).

#![recursion_limit = "256"]

use anyhow::{Context, Result, bail};
use canopy::adapters::aws::dynamodb::{self, DynamoKeyStore};
use canopy::domain::device_id::DeviceId;
use canopy::domain::device_key::{self, DEFAULT_RATE_PER_MINUTE, DeviceKey};
use canopy::ports::keys::KeyStore;
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "device-keys",
    version,
    about = "The keys devices post telemetry to POST /ingest with"
)]
struct Cli {
    /// The key table: the stack's DeviceKeysTableName output.
    #[arg(long, env = "KEYS_TABLE")]
    table: String,
    /// An endpoint in AWS's place (the local stack's moto, `http://127.0.0.1:5000`).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a key for a device; the key is printed once and stored only as its SHA-256.
    Create {
        /// The device (vehicle id) whose telemetry the key posts.
        #[arg(long)]
        device: String,
        /// Requests a minute the key may make.
        #[arg(long, default_value_t = DEFAULT_RATE_PER_MINUTE)]
        rate: u32,
        /// What the key is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Every key (never a secret), one JSON object a line.
    List {
        /// Only this device's keys.
        #[arg(long)]
        device: Option<String>,
    },
    /// Revoke a key by its id: it authenticates nothing from then on
    /// (within the ingest function's KEY_CACHE_SECONDS).
    Revoke { key_id: String },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let sdk = match &cli.endpoint {
        Some(endpoint) => canopy::adapters::aws::config_for_endpoint(endpoint).await,
        None => canopy::adapters::aws::config().await,
    };
    let keys = DynamoKeyStore::new(dynamodb::client(&sdk), &cli.table);
    let now_ms = chrono::Utc::now().timestamp_millis();
    match cli.command {
        Command::Create { device, rate, label } => {
            let device = DeviceId::new(device).context("--device")?;
            // Ids are random; a collision only means another draw.
            for _ in 0..3 {
                let issued = device_key::issue(device.clone(), rate, &label, now_ms)?;
                if keys.create(&issued.record).await? {
                    println!(
                        "{}",
                        json!({ "key": issued.plaintext, "record": described(&issued.record) })
                    );
                    eprintln!(
                        "key {} for {device}: give the device the \"key\" above now; it is not kept anywhere",
                        issued.record.key_id
                    );
                    return Ok(());
                }
            }
            bail!(
                "three random key ids in a row were taken: is the table {} shared?",
                cli.table
            )
        }
        Command::List { device } => {
            let mut after: Option<String> = None;
            loop {
                let page = keys.list(100, after.as_deref()).await?;
                for key in page
                    .items
                    .iter()
                    .filter(|k| device.as_deref().is_none_or(|d| k.device_id.as_str() == d))
                {
                    println!("{}", described(key));
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => return Ok(()),
                }
            }
        }
        Command::Revoke { key_id } => {
            if !keys.revoke(&key_id, now_ms).await? {
                bail!("no key {key_id:?} in {}", cli.table);
            }
            eprintln!("key {key_id} revoked");
            Ok(())
        }
    }
}

fn described(key: &DeviceKey) -> serde_json::Value {
    serde_json::to_value(key).unwrap_or_default()
}
