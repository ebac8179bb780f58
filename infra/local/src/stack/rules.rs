//! The IoT topic rules on the MQTT stream: each message matched against the
//! template's rule SQL and sent to the rule's actions (a queue, a function,
//! the error action when an action fails).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tracing::warn;

use super::counters::{StackCounters, iot_units};
use super::functions::{LocalFunction, invoke_async};
use crate::basic_ingest::LOCAL_PREFIX;
use crate::template::{RuleTarget, Template, queue_url};
use canopy_rules::TopicRule;

/// IoT Core's rules engine: every message on the broker through every
/// rule, and a Basic Ingest message through the rule it names alone. A
/// rule's name here is its logical id (in AWS, `Ref` gives a generated one).
/// `subscribed` is told once the broker acknowledged every subscription.
pub(super) fn run_rules(
    template: Template,
    mqtt: SocketAddr,
    sqs: aws_sdk_sqs::Client,
    functions: BTreeMap<String, Arc<LocalFunction>>,
    counters: Arc<StackCounters>,
    subscribed: tokio::sync::oneshot::Sender<()>,
) -> Result<impl Future<Output = ()>> {
    let rules = parse_rules(&template)?;
    let mut options = MqttOptions::new("canopy-local-rules", mqtt.ip().to_string(), mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(options, 1024);
    let filters: Vec<String> = rules
        .iter()
        .flat_map(|r| [r.sql.topic_filter.clone(), format!("{LOCAL_PREFIX}{}/#", r.name)])
        .collect();
    let actions = RuleActions {
        sqs,
        functions,
        counters: counters.clone(),
    };
    Ok(async move {
        let mut subscribed = Some(subscribed);
        let mut acknowledged = 0;
        loop {
            match events.poll().await {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    acknowledged = 0;
                    for filter in &filters {
                        if let Err(e) = client.subscribe(filter, QoS::AtLeastOnce).await {
                            warn!(%filter, error = %e, "subscribe failed");
                        }
                    }
                }
                Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                    acknowledged += 1;
                    if acknowledged == filters.len()
                        && let Some(subscribed) = subscribed.take()
                    {
                        let _ = subscribed.send(());
                    }
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    counters.mqtt_messages.fetch_add(1, Ordering::Relaxed);
                    let units = iot_units(p.payload.len());
                    let routed = route(&rules, &p.topic, &p.payload, chrono::Utc::now().timestamp_millis());
                    if routed.basic_ingest {
                        counters.basic_ingest_messages.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counters.broker_units.fetch_add(units, Ordering::Relaxed);
                    }
                    counters
                        .rules_triggered_units
                        .fetch_add(units * routed.triggered, Ordering::Relaxed);
                    for (rule, message) in routed.selected {
                        counters.rule_matches.fetch_add(1, Ordering::Relaxed);
                        counters
                            .rule_action_units
                            .fetch_add(units * rule.targets.len() as u64, Ordering::Relaxed);
                        actions.run(rule, routed.topic, &p.payload, &message).await;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "rules engine lost the broker; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
}

/// Where a published message goes.
pub(super) struct Routed<'r, 't> {
    /// The topic the rules see: a Basic Ingest message's without its prefix.
    pub(super) topic: &'t str,
    /// Whether it came by Basic Ingest (no broker messaging is billed).
    pub(super) basic_ingest: bool,
    /// How many rules' topic filters it matched (IoT bills each as triggered).
    pub(super) triggered: u64,
    /// The rules whose SQL selected it, each with what it selected.
    pub(super) selected: Vec<(&'r Rule, Value)>,
}

/// The rules a message published on `published` reaches: a Basic Ingest
/// topic reaches the rule it names alone, any other topic every rule whose
/// SQL selects it.
pub(super) fn route<'r, 't>(rules: &'r [Rule], published: &'t str, payload: &[u8], now_ms: i64) -> Routed<'r, 't> {
    let (only, topic) = match crate::basic_ingest::split(published) {
        Some((rule, topic)) => (Some(rule), topic),
        None => (None, published),
    };
    let mut routed = Routed {
        topic,
        basic_ingest: only.is_some(),
        triggered: 0,
        selected: Vec::new(),
    };
    for rule in rules.iter().filter(|r| only.is_none_or(|o| o == r.name)) {
        if canopy_rules::topic_matches(&rule.sql.topic_filter, topic) {
            routed.triggered += 1;
        }
        if let Some(message) = rule.sql.apply(topic, payload, now_ms) {
            routed.selected.push((rule, message));
        }
    }
    routed
}

/// The template's topic rules, their SQL parsed.
pub(super) fn parse_rules(template: &Template) -> Result<Vec<Rule>> {
    template
        .rules
        .iter()
        .map(|r| {
            TopicRule::parse(&r.sql)
                .map(|sql| Rule {
                    name: r.logical_id.clone(),
                    sql,
                    targets: r.targets.clone(),
                    error_queue: r.error_queue.clone(),
                })
                .with_context(|| format!("topic rule {}", r.logical_id))
        })
        .collect()
}

/// A topic rule of the template, its SQL parsed.
pub(super) struct Rule {
    pub(super) name: String,
    pub(super) sql: TopicRule,
    pub(super) targets: Vec<RuleTarget>,
    pub(super) error_queue: Option<String>,
}

/// What a rule's actions reach.
pub(super) struct RuleActions {
    pub(super) sqs: aws_sdk_sqs::Client,
    pub(super) functions: BTreeMap<String, Arc<LocalFunction>>,
    pub(super) counters: Arc<StackCounters>,
}

impl RuleActions {
    /// Runs each of `rule`'s actions on the message it selected. A Lambda
    /// action is an asynchronous invocation (Lambda retries it); an SQS
    /// action that fails sends IoT's error message to the rule's error action.
    pub(super) async fn run(&self, rule: &Rule, topic: &str, payload: &[u8], message: &Value) {
        for target in &rule.targets {
            match target {
                RuleTarget::Queue(queue) => {
                    let sent = self
                        .sqs
                        .send_message()
                        .queue_url(queue_url(queue))
                        .message_body(message.to_string())
                        .send()
                        .await;
                    if let Err(e) = sent {
                        let error = canopy::adapters::aws::error_text(&e);
                        warn!(rule = %rule.name, %queue, %error, "rule action failed");
                        self.error_action(rule, topic, payload, &format!("SqsAction {queue}"), &error)
                            .await;
                    }
                }
                RuleTarget::Function(id) => match self.functions.get(id) {
                    Some(function) => invoke_async(
                        function.clone(),
                        message.clone(),
                        self.sqs.clone(),
                        self.counters.clone(),
                    ),
                    None => warn!(function = %id, "rule targets a function without a local handler"),
                },
            }
        }
    }

    /// The rule's error action: IoT's error message, the original payload in base64.
    pub(super) async fn error_action(&self, rule: &Rule, topic: &str, payload: &[u8], action: &str, error: &str) {
        use base64::Engine as _;
        let Some(queue) = &rule.error_queue else {
            tracing::error!(rule = %rule.name, "an action failed and the rule has no error action; the message is lost");
            return;
        };
        let body = json!({
            "ruleName": rule.name,
            "topic": topic,
            "clientId": "",
            "base64OriginalPayload": base64::engine::general_purpose::STANDARD.encode(payload),
            "failures": [{"failedAction": action, "failedResource": action, "errorMessage": error}],
        });
        let sent = self
            .sqs
            .send_message()
            .queue_url(queue_url(queue))
            .message_body(body.to_string())
            .send()
            .await;
        if let Err(e) = sent {
            tracing::error!(rule = %rule.name, %queue, error = %canopy::adapters::aws::error_text(&e), "the error action failed too; the message is lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");

    fn rules() -> Vec<Rule> {
        parse_rules(&Template::load(std::path::Path::new(TEMPLATE)).unwrap()).unwrap()
    }

    fn names(routed: &Routed) -> Vec<String> {
        routed.selected.iter().map(|(r, _)| r.name.clone()).collect()
    }

    fn telemetry(temp_c: f64) -> Vec<u8> {
        json!({"v": 1, "vehicle_id": "veh-001", "ts": "2026-12-07T00:00:00.000Z", "seq": 1,
               "soc_pct": 80.0, "pack_voltage_v": 380.0, "pack_current_a": 10.0,
               "cell_voltage_min_v": 3.9, "cell_voltage_max_v": 3.95,
               "cell_temp_min_c": 25.0, "cell_temp_max_c": temp_c, "speed_kph": 50.0})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_vehicles_message_reaches_telemetry_and_alerts_only_when_hot() {
        let rules = rules();
        let cool = route(&rules, "dt/canopy/veh-001/bms", &telemetry(30.0), 0);
        assert_eq!(names(&cool), ["TelemetryTopicRule"]);
        assert!(!cool.basic_ingest);
        let hot = route(&rules, "dt/canopy/veh-001/bms", &telemetry(75.0), 0);
        assert_eq!(names(&hot), ["TelemetryTopicRule", "AlertsTopicRule"]);
        assert_eq!(
            hot.selected[0].1["topic_vehicle_id"], "veh-001",
            "the rule adds the topic's vehicle"
        );
    }

    #[test]
    fn a_basic_ingest_message_reaches_the_rule_it_names_alone() {
        let rules = rules();
        let routed = route(
            &rules,
            "_aws/rules/AlertsTopicRule/dt/canopy/veh-001/bms",
            &telemetry(75.0),
            0,
        );
        assert!(routed.basic_ingest);
        assert_eq!(routed.topic, "dt/canopy/veh-001/bms");
        assert_eq!(names(&routed), ["AlertsTopicRule"]);
        assert_eq!(routed.triggered, 1);
    }

    #[test]
    fn a_payload_that_brings_a_server_field_or_another_topic_reaches_nothing() {
        let rules = rules();
        let mut forged: Value = serde_json::from_slice(&telemetry(75.0)).unwrap();
        forged["topic_vehicle_id"] = json!("veh-002");
        let forged = serde_json::to_vec(&forged).unwrap();
        assert!(route(&rules, "dt/canopy/veh-001/bms", &forged, 0).selected.is_empty());
        assert!(
            route(&rules, "cmd/canopy/veh-001/alert", &telemetry(75.0), 0)
                .selected
                .is_empty()
        );
    }
}
