//! HTTP ingest on the local stack: device keys through the real router, the
//! real telemetry queue and the telemetry function, beside MQTT; exactly once
//! across both ways in; and the `device-keys` command.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use canopy::adapters::aws::dynamodb::{self, DynamoKeyStore};
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy::domain::device_key::{DeviceKey, issue};
use canopy::ports::keys::KeyStore;
use canopy_local::demo::wait_idle;
use canopy_local::stack::{Stack, latest_states};
use canopy_local::template::topic_arn;
use canopy_tests::fixtures::Rng;
use canopy_tests::local::{self, SnsCapture};
use canopy_tests::messages;
use canopy_tests::mqtt::TelemetrySubscriber;
use serde_json::{Value, json};

use crate::support::http;

use crate::telemetry::archive_rows;

const KEYS_TABLE: &str = "DeviceKeysTable";

/// A message of `vehicle` taken `seq` seconds into a drive that started an hour ago.
fn message(vehicle: &str, seq: u64, start_s: i64) -> Value {
    messages::with(
        messages::telemetry(vehicle, seq, start_s + seq as i64),
        json!({"soc_pct": 80.0 - seq as f64 / 100.0, "pack_current_a": 12.5, "speed_kph": (seq % 120) as f64}),
    )
}

/// A key for `device` in the stack's key table; its plaintext.
async fn key(stack: &Stack, device: &str, rate: u32) -> (DeviceKey, String) {
    let keys = DynamoKeyStore::new(dynamodb::client(&stack.sdk), KEYS_TABLE);
    let issued = issue(DeviceId::new(device).unwrap(), rate, "it", 0).unwrap();
    assert!(keys.create(&issued.record).await.unwrap());
    (issued.record, issued.plaintext)
}

/// `POST /ingest` on the stack's API, with `key` if any; the status and JSON answer.
async fn post(stack: &Stack, key: Option<&str>, body: String) -> (u16, Value) {
    let request = http::post(&http::api(stack), "/ingest").body(body);
    let request = match key {
        Some(key) => request.header("x-api-key", key),
        None => request,
    };
    request.send().await.parts()
}

/// An MQTT client on the stack's broker, publishing as vehicles do, and the
/// count of its publishes the broker acknowledged.
pub(crate) fn mqtt(stack: &Stack) -> (rumqttc::AsyncClient, Arc<AtomicUsize>) {
    let mut options = rumqttc::MqttOptions::new("it-ingest", "127.0.0.1", stack.mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 1_000);
    let acked = Arc::new(AtomicUsize::new(0));
    let count = acked.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    (client, acked)
}

/// What a test sends each way in: (which vehicle, the message).
struct Sends {
    over_mqtt: Vec<(usize, Value)>,
    over_http: Vec<(usize, Value)>,
    /// The invalid messages among `over_http`.
    invalid_http: usize,
    /// Every valid message's (vehicle, seq).
    expected: BTreeSet<(String, i64)>,
}

