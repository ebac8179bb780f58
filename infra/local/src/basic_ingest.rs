//! AWS IoT Basic Ingest on the local stack. A device publishes to
//! `$aws/rules/<rule>/<topic>` and IoT Core hands the message to that rule
//! alone, which sees `<topic>`. rumqttd, like any MQTT broker, routes no `$`
//! topic to a subscriber and lets nobody subscribe to one, so the clients
//! reach the broker through a gateway that renames those topics to
//! [`LOCAL_PREFIX`] (the same length, so no packet changes size), where the
//! local rules engine subscribes. Nothing else in the stream changes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

use canopy::domain::topic::BASIC_INGEST_PREFIX;
use canopy::ports::messaging::{DevicePublisher, PublishError};

/// What the broker sees for [`BASIC_INGEST_PREFIX`].
pub const LOCAL_PREFIX: &str = "_aws/rules/";

const _SAME_LENGTH: () = assert!(LOCAL_PREFIX.len() == BASIC_INGEST_PREFIX.len());

/// The rule a (renamed) Basic Ingest topic names, and the topic it sees.
pub fn split(topic: &str) -> Option<(&str, &str)> {
    topic.strip_prefix(LOCAL_PREFIX)?.split_once('/')
}

/// Renames the Basic Ingest topics of the PUBLISH packets in a client's
/// stream, whole packets at a time, however the stream is cut.
#[derive(Default)]
pub struct Rewriter {
    pending: Vec<u8>,
    /// The stream stopped making sense as MQTT: pass it on as it is, and let the broker refuse it.
    lost: bool,
}

impl Rewriter {
    /// Takes bytes read from the client; appends to `out` those ready for the broker.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.lost {
            out.extend_from_slice(bytes);
            return;
        }
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            match packet_len(&self.pending[at..]) {
                Header::Whole(len) if at + len <= self.pending.len() => {
                    rename(&mut self.pending[at..at + len]);
                    at += len;
                }
                Header::Whole(_) | Header::Partial => break,
                Header::NotMqtt => {
                    self.lost = true;
                    break;
                }
            }
        }
        out.extend_from_slice(&self.pending[..at]);
        self.pending.drain(..at);
        if self.lost {
            out.append(&mut self.pending);
        }
    }
}

enum Header {
    /// The whole length of the packet.
    Whole(usize),
    Partial,
    /// A fifth length byte.
    NotMqtt,
}

/// The packet `bytes` starts with, once its fixed header is in.
fn packet_len(bytes: &[u8]) -> Header {
    let mut remaining = 0usize;
    for (i, byte) in bytes.iter().skip(1).take(4).enumerate() {
        remaining |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Header::Whole(1 + i + 1 + remaining);
        }
    }
    if bytes.len() >= 5 {
        Header::NotMqtt
    } else {
        Header::Partial
    }
}

/// Renames the topic of one whole packet if it is a PUBLISH to a Basic Ingest topic.
fn rename(packet: &mut [u8]) {
    if packet[0] >> 4 != 3 {
        return;
    }
    let header = 1 + packet[1..].iter().take_while(|b| *b & 0x80 != 0).count() + 1;
    let topic = header + 2;
    let prefix = BASIC_INGEST_PREFIX.as_bytes();
    if packet.get(topic..topic + prefix.len()) == Some(prefix) {
        packet[topic..topic + prefix.len()].copy_from_slice(LOCAL_PREFIX.as_bytes());
    }
}

/// Accepts clients on `listener` and carries each to the broker at `broker`, until the process ends.
pub fn serve(listener: TcpListener, broker: SocketAddr) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let _ = std::thread::Builder::new()
            .name("basic-ingest".into())
            .spawn(move || carry(client, broker));
    }
}

