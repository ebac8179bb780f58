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
use canopy::format::dbc::Database;
use canopy_local::demo::{FleetOptions, Via, run_fleet, wait_idle};
use canopy_local::services::{Moto, moto_server_path};
use canopy_local::stack::{Stack, StackOptions};
use canopy_tests::local::{self, waiting};
use canopy_tests::proxy::Proxy;
use tokio::time::sleep;

use crate::e2e::{ground_truth, lake_counts, recent_start_us, simulate};
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

#[tokio::test(flavor = "multi_thread")]
async fn outages_and_killed_invocations_lose_and_double_nothing() {
    canopy_tests::local::log_warnings();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let start_us = recent_start_us();
    let work = tempfile::tempdir().unwrap();
    let logs = work.path().join("logs");
    simulate(&logs, VEHICLES, SECONDS, start_us, &[]);

    let moto = Moto::start(&moto_server_path()).unwrap();
    let moto_address: SocketAddr = moto.endpoint.trim_start_matches("http://").parse().unwrap();
    let aws = Proxy::start(moto_address, true);
    let stack = Stack::start(StackOptions {
        template: repo.join("template.yaml"),
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
    .unwrap();
    let broker = Proxy::start(stack.mqtt, true);
    let options = FleetOptions {
        vehicles: VEHICLES,
        seconds: SECONDS,
        overheating: None,
        start_us,
        edge: local::binary("canopy-edge"),
        dbc: repo.join("dbc/ev_powertrain.dbc"),
        work: work.path().join("fleet"),
        replay_dir: Some(logs.clone()),
        // Four minutes of driving in half a minute: the faults land mid-stream.
        replay_speed: 8.0,
        via: Some(Via {
            upload_endpoint: format!("http://{}", aws.address),
            mqtt_port: broker.address.port(),
        }),
        settings: Default::default(),
    };
    let faults = async {
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
    };
    let (counters, ()) = tokio::join!(run_fleet(&stack, &options), faults);
    let counters = counters.unwrap();
    wait_idle(&stack, Duration::from_secs(240)).await.unwrap();

    // The faults happened.
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

    // Every frame decoded exactly once.
    let db = Database::load(repo.join("dbc/ev_powertrain.dbc")).unwrap();
    let (truth, _) = ground_truth(&db, &logs, VEHICLES);
    assert_eq!(lake_counts(&stack).await, truth);

    // Every telemetry message archived exactly once.
    let rows = archive_rows(&S3Store::new(&stack.sdk, &stack.bucket), "telemetry/").await;
    let mut per_message = BTreeMap::<(String, i64), u32>::new();
    for row in rows {
        *per_message.entry(row).or_default() += 1;
    }
    let doubled: Vec<_> = per_message.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "archived more than once: {doubled:?}");
    for (vehicle, c) in &counters {
        assert_eq!(c["frames_dropped"], 0, "{vehicle}: {c}");
        assert_eq!(c["frames_read"], c["frames_sealed"], "{vehicle}: {c}");
        assert_eq!(c["telemetry_built"], c["telemetry_published"], "{vehicle}: {c}");
        let archived = per_message.keys().filter(|(v, _)| v == vehicle.as_str()).count() as u64;
        assert_eq!(Some(archived), c["telemetry_published"].as_u64(), "{vehicle}: {c}");
    }
    assert!(
        dead_letters(&stack).await.values().all(|n| *n == 0),
        "{:?}",
        dead_letters(&stack).await
    );
}
