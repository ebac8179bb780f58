//! `canopy-edge run`: the agent. Source → spool (always first) → telemetry;
//! full segments → sealer thread → outbox → uploader; telemetry → MQTT.
//!
//! A finite source (a log, a simulation with a duration) ends the run once
//! everything is sealed and uploaded and the telemetry is acknowledged; a live
//! one runs until SIGINT or SIGTERM, which seal what is spooled and stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use canopy::dbc::Database;
use canopy::telemetry::{Telemetry, topic};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{error, info, warn};

use crate::config::{Config, SourceConfig};
use crate::counters::Counters;
use crate::mqtt;
use crate::sim::Params;
use crate::source::replay::Replay;
use crate::source::simulator::Simulator;
use crate::source::socketcan::SocketCan;
use crate::source::{Source, Status};
use crate::spool::{ClosedSegment, Spool, seal};
use crate::telemetry::Aggregator;
use crate::upload::{self, Phase};

/// Frames read per batch: one write to the spool each.
const BATCH: usize = 4096;
/// How long a read waits for the first frame of a batch.
const READ_WAIT: Duration = Duration::from_millis(50);

/// How the capture loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    SourceEnded,
    Stopped,
}

pub async fn run(config: Config) -> Result<serde_json::Value> {
    let counters = Arc::new(Counters::default());
    let db = Arc::new(Database::load(&config.dbc)?);
    let (mut spool, recovered) = Spool::open(&config.spool, counters.clone())?;
    let layout = spool.layout().clone();
    let used = spool.used();
    info!(vehicle = %config.vehicle_id, spool = %config.spool.dir.display(), unsealed = recovered.segments.len(), "canopy-edge starting");

    // Sealer: closed segments → raw lake files in the outbox.
    let wake = Arc::new(Notify::new());
    let (seal_tx, seal_rx) = std_mpsc::channel::<ClosedSegment>();
    let sealer = {
        let (vehicle, layout, used, counters, wake) = (
            config.vehicle_id.clone(),
            layout.clone(),
            used.clone(),
            counters.clone(),
            wake.clone(),
        );
        std::thread::Builder::new().name("sealer".into()).spawn(move || {
            for segment in seal_rx {
                match seal(&segment, &vehicle, &layout, &used) {
                    Ok(sealed) => {
                        Counters::add(&counters.frames_sealed, sealed.frames);
                        if let Some(file) = sealed.file {
                            Counters::add(&counters.files_sealed, 1);
                            info!(file = %file.display(), frames = sealed.frames, "sealed");
                        }
                        wake.notify_one();
                    }
                    Err(e) => error!(segment = %segment.path.display(), error = %format!("{e:#}"), "sealing failed; the segment stays for the next start"),
                }
            }
        })?
    };
    for segment in recovered.segments {
        let _ = seal_tx.send(segment);
    }

    // Uploader.
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let uploader = if config.upload.enabled {
        let store = upload::store(&config.upload).await?;
        let uploader = upload::Uploader {
            store,
            config: config.upload.clone(),
            vehicle: config.vehicle_id.clone(),
            layout: layout.clone(),
            used: used.clone(),
            counters: counters.clone(),
            wake: wake.clone(),
        };
        Some(tokio::spawn(uploader.run(phase_rx)))
    } else {
        None
    };

    // Telemetry.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (telemetry_tx, telemetry_rx) = mpsc::channel::<Telemetry>(1024);
    let (aggregator, publisher) = match (&config.telemetry.enabled, &config.mqtt) {
        (true, Some(mqtt_config)) => {
            let aggregator = Aggregator::new(
                db.clone(),
                config.vehicle_id.clone(),
                config.telemetry.interval_ms,
                &config.telemetry.signals,
            )?;
            let publisher = tokio::spawn(mqtt::run(
                mqtt_config.clone(),
                config.mqtt_client_id(),
                topic(&config.vehicle_id),
                telemetry_rx,
                config.telemetry.max_buffered,
                counters.clone(),
                stop_rx.clone(),
            ));
            (Some(aggregator), Some(publisher))
        }
        _ => (None, None),
    };

    // Source and capture loop, on a thread of their own (blocking reads).
    let source = open_source(&config, db.clone(), recovered.cursor)?;
    let stop = Arc::new(AtomicBool::new(false));
    let capture = {
        let (stop, counters) = (stop.clone(), counters.clone());
        tokio::task::spawn_blocking(move || {
            capture(
                source,
                &mut spool,
                aggregator,
                &telemetry_tx,
                &seal_tx,
                &counters,
                &stop,
            )
        })
    };
    let reporter = {
        let counters = counters.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                info!(counters = %counters.snapshot(), "progress");
            }
        })
    };

    let ending = tokio::select! {
        result = capture => result.context("capture thread")??,
        _ = shutdown_signal() => {
            info!("stopping: sealing what is spooled");
            stop.store(true, Ordering::Relaxed);
            Ending::Stopped
        }
    };
    // The capture loop closed the sealer's channel when it returned (or will, on stop).
    let sealer_done = tokio::task::spawn_blocking(move || sealer.join());
    let _ = sealer_done.await;

    let _ = phase_tx.send(if ending == Ending::SourceEnded {
        Phase::Drain
    } else {
        Phase::Stop
    });
    if let Some(uploader) = uploader {
        match uploader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %format!("{e:#}"), "uploader stopped"),
            Err(e) => warn!(error = %e, "uploader panicked"),
        }
    }
    if let Some(publisher) = publisher {
        if ending == Ending::Stopped {
            let _ = stop_tx.send(true);
        }
        // On a finished source: until the broker has acknowledged everything (or 60 s).
        match tokio::time::timeout(Duration::from_secs(60), publisher).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(error = %format!("{e:#}"), "telemetry publisher stopped"),
            Ok(Err(e)) => warn!(error = %e, "telemetry publisher panicked"),
            Err(_) => warn!("telemetry not acknowledged within 60 s; stopping"),
        }
    }
    reporter.abort();
    let snapshot = counters.snapshot();
    info!(counters = %snapshot, "canopy-edge stopped");
    Ok(snapshot)
}

