//! An MQTT broker on loopback (rumqttd), playing AWS IoT Core's message
//! broker, behind the gateway that carries Basic Ingest topics past it.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

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

/// Runs IoT Core's endpoint on `address` until the process ends (blocks).
pub fn run(address: SocketAddr) -> Result<(), BrokerError> {
    let (listener, broker) = start(address)?;
    crate::basic_ingest::serve(listener, broker);
    Ok(())
}

/// Starts IoT Core's endpoint on `address` on threads of its own; it accepts connections on return.
pub fn spawn(address: SocketAddr) -> Result<(), BrokerError> {
    let (listener, broker) = start(address)?;
    std::thread::Builder::new()
        .name("basic-ingest-gateway".into())
        .spawn(move || crate::basic_ingest::serve(listener, broker))
        .map_err(|e| failed(address, e))?;
    Ok(())
}

/// The endpoint's listener, and the broker behind it on a port of its own.
fn start(address: SocketAddr) -> Result<(TcpListener, SocketAddr), BrokerError> {
    let listener = TcpListener::bind(address).map_err(|e| failed(address, e))?;
    let port = crate::services::free_port().map_err(|e| failed(address, e))?;
    let broker = SocketAddr::from(([127, 0, 0, 1], port));
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = Broker::new(config(broker)).start() {
                tracing::error!(error = %e, "MQTT broker stopped");
            }
        })
        .map_err(|e| failed(broker, e))?;
    wait_listening(broker)?;
    Ok((listener, broker))
}

fn failed(address: SocketAddr, e: impl std::fmt::Display) -> BrokerError {
    BrokerError {
        address,
        message: e.to_string(),
    }
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
