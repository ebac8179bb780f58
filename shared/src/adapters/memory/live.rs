//! The live stream's ports in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use super::{Faults, lock};
use crate::domain::access::Caller;
use crate::ports::TableError;
use crate::ports::live::{
    Connection, ConnectionPoster, ConnectionStore, PostError, SignedIn, Subscription, TokenVerifier,
};

#[derive(Debug, Default)]
pub struct MemoryConnectionStore {
    connections: Mutex<BTreeMap<String, Connection>>,
    version: std::sync::atomic::AtomicU64,
    pub faults: Faults,
}

impl MemoryConnectionStore {
    async fn enter(&self, operation: &'static str) -> Result<(), TableError> {
        self.faults.enter(operation).await.map_err(|message| TableError {
            table: "memory-connections".into(),
            message,
        })
    }

    fn changed(&self) {
        self.version.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ConnectionStore for MemoryConnectionStore {
    async fn put(&self, connection: &Connection) -> Result<(), TableError> {
        self.enter("put").await?;
        lock(&self.connections).insert(connection.id.clone(), connection.clone());
        self.changed();
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Connection>, TableError> {
        self.enter("get").await?;
        Ok(lock(&self.connections).get(id).cloned())
    }

    async fn subscribe(&self, id: &str, subscription: Option<&Subscription>) -> Result<bool, TableError> {
        self.enter("subscribe").await?;
        let found = match lock(&self.connections).get_mut(id) {
            Some(c) => {
                c.subscription = subscription.cloned();
                true
            }
            None => false,
        };
        if found {
            self.changed();
        }
        Ok(found)
    }

    async fn delete(&self, id: &str) -> Result<(), TableError> {
        self.enter("delete").await?;
        lock(&self.connections).remove(id);
        self.changed();
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Connection>, TableError> {
        self.enter("list").await?;
        Ok(lock(&self.connections).values().cloned().collect())
    }

    async fn version(&self) -> Result<u64, TableError> {
        self.enter("version").await?;
        Ok(self.version.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// What was posted to which connection, in order; some connections gone or slow.
#[derive(Debug, Default)]
pub struct MemoryPoster {
    posted: Mutex<Vec<(String, String)>>,
    closed: Mutex<Vec<String>>,
    gone: Mutex<HashSet<String>>,
    slow: Mutex<HashMap<String, Duration>>,
}

impl MemoryPoster {
    pub fn posted(&self) -> Vec<(String, String)> {
        lock(&self.posted).clone()
    }

    /// The texts posted to `id`.
    pub fn to(&self, id: &str) -> Vec<String> {
        lock(&self.posted)
            .iter()
            .filter(|(to, _)| to == id)
            .map(|(_, text)| text.clone())
            .collect()
    }

    /// Posts to `id` answer Gone from now on: the client went away.
    pub fn hang_up(&self, id: &str) {
        lock(&self.gone).insert(id.to_string());
    }

    /// The connections the server closed, in order.
    pub fn closed(&self) -> Vec<String> {
        lock(&self.closed).clone()
    }

    /// Posts to `id` take `delay` (a client on a bad link).
    pub fn slow(&self, id: &str, delay: Duration) {
        lock(&self.slow).insert(id.to_string(), delay);
    }
}

impl ConnectionPoster for MemoryPoster {
    async fn post(&self, id: &str, text: &str) -> Result<(), PostError> {
        let delay = lock(&self.slow).get(id).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if lock(&self.gone).contains(id) {
            return Err(PostError::Gone(id.to_string()));
        }
        lock(&self.posted).push((id.to_string(), text.to_string()));
        Ok(())
    }

    async fn close(&self, id: &str) -> Result<(), PostError> {
        lock(&self.closed).push(id.to_string());
        lock(&self.gone).insert(id.to_string());
        Ok(())
    }
}

/// Tokens and who holds them, until when.
#[derive(Debug, Default)]
pub struct MemoryTokenVerifier {
    pub tokens: Mutex<HashMap<String, SignedIn>>,
}

impl MemoryTokenVerifier {
    /// `token` is `caller`'s until `expires_at_s`.
    pub fn issue(&self, token: &str, caller: Caller, expires_at_s: i64) {
        lock(&self.tokens).insert(token.to_string(), SignedIn { caller, expires_at_s });
    }
}

impl TokenVerifier for MemoryTokenVerifier {
    async fn verify(&self, token: &str, now_s: i64) -> Result<SignedIn, String> {
        match lock(&self.tokens).get(token) {
            Some(signed_in) if signed_in.expires_at_s > now_s => Ok(signed_in.clone()),
            Some(_) => Err("the access token has expired".to_string()),
            None => Err("the access token is not valid".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::live::CachedConnections;

    fn connection(id: &str) -> Connection {
        Connection {
            id: id.to_string(),
            caller: None,
            subscription: None,
            connected_at_ms: 0,
            expires_at_s: 100,
        }
    }

    #[tokio::test]
    async fn the_connections_are_listed_again_only_when_they_changed() {
        let cached = CachedConnections::new(MemoryConnectionStore::default());
        cached.put(&connection("a")).await.expect("put");
        let scans = || cached.inner().faults.calls("list");
        for _ in 0..5 {
            assert_eq!(cached.list().await.expect("list").len(), 1);
        }
        assert_eq!(scans(), 1, "one scan, then the version alone");
        cached.put(&connection("b")).await.expect("put");
        assert_eq!(cached.list().await.expect("list").len(), 2, "a new connection is seen");
        assert!(
            cached
                .subscribe("a", Some(&Subscription::Fleet))
                .await
                .expect("subscribe")
        );
        let listed = cached.list().await.expect("list");
        assert_eq!(
            listed[0].subscription,
            Some(Subscription::Fleet),
            "so is a subscription"
        );
        cached.delete("b").await.expect("delete");
        assert_eq!(cached.list().await.expect("list").len(), 1, "and a deletion");
        assert_eq!(scans(), 4);
    }
}
