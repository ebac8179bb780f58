//! Publishing telemetry to AWS IoT Core (or any MQTT broker): QoS 1, X.509
//! client authentication over TLS, in order, and never silently lost.
//!
//! Samples are gathered into one message per publish interval (telemetry
//! v2; or each alone as v1 when the two intervals are equal), and a sample
//! that tripped an alert rule on the edge sends what is gathered at once.
//! A message is built once and kept as bytes, so a resend is the same
//! message: the cloud's ledger, keyed by a message's first seq, drops it.
//!
//! Messages wait in a bounded queue until the broker acknowledges them
//! (PUBACK). A broker that restarts forgets unacknowledged messages, and so
//! does the client library on a clean session, so after every (re)connect the
//! queue is sent again from its oldest unacknowledged message. That can
//! repeat a message the broker had received; `seq` lets the cloud drop it.
//! When the queue is full the oldest message goes, counted.
//!
//! With Basic Ingest a message goes to the stack's telemetry rule, and the
//! ones the cloud must judge for alerts also to its alerts rule: IoT Core
//! runs only the rule a Basic Ingest topic names.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use canopy::domain::device_id::DeviceId;
use canopy::domain::telemetry::Telemetry;
use canopy::domain::topic::{basic_ingest_topic, topic};
use canopy::format::telemetry::Message;
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::agent_counters::AgentCounters;
use crate::aggregator::Sample;
use crate::config::{BasicIngestConfig, MqttConfig};

/// Requests the client library holds between us and the socket.
const CLIENT_CHANNEL: usize = 64;

struct Queued {
    /// Unique in the queue (a message may wait for two topics).
    id: u64,
    samples: u64,
    to: Destination,
    payload: Vec<u8>,
    sent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    /// What is archived: the samples count as published when acknowledged here.
    Telemetry,
    /// The alerts rule's own copy (Basic Ingest only).
    Alerts,
}

/// Where messages go.
#[derive(Debug, Clone, PartialEq)]
pub struct Topics {
    /// Every message: the vehicle's telemetry topic, or the telemetry rule's Basic Ingest topic.
    pub telemetry: String,
    /// The alerts rule's Basic Ingest topic, for the messages the cloud must judge.
    pub alerts: Option<String>,
    /// Every message goes there too (the edge decides no alerts itself), not just tripping ones.
    pub alerts_every_message: bool,
}

impl Topics {
    pub fn new(vehicle: &DeviceId, basic_ingest: Option<&BasicIngestConfig>, edge_decides_alerts: bool) -> Self {
        match basic_ingest {
            None => Self {
                telemetry: topic(vehicle),
                alerts: None,
                alerts_every_message: false,
            },
            Some(b) => Self {
                telemetry: basic_ingest_topic(&b.telemetry_rule, vehicle),
                alerts: Some(basic_ingest_topic(&b.alerts_rule, vehicle)),
                alerts_every_message: !edge_decides_alerts,
            },
        }
    }

    fn of(&self, to: Destination) -> &str {
        match (to, &self.alerts) {
            (Destination::Alerts, Some(alerts)) => alerts,
            _ => &self.telemetry,
        }
    }
}

/// How samples become messages.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// 1: each sample alone, as a v1 message; more: v2 messages of up to this many.
    pub samples_per_message: usize,
    /// The longest a sample waits for the others of its message.
    pub publish_interval: Duration,
    /// Messages held while the broker is unreachable.
    pub capacity: usize,
}

/// The samples gathered for the next message.
struct Gathered {
    samples: Vec<Telemetry>,
    /// When the first of them came (a message goes out a publish interval later at the latest).
    since: Option<tokio::time::Instant>,
    /// One of them tripped an alert rule on the edge.
    tripped: bool,
}

/// A message built from gathered samples.
struct Built {
    samples: u64,
    payload: Vec<u8>,
    tripped: bool,
}

impl Gathered {
    fn new(batching: &Batching) -> Self {
        Self {
            samples: Vec::with_capacity(batching.samples_per_message),
            since: None,
            tripped: false,
        }
    }

