//! `make bench-fleet`: what the console's fleet-wide reads cost as the
//! fleet grows. Each fleet (1,000, 10,000 and 100,000 vehicles on the memory
//! adapters; 10,000 on moto) is seeded as the telemetry and alerts functions
//! would: each vehicle entered in the directory (a quarter of them parked,
//! the rest driving; states of charge spread over 0–100 %), its latest state
//! and one alert, the newest vehicle's last. Then each console action is
//! asked of the API's router, as a request, `runs` times (at most 10 on
//! moto), and a live fleet subscription of the live stream's sessions. Per action: p50 and p95, and the table requests one answer made
//! (counted by the memory adapters, or by an interceptor on the DynamoDB
//! client against moto).
//!
//! The memory figures are raw (no network). The modelled figures put a delay
//! in front of every table request (`--request-ms`, DynamoDB's in-region
//! latency): an answer's requests that run in parallel cost one delay.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use canopy::adapters::aws::dynamodb::{DynamoAlertLog, DynamoDirectory, DynamoStateTable};
use canopy::adapters::memory::{
    MemoryAlertLog, MemoryConnectionStore, MemoryDeviceStateTable, MemoryDirectory, MemoryPoster, MemoryQuotaCounter,
    MemoryStateTable,
};
use canopy::domain::access::AccessPolicy;
use canopy::domain::kind::Kinds;
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::state::LatestStateStore;
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_api::ports::{AlertReads, DirectoryReads, StateReads};
use canopy_api::quota::HistoryQuota;
use canopy_api::{Api, catalogs, router};
use canopy_live::sessions::{NoSignIn, SNAPSHOT_VEHICLES, Sessions};
use serde_json::Value;
use tower::ServiceExt;

use crate::bench::latency::percentiles;
use crate::fleet::{seed_fleet, vehicle};
use crate::resources::{alerts_table, create_table, fleet_index_table, state_table};
use crate::services::{Moto, moto_server_path, sdk_config};

pub struct FleetBenchOptions {
    /// Fleets seeded into the memory adapters.
    pub memory: Vec<usize>,
    /// The fleet seeded into moto (0 skips moto).
    pub moto: usize,
    pub runs: usize,
    /// The modelled delay of one DynamoDB request.
    pub request_ms: u64,
}

/// One console action's figures.
struct Measured {
    action: &'static str,
    p50_ms: f64,
    p95_ms: f64,
    requests: usize,
}

/// The tables the fleet-wide actions read.
struct Tables {
    state: Arc<dyn StateReads>,
    directory: Arc<dyn DirectoryReads>,
    alerts: Arc<dyn AlertReads>,
}