fn open_source(config: &Config, db: Arc<Database>, cursor: Option<u64>) -> Result<Box<dyn Source>> {
    Ok(match &config.source {
        SourceConfig::Socketcan { interfaces } => Box::new(SocketCan::open(interfaces)?),
        SourceConfig::Replay {
            file,
            speed,
            rebase_time,
        } => {
            if let Some(at) = cursor {
                info!(file = %file.display(), offset = at, "resuming the replay after the last spooled frame");
            }
            Box::new(Replay::open(file, *speed, *rebase_time, cursor)?)
        }
        SourceConfig::Simulator {
            seed,
            duration_s,
            speed,
            drive_cycle,
            overheat_module,
            overheat_after_s,
            start_us,
        } => {
            let params = Params {
                seed: *seed,
                cycle: *drive_cycle,
                overheat: overheat_module.map(|m| (m, *overheat_after_s)),
                start_us: start_us.unwrap_or_else(|| chrono::Utc::now().timestamp_micros()),
                initial_soc: 0.85,
            };
            Box::new(Simulator::new(db, &params, *duration_s, *speed)?)
        }
    })
}

fn capture(
    mut source: Box<dyn Source>,
    spool: &mut Spool,
    mut aggregator: Option<Aggregator>,
    telemetry: &mpsc::Sender<Telemetry>,
    seal_tx: &std_mpsc::Sender<ClosedSegment>,
    counters: &Counters,
    stop: &AtomicBool,
) -> Result<Ending> {
    let mut frames = Vec::with_capacity(BATCH);
    let publish = |t: Telemetry| {
        Counters::add(&counters.telemetry_built, 1);
        if telemetry.try_send(t).is_err() {
            Counters::add(&counters.telemetry_dropped, 1);
        }
    };
    let ending = loop {
        if stop.load(Ordering::Relaxed) {
            break Ending::Stopped;
        }
        frames.clear();
        let status = source.read(&mut frames, BATCH, READ_WAIT)?;
        Counters::add(&counters.frames_read, frames.len() as u64);
        // The spool first: nothing else sees a frame before the kernel has it.
        let cursor = match status {
            Status::Frames { cursor } => cursor,
            Status::End => None,
        };
        spool.append(&frames, cursor)?;
        if let Some(aggregator) = aggregator.as_mut() {
            for frame in &frames {
                if let Some(t) = aggregator.observe(frame) {
                    publish(t);
                }
            }
        }
        if let Some(segment) = spool.seal_if_due()? {
            let _ = seal_tx.send(segment);
        }
        spool.sync_if_due()?;
        if status == Status::End {
            break Ending::SourceEnded;
        }
    };
    if let Some(t) = aggregator.as_mut().and_then(Aggregator::flush) {
        publish(t);
    }
    if let Some(segment) = spool.close()? {
        let _ = seal_tx.send(segment);
    }
    Ok(ending)
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