    /// The message of what is gathered, emptying it.
    fn take(&mut self, batching: &Batching) -> Option<Built> {
        self.since = None;
        let tripped = std::mem::take(&mut self.tripped);
        if self.samples.is_empty() {
            return None;
        }
        let payload = if batching.samples_per_message == 1 && self.samples.len() == 1 {
            self.samples[0].to_json()
        } else {
            Message::to_json(&self.samples)
        };
        let n = self.samples.len() as u64;
        self.samples.clear();
        Some(Built {
            samples: n,
            payload: payload.to_string().into_bytes(),
            tripped,
        })
    }
}

/// The unacknowledged messages, oldest first.
struct Queue {
    messages: VecDeque<Queued>,
    capacity: usize,
    next_id: u64,
    /// Messages handed to the client, in order, waiting for their packet id.
    awaiting_id: VecDeque<u64>,
    by_packet: HashMap<u16, u64>,
}

impl Queue {
    fn new(capacity: usize) -> Self {
        Self {
            messages: VecDeque::new(),
            capacity,
            next_id: 0,
            awaiting_id: VecDeque::new(),
            by_packet: HashMap::new(),
        }
    }

    /// Adds a message for `to`; returns how many samples of old telemetry
    /// messages were dropped to make room.
    fn push(&mut self, samples: u64, to: Destination, payload: Vec<u8>) -> u64 {
        let mut dropped = 0;
        while self.messages.len() >= self.capacity {
            dropped += self
                .messages
                .pop_front()
                .filter(|m| m.to == Destination::Telemetry)
                .map_or(0, |m| m.samples);
        }
        self.next_id += 1;
        self.messages.push_back(Queued {
            id: self.next_id,
            samples,
            to,
            payload,
            sent: false,
        });
        dropped
    }

    /// After a (re)connect nothing is in flight: everything goes again, in order.
    fn reset(&mut self) {
        for m in &mut self.messages {
            m.sent = false;
        }
        self.awaiting_id.clear();
        self.by_packet.clear();
    }

    /// The message the broker acknowledged, the first time it does.
    fn acknowledged(&mut self, packet: u16) -> Option<Queued> {
        let id = self.by_packet.remove(&packet)?;
        let i = self.messages.iter().position(|m| m.id == id)?;
        self.messages.remove(i)
    }
}

pub fn options(config: &MqttConfig, client_id: &str) -> Result<MqttOptions> {
    let mut options = MqttOptions::new(client_id, &config.host, config.port);
    options.set_keep_alive(Duration::from_secs(config.keep_alive_s.max(5)));
    options.set_clean_session(true);
    options.set_inflight(32);
    if let Some(tls) = &config.tls {
        let read = |p: &std::path::Path, key: &str| {
            std::fs::read(p).with_context(|| format!("mqtt.tls.{key}: reading {}", p.display()))
        };
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
            ca: read(&tls.ca, "ca")?,
            alpn: None,
            client_auth: Some((read(&tls.cert, "cert")?, read(&tls.key, "key")?)),
        }));
    }
    Ok(options)
}

/// Publishes the samples that arrive on `samples` to `topics`, gathered into
/// messages, until the channel closes and the queue is acknowledged (or
/// `stop` says so).
pub async fn run(
    config: MqttConfig,
    client_id: String,
    topics: Topics,
    mut samples: mpsc::Receiver<Sample>,
    batching: Batching,
    counters: Arc<AgentCounters>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let (client, mut events) = AsyncClient::new(options(&config, &client_id)?, CLIENT_CHANNEL);
    let mut publisher = Publisher::new(client, &config, topics, batching, counters);
    let mut input_open = true;
    loop {
        publisher.send_unsent();
        if !input_open && publisher.is_done() {
            let _ = publisher.client.try_disconnect();
            return Ok(());
        }
        let due = publisher.gathered.since.map(|at| at + batching.publish_interval);
        tokio::select! {
            sample = samples.recv(), if input_open => match sample {
                Some(sample) => publisher.gather(sample),
                None => {
                    input_open = false;
                    publisher.enqueue();
                }
            },
            () = sleep_until(due), if due.is_some() => publisher.enqueue(),
            event = events.poll() => publisher.handle(event).await,
            _ = stop.changed() => {
                if *stop.borrow() {
                    publisher.warn_if_unsent();
                    return Ok(());
                }
            }
        }
    }
}

