//! `make bench-local`: end-to-end latency on the local stack, p50 and p95.
//! - MQTT publish → the state visible in DynamoDB (IoT rule, queue, telemetry
//!   function, conditional write);
//! - MQTT publish → a live stream client holds the state (the same, then the
//!   state table's stream, the fan-out, the WebSocket);
//! - raw object PUT → the decoded object readable (S3 notification, queue,
//!   decoder, multipart upload).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy::format::dbc::Database;
use canopy::format::frame::{CanFrame, CanId, FrameFlags};
use canopy::format::lake::keys::RawKey;
use canopy::format::lake::raw::RawWriter;
use canopy::ports::state::LatestStateStore;
use canopy::ports::store::ObjectStore;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

use crate::stack::Stack;

/// Percentiles of `samples` (ms): (p50, p95, max).
pub fn percentiles(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95), at(1.0))
}

async fn poll_until<F, Fut>(limit: Duration, mut done: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let started = Instant::now();
    loop {
        if done().await? {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            bail!("not seen within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Publish → state: `samples` messages, one at a time.
pub async fn telemetry(stack: &Stack, samples: usize) -> Result<Vec<f64>> {
    let vehicle = DeviceId::new("latency-001")?;
    let tables = crate::stack::state_table(stack);
    let mut options = MqttOptions::new("canopy-latency", "127.0.0.1", stack.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 64);
    let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(connected_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    connected_rx.await.context("connecting to the broker")?;
    let topic = canopy::domain::topic::topic(&vehicle);
    let mut out = Vec::with_capacity(samples);
    for seq in 0..samples as u64 {
        let ts = chrono::Utc::now();
        let message = json!({"v": 1, "vehicle_id": vehicle.as_str(), "ts": ts.to_rfc3339(), "seq": seq,
            "soc_pct": 70.0, "pack_voltage_v": 380.0, "pack_current_a": 20.0, "cell_voltage_min_v": 3.9,
            "cell_voltage_max_v": 3.95, "cell_temp_min_c": 25.0, "cell_temp_max_c": 30.0, "speed_kph": 50.0});
        let started = Instant::now();
        client
            .publish(&topic, QoS::AtLeastOnce, false, message.to_string())
            .await?;
        poll_until(Duration::from_secs(30), || async {
            Ok(tables.get(&vehicle).await?.is_some_and(|s| s.telemetry.seq == seq))
        })
        .await
        .with_context(|| format!("telemetry seq {seq}"))?;
        out.push(started.elapsed().as_secs_f64() * 1000.0);
        // A second apart, as the edge publishes.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(out)
}

/// Publish → a subscribed client's update: `samples` messages, spread over
/// four vehicles each watched by a client of its own, so that each client's
/// messages come more than an interval apart (what a console watching one
/// vehicle at 1 Hz sees), while the samples take a quarter of the time.
pub async fn live(stack: &Stack, samples: usize) -> Result<Vec<f64>> {
    const WATCHED: usize = 4;
    let mut options = MqttOptions::new("canopy-latency-live", "127.0.0.1", stack.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 64);
    tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let vehicles: Vec<String> = (1..=WATCHED).map(|i| format!("latency-live-{i}")).collect();
    let mut watchers = Vec::new();
    for v in &vehicles {
        let mut watcher = crate::live::LiveClient::connect(stack.api).await?;
        watcher.subscribe(&[v.as_str()]).await?;
        watchers.push(watcher);
    }
    let mut out = Vec::with_capacity(samples);
    for seq in 0..samples as u64 {
        let i = seq as usize % WATCHED;
        let ts = chrono::Utc::now();
        let message = json!({"v": 1, "vehicle_id": vehicles[i], "ts": ts.to_rfc3339(), "seq": seq,
            "soc_pct": 70.0, "pack_voltage_v": 380.0, "pack_current_a": 20.0, "cell_voltage_min_v": 3.9,
            "cell_voltage_max_v": 3.95, "cell_temp_min_c": 25.0, "cell_temp_max_c": 30.0, "speed_kph": 50.0});
        let started = Instant::now();
        client
            .publish(
                format!("dt/canopy/{}/bms", vehicles[i]),
                QoS::AtLeastOnce,
                false,
                message.to_string(),
            )
            .await?;
        loop {
            let update = watchers[i]
                .next(Duration::from_secs(30))
                .await?
                .with_context(|| format!("live update of seq {seq}"))?;
            let has = update["states"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["seq"].as_u64() == Some(seq)));
            if has {
                break;
            }
        }
        out.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(out)
}

/// Raw PUT → decoded object: `samples` objects of `frames` frames each.
pub async fn decode(stack: &Stack, samples: usize, frames: usize) -> Result<Vec<f64>> {
    let db = Database::load(stack.template_dir().join("dbc/ev_powertrain.dbc"))?;
    let message = db.message_by_name("BMS_PackStatus").context("BMS_PackStatus")?;
    let payload = message.encode(|_, signal| {
        Some(match signal.name.as_str() {
            "PackCurrent" => 12.5,
            "PackVoltage" => 380.0,
            _ => signal.minimum.unwrap_or(0.0).max(0.0),
        })
    })?;
    let id = CanId::standard(message.id.raw()).context("standard id")?;
    let store = S3Store::new(&stack.sdk, &stack.bucket);
    let bus: Arc<str> = Arc::from("can0");
    let vehicle = DeviceId::new("latency-001")?;
    let mut out = Vec::with_capacity(samples);
    for seq in 0..samples as u64 {
        let first_us = chrono::Utc::now().timestamp_micros();
        let mut writer = RawWriter::new(Vec::new(), "latency")?;
        for i in 0..frames {
            writer.push(CanFrame::new(
                first_us + i as i64 * 1000,
                bus.clone(),
                id,
                FrameFlags::default(),
                &payload,
            )?)?;
        }
        let (bytes, _) = writer.finish()?;
        let key = RawKey::new(vehicle.clone(), first_us, seq);
        let started = Instant::now();
        store.put(&key.raw_key(), bytes::Bytes::from(bytes), None).await?;
        let decoded = key.decoded_key();
        poll_until(Duration::from_secs(60), || async {
            Ok(store.exists(&decoded).await?.is_some())
        })
        .await
        .with_context(|| format!("decoded {decoded}"))?;
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}
