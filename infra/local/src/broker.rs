//! An MQTT broker on loopback (rumqttd), playing AWS IoT Core's message broker.

use std::collections::HashMap;
use std::net::SocketAddr;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

#[derive(Debug, thiserror::Error)]
#[error("MQTT broker on {address}: {message}")]
pub struct BrokerError {
    pub address: SocketAddr,
    pub message: String,
}

fn config(address: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "local".to_string(),
        listen: address,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 256 * 1024,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1_000,
            max_outgoing_packet_count: 500,
            max_segment_size: 64 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("local".to_string(), server)])),
        ..Default::default()
    }
}

/// Runs a broker on `address` until the process ends (blocks).
pub fn run(address: SocketAddr) -> Result<(), BrokerError> {
    Broker::new(config(address)).start().map_err(|e| BrokerError {
        address,
        message: e.to_string(),
    })
}

/// Starts a broker on `address` on a thread of its own and waits until it accepts connections.
pub fn spawn(address: SocketAddr) -> Result<(), BrokerError> {
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = run(address) {
                tracing::error!(error = %e, "MQTT broker stopped");
            }
        })
        .map_err(|e| BrokerError {
            address,
            message: e.to_string(),
        })?;
    wait_listening(address)
}

/// Waits up to 10 s for something to accept connections on `address`.
pub fn wait_listening(address: SocketAddr) -> Result<(), BrokerError> {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(10) {
        if std::net::TcpStream::connect(address).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(BrokerError {
        address,
        message: "not listening after 10 s".to_string(),
    })
}