fn carry(client: TcpStream, broker: SocketAddr) {
    let Ok(upstream) = TcpStream::connect(broker) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(mut from_client), Ok(mut to_client), Ok(mut to_broker), Ok(mut from_broker)) = (
        client.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
        upstream.try_clone(),
    ) else {
        return;
    };
    let down = std::thread::Builder::new()
        .name("basic-ingest-down".into())
        .spawn(move || {
            let _ = std::io::copy(&mut from_broker, &mut to_client);
            let _ = to_client.shutdown(Shutdown::Both);
        });
    let mut rewriter = Rewriter::default();
    let (mut buf, mut out) = (vec![0u8; 64 * 1024], Vec::new());
    while let Ok(n @ 1..) = from_client.read(&mut buf) {
        out.clear();
        rewriter.feed(&buf[..n], &mut out);
        if to_broker.write_all(&out).is_err() {
            break;
        }
    }
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    if let Ok(down) = down {
        let _ = down.join();
    }
}

/// IoT Core's data plane (`Publish`) on the local stack: a function's
/// message to a topic goes to the broker as a device's would, through the
/// gateway, so a Basic Ingest topic reaches its rule alone.
pub struct BrokerPublisher {
    client: rumqttc::AsyncClient,
}

impl BrokerPublisher {
    /// Connected to the stack's MQTT endpoint `mqtt` (the gateway) as `client_id`.
    pub async fn connect(mqtt: SocketAddr, client_id: &str) -> Result<Self, String> {
        let mut options = rumqttc::MqttOptions::new(client_id, mqtt.ip().to_string(), mqtt.port());
        options.set_keep_alive(std::time::Duration::from_secs(30));
        let (client, mut events) = rumqttc::AsyncClient::new(options, 1024);
        let (up, connected) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut up = Some(up);
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if let Some(up) = up.take() {
                            let _ = up.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the data plane's publisher lost the broker; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), connected)
            .await
            .map_err(|_| format!("the broker on {mqtt} did not accept a connection within 10 s"))?
            .map_err(|_| "the publisher's event loop ended".to_string())?;
        Ok(Self { client })
    }
}

impl DevicePublisher for BrokerPublisher {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PublishError> {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| PublishError {
                service: "local-broker",
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An MQTT 3.1.1 PUBLISH at QoS 1.
    fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(&7u16.to_be_bytes());
        body.extend_from_slice(payload);
        let mut packet = vec![0x32];
        let mut len = body.len();
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            packet.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        packet.extend(body);
        packet
    }

    #[test]
    fn basic_ingest_topics_are_renamed_however_the_stream_is_cut() {
        let ping = [0xc0, 0x00];
        let big = vec![b'x'; 300]; // two length bytes
        let mut stream = ping.to_vec();
        stream.extend(publish("$aws/rules/TelemetryTopicRule/dt/canopy/v1/bms", b"{}"));
        stream.extend(publish("dt/canopy/v1/bms", &big));
        stream.extend(publish("$aws/rules/AlertsTopicRule/dt/canopy/v1/bms", &big));
        stream.extend(publish("$aws/other", b"{}"));
        let mut want = ping.to_vec();
        want.extend(publish("_aws/rules/TelemetryTopicRule/dt/canopy/v1/bms", b"{}"));
        want.extend(publish("dt/canopy/v1/bms", &big));
        want.extend(publish("_aws/rules/AlertsTopicRule/dt/canopy/v1/bms", &big));
        want.extend(publish("$aws/other", b"{}"));
        for cut in [1, 2, 3, 7, 64, stream.len()] {
            let mut rewriter = Rewriter::default();
            let mut out = Vec::new();
            for chunk in stream.chunks(cut) {
                rewriter.feed(chunk, &mut out);
            }
            assert!(out == want, "cut every {cut} bytes");
        }
    }

    #[test]
    fn a_stream_that_is_not_mqtt_passes_as_it_is() {
        let junk = [0x30, 0xff, 0xff, 0xff, 0xff, 0x01, b'$', b'a'];
        let mut rewriter = Rewriter::default();
        let mut out = Vec::new();
        rewriter.feed(&junk, &mut out);
        rewriter.feed(b"more", &mut out);
        assert_eq!(out, [&junk[..], b"more"].concat());
    }

    #[test]
    fn a_renamed_topic_names_its_rule() {
        assert_eq!(
            split("_aws/rules/AlertsTopicRule/dt/canopy/v1/bms"),
            Some(("AlertsTopicRule", "dt/canopy/v1/bms"))
        );
        assert_eq!(split("dt/canopy/v1/bms"), None);
    }
}
