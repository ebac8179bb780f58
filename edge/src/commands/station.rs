//! `canopy-edge station`: an edge for a battery-swap station. It runs the
//! station model ([`crate::station_model`]) and publishes its status every
//! `publish_interval_s` to `dt/canopy-station/<id>/status` over MQTT (QoS 1),
//! as `kinds/station.toml` declares it.
//!
//! ```toml
//! station_id = "st-001"
//! slots = 8                # default 8
//! publish_interval_s = 30  # default: the kind's
//! seed = 1
//! [mqtt]
//! host = "abc-ats.iot.eu-west-1.amazonaws.com"
//! [mqtt.tls]
//! ca = "AmazonRootCA1.pem"
//! cert = "certificate.pem"
//! key = "private.key"
//! ```
//!
//! Timestamps are the wall clock's (the cloud refuses a clock far ahead);
//! `--time-scale` runs the model (its day curve, arrivals and charging)
//! faster than that, so a demo's minute holds hours of a station's day.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kinds;
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use serde::Deserialize;
use tracing::{info, warn};

use crate::config::{MqttConfig, is_loopback_host};
use crate::station_model::StationModel;

#[derive(clap::Args)]
pub struct StationArgs {
    /// The station's TOML configuration.
    #[arg(long)]
    config: PathBuf,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    duration_s: Option<u64>,
    /// Model seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Only check the configuration and the files it names (certificates,
    /// key), then exit.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    pub station_id: DeviceId,
    #[serde(default = "default_slots")]
    pub slots: usize,
    pub publish_interval_s: Option<u64>,
    #[serde(default)]
    pub seed: u64,
    pub mqtt: MqttConfig,
}

fn default_slots() -> usize {
    8
}

impl StationConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new("."))).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut config: Self = toml::from_str(text)?;
        if let Some(tls) = config.mqtt.tls.as_mut() {
            for p in [&mut tls.ca, &mut tls.cert, &mut tls.key] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        if !(1..=64).contains(&config.slots) {
            bail!("slots: {} is outside 1..=64", config.slots);
        }
        if config.publish_interval_s == Some(0) {
            bail!("publish_interval_s: must be at least 1");
        }
        if config.mqtt.basic_ingest.is_some() {
            bail!("mqtt.basic_ingest: a station publishes through the broker (the device rule reads its topic)");
        }
        if config.mqtt.tls.is_none() && !is_loopback_host(&config.mqtt.host) {
            bail!(
                "mqtt.tls: ca, cert and key are required for {} (only a loopback broker may go without TLS)",
                config.mqtt.host
            );
        }
        Ok(config)
    }
}

pub fn run(args: &StationArgs) -> Result<()> {
    canopy::runtime::logging::init_text();
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        bail!("--time-scale: {} is not a positive number", args.time_scale);
    }
    let config = StationConfig::load(&args.config)?;
    if args.check {
        let client_id = config
            .mqtt
            .client_id
            .clone()
            .unwrap_or_else(|| config.station_id.to_string());
        crate::mqtt::options(&config.mqtt, &client_id).with_context(|| format!("in {}", args.config.display()))?;
        println!("{}: ok", args.config.display());
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let counters = runtime.block_on(publish(config, args))?;
    println!("{counters}");
    Ok(())
}

