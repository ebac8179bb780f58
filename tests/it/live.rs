//! The live stream on the local stack, with real WebSocket clients: telemetry
//! published over MQTT reaches the clients subscribed to its vehicle as a
//! state update, an alert as an alert, and nobody else; bad messages get an
//! error reply; closed clients are forgotten; and 200 clients watching 20
//! vehicles for a minute each end with every vehicle's newest state, never
//! saw one go back, and got each alert once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use canopy::adapters::aws::cognito::CognitoVerifier;
use canopy::adapters::aws::dynamodb::{self, DynamoAlertLog, DynamoConnectionStore};
use canopy::adapters::contract;
use canopy::adapters::memory::{MemoryConnectionStore, MemoryDirectory, MemoryPoster, MemoryStateTable};
use canopy::domain::access::{AccessPolicy, VehicleGroups, View};
use canopy::domain::device_id::DeviceId;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::live::ConnectionStore;
use canopy::ports::messaging::DevicePublisher;
use canopy_live::sessions::{Refused, Sessions};
use canopy_local::basic_ingest::BrokerPublisher;
use canopy_local::live::LiveClient;
use canopy_local::services::{Moto, moto_server_path};
use canopy_local::stack::{Stack, StackOptions};
use canopy_tests::fixtures::Rng;
use canopy_tests::local;
use canopy_tests::messages;
use canopy_tests::proxy::Proxy;
use serde_json::{Value, json};

use crate::support::cognito;

/// Telemetry of `vehicle`, `seq` seconds into a drive that started a minute ago.
fn message(vehicle: &str, seq: u64, start_s: i64, temp_c: f64) -> String {
    let sample = messages::telemetry(vehicle, seq, start_s + seq as i64);
    messages::with(sample, json!({"cell_temp_max_c": temp_c})).to_string()
}

/// A device's connection to the stack's broker, as the data plane's publisher makes it.
async fn mqtt(stack: &Stack, name: &str) -> BrokerPublisher {
    BrokerPublisher::connect(stack.mqtt, name).await.unwrap()
}

async fn publish(publisher: &BrokerPublisher, vehicle: &str, text: String) {
    publisher
        .publish(&format!("dt/canopy/{vehicle}/bms"), text.into_bytes())
        .await
        .unwrap();
}

/// Messages of `client` until one satisfies `want` (which `what` names), within `wait`.
async fn next_matching(client: &mut LiveClient, what: &str, wait: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + wait;
    let mut others = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next(left).await.unwrap() {
            Some(m) if want(&m) => return m,
            Some(m) => others.push(m),
            None => panic!("no {what} within {wait:?}; the client got {others:?} meanwhile"),
        }
    }
}

fn has_state(m: &Value, vehicle: &str) -> bool {
    m["type"] == "update"
        && m["states"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["vehicle_id"] == vehicle)
}

