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
use canopy::format::dbc::Database;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::agent_counters::AgentCounters;
use crate::aggregator::{Aggregator, Sample};
use crate::config::{Config, SourceConfig};
#[cfg(feature = "tools")]
use crate::ev_model::Params;
use crate::iot_credentials::IotCredentials;
use crate::mqtt;
use crate::source::replay::Replay;
#[cfg(feature = "tools")]
use crate::source::simulator::Simulator;
use crate::source::socketcan::SocketCan;
use crate::source::{Source, Status};
use crate::spool::{ClosedSegment, Spool, seal};
use crate::upload::{self, Phase};

/// Frames read per batch: one write to the spool each.
const BATCH: usize = 4096;
/// How long a read waits for the first frame of a batch.
const READ_WAIT: Duration = Duration::from_millis(50);

/// A task of the agent's (the uploader, the telemetry publisher).
type Task = JoinHandle<Result<()>>;

/// How the capture loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    SourceEnded,
    Stopped,
}

/// `run --check`: every file the configuration names, read as `run` reads
/// it, without capturing, connecting or touching the spool.
pub fn check(config: &Config) -> Result<()> {
    Database::load(&config.dbc)?;
    if let Some(m) = &config.mqtt {
        mqtt::options(m, &config.mqtt_client_id())?;
    }
    if let Some(c) = &config.upload.credentials {
        IotCredentials::new(c, config.vehicle_id.as_str())?;
    }
    Ok(())
}

pub async fn run(config: Config) -> Result<serde_json::Value> {
    let counters = Arc::new(AgentCounters::default());
    let db = Arc::new(Database::load(&config.dbc)?);
    for warning in db.warnings() {
        warn!(%warning, "DBC problem tolerated");
    }
    let (mut spool, recovered) = Spool::open(&config.spool, counters.clone())?;
    info!(vehicle = %config.vehicle_id, spool = %config.spool.dir.display(), unsealed = recovered.segments.len(), "canopy-edge starting");

    let wake = Arc::new(Notify::new());
    let (seal_tx, sealer) = spawn_sealer(&config, &spool, &counters, &wake)?;
    for segment in recovered.segments {
        let _ = seal_tx.send(segment);
    }
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let uploader = spawn_uploader(&config, &spool, &counters, &wake, phase_rx).await?;
    let (telemetry_tx, telemetry_rx) = mpsc::channel::<Sample>(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (aggregator, publisher) = spawn_telemetry(&config, &db, &counters, telemetry_rx, stop_rx)?;

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
    let reporter = spawn_reporter(&counters);

    let ending = tokio::select! {
        result = capture => result.context("capture thread")??,
        _ = shutdown_signal() => {
            info!("stopping: sealing what is spooled");
            stop.store(true, Ordering::Relaxed);
            Ending::Stopped
        }
    };
    // The capture loop closed the sealer's channel when it returned (or will, on stop).
    let _ = tokio::task::spawn_blocking(move || sealer.join()).await;
    let _ = phase_tx.send(if ending == Ending::SourceEnded {
        Phase::Drain
    } else {
        Phase::Stop
    });
    await_uploader(uploader).await;
    if ending == Ending::Stopped {
        let _ = stop_tx.send(true);
    }
    await_publisher(publisher).await;
    reporter.abort();
    let snapshot = counters.snapshot();
    info!(counters = %snapshot, "canopy-edge stopped");
    Ok(snapshot)
}

/// The sealer thread: closed segments → raw lake files in the outbox; the
/// channel it takes segments from.
fn spawn_sealer(
    config: &Config,
    spool: &Spool,
    counters: &Arc<AgentCounters>,
    wake: &Arc<Notify>,
) -> Result<(std_mpsc::Sender<ClosedSegment>, std::thread::JoinHandle<()>)> {
    let (seal_tx, seal_rx) = std_mpsc::channel::<ClosedSegment>();
    let (vehicle, layout, used, counters, wake) = (
        config.vehicle_id.clone(),
        spool.layout().clone(),
        spool.used(),
        counters.clone(),
        wake.clone(),
    );
    let sealer = std::thread::Builder::new().name("sealer".into()).spawn(move || {
        for segment in seal_rx {
            match seal(&segment, &vehicle, &layout, &used) {
                Ok(sealed) => {
                    AgentCounters::add(&counters.frames_sealed, sealed.frames);
                    AgentCounters::add(&counters.files_sealed, sealed.files.len() as u64);
                    let files: Vec<String> = sealed.files.iter().map(|f| f.display().to_string()).collect();
                    info!(?files, frames = sealed.frames, "sealed");
                    wake.notify_one();
                }
                Err(e) => error!(segment = %segment.path.display(), error = %format!("{e:#}"), "sealing failed; the segment stays for the next start"),
            }
        }
    })?;
    Ok((seal_tx, sealer))
}

/// The uploader task, when uploads are enabled.
async fn spawn_uploader(
    config: &Config,
    spool: &Spool,
    counters: &Arc<AgentCounters>,
    wake: &Arc<Notify>,
    phase: watch::Receiver<Phase>,
) -> Result<Option<Task>> {
    if !config.upload.enabled {
        return Ok(None);
    }
    let uploader = upload::Uploader {
        store: upload::store(&config.upload, &config.vehicle_id).await?,
        config: config.upload.clone(),
        vehicle: config.vehicle_id.clone(),
        layout: spool.layout().clone(),
        used: spool.used(),
        counters: counters.clone(),
        wake: wake.clone(),
    };
    Ok(Some(tokio::spawn(uploader.run(phase))))
}

/// The aggregator and the MQTT publisher task, when telemetry is enabled.
fn spawn_telemetry(
    config: &Config,
    db: &Arc<Database>,
    counters: &Arc<AgentCounters>,
    telemetry: mpsc::Receiver<Sample>,
    stop: watch::Receiver<bool>,
) -> Result<(Option<Aggregator>, Option<Task>)> {
    let (true, Some(mqtt_config)) = (config.telemetry.enabled, &config.mqtt) else {
        return Ok((None, None));
    };
    let aggregator = Aggregator::new(
        db.clone(),
        config.vehicle_id.clone(),
        config.telemetry.interval_ms,
        &config.telemetry.signals,
        &config.telemetry.alert_rules,
    )?;
    let publisher = tokio::spawn(mqtt::run(
        mqtt_config.clone(),
        config.mqtt_client_id(),
        mqtt::Topics::new(
            &config.vehicle_id,
            mqtt_config.basic_ingest.as_ref(),
            !config.telemetry.alert_rules.is_empty(),
        ),
        telemetry,
        mqtt::Batching {
            samples_per_message: config.telemetry.samples_per_message(),
            publish_interval: Duration::from_millis(config.telemetry.publish_interval_ms),
            capacity: config.telemetry.max_buffered,
        },
        counters.clone(),
        stop,
    ));
    Ok((Some(aggregator), Some(publisher)))
}

/// Logs the counters every 10 s.
fn spawn_reporter(counters: &Arc<AgentCounters>) -> JoinHandle<()> {
    let counters = counters.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            info!(counters = %counters.snapshot(), "progress");
        }
    })
}