/// 500 valid messages per vehicle: 40 % over MQTT only, 40 % over HTTP only,
/// 20 % both; 100 posted twice more; 40 invalid, half each way; shuffled.
fn sends(vehicles: &[&str], start_s: i64) -> Sends {
    let mut rng = Rng::new(17);
    let mut sends = Sends {
        over_mqtt: Vec::new(),
        over_http: Vec::new(),
        invalid_http: 0,
        expected: BTreeSet::new(),
    };
    for (v, vehicle) in vehicles.iter().enumerate() {
        for seq in 0..500 {
            let m = message(vehicle, seq, start_s);
            sends.expected.insert((vehicle.to_string(), seq as i64));
            match rng.next_u64() % 10 {
                0..=3 => sends.over_mqtt.push((v, m)),
                4..=7 => sends.over_http.push((v, m)),
                _ => {
                    sends.over_mqtt.push((v, m.clone()));
                    sends.over_http.push((v, m));
                }
            }
        }
    }
    for _ in 0..100 {
        let again = sends.over_http[(rng.next_u64() % sends.over_http.len() as u64) as usize].clone();
        sends.over_http.push(again);
    }
    for i in 0..40u64 {
        let v = (i % 2) as usize;
        let mut m = message(vehicles[v], 10_000 + i, start_s);
        m["soc_pct"] = json!("full");
        if i < 20 {
            sends.over_mqtt.push((v, m));
        } else {
            sends.over_http.push((v, m));
            sends.invalid_http += 1;
        }
    }
    for list in [&mut sends.over_mqtt, &mut sends.over_http] {
        for i in (1..list.len()).rev() {
            list.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
    }
    sends
}

/// Posts each vehicle's share of `over_http` with its key, in batches of up
/// to 40; checks every message was answered and only the invalid ones
/// rejected, for their field.
async fn post_all(stack: &Stack, keys: &[String], over_http: &[(usize, Value)], invalid: usize) {
    let (mut answered, mut rejected) = (0, 0);
    for (v, key) in keys.iter().enumerate() {
        let ours: Vec<Value> = over_http
            .iter()
            .filter(|(d, _)| *d == v)
            .map(|(_, m)| m.clone())
            .collect();
        for batch in ours.chunks(40) {
            let (status, answer) = post(stack, Some(key), Value::Array(batch.to_vec()).to_string()).await;
            assert_eq!(status, 202, "{answer}");
            answered += answer["results"].as_array().unwrap().len();
            for r in answer["results"].as_array().unwrap() {
                if r["status"] == "rejected" {
                    rejected += 1;
                    assert_eq!(r["field"], "soc_pct", "{r}");
                    assert_eq!(r["reason"], "field soc_pct must be a finite number, found a string");
                }
            }
        }
    }
    assert_eq!(answered, over_http.len());
    assert_eq!(rejected, invalid);
}

/// Waits until the broker acknowledged `published` publishes, `limit` at most.
async fn wait_acked(acked: &AtomicUsize, published: usize, limit: Duration) {
    let waited = std::time::Instant::now();
    while acked.load(Ordering::SeqCst) < published {
        assert!(
            waited.elapsed() < limit,
            "the broker acknowledged {acked:?} of {published}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every valid message archived once and nothing else; each vehicle's
/// latest state its newest message, whichever way it came.
async fn check_archived_exactly_once(stack: &Stack, vehicles: &[&str], expected: &BTreeSet<(String, i64)>) {
    let store = S3Store::new(&stack.sdk, &stack.bucket);
    let mut rows = archive_rows(&store, "telemetry/").await;
    rows.sort();
    let archived: BTreeSet<(String, i64)> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), archived.len(), "a message archived twice");
    assert_eq!(&archived, expected, "every valid message archived, nothing else");
    for state in latest_states(stack).await.unwrap() {
        if vehicles.contains(&state.telemetry.vehicle_id.as_str()) {
            assert_eq!(state.telemetry.seq, 499, "{}", state.telemetry.vehicle_id);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_over_mqtt_and_http_with_duplicates_across_both_are_archived_exactly_once() {
    let stack = local::own_stack_with_visibility(30).await;
    let start_s = chrono::Utc::now().timestamp() - 3600;
    let vehicles = ["veh-h1", "veh-h2"];
    let mut keys = Vec::new();
    for v in vehicles {
        keys.push(key(&stack, v, 6_000).await.1);
    }
    let Sends {
        over_mqtt,
        over_http,
        invalid_http,
        expected,
    } = sends(&vehicles, start_s);

    // Both ways at once: MQTT on its own task, HTTP meanwhile.
    let (client, acked) = mqtt(&stack);
    let published = over_mqtt.len();
    let publisher = tokio::spawn(async move {
        for (_, m) in over_mqtt {
            let topic = format!("dt/canopy/{}/bms", m["vehicle_id"].as_str().unwrap());
            client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, m.to_string())
                .await
                .unwrap();
        }
        client
    });
    post_all(&stack, &keys, &over_http, invalid_http).await;
    let client = publisher.await.unwrap();
    wait_acked(&acked, published, Duration::from_secs(60)).await;
    wait_idle(&stack, Duration::from_secs(120)).await.unwrap();
    client.disconnect().await.ok();

    check_archived_exactly_once(&stack, &vehicles, &expected).await;
    // Posted again after the fact, everything is a duplicate and nothing is queued.
    let again: Vec<Value> = (0..10).map(|seq| message(vehicles[0], seq, start_s)).collect();
    let (status, answer) = post(&stack, Some(&keys[0]), Value::Array(again).to_string()).await;
    assert_eq!((status, answer["duplicates"].as_u64()), (202, Some(10)), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_bound_to_their_device_revocable_and_rate_limited() {
    let stack = local::own_stack().await;
    let start_s = chrono::Utc::now().timestamp() - 60;
    let (_, own) = key(&stack, "veh-k1", 6_000).await;
    let one = |seq| message("veh-k1", seq, start_s).to_string();

    let (status, answer) = post(&stack, None, one(1)).await;
    assert_eq!(
        (status, answer["error"]["status"].as_u64()),
        (401, Some(401)),
        "{answer}"
    );
    let stranger = issue(DeviceId::new("veh-k1").unwrap(), 10, "", 0).unwrap().plaintext;
    assert_eq!(post(&stack, Some(&stranger), one(1)).await.0, 403);
    let foreign = message("veh-k2", 1, start_s).to_string();
    let (status, answer) = post(&stack, Some(&own), foreign).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = post(&stack, Some(&own), "{not json".into()).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (400, Some("body")));

    let (revoked, revoked_text) = key(&stack, "veh-k1", 10).await;
    DynamoKeyStore::new(dynamodb::client(&stack.sdk), KEYS_TABLE)
        .revoke(&revoked.key_id, 1)
        .await
        .unwrap();
    assert_eq!(post(&stack, Some(&revoked_text), one(2)).await.0, 403);

    let (_, slow) = key(&stack, "veh-k1", 2).await;
    let mut statuses = Vec::new();
    for seq in 10..14 {
        statuses.push(post(&stack, Some(&slow), one(seq)).await.0);
    }
    // Four requests at a rate of two a minute: two refused, unless a minute turned between them.
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| [202, 429].contains(s)), "{statuses:?}");

    wait_idle(&stack, Duration::from_secs(60)).await.unwrap();
    let store = S3Store::new(&stack.sdk, &stack.bucket);
    let rows = archive_rows(&store, "telemetry/").await;
    assert!(rows.iter().all(|(v, _)| v == "veh-k1"), "veh-k2 got nothing: {rows:?}");
    let admitted = statuses.iter().filter(|s| **s == 202).count();
    assert_eq!(rows.len(), admitted, "only the admitted requests' messages: {rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_device_keys_command_makes_lists_and_revokes_keys() {
    let stack = local::own_stack().await;
    let run = |args: &[&str]| {
        let out = Command::new(local::binary("device-keys"))
            .args(["--endpoint", &stack.endpoint, "--table", KEYS_TABLE])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let made: Value = serde_json::from_str(&run(&[
        "create", "--device", "veh-c1", "--rate", "30", "--label", "rig",
    ]))
    .unwrap();
    let plaintext = made["key"].as_str().unwrap().to_string();
    let key_id = made["record"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(made["record"]["rate_per_minute"], 30);
    let message = message("veh-c1", 1, chrono::Utc::now().timestamp() - 10).to_string();
    assert_eq!(post(&stack, Some(&plaintext), message.clone()).await.0, 202);

    let second: Value = serde_json::from_str(&run(&["create", "--device", "veh-c1"])).unwrap();
    let listed = run(&["list", "--device", "veh-c1"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains(&key_id) && !listed.contains(&plaintext[17..]),
        "ids, never secrets: {listed}"
    );

    let second_id = second["record"]["key_id"].as_str().unwrap();
    run(&["revoke", second_id]);
    assert_eq!(
        post(&stack, Some(second["key"].as_str().unwrap()), message).await.0,
        403
    );
    let listed: Vec<Value> = run(&["list"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let revoked = listed.iter().find(|k| k["key_id"] == second_id).unwrap();
    assert!(revoked["revoked_at_ms"].is_i64(), "{revoked}");
    let failed = Command::new(local::binary("device-keys"))
        .args([
            "--endpoint",
            &stack.endpoint,
            "--table",
            KEYS_TABLE,
            "revoke",
            "000000000000",
        ])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("no key \"000000000000\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_basic_ingest_message_reaches_the_rule_it_names_and_no_other() {
    let stack = local::own_stack().await;
    let alerts = SnsCapture::subscribe_on(&stack.sdk, &topic_arn("AlertTopic")).await;
    let subscriber = TelemetrySubscriber::start(stack.mqtt.port());
    subscriber.wait_subscribed(1);
    let start_s = chrono::Utc::now().timestamp() - 60;
    let hot = |vehicle: &str| {
        let mut m = message(vehicle, 1, start_s);
        m["cell_temp_max_c"] = json!(75.0);
        m
    };
    let rule = |name: &str, vehicle: &str| {
        let name = &stack.template.outputs[name];
        canopy::domain::topic::basic_ingest_topic(name, &DeviceId::new(vehicle).unwrap())
    };
    let sent = [
        (rule("TelemetryRuleName", "veh-b1"), hot("veh-b1")),
        (rule("AlertsRuleName", "veh-b2"), hot("veh-b2")),
        ("$aws/rules/NoSuchRule/dt/canopy/veh-b3/bms".to_string(), hot("veh-b3")),
        // Through the broker: both rules, as before.
        ("dt/canopy/veh-b4/bms".to_string(), hot("veh-b4")),
    ];
    let (client, acked) = mqtt(&stack);
    for (topic, m) in &sent {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, m.to_string())
            .await
            .unwrap();
    }
    wait_acked(&acked, sent.len(), Duration::from_secs(30)).await;
    wait_idle(&stack, Duration::from_secs(60)).await.unwrap();
    client.disconnect().await.ok();

    let rows = archive_rows(&S3Store::new(&stack.sdk, &stack.bucket), "telemetry/").await;
    let archived: BTreeSet<&str> = rows.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(archived, BTreeSet::from(["veh-b1", "veh-b4"]), "the telemetry rule's");
    let mut alerted: Vec<String> = alerts
        .received()
        .await
        .into_iter()
        .filter_map(|(_, m)| {
            ["veh-b1", "veh-b2", "veh-b3", "veh-b4"]
                .into_iter()
                .find(|v| m.contains(v))
        })
        .map(str::to_string)
        .collect();
    alerted.sort();
    assert_eq!(alerted, ["veh-b2", "veh-b4"], "the alerts rule's");
    let seen: Vec<String> = subscriber
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.vehicle_id.to_string())
        .collect();
    assert_eq!(seen, ["veh-b4"], "subscribers see only what went through the broker");
}

/// The alert log of `vehicle` once it holds at least one alert.
async fn first_alerts(stack: &Stack, vehicle: &str) -> Vec<canopy::domain::alert::Alert> {
    let waited = std::time::Instant::now();
    loop {
        let alerts = canopy_local::stack::alerts_of(stack, vehicle).await.unwrap();
        if !alerts.is_empty() {
            return alerts;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "no alert of {vehicle} in the log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the IoT rules have selected `matches` messages in all.
async fn rules_matched(stack: &Stack, matches: u64) {
    let waited = std::time::Instant::now();
    while stack.counters.rule_matches.load(Ordering::SeqCst) < matches {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the rules selected fewer than {matches}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_message_alerts_over_http_as_over_mqtt_once_per_cooldown_across_both() {
    let stack = local::own_stack_with_visibility(30).await;
    let sns = SnsCapture::subscribe_on(&stack.sdk, &topic_arn("AlertTopic")).await;
    let start_s = chrono::Utc::now().timestamp() - 60;
    let hot = |vehicle: &str, seq: u64| {
        let mut m = message(vehicle, seq, start_s);
        m["cell_temp_max_c"] = json!(78.0);
        m
    };

    // Over HTTP alone: the alert MQTT would have raised.
    let (_, over_http) = key(&stack, "veh-a1", 6_000).await;
    let (status, answer) = post(&stack, Some(&over_http), hot("veh-a1", 1).to_string()).await;
    assert_eq!(status, 202, "{answer}");
    let alerts = first_alerts(&stack, "veh-a1").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].rule.as_str(), alerts[0].value), ("over-temperature", 78.0));

    // Over MQTT, then over HTTP within the cooldown: one alert for both.
    let (client, _) = mqtt(&stack);
    client
        .publish(
            "dt/canopy/veh-a2/bms",
            rumqttc::QoS::AtLeastOnce,
            false,
            hot("veh-a2", 1).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(first_alerts(&stack, "veh-a2").await.len(), 1);
    let (_, both) = key(&stack, "veh-a2", 6_000).await;
    let matched = stack.counters.rule_matches.load(Ordering::SeqCst);
    let (status, answer) = post(&stack, Some(&both), hot("veh-a2", 2).to_string()).await;
    assert_eq!(status, 202, "{answer}");
    // The telemetry rule is not asked (HTTP goes to the queue itself); the alerts rule is.
    rules_matched(&stack, matched + 1).await;
    client.disconnect().await.ok();
    wait_idle(&stack, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        canopy_local::stack::alerts_of(&stack, "veh-a2").await.unwrap().len(),
        1,
        "the cooldown holds across both ways in"
    );

    let mut told: Vec<String> = sns
        .received()
        .await
        .into_iter()
        .filter_map(|(_, m)| ["veh-a1", "veh-a2"].into_iter().find(|v| m.contains(v)))
        .map(str::to_string)
        .collect();
    told.sort();
    assert_eq!(told, ["veh-a1", "veh-a2"], "one notification each");
}