async fn publish(config: StationConfig, args: &StationArgs) -> Result<serde_json::Value> {
    let kinds = Kinds::builtin();
    let kind = kinds
        .get("station")
        .context("no station kind is declared (kinds/station.toml)")?;
    let id = config.station_id.to_string();
    let topic = kind.topic(&id);
    let interval = Duration::from_secs(config.publish_interval_s.unwrap_or(kind.publish_interval.as_secs()));
    let client_id = config.mqtt.client_id.clone().unwrap_or_else(|| id.clone());
    let (client, events) = AsyncClient::new(crate::mqtt::options(&config.mqtt, &client_id)?, 64);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let events_task = tokio::spawn(follow_connection(
        events,
        config.mqtt.host.clone(),
        acknowledged.clone(),
    ));

    let mut station = Station::new(&config, id, interval, args.time_scale);
    let started = tokio::time::Instant::now();
    let deadline = args.duration_s.map(|s| started + Duration::from_secs(s));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            at = tick.tick() => {
                if deadline.is_some_and(|d| at >= d) {
                    break;
                }
                let status = station.step(at);
                client
                    .publish(&topic, QoS::AtLeastOnce, false, status.to_string())
                    .await
                    .context("the MQTT client stopped")?;
                station.published += 1;
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // What is in flight gets a few seconds to be acknowledged.
    let waited = tokio::time::Instant::now();
    while acknowledged.load(Ordering::SeqCst) < station.published && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = client.disconnect().await;
    events_task.abort();
    Ok(station.summary(acknowledged.load(Ordering::SeqCst)))
}

/// Polls the MQTT connection for as long as the station runs: counts the
/// acknowledgements, and waits longer each time the connection is lost.
async fn follow_connection(mut events: EventLoop, host: String, acknowledged: Arc<AtomicU64>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                info!(%host, "connected to the MQTT broker");
                backoff = Duration::from_millis(250);
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "MQTT connection lost; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The station model as it is published: its own clock, the seq of its
/// statuses and what it counted.
struct Station {
    model: StationModel,
    id: String,
    interval: Duration,
    time_scale: f64,
    previous: Option<tokio::time::Instant>,
    /// The model's own clock: its day curve runs `time_scale` times faster.
    model_now: chrono::DateTime<chrono::Utc>,
    last_seq: u64,
    published: u64,
    /// Statuses published with no charged battery.
    low_marks: u64,
}

impl Station {
    fn new(config: &StationConfig, id: String, interval: Duration, time_scale: f64) -> Self {
        Self {
            model: StationModel::new(config.slots, config.seed),
            id,
            interval,
            time_scale,
            previous: None,
            model_now: chrono::Utc::now(),
            last_seq: 0,
            published: 0,
            low_marks: 0,
        }
    }

    /// Runs the model on to the tick at `at`; the status to publish.
    fn step(&mut self, at: tokio::time::Instant) -> serde_json::Value {
        let dt = self.previous.map_or(self.interval, |p| at - p).as_secs_f64() * self.time_scale;
        self.previous = Some(at);
        let now = chrono::Utc::now();
        self.model_now += chrono::Duration::milliseconds((dt * 1000.0) as i64);
        self.model.step(self.model_now, dt);
        // The seq is the time in ms, kept rising: unique across restarts.
        let seq = u64::try_from(now.timestamp_millis())
            .unwrap_or(0)
            .max(self.last_seq + 1);
        self.last_seq = seq;
        if self.model.available() == 0 {
            self.low_marks += 1;
        }
        self.model.status(&self.id, now, seq)
    }

    /// What the run printed at its end.
    fn summary(&self, acknowledged: u64) -> serde_json::Value {
        serde_json::json!({
            "station_id": self.id,
            "published": self.published,
            "acknowledged": acknowledged,
            "statuses_without_a_charged_battery": self.low_marks,
            "missed_swaps_today": self.model.missed_today,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_station_config_names_the_bad_key() {
        let base = Path::new("/tmp");
        let ok = StationConfig::parse("station_id = \"st-01\"\n[mqtt]\nhost = \"127.0.0.1\"\n", base).unwrap();
        assert_eq!((ok.slots, ok.publish_interval_s), (8, None));
        let error = |text: &str| format!("{:#}", StationConfig::parse(text, base).unwrap_err());
        assert!(error("station_id = \"st 1\"\n[mqtt]\nhost = \"127.0.0.1\"\n").contains("station_id"));
        assert!(error("station_id = \"st-01\"\nslots = 0\n[mqtt]\nhost = \"127.0.0.1\"\n").starts_with("slots"));
        assert!(error("station_id = \"st-01\"\n[mqtt]\nhost = \"iot.example.com\"\n").starts_with("mqtt.tls"));
        let tls = StationConfig::parse(
            "station_id = \"st-01\"\n[mqtt]\nhost = \"iot.example.com\"\n[mqtt.tls]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
            Path::new("/bundle"),
        )
        .unwrap();
        assert_eq!(tls.mqtt.tls.unwrap().cert, Path::new("/bundle/c.pem"));
    }
}