fn has_alert(m: &Value, vehicle: &str) -> bool {
    m["type"] == "update"
        && m["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["vehicle_id"] == vehicle)
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_get_their_vehicles_states_and_alerts_and_nothing_else() {
    let stack = local::own_stack_with_visibility(30).await;
    let start_s = chrono::Utc::now().timestamp() - 60;
    let mut one = LiveClient::connect(stack.api).await.unwrap();
    let mut other = LiveClient::connect(stack.api).await.unwrap();
    let snapshot = one.subscribe(&["veh-w1"]).await.unwrap();
    assert_eq!(snapshot, json!({"type": "update", "v": 1, "states": [], "alerts": []}));
    other.subscribe(&["veh-w2"]).await.unwrap();

    let publisher = mqtt(&stack, "it-live").await;
    publish(&publisher, "veh-w1", message("veh-w1", 1, start_s, 30.0)).await;
    let update = next_matching(&mut one, "state of veh-w1", Duration::from_secs(20), |m| {
        has_state(m, "veh-w1")
    })
    .await;
    let state = &update["states"][0];
    assert_eq!(
        (state["seq"].as_u64(), state["cell_temp_max_c"].as_f64()),
        (Some(1), Some(30.0))
    );
    assert!(state["received_at_ms"].is_i64(), "{state}");

    // Over the threshold: an alert, and the state that raised it.
    publish(&publisher, "veh-w1", message("veh-w1", 2, start_s, 71.5)).await;
    let alerted = next_matching(&mut one, "alert of veh-w1", Duration::from_secs(20), |m| {
        has_alert(m, "veh-w1")
    })
    .await;
    assert_eq!(alerted["alerts"][0]["rule"], "over-temperature", "{alerted}");
    // The other client is subscribed to another vehicle: it heard nothing.
    assert_eq!(other.next(Duration::from_secs(2)).await.unwrap(), None);

    // A message the stream cannot use is answered, and the connection stays.
    one.send("{not json").await.unwrap();
    let error = next_matching(&mut one, "error reply", Duration::from_secs(5), |m| {
        m["type"] == "error"
    })
    .await;
    assert_eq!(error["code"], "bad_json");
    one.send(r#"{"action":"ping"}"#).await.unwrap();
    next_matching(&mut one, "pong", Duration::from_secs(5), |m| m["type"] == "pong").await;

    // A subscriber that goes away is forgotten at once, or at the next push at the latest.
    let connections = DynamoConnectionStore::new(dynamodb::client(&stack.sdk), "LiveConnectionsTable");
    assert_eq!(connections.list().await.unwrap().len(), 2);
    other.close().await.unwrap();
    publish(&publisher, "veh-w2", message("veh-w2", 1, start_s, 30.0)).await;
    let started = Instant::now();
    while connections.list().await.unwrap().len() > 1 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the closed connection stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stack.live.as_ref().unwrap().poster.open(), 1);
}

/// Logs an over-temperature alert of `vehicle` in the stack's alert log, as the alerts function does.
async fn log_alert(stack: &Stack, vehicle: &str) {
    let log = DynamoAlertLog::new(dynamodb::client(&stack.sdk), "AlertsTable", "FleetIndexTable");
    let alert = contract::alert(&DeviceId::new(vehicle).unwrap(), 1, 0);
    log.record(&alert, &[View::All], chrono::Utc::now().timestamp() + 86_400)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_logged_while_aws_is_unreachable_reaches_its_subscriber() {
    local::log_warnings();
    let moto = Moto::start(&moto_server_path()).unwrap();
    let aws = Proxy::start(moto.endpoint.trim_start_matches("http://").parse().unwrap(), true);
    let stack = Stack::start(StackOptions {
        template: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
        moto_endpoint: Some(moto.endpoint.clone()),
        mqtt_port: 0,
        api_port: 0,
        visibility_timeout_s: Some(30),
        // The fan-out's stream readers reach moto through the proxy.
        functions_endpoint: Some(format!("http://{}", aws.address)),
        batching_windows: false,
    })
    .await
    .unwrap();
    let mut client = LiveClient::connect(stack.api).await.unwrap();
    client.subscribe(&["veh-o1"]).await.unwrap();

    // Longer than the SDK's retries of one call: the readers' calls fail.
    aws.set_up(false);
    log_alert(&stack, "veh-o1").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        aws.refused.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "nobody met the outage"
    );
    aws.set_up(true);
    let alerted = next_matching(
        &mut client,
        "alert logged during the outage",
        Duration::from_secs(20),
        |m| has_alert(m, "veh-o1"),
    )
    .await;
    assert_eq!(alerted["alerts"][0]["rule"], "over-temperature", "{alerted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_logged_as_the_stack_starts_reaches_the_fan_out() {
    let stack = local::own_stack_with_visibility(30).await;
    // At once: the stream readers already read, and from the stream's first record.
    log_alert(&stack, "veh-o2").await;
    let live = stack.live.as_ref().unwrap();
    let started = Instant::now();
    while live.changes_delivered.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the alert logged as the stack started never reached the fan-out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resident memory of this process (the stack runs in it), in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// What one client saw: per vehicle the states' seqs in arrival order, and the alerts.
#[derive(Default)]
struct Seen {
    seqs: BTreeMap<String, Vec<u64>>,
    alerts: Vec<String>,
    messages: usize,
}

const LOAD_VEHICLES: usize = 20;
const LOAD_CLIENTS: usize = 200;
const LOAD_SECONDS: u64 = 60;

fn load_vehicle(i: usize) -> String {
    format!("veh-l{i:02}")
}

/// [`LOAD_CLIENTS`] clients, each watching the fleet (one in ten) or three
/// vehicles; each client and the vehicles it watches.
async fn watchers(stack: &Stack) -> Vec<(LiveClient, BTreeSet<String>)> {
    let mut rng = Rng::new(3);
    let mut watchers = Vec::new();
    for c in 0..LOAD_CLIENTS {
        let mut client = LiveClient::connect(stack.api).await.unwrap();
        let wanted: BTreeSet<String> = if c % 10 == 0 {
            (0..LOAD_VEHICLES).map(load_vehicle).collect()
        } else {
            (0..3)
                .map(|_| load_vehicle((rng.next_u64() % LOAD_VEHICLES as u64) as usize))
                .collect()
        };
        let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let subscription: &[&str] = if c % 10 == 0 { &[] } else { &names };
        client.subscribe(subscription).await.unwrap();
        watchers.push((client, wanted));
    }
    watchers
}

/// Reads `client` on a task of its own until the drive is over and quiet.
fn read_until_quiet(mut client: LiveClient) -> tokio::task::JoinHandle<Seen> {
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let end = Instant::now() + Duration::from_secs(LOAD_SECONDS + 25);
        while Instant::now() < end {
            let Some(m) = client.next(Duration::from_secs(1)).await.unwrap() else {
                continue;
            };
            seen.messages += 1;
            for s in m["states"].as_array().into_iter().flatten() {
                let v = s["vehicle_id"].as_str().unwrap().to_string();
                seen.seqs.entry(v).or_default().push(s["seq"].as_u64().unwrap());
            }
            for a in m["alerts"].as_array().into_iter().flatten() {
                seen.alerts.push(format!(
                    "{}:{}",
                    a["vehicle_id"].as_str().unwrap(),
                    a["rule"].as_str().unwrap()
                ));
            }
        }
        seen
    })
}

/// The fleet at 1 Hz for [`LOAD_SECONDS`]; every fifth vehicle overheats
/// from its 20th second (one alert each: the cooldown is 10 min). The
/// process's memory at 15 s and at the end, in MiB.
async fn drive_the_load_fleet(stack: &Stack) -> [f64; 2] {
    let publisher = mqtt(stack, "it-live-load").await;
    let start_s = chrono::Utc::now().timestamp() - 2;
    let started = Instant::now();
    let mut rss = Vec::new();
    for second in 0..LOAD_SECONDS {
        for i in 0..LOAD_VEHICLES {
            let hot = i % 5 == 0 && second >= 20;
            let vehicle = load_vehicle(i);
            let text = message(&vehicle, second, start_s, if hot { 70.0 } else { 30.0 });
            publish(&publisher, &vehicle, text).await;
        }
        if second == 15 || second == LOAD_SECONDS - 1 {
            rss.push(rss_mib());
        }
        let next = started + Duration::from_secs(second + 1);
        tokio::time::sleep_until(next.into()).await;
    }
    [rss[0], rss[1]]
}

/// Client `c`, watching `watches`, ended with every watched vehicle's
/// newest state, never saw one go back, heard of no other, got each alert
/// of its vehicles once, and about a message a second at most.
fn check_what_one_client_saw(c: usize, watches: &BTreeSet<String>, seen: &Seen) {
    for v in watches {
        let seqs = seen
            .seqs
            .get(v)
            .unwrap_or_else(|| panic!("client {c} heard nothing of {v}"));
        assert_eq!(seqs.last(), Some(&(LOAD_SECONDS - 1)), "client {c}: {v}'s newest state");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "client {c}: {v} went back in time: {seqs:?}"
        );
    }
    assert!(
        seen.seqs.keys().all(|v| watches.contains(v)),
        "client {c} heard of others"
    );
    let mut want: Vec<String> = watches
        .iter()
        .filter(|v| v[5..].parse::<usize>().unwrap() % 5 == 0)
        .map(|v| format!("{v}:over-temperature"))
        .collect();
    let mut got = seen.alerts.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "client {c}: each alert of its vehicles once");
    // At most about a message a second (the drive and the quiet after it).
    assert!(
        seen.messages as u64 <= LOAD_SECONDS + 25 + 5,
        "client {c}: {} messages",
        seen.messages
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_clients_watch_twenty_vehicles_for_a_minute() {
    let stack = local::own_stack_with_visibility(30).await;
    let (readers, watches): (Vec<_>, Vec<_>) = watchers(&stack)
        .await
        .into_iter()
        .map(|(client, wanted)| (read_until_quiet(client), wanted))
        .unzip();
    let rss = drive_the_load_fleet(&stack).await;
    let mut total_messages = 0;
    for (c, reader) in readers.into_iter().enumerate() {
        let seen = reader.await.unwrap();
        total_messages += seen.messages;
        check_what_one_client_saw(c, &watches[c], &seen);
    }
    println!(
        "{LOAD_CLIENTS} clients, {LOAD_VEHICLES} vehicles at 1 Hz for {LOAD_SECONDS} s: {total_messages} messages; RSS {:.0} MiB at 15 s, {:.0} MiB at {LOAD_SECONDS} s",
        rss[0], rss[1]
    );
    assert!(rss[1] - rss[0] < 64.0, "memory grows: {rss:?} MiB");
}

/// Two of moto's user pools, ours and theirs, and an access and an ID token
/// of each kind the live stream must tell apart.
struct Pools {
    ours: String,
    app: String,
    /// north@example.com's access and ID tokens from our console app.
    north: String,
    north_id: String,
    /// north's access token from another app client of our pool.
    other_app_token: String,
    /// An access token of their pool, for a user named as our admin is.
    theirs_token: String,
}

async fn pools() -> Pools {
    let ours = cognito::pool("ours").await;
    let theirs = cognito::pool("theirs").await;
    let app = cognito::app_client(&ours, "console").await;
    let other_app = cognito::app_client(&ours, "other").await;
    let their_app = cognito::app_client(&theirs, "console").await;
    // Someone with a pool of their own names a user as our admin is named.
    let admin = "admin@example.com";
    cognito::user(&ours, admin, &["fleet-admin"]).await;
    cognito::user(&theirs, admin, &["fleet-admin"]).await;
    cognito::user(&ours, "north@example.com", &["viewer", "north"]).await;
    let (north, north_id) = cognito::sign_in(&ours, &app, "north@example.com").await;
    let (other_app_token, _) = cognito::sign_in(&ours, &other_app, "north@example.com").await;
    let (theirs_token, _) = cognito::sign_in(&theirs, &their_app, admin).await;
    Pools {
        ours,
        app,
        north,
        north_id,
        other_app_token,
        theirs_token,
    }
}

/// The live function's sessions on the memory adapters, verifying tokens of
/// our pool for our console app, and north's vehicles in the north group.
fn sessions(
    pools: &Pools,
) -> Sessions<MemoryConnectionStore, MemoryPoster, MemoryStateTable, CognitoVerifier, MemoryDirectory> {
    let verifier = CognitoVerifier::new(
        "us-east-1",
        &pools.ours,
        [pools.app.clone()].into(),
        Some(cognito::jwks_url(&pools.ours)),
    )
    .unwrap();
    Sessions {
        connections: MemoryConnectionStore::default(),
        poster: MemoryPoster::default(),
        state: MemoryStateTable::default(),
        directory: MemoryDirectory::default(),
        verifier: Some(verifier),
        access: AccessPolicy {
            vehicle_groups: VehicleGroups::parse("north=veh-1*").unwrap(),
            identity_required: true,
        },
        ttl_s: 7200,
    }
}

/// The live stream's `$connect` against two of moto's user pools: only an
/// unexpired access token of our pool, issued to one of our app clients and
/// signed by the pool, opens a connection.
#[tokio::test]
async fn connect_takes_only_our_pools_unexpired_access_tokens_for_our_apps() {
    let pools = pools().await;
    let sessions = sessions(&pools);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let exp = cognito::claim(&pools.north, "exp").as_i64().unwrap();
    let tampered = cognito::tampered(&pools.north, "cognito:groups", json!(["fleet-admin"]));
    let refused = [
        (
            "a token of another pool for a user named like our admin",
            pools.theirs_token.as_str(),
            now_ms,
        ),
        (
            "a token of our pool issued to another app client",
            pools.other_app_token.as_str(),
            now_ms,
        ),
        ("an ID token", pools.north_id.as_str(), now_ms),
        ("an expired token", pools.north.as_str(), (exp + 1) * 1000),
        ("a token whose groups were changed after signing", &tampered, now_ms),
        ("no token at all", "", now_ms),
    ];
    for (what, token, at_ms) in refused {
        match sessions.connect("c", Some(token), at_ms).await {
            Err(Refused::Unauthenticated(why)) => eprintln!("{what}: refused, {why}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(sessions.connections.list().await.unwrap().is_empty());
}

/// The same, through the live function's own route handler as API Gateway
/// invokes it: a connection opened carries exactly the groups its token
/// names, and ends with it.
#[tokio::test]
async fn a_connection_opened_through_the_route_handler_carries_its_tokens_groups() {
    let pools = pools().await;
    let sessions = sessions(&pools);
    let mut event = aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest::default();
    event.request_context.connection_id = Some("lambda".into());
    event.request_context.route_key = Some("$connect".into());
    let query = |token: &str| std::collections::HashMap::from([("token".to_string(), token.to_string())]).into();
    event.query_string_parameters = query(&pools.theirs_token);
    assert_eq!(
        canopy_live::handle_route(&sessions, event.clone()).await.status_code,
        401
    );
    event.query_string_parameters = query(&pools.north);
    assert_eq!(canopy_live::handle_route(&sessions, event).await.status_code, 200);

    let connection = sessions.connections.get("lambda").await.unwrap().unwrap();
    let caller = connection.caller.unwrap();
    assert_eq!(caller.groups, ["north".to_string(), "viewer".to_string()].into());
    assert_eq!(json!(caller.subject), cognito::claim(&pools.north, "sub"));
    let exp = cognito::claim(&pools.north, "exp").as_i64().unwrap();
    assert_eq!(connection.expires_at_s, exp, "the connection ends with its token");
}
