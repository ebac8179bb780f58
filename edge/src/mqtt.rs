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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use canopy::format::telemetry::{Message, Telemetry};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::agent_counters::AgentCounters;
use crate::aggregator::Sample;
use crate::config::MqttConfig;

/// Requests the client library holds between us and the socket.
const CLIENT_CHANNEL: usize = 64;

struct Queued {
    /// The message's first sample's.
    seq: u64,
    samples: u64,
    payload: Vec<u8>,
    sent: bool,
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
}

impl Gathered {
    /// The message of what is gathered, emptying it: `(first seq, samples, payload)`.
    fn take(&mut self, batching: &Batching) -> Option<(u64, u64, Vec<u8>)> {
        self.since = None;
        let first = self.samples.first()?.seq;
        let payload = if batching.samples_per_message == 1 && self.samples.len() == 1 {
            self.samples[0].to_json()
        } else {
            Message::to_json(&self.samples)
        };
        let n = self.samples.len() as u64;
        self.samples.clear();
        Some((first, n, payload.to_string().into_bytes()))
    }
}

/// The unacknowledged messages, oldest first.
struct Queue {
    messages: VecDeque<Queued>,
    capacity: usize,
    /// Sequence numbers handed to the client, in order, waiting for their packet id.
    awaiting_id: VecDeque<u64>,
    by_packet: HashMap<u16, u64>,
}

impl Queue {
    fn new(capacity: usize) -> Self {
        Self {
            messages: VecDeque::new(),
            capacity,
            awaiting_id: VecDeque::new(),
            by_packet: HashMap::new(),
        }
    }

