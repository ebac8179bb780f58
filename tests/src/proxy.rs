//! A TCP proxy on loopback that a test can take down and bring back, to play
//! a network outage between a client and a service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub address: SocketAddr,
    up: watch::Sender<bool>,
    /// Connections refused or cut while down.
    pub refused: Arc<AtomicU64>,
}

impl Proxy {
    /// Forwards a free loopback port to `target`; starts up or down.
    pub fn start(target: SocketAddr, up: bool) -> Self {
        let (tx, rx) = watch::channel(up);
        let refused = Arc::new(AtomicU64::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("proxy bind: {e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("proxy address: {e}"));
        listener.set_nonblocking(true).unwrap_or_else(|e| panic!("proxy: {e}"));
        let counter = refused.clone();
        std::thread::Builder::new()
            .name("test-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"));
                runtime.block_on(serve(listener, target, rx, counter));
            })
            .unwrap_or_else(|e| panic!("proxy thread: {e}"));
        Self {
            address,
            up: tx,
            refused,
        }
    }

    /// Down: open connections are cut and new ones closed at once.
    pub fn set_up(&self, up: bool) {
        let _ = self.up.send(up);
    }
}

async fn serve(
    listener: std::net::TcpListener,
    target: SocketAddr,
    up: watch::Receiver<bool>,
    refused: Arc<AtomicU64>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if !*up.borrow() {
            refused.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        }
        let mut down = up.clone();
        let refused = refused.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (mut client, mut server) = (client, server);
            // Copy until either side closes, or the proxy goes down: then both are dropped.
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = async {
                    while down.changed().await.is_ok() {
                        if !*down.borrow() {
                            return;
                        }
                    }
                    std::future::pending::<()>().await
                } => { refused.fetch_add(1, Ordering::Relaxed); }
            }
        });
    }
}