async fn await_uploader(uploader: Option<Task>) {
    let Some(uploader) = uploader else { return };
    match uploader.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %format!("{e:#}"), "uploader stopped"),
        Err(e) => warn!(error = %e, "uploader panicked"),
    }
}

/// On a finished source: until the broker has acknowledged everything (or 60 s).
async fn await_publisher(publisher: Option<Task>) {
    let Some(publisher) = publisher else { return };
    match tokio::time::timeout(Duration::from_secs(60), publisher).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => warn!(error = %format!("{e:#}"), "telemetry publisher stopped"),
        Ok(Err(e)) => warn!(error = %e, "telemetry publisher panicked"),
        Err(_) => warn!("telemetry not acknowledged within 60 s; stopping"),
    }
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
        #[cfg(feature = "tools")]
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
        // Config::validate refuses it in the vehicle build, with the reason.
        #[cfg(not(feature = "tools"))]
        SourceConfig::Simulator { .. } => {
            drop(db);
            anyhow::bail!("this build has no simulator")
        }
    })
}

fn capture(
    mut source: Box<dyn Source>,
    spool: &mut Spool,
    mut aggregator: Option<Aggregator>,
    telemetry: &mpsc::Sender<Sample>,
    seal_tx: &std_mpsc::Sender<ClosedSegment>,
    counters: &AgentCounters,
    stop: &AtomicBool,
) -> Result<Ending> {
    let mut frames = Vec::with_capacity(BATCH);
    let mut samples = Vec::new();
    let publish = |s: Sample| {
        AgentCounters::add(&counters.telemetry_built, 1);
        if telemetry.try_send(s).is_err() {
            AgentCounters::add(&counters.telemetry_dropped, 1);
        }
    };
    let ending = loop {
        if stop.load(Ordering::Relaxed) {
            break Ending::Stopped;
        }
        frames.clear();
        let status = source.read(&mut frames, BATCH, READ_WAIT)?;
        AgentCounters::add(&counters.frames_read, frames.len() as u64);
        // The spool first: nothing else sees a frame before the kernel has it.
        let cursor = match status {
            Status::Frames { cursor } => cursor,
            Status::End => None,
        };
        spool.append(&frames, cursor)?;
        if let Some(aggregator) = aggregator.as_mut() {
            for frame in &frames {
                aggregator.observe(frame, &mut samples);
            }
            samples.drain(..).for_each(publish);
        }
        if let Some(segment) = spool.seal_if_due()? {
            let _ = seal_tx.send(segment);
        }
        spool.sync_if_due()?;
        if status == Status::End {
            break Ending::SourceEnded;
        }
    };
    if let Some(telemetry) = aggregator.as_mut().and_then(Aggregator::flush) {
        publish(Sample {
            telemetry,
            tripped: None,
        });
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