/// The API's router over `tables` (the other ports empty; the actions read none of them).
async fn api(tables: Tables) -> Result<axum::Router> {
    let empty = std::env::temp_dir().join(format!("canopy-bench-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&empty)?;
    Ok(router(Arc::new(Api {
        history: Arc::new(DataFusionHistory::local(&empty).await?),
        raw: Arc::new(canopy_api::raw::MemoryRaw::default()),
        state: tables.state,
        directory: tables.directory,
        alerts: tables.alerts,
        devices: Arc::new(MemoryDeviceStateTable::default()),
        kinds: Kinds::builtin(),
        catalogs: Box::new(Arc::new(catalogs::built_in()?)),
        access: AccessPolicy::default(),
        quota_counter: Arc::new(MemoryQuotaCounter::default()),
        history_quota: HistoryQuota { per_minute: 1_000_000 },
        console: Default::default(),
        history_deadline: Duration::from_secs(25),
        cursors: canopy_api::cursor::Cursors::ephemeral(),
    })))
}

async fn get(api: &axum::Router, uri: &str) -> Result<Value> {
    let response = api.clone().oneshot(Request::get(uri).body(Body::empty())?).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 26).await?;
    if status != StatusCode::OK {
        bail!("{uri}: {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// A console subscribing to the fleet's live stream, `runs` times: the
/// `subscribe` message, answered with its snapshot. Counts the table
/// requests of one subscription with `requests` (the connections table is in
/// memory: it holds consoles, not vehicles).
async fn subscribe<S: LatestStateStore, D: VehicleDirectory>(
    state: S,
    directory: D,
    runs: usize,
    requests: &dyn Fn() -> usize,
) -> Result<Measured> {
    let sessions = Sessions {
        connections: MemoryConnectionStore::default(),
        poster: MemoryPoster::default(),
        state,
        directory,
        verifier: None::<NoSignIn>,
        access: AccessPolicy::default(),
        ttl_s: canopy_live::CONNECTION_TTL_S,
    };
    let mut times = Vec::with_capacity(runs);
    let mut per_subscription = 0;
    for run in 0..=runs {
        let id = format!("bench-{run}");
        sessions.connect(&id, None, 0).await?;
        let (started, before) = (Instant::now(), requests());
        sessions
            .message(&id, r#"{"action":"subscribe","fleet":true}"#, 0)
            .await?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        per_subscription = requests() - before;
        let snapshot: usize = (sessions.poster.to(&id).iter())
            .filter_map(|text| serde_json::from_str::<Value>(text).ok())
            .filter_map(|m| m["states"].as_array().map(Vec::len))
            .sum();
        if snapshot != SNAPSHOT_VEHICLES {
            bail!("a live fleet subscription's snapshot held {snapshot} vehicles");
        }
        // The first run warms up, as `measure`'s does.
        if run > 0 {
            times.push(elapsed);
        }
    }
    let (p50_ms, p95_ms, _) = percentiles(&mut times);
    Ok(Measured {
        action: "live fleet subscribe",
        p50_ms,
        p95_ms,
        requests: per_subscription,
    })
}

/// Times `uri` `runs` times, counting the table requests of one answer with `requests`.
async fn measure(
    api: &axum::Router,
    action: &'static str,
    uri: &str,
    runs: usize,
    requests: &dyn Fn() -> usize,
) -> Result<Measured> {
    let before = requests();
    get(api, uri).await?;
    let per_answer = requests() - before;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        get(api, uri).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50_ms, p95_ms, _) = percentiles(&mut times);
    Ok(Measured {
        action,
        p50_ms,
        p95_ms,
        requests: per_answer,
    })
}

/// The console's fleet-wide actions on `api`; checks that the feed opens
/// with the newest vehicle's alert and the fleet's first page with its first vehicles.
async fn actions(api: &axum::Router, fleet: usize, runs: usize, requests: &dyn Fn() -> usize) -> Result<Vec<Measured>> {
    let first = get(api, "/alerts?limit=50").await?;
    let newest = vehicle(fleet - 1)?;
    if first["alerts"][0]["vehicle_id"] != newest.as_str() {
        bail!(
            "the feed of {fleet} opens with {}, not {newest}",
            first["alerts"][0]["vehicle_id"]
        );
    }
    let next_alerts = first["next"].as_str().context("a second page of alerts")?.to_string();
    let page = get(api, "/vehicles?limit=50").await?;
    let listed = page["vehicles"].as_array().map_or(0, Vec::len);
    if listed != 50 || page["vehicles"][0]["vehicle_id"] != vehicle(0)?.as_str() {
        bail!(
            "the fleet of {fleet} opens with {listed} vehicles from {}",
            page["vehicles"][0]["vehicle_id"]
        );
    }
    let next_vehicles = page["next"].as_str().context("a second page of vehicles")?.to_string();
    let lowest = get(api, "/vehicles?limit=50&sort=soc_pct").await?;
    if lowest["vehicles"][0]["soc_pct"] != 0.0 {
        bail!(
            "the fleet of {fleet} sorted by SoC opens with {}",
            lowest["vehicles"][0]
        );
    }
    let counts = get(api, "/fleet/counts").await?;
    if counts["total"] != fleet {
        bail!("the fleet of {fleet} counts {}", counts["total"]);
    }
    let cases = [
        ("fleet counts", "/fleet/counts".to_string()),
        ("fleet, first page", "/vehicles?limit=50".to_string()),
        ("fleet, next page", format!("/vehicles?limit=50&after={next_vehicles}")),
        (
            "fleet, id-prefix search",
            "/vehicles?limit=50&prefix=fleet-0009".to_string(),
        ),
        ("fleet, parked only", "/vehicles?limit=50&status=parked".to_string()),
        ("fleet, lowest SoC first", "/vehicles?limit=50&sort=soc_pct".to_string()),
        ("alert feed, first page", "/alerts?limit=50".to_string()),
        ("alert feed, next page", format!("/alerts?limit=50&after={next_alerts}")),
    ];
    let mut measured = Vec::with_capacity(cases.len());
    for (action, uri) in cases {
        measured.push(measure(api, action, &uri, runs, requests).await?);
    }
    Ok(measured)
}

/// The memory adapters seeded with `fleet` vehicles; the actions raw, then with every request delayed.
async fn memory_fleet(fleet: usize, options: &FleetBenchOptions) -> Result<(Vec<Measured>, Vec<Measured>)> {
    let state = Arc::new(MemoryStateTable::default());
    let directory = Arc::new(MemoryDirectory::default());
    let alerts = Arc::new(MemoryAlertLog::default());
    seed_fleet(
        fleet,
        chrono::Utc::now().timestamp_millis(),
        state.clone(),
        directory.clone(),
        alerts.clone(),
    )
    .await?;
    let tables = Tables {
        state: state.clone(),
        directory: directory.clone(),
        alerts: alerts.clone(),
    };
    let api = api(tables).await?;
    let requests = || {
        let directory_reads = directory.faults.calls("list_query")
            + directory.faults.calls("ranked_query")
            + directory.faults.calls("counts");
        alerts.faults.calls("feed_query") + directory_reads + state.faults.calls("get_many")
    };
    let mut raw = actions(&api, fleet, options.runs, &requests).await?;
    raw.push(subscribe(state.clone(), directory.clone(), options.runs, &requests).await?);
    for faults in [&alerts.faults, &directory.faults, &state.faults] {
        faults.delay(Duration::from_millis(options.request_ms));
    }
    let mut modelled = actions(&api, fleet, options.runs.min(20), &requests).await?;
    modelled.push(subscribe(state.clone(), directory.clone(), options.runs.min(20), &requests).await?);
    Ok((raw, modelled))
}

/// Counts the requests a DynamoDB client sends.
#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<AtomicUsize>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Moto seeded with `fleet` vehicles through the adapters' own writes.
async fn moto_fleet(fleet: usize, runs: usize) -> Result<Vec<Measured>> {
    let moto = Moto::start(&moto_server_path())?;
    let sdk = sdk_config(&moto.endpoint).await;
    let count = CountRequests::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .interceptor(count.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let (state_name, log_name, index_name) = ("bench-state", "bench-alerts", "bench-fleet-index");
    for spec in [
        state_table(state_name),
        alerts_table(log_name),
        fleet_index_table(index_name),
    ] {
        create_table(&client, &spec).await?;
    }
    let state = Arc::new(DynamoStateTable::new(client.clone(), state_name));
    let directory = Arc::new(DynamoDirectory::new(client.clone(), index_name));
    let log = Arc::new(DynamoAlertLog::new(client, log_name, index_name));
    let took = seed_fleet(
        fleet,
        chrono::Utc::now().timestamp_millis(),
        state.clone(),
        directory.clone(),
        log.clone(),
    )
    .await?;
    eprintln!("{fleet} vehicles seeded into moto in {:.0} s", took.as_secs_f64());
    let api = api(Tables {
        state: state.clone(),
        directory: directory.clone(),
        alerts: log,
    })
    .await?;
    let requests = || count.0.load(Ordering::Relaxed);
    let mut measured = actions(&api, fleet, runs, &requests).await?;
    measured.push(subscribe(state, directory, runs, &requests).await?);
    Ok(measured)
}

fn lines(out: &mut String, fleet: usize, place: &str, measured: &[Measured]) {
    for m in measured {
        out.push_str(&format!(
            "{fleet:>7} vehicles  {place:<22} {:<24} p50 {:>7.2} ms  p95 {:>7.2} ms  {} table requests\n",
            m.action, m.p50_ms, m.p95_ms, m.requests
        ));
    }
}

/// Runs the bench, writing each fleet's lines to `out` as that fleet is done
/// (a failure on moto keeps what the memory fleets measured).
pub async fn run(options: &FleetBenchOptions, out: &mut impl std::io::Write) -> Result<()> {
    writeln!(
        out,
        "fleet-wide reads; modelled: {} ms before each DynamoDB request (parallel requests overlap)",
        options.request_ms
    )?;
    for &fleet in &options.memory {
        let (raw, modelled) = memory_fleet(fleet, options).await?;
        let mut text = String::new();
        lines(&mut text, fleet, "memory, raw", &raw);
        lines(&mut text, fleet, "memory, modelled", &modelled);
        write!(out, "{text}")?;
        out.flush()?;
    }
    if options.moto > 0 {
        // Moto reads a whole partition per query: a few runs say what it costs.
        let measured = moto_fleet(options.moto, options.runs.min(10)).await?;
        let mut text = String::new();
        lines(&mut text, options.moto, "moto (loopback), raw", &measured);
        write!(out, "{text}")?;
    }
    Ok(())
}