/// The publishing side of [`run`]: what is gathered, what waits for its
/// acknowledgement, and the connection's state.
struct Publisher<'c> {
    client: AsyncClient,
    config: &'c MqttConfig,
    topics: Topics,
    batching: Batching,
    counters: Arc<AgentCounters>,
    queue: Queue,
    gathered: Gathered,
    connected: bool,
    /// How long to wait before polling a lost connection again.
    backoff: Duration,
}

impl<'c> Publisher<'c> {
    fn new(
        client: AsyncClient,
        config: &'c MqttConfig,
        topics: Topics,
        batching: Batching,
        counters: Arc<AgentCounters>,
    ) -> Self {
        Self {
            client,
            config,
            topics,
            queue: Queue::new(batching.capacity),
            gathered: Gathered::new(&batching),
            batching,
            counters,
            connected: false,
            backoff: Duration::from_millis(250),
        }
    }

    /// Nothing gathered and nothing waiting for the broker.
    fn is_done(&self) -> bool {
        self.queue.messages.is_empty() && self.gathered.samples.is_empty()
    }

    /// Hands the client what it has not sent since the last (re)connect, in
    /// order, as far as its channel takes them.
    fn send_unsent(&mut self) {
        if !self.connected {
            return;
        }
        for m in self.queue.messages.iter_mut().filter(|m| !m.sent) {
            match (self.client).try_publish(self.topics.of(m.to), QoS::AtLeastOnce, false, m.payload.clone()) {
                Ok(()) => {
                    m.sent = true;
                    self.queue.awaiting_id.push_back(m.id);
                }
                Err(_) => break, // the client's channel is full: later
            }
        }
    }

    /// Gathers a sample; a full message, or one a tripped rule hurries, is queued.
    fn gather(&mut self, sample: Sample) {
        if let Some(rule) = &sample.tripped {
            info!(rule = %rule, seq = sample.telemetry.seq, "alert rule tripped on the edge: sending now");
        }
        let urgent = sample.tripped.is_some();
        self.gathered.tripped |= urgent;
        self.gathered.since.get_or_insert_with(tokio::time::Instant::now);
        self.gathered.samples.push(sample.telemetry);
        if urgent || self.gathered.samples.len() >= self.batching.samples_per_message {
            self.enqueue();
        }
    }

    /// Queues the message of what is gathered, if anything is, counting the
    /// samples a full queue drops.
    fn enqueue(&mut self) {
        let Some(m) = self.gathered.take(&self.batching) else {
            return;
        };
        let mut dropped = 0;
        // The alerts rule's copy first: it is the one in a hurry.
        if self.topics.alerts.is_some() && (m.tripped || self.topics.alerts_every_message) {
            dropped += self.queue.push(m.samples, Destination::Alerts, m.payload.clone());
        }
        dropped += self.queue.push(m.samples, Destination::Telemetry, m.payload);
        if dropped > 0 {
            AgentCounters::add(&self.counters.telemetry_dropped, dropped);
            let capacity = self.batching.capacity;
            warn!(dropped, capacity, "telemetry queue full: the oldest samples dropped");
        }
    }

