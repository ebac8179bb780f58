//! The live stream's connections: who is connected, what each subscribed
//! to, and sending a message to one of them.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use super::TableError;
use crate::domain::access::Caller;
use crate::domain::device_id::DeviceId;

/// What a connection asked to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// Every vehicle the caller reads.
    Fleet,
    /// These vehicles (those the caller reads).
    Vehicles(BTreeSet<DeviceId>),
}

impl Subscription {
    pub fn includes(&self, vehicle: &DeviceId) -> bool {
        match self {
            Self::Fleet => true,
            Self::Vehicles(ids) => ids.contains(vehicle),
        }
    }
}

/// One open connection of the live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    /// Who signed in (none where nobody signs in: the local stack).
    pub caller: Option<Caller>,
    /// None until the client subscribes.
    pub subscription: Option<Subscription>,
    pub connected_at_ms: i64,
    /// When the record is dropped (TTL) if the disconnect never came.
    pub expires_at_s: i64,
}

pub trait ConnectionStore: Send + Sync {
    fn put(&self, connection: &Connection) -> impl Future<Output = Result<(), TableError>> + Send;

    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Connection>, TableError>> + Send;

    /// Sets a connection's subscription; false when there is no such connection.
    fn subscribe(
        &self,
        id: &str,
        subscription: Option<&Subscription>,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;

    fn delete(&self, id: &str) -> impl Future<Output = Result<(), TableError>> + Send;

    /// Every connection.
    fn list(&self) -> impl Future<Output = Result<Vec<Connection>, TableError>> + Send;

    /// A number that changes whenever a connection is put, subscribed or
    /// deleted (not when one expires: its `expires_at_s` says so), so a
    /// reader can keep what [`ConnectionStore::list`] gave until it changes.
    fn version(&self) -> impl Future<Output = Result<u64, TableError>> + Send;
}

/// A [`ConnectionStore`] that lists the connections again only when they
/// changed: a reader of every batch of changes (the fan-out) reads one small
/// item per batch, not the table. Kept per function instance.
#[derive(Debug, Default)]
pub struct CachedConnections<C> {
    store: C,
    listed: Mutex<Option<(u64, Vec<Connection>)>>,
}

impl<C> CachedConnections<C> {
    pub fn new(store: C) -> Self {
        Self {
            store,
            listed: Mutex::new(None),
        }
    }

    pub fn inner(&self) -> &C {
        &self.store
    }
}

impl<C: ConnectionStore> ConnectionStore for CachedConnections<C> {
    async fn put(&self, connection: &Connection) -> Result<(), TableError> {
        self.store.put(connection).await
    }

    async fn get(&self, id: &str) -> Result<Option<Connection>, TableError> {
        self.store.get(id).await
    }

    async fn subscribe(&self, id: &str, subscription: Option<&Subscription>) -> Result<bool, TableError> {
        self.store.subscribe(id, subscription).await
    }

    async fn delete(&self, id: &str) -> Result<(), TableError> {
        self.store.delete(id).await
    }

    /// As of the version read first: a list read after it is at least that new.
    async fn list(&self) -> Result<Vec<Connection>, TableError> {
        let version = self.store.version().await?;
        if let Some((kept, connections)) = &*self.listed.lock().unwrap_or_else(PoisonError::into_inner)
            && *kept == version
        {
            return Ok(connections.clone());
        }
        let connections = self.store.list().await?;
        *self.listed.lock().unwrap_or_else(PoisonError::into_inner) = Some((version, connections.clone()));
        Ok(connections)
    }

    async fn version(&self) -> Result<u64, TableError> {
        self.store.version().await
    }
}

/// Why a message did not reach a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The connection is closed: forget it.
    #[error("connection {0} is gone")]
    Gone(String),
    #[error("posting to {id}: {message}")]
    Failed { id: String, message: String },
}

/// Messages to open connections (API Gateway's management API in AWS, the
/// sockets themselves on the local stack).
pub trait ConnectionPoster: Send + Sync {
    fn post(&self, id: &str, text: &str) -> impl Future<Output = Result<(), PostError>> + Send;

    /// Closes the connection (one already gone is not an error).
    fn close(&self, id: &str) -> impl Future<Output = Result<(), PostError>> + Send;
}

/// The holder of a verified access token, and when the token expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub caller: Caller,
    /// The token's `exp` (seconds since the epoch): the connection it opened ends then.
    pub expires_at_s: i64,
}

/// Who holds an access token (a Cognito user pool in AWS).
pub trait TokenVerifier: Send + Sync {
    /// The caller the token belongs to at `now_s`, or why it is refused.
    fn verify(&self, token: &str, now_s: i64) -> impl Future<Output = Result<SignedIn, String>> + Send;
}