    /// Adds a message; returns how many samples of old ones were dropped to make room.
    fn push(&mut self, seq: u64, samples: u64, payload: Vec<u8>) -> u64 {
        let mut dropped = 0;
        while self.messages.len() >= self.capacity {
            dropped += self.messages.pop_front().map_or(0, |m| m.samples);
        }
        self.messages.push_back(Queued {
            seq,
            samples,
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

    /// The samples of the message the broker acknowledged, the first time it does.
    fn acknowledged(&mut self, packet: u16) -> Option<u64> {
        let seq = self.by_packet.remove(&packet)?;
        let i = self.messages.iter().position(|m| m.seq == seq)?;
        self.messages.remove(i).map(|m| m.samples)
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

/// Publishes the samples that arrive on `samples` to `topic`, gathered into
/// messages, until the channel closes and the queue is acknowledged (or
/// `stop` says so).
pub async fn run(
    config: MqttConfig,
    client_id: String,
    topic: String,
    mut samples: mpsc::Receiver<Sample>,
    batching: Batching,
    counters: Arc<AgentCounters>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let (client, mut events) = AsyncClient::new(options(&config, &client_id)?, CLIENT_CHANNEL);
    let capacity = batching.capacity;
    let mut queue = Queue::new(capacity);
    let mut gathered = Gathered {
        samples: Vec::with_capacity(batching.samples_per_message),
        since: None,
    };
    let enqueue = |queue: &mut Queue, gathered: &mut Gathered| {
        if let Some((seq, n, payload)) = gathered.take(&batching) {
            let dropped = queue.push(seq, n, payload);
            if dropped > 0 {
                AgentCounters::add(&counters.telemetry_dropped, dropped);
                warn!(dropped, capacity, "telemetry queue full: the oldest samples dropped");
            }
        }
    };
    let mut connected = false;
    let mut input_open = true;
    let mut backoff = Duration::from_millis(250);
    loop {
        if connected {
            for m in queue.messages.iter_mut().filter(|m| !m.sent) {
                match client.try_publish(&topic, QoS::AtLeastOnce, false, m.payload.clone()) {
                    Ok(()) => {
                        m.sent = true;
                        queue.awaiting_id.push_back(m.seq);
                    }
                    Err(_) => break, // the client's channel is full: later
                }
            }
        }
        if !input_open && queue.messages.is_empty() && gathered.samples.is_empty() {
            let _ = client.try_disconnect();
            return Ok(());
        }
        let due = gathered.since.map(|at| at + batching.publish_interval);
        tokio::select! {
            sample = samples.recv(), if input_open => match sample {
                Some(sample) => {
                    if let Some(rule) = &sample.tripped {
                        info!(rule = %rule, seq = sample.telemetry.seq, "alert rule tripped on the edge: sending now");
                    }
                    let urgent = sample.tripped.is_some();
                    gathered.since.get_or_insert_with(tokio::time::Instant::now);
                    gathered.samples.push(sample.telemetry);
                    if urgent || gathered.samples.len() >= batching.samples_per_message {
                        enqueue(&mut queue, &mut gathered);
                    }
                }
                None => {
                    input_open = false;
                    enqueue(&mut queue, &mut gathered);
                }
            },
            () = sleep_until(due), if due.is_some() => enqueue(&mut queue, &mut gathered),
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    info!(host = %config.host, port = config.port, unacknowledged = queue.messages.len(), "connected to the MQTT broker");
                    connected = true;
                    backoff = Duration::from_millis(250);
                    queue.reset();
                }
                Ok(Event::Outgoing(Outgoing::Publish(packet))) => {
                    if let Some(seq) = queue.awaiting_id.pop_front() {
                        queue.by_packet.insert(packet, seq);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(n) = queue.acknowledged(ack.pkid) {
                        AgentCounters::add(&counters.telemetry_published, n);
                        AgentCounters::add(&counters.messages_published, 1);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if connected {
                        warn!(error = %e, unacknowledged = queue.messages.len(), "MQTT connection lost; messages wait");
                    }
                    connected = false;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            },
            _ = stop.changed() => {
                if *stop.borrow() {
                    if !queue.messages.is_empty() || !gathered.samples.is_empty() {
                        warn!(
                            unacknowledged = queue.messages.len(),
                            samples_not_sent = gathered.samples.len(),
                            "stopping with telemetry not acknowledged"
                        );
                    }
                    return Ok(());
                }
            }
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

    fn sample(seq: u64) -> Telemetry {
        let ts = chrono::DateTime::from_timestamp(1_700_000_000 + seq as i64, 0).unwrap();
        let vehicle = canopy::domain::vehicle::VehicleId::new("v1").unwrap();
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
        };
        let (seq, n, payload) = g.take(&v2).unwrap();
        assert_eq!((seq, n), (1, 3));
        let read = Message::parse(std::str::from_utf8(&payload).unwrap()).unwrap();
        assert_eq!(read.samples, (1..=3).map(sample).collect::<Vec<_>>());
        assert!(g.samples.is_empty() && g.since.is_none());
        assert!(g.take(&v2).is_none(), "nothing gathered, nothing sent");
        let v1 = Batching {
            samples_per_message: 1,
            ..v2
        };
        g.samples.push(sample(9));
        let (_, _, payload) = g.take(&v1).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(Telemetry::from_json(&json).unwrap(), sample(9));
    }

    #[test]
    fn the_queue_drops_the_oldest_and_resends_everything_after_a_reconnect() {
        let mut q = Queue::new(3);
        for seq in 1..=4 {
            let dropped = q.push(seq, 5, vec![]);
            assert_eq!(dropped, if seq == 4 { 5 } else { 0 }, "the dropped message's samples");
        }
        assert_eq!(q.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3, 4]);
        for m in &mut q.messages {
            m.sent = true;
            q.awaiting_id.push_back(m.seq);
        }
        for packet in 1..=3 {
            let seq = q.awaiting_id.pop_front().unwrap();
            q.by_packet.insert(packet, seq);
        }
        assert_eq!(q.acknowledged(1), Some(5));
        assert_eq!(q.acknowledged(1), None, "an ack counts once");
        q.reset();
        assert!(q.messages.iter().all(|m| !m.sent));
        assert_eq!(q.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(
            q.acknowledged(2),
            None,
            "packet ids from before the reconnect mean nothing"
        );
    }
}
