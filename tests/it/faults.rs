//! Faults on the local stack while a fleet drives: AWS unreachable from the
//! functions and the vehicles, queue invocations killed mid-batch, the broker
//! unreachable from the vehicles while they publish. Every frame must still
//! be decoded once and every telemetry message archived once.
//!
//! moto keeps everything in memory, so restarting it would lose the buckets
//! and queues themselves, which no AWS outage does. What a restart looks like
//! to its clients is played instead by a proxy that refuses and cuts every
//! connection; the broker's outage likewise. IoT Core's and Lambda's own parts
//! (the rules engine, the event source mappings) keep reaching moto, as they
//! are inside AWS.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy::format::dbc::Database;
use canopy_local::demo::{FleetOptions, Via, run_fleet, wait_idle};
use canopy_local::services::{Moto, moto_server_path};
use canopy_local::stack::{Stack, StackOptions};
use canopy_tests::local::{self, waiting};
use canopy_tests::proxy::Proxy;
use serde_json::Value;
use tokio::time::sleep;

use crate::e2e::{ground_truth, lake_counts, recent_start_us, repo, simulate};
use crate::telemetry::archive_rows;

const VEHICLES: usize = 2;
const SECONDS: u32 = 240;

/// Messages resting in the template's dead-letter queues, by queue.
async fn dead_letters(stack: &Stack) -> BTreeMap<String, u64> {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let mut resting = BTreeMap::new();
    for dlq in stack
        .template
        .queues
        .iter()
        .filter_map(|q| q.redrive.as_ref().map(|r| &r.0))
    {
        resting.insert(dlq.clone(), waiting(&sqs, dlq).await);
    }
    resting
}

/// The local stack on `moto`, its functions reaching moto through `aws`.
async fn stack_behind(moto: &Moto, aws: &Proxy) -> Stack {
    Stack::start(StackOptions {
        template: repo().join("template.yaml"),
        moto_endpoint: Some(moto.endpoint.clone()),
        mqtt_port: 0,
        api_port: 0,
        // As in the template, the telemetry claims of a killed batch
        // (CLAIM_STALE_SECONDS, 60 s) go stale before the fifth delivery.
        visibility_timeout_s: Some(25),
        functions_endpoint: Some(format!("http://{}", aws.address)),
        batching_windows: false,
    })
    .await
    .unwrap()
}

/// The fleet replaying `logs`, its vehicles reaching S3 through `aws` and
/// the broker through `broker`.
fn fleet(logs: &Path, work: &Path, start_us: i64, aws: &Proxy, broker: &Proxy) -> FleetOptions {
    FleetOptions {
        vehicles: VEHICLES,
        seconds: SECONDS,
        overheating: None,
        start_us,
        edge: local::binary("canopy-edge"),
        dbc: repo().join("dbc/ev_powertrain.dbc"),
        work: work.join("fleet"),
        replay_dir: Some(logs.to_path_buf()),
        // Four minutes of driving in half a minute: the faults land mid-stream.
        replay_speed: 8.0,
        via: Some(Via {
            upload_endpoint: format!("http://{}", aws.address),
            mqtt_port: broker.address.port(),
        }),
        settings: Default::default(),
    }
}

/// While the fleet drives: three invocations killed, AWS away for 4 s,
/// then the broker away for 4 s.
async fn faults(stack: &Stack, aws: &Proxy, broker: &Proxy) {
    sleep(Duration::from_secs(4)).await;
    stack.faults.kill_next(3, Duration::from_millis(10));
    sleep(Duration::from_secs(4)).await;
    aws.set_up(false);
    sleep(Duration::from_secs(4)).await;
    aws.set_up(true);
    sleep(Duration::from_secs(3)).await;
    broker.set_up(false);
    sleep(Duration::from_secs(4)).await;
    broker.set_up(true);
}

/// The faults happened: invocations were killed, and someone met each outage.
fn check_the_faults_happened(stack: &Stack, aws: &Proxy, broker: &Proxy) {
    eprintln!(
        "faults: {:?}; connections refused or cut: AWS {}, broker {}",
        stack.counters,
        aws.refused.load(Ordering::Relaxed),
        broker.refused.load(Ordering::Relaxed)
    );
    assert!(
        stack.counters.killed_invocations.load(Ordering::Relaxed) >= 3,
        "{:?}",
        stack.counters
    );
    assert!(aws.refused.load(Ordering::Relaxed) > 0, "nobody met the AWS outage");
    assert!(
        broker.refused.load(Ordering::Relaxed) > 0,
        "nobody met the broker outage"
    );
}

/// Every telemetry message archived exactly once, every message an agent
/// published among them, and no agent dropped or held back anything.
async fn check_telemetry_archived_once(stack: &Stack, counters: &BTreeMap<DeviceId, Value>) {
    let rows = archive_rows(&S3Store::new(&stack.sdk, &stack.bucket), "telemetry/").await;
    let mut per_message = BTreeMap::<(String, i64), u32>::new();
    for row in rows {
        *per_message.entry(row).or_default() += 1;
    }
    let doubled: Vec<_> = per_message.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "archived more than once: {doubled:?}");
    for (vehicle, c) in counters {
        assert_eq!(c["frames_dropped"], 0, "{vehicle}: {c}");
        assert_eq!(c["frames_read"], c["frames_sealed"], "{vehicle}: {c}");
        assert_eq!(c["telemetry_built"], c["telemetry_published"], "{vehicle}: {c}");
        let archived = per_message.keys().filter(|(v, _)| v == vehicle.as_str()).count() as u64;
        assert_eq!(Some(archived), c["telemetry_published"].as_u64(), "{vehicle}: {c}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outages_and_killed_invocations_lose_and_double_nothing() {
    canopy_tests::local::log_warnings();
    let start_us = recent_start_us();
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    simulate(&logs, VEHICLES, SECONDS, start_us, &[]);

    let moto = Moto::start(&moto_server_path()).unwrap();
    let moto_address: SocketAddr = moto.endpoint.trim_start_matches("http://").parse().unwrap();
    let aws = Proxy::start(moto_address, true);
    let stack = stack_behind(&moto, &aws).await;
    let broker = Proxy::start(stack.mqtt, true);
    let options = fleet(&logs, work.path(), start_us, &aws, &broker);
    let (counters, ()) = tokio::join!(run_fleet(&stack, &options), faults(&stack, &aws, &broker));
    let counters = counters.unwrap();
    wait_idle(&stack, Duration::from_secs(240)).await.unwrap();

    check_the_faults_happened(&stack, &aws, &broker);
    // Every frame decoded exactly once.
    let db = Database::load(repo().join("dbc/ev_powertrain.dbc")).unwrap();
    let (truth, _) = ground_truth(&db, &logs, VEHICLES);
    assert_eq!(lake_counts(&stack).await, truth);
    check_telemetry_archived_once(&stack, &counters).await;
    assert!(
        dead_letters(&stack).await.values().all(|n| *n == 0),
        "{:?}",
        dead_letters(&stack).await
    );
}