    /// Follows the connection: a (re)connect sends the queue again, a sent
    /// packet is matched to its message, an acknowledgement counts it, and a
    /// lost connection waits (longer each time) before it is polled again.
    async fn handle(&mut self, event: Result<Event, ConnectionError>) {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let config = self.config;
                info!(host = %config.host, port = config.port, unacknowledged = self.queue.messages.len(), "connected to the MQTT broker");
                self.connected = true;
                self.backoff = Duration::from_millis(250);
                self.queue.reset();
            }
            Ok(Event::Outgoing(Outgoing::Publish(packet))) => {
                if let Some(id) = self.queue.awaiting_id.pop_front() {
                    self.queue.by_packet.insert(packet, id);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(m) = self.queue.acknowledged(ack.pkid) {
                    AgentCounters::add(&self.counters.messages_published, 1);
                    if m.to == Destination::Telemetry {
                        AgentCounters::add(&self.counters.telemetry_published, m.samples);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                if self.connected {
                    warn!(error = %e, unacknowledged = self.queue.messages.len(), "MQTT connection lost; messages wait");
                }
                self.connected = false;
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
            }
        }
    }

    /// Says what a stop leaves unsent, if anything.
    fn warn_if_unsent(&self) {
        if !self.is_done() {
            warn!(
                unacknowledged = self.queue.messages.len(),
                samples_not_sent = self.gathered.samples.len(),
                "stopping with telemetry not acknowledged"
            );
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS IoT Core takes MQTT only over TLS with a client certificate. The
    /// client is built with rustls' process default, which exists only while
    /// one crypto provider is compiled in (ring: a second, such as rumqttc's
    /// default aws-lc, leaves none and the connection panics).
    #[tokio::test]
    async fn connects_over_mutual_tls_as_aws_iot_requires() {
        use crate::iot_credentials::tests::{Pki, mutual_tls};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (servers, vehicles) = (Pki::new(), Pki::new());
        let acceptor = mutual_tls(&servers, &vehicles);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The broker's part: take the CONNECT, accept it (CONNACK, session absent, code 0).
        let broker = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor
                .accept(tcp)
                .await
                .expect("the client's certificate is accepted");
            let mut connect = [0u8; 2];
            tls.read_exact(&mut connect).await.unwrap();
            assert_eq!(connect[0], 0x10, "the first packet is CONNECT");
            let mut rest = vec![0u8; connect[1] as usize];
            tls.read_exact(&mut rest).await.unwrap();
            tls.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
            String::from_utf8_lossy(&rest).into_owned()
        });

        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = vehicles.issue("veh-001");
        std::fs::write(dir.path().join("ca.pem"), servers.ca_pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        let config = MqttConfig {
            host: "localhost".into(),
            port,
            client_id: None,
            keep_alive_s: 30,
            tls: Some(crate::config::TlsConfig {
                ca: dir.path().join("ca.pem"),
                cert: dir.path().join("cert.pem"),
                key: dir.path().join("key.pem"),
            }),
            basic_ingest: None,
        };
        let (_client, mut events) = AsyncClient::new(options(&config, "veh-001").unwrap(), 8);
        let connected = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Event::Incoming(Packet::ConnAck(ack)) = events.poll().await.expect("connects over TLS") {
                    return ack;
                }
            }
        })
        .await
        .expect("a CONNACK within 10 s");
        assert_eq!(connected.code, rumqttc::ConnectReturnCode::Success);
        assert!(
            broker.await.unwrap().contains("veh-001"),
            "the client id is the thing name"
        );
    }

    fn sample(seq: u64) -> Telemetry {
        let ts = chrono::DateTime::from_timestamp(1_700_000_000 + seq as i64, 0).unwrap();
        let vehicle = canopy::domain::device_id::DeviceId::new("v1").unwrap();
        Telemetry::from_measures(vehicle, ts, seq, [80.0, 380.0, 12.5, 3.9, 3.95, 25.0, 31.0, 50.0])
    }

    #[test]
    fn gathered_samples_go_as_one_v2_message_or_alone_as_v1() {
        let v2 = Batching {
            samples_per_message: 5,
            publish_interval: Duration::from_secs(5),
            capacity: 10,
        };
        let mut g = Gathered {
            samples: (1..=3).map(sample).collect(),
            since: Some(tokio::time::Instant::now()),
            tripped: true,
        };
        let m = g.take(&v2).unwrap();
        assert_eq!((m.samples, m.tripped), (3, true));
        let read = Message::parse(std::str::from_utf8(&m.payload).unwrap()).unwrap();
        assert_eq!(read.samples, (1..=3).map(sample).collect::<Vec<_>>());
        assert!(g.samples.is_empty() && g.since.is_none() && !g.tripped);
        assert!(g.take(&v2).is_none(), "nothing gathered, nothing sent");
        let v1 = Batching {
            samples_per_message: 1,
            ..v2
        };
        g.samples.push(sample(9));
        let m = g.take(&v1).unwrap();
        assert!(!m.tripped);
        let json: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(Telemetry::from_json(&json).unwrap(), sample(9));
    }

    #[test]
    fn the_queue_drops_the_oldest_and_resends_everything_after_a_reconnect() {
        let mut q = Queue::new(3);
        for seq in 1..=4 {
            let dropped = q.push(5, Destination::Telemetry, vec![seq]);
            assert_eq!(dropped, if seq == 4 { 5 } else { 0 }, "the dropped message's samples");
        }
        assert_eq!(q.messages.iter().map(|m| m.payload[0]).collect::<Vec<_>>(), [2, 3, 4]);
        for m in &mut q.messages {
            m.sent = true;
            q.awaiting_id.push_back(m.id);
        }
        for packet in 1..=3 {
            let id = q.awaiting_id.pop_front().unwrap();
            q.by_packet.insert(packet, id);
        }
        assert_eq!(q.acknowledged(1).map(|m| m.samples), Some(5));
        assert!(q.acknowledged(1).is_none(), "an ack counts once");
        q.reset();
        assert!(q.messages.iter().all(|m| !m.sent));
        assert_eq!(q.messages.iter().map(|m| m.payload[0]).collect::<Vec<_>>(), [3, 4]);
        assert!(
            q.acknowledged(2).is_none(),
            "packet ids from before the reconnect mean nothing"
        );
    }

    #[test]
    fn a_message_for_both_rules_is_acknowledged_per_topic_and_dropped_samples_count_once() {
        let mut q = Queue::new(2);
        q.push(5, Destination::Alerts, vec![]);
        q.push(5, Destination::Telemetry, vec![]);
        let (alerts, telemetry) = (q.messages[0].id, q.messages[1].id);
        q.by_packet.insert(1, telemetry);
        q.by_packet.insert(2, alerts);
        assert_eq!(q.acknowledged(1).map(|m| m.to), Some(Destination::Telemetry));
        assert_eq!(
            q.messages.iter().map(|m| m.to).collect::<Vec<_>>(),
            [Destination::Alerts]
        );
        q.push(5, Destination::Alerts, vec![]);
        assert_eq!(
            q.push(5, Destination::Telemetry, vec![]),
            0,
            "an alerts copy's samples are the telemetry copy's"
        );
        assert_eq!(q.push(5, Destination::Telemetry, vec![]), 0);
        assert_eq!(q.push(5, Destination::Telemetry, vec![]), 5);
    }

    #[test]
    fn basic_ingest_names_each_rule_and_sends_alerts_what_the_cloud_must_judge() {
        let vehicle = DeviceId::new("veh-001").unwrap();
        assert_eq!(
            Topics::new(&vehicle, None, true),
            Topics {
                telemetry: "dt/canopy/veh-001/bms".into(),
                alerts: None,
                alerts_every_message: false,
            }
        );
        let rules = BasicIngestConfig {
            telemetry_rule: "TelemetryRule_1".into(),
            alerts_rule: "AlertsRule_2".into(),
        };
        let t = Topics::new(&vehicle, Some(&rules), true);
        assert_eq!(
            t.of(Destination::Telemetry),
            "$aws/rules/TelemetryRule_1/dt/canopy/veh-001/bms"
        );
        assert_eq!(
            t.of(Destination::Alerts),
            "$aws/rules/AlertsRule_2/dt/canopy/veh-001/bms"
        );
        assert!(!t.alerts_every_message);
        assert!(Topics::new(&vehicle, Some(&rules), false).alerts_every_message);
    }
}
