//! A telemetry subscriber on the local broker, as a dashboard or the cloud sees it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canopy::domain::telemetry::Telemetry;
use canopy::format::telemetry::Message;

pub struct TelemetrySubscriber {
    /// Every sample received (a v1 message is one), in arrival order.
    pub received: Arc<Mutex<Vec<Telemetry>>>,
    /// How many samples each message held, in arrival order.
    pub messages: Arc<Mutex<Vec<usize>>>,
    connected: Arc<std::sync::atomic::AtomicU64>,
    /// Dropped with the subscriber: its thread stops. A subscriber left
    /// running would go on reconnecting to its broker's port after the
    /// broker stopped, and reach whatever listener of another test gets
    /// that port next.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TelemetrySubscriber {
    /// Subscribes to every vehicle's telemetry on the broker at `port`.
    pub fn start(port: u16) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let connected = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (sink, sizes, counter) = (received.clone(), messages.clone(), connected.clone());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut options = rumqttc::MqttOptions::new("test-subscriber", "127.0.0.1", port);
                options.set_keep_alive(Duration::from_secs(5));
                let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
                loop {
                    let event = tokio::select! {
                        _ = &mut stopped => return,
                        event = events.poll() => event,
                    };
                    match event {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            client
                                .subscribe("dt/canopy/+/bms", rumqttc::QoS::AtLeastOnce)
                                .await
                                .unwrap();
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            let m = Message::parse(std::str::from_utf8(&p.payload).unwrap()).unwrap();
                            assert!(m.rejected.is_empty(), "{:?}", m.rejected);
                            sizes.lock().unwrap().push(m.samples.len());
                            sink.lock().unwrap().extend(m.samples);
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            });
        });
        Self {
            received,
            messages,
            connected,
            _stop: stop,
        }
    }

    /// Waits until the subscription was made `times` times (once per connection).
    pub fn wait_subscribed(&self, times: u64) {
        let started = Instant::now();
        while self.connected.load(std::sync::atomic::Ordering::SeqCst) < times {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the subscriber did not (re)subscribe"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
