//! Publishing telemetry to AWS IoT Core (or any MQTT broker): QoS 1, X.509
//! client authentication over TLS, in order, and never silently lost.
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
use canopy::format::telemetry::Telemetry;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::agent_counters::AgentCounters;
use crate::config::MqttConfig;

/// Requests the client library holds between us and the socket.
const CLIENT_CHANNEL: usize = 64;

struct Queued {
    seq: u64,
    payload: Vec<u8>,
    sent: bool,
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

    /// Adds a message; returns how many old ones were dropped to make room.
    fn push(&mut self, seq: u64, payload: Vec<u8>) -> u64 {
        let mut dropped = 0;
        while self.messages.len() >= self.capacity {
            self.messages.pop_front();
            dropped += 1;
        }
        self.messages.push_back(Queued {
            seq,
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

    fn acknowledged(&mut self, packet: u16) -> bool {
        let Some(seq) = self.by_packet.remove(&packet) else {
            return false;
        };
        match self.messages.iter().position(|m| m.seq == seq) {
            Some(i) => {
                self.messages.remove(i);
                true
            }
            None => false,
        }
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

/// Publishes what arrives on `messages` to `topic` until the channel closes
/// and the queue is acknowledged (or `stop` says so).
pub async fn run(
    config: MqttConfig,
    client_id: String,
    topic: String,
    mut messages: mpsc::Receiver<Telemetry>,
    capacity: usize,
    counters: Arc<AgentCounters>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let (client, mut events) = AsyncClient::new(options(&config, &client_id)?, CLIENT_CHANNEL);
    let mut queue = Queue::new(capacity);
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
        if !input_open && queue.messages.is_empty() {
            let _ = client.try_disconnect();
            return Ok(());
        }
        tokio::select! {
            message = messages.recv(), if input_open => match message {
                Some(t) => {
                    let payload = t.to_json().to_string().into_bytes();
                    let dropped = queue.push(t.seq, payload);
                    if dropped > 0 {
                        AgentCounters::add(&counters.telemetry_dropped, dropped);
                        warn!(dropped, capacity, "telemetry queue full: oldest messages dropped");
                    }
                }
                None => input_open = false,
            },
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
                    if queue.acknowledged(ack.pkid) {
                        AgentCounters::add(&counters.telemetry_published, 1);
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
                    if !queue.messages.is_empty() {
                        warn!(unacknowledged = queue.messages.len(), "stopping with telemetry not acknowledged");
                    }
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_drops_the_oldest_and_resends_everything_after_a_reconnect() {
        let mut q = Queue::new(3);
        for seq in 1..=4 {
            let dropped = q.push(seq, vec![]);
            assert_eq!(dropped, u64::from(seq == 4));
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
        assert!(q.acknowledged(1));
        assert!(!q.acknowledged(1), "an ack counts once");
        q.reset();
        assert!(q.messages.iter().all(|m| !m.sent));
        assert_eq!(q.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4]);
        assert!(!q.acknowledged(2), "packet ids from before the reconnect mean nothing");
    }
}
