//! The signals a vehicle's history may be asked for: the catalog of the DBC
//! its data is decoded with ([`Catalog`]), found as the decoder finds it (the
//! shared [`DbcCache`]), so a vehicle with its own DBC is charted by its own
//! names ([`Catalogs`]).

use std::sync::Arc;

use axum::http::StatusCode;
use canopy::domain::device_id::DeviceId;
use canopy::format::dbc;
use canopy::ports::store::ObjectStore;
use canopy::services::dbc_cache::{DbcCache, DbcCacheError, DbcSource};
use futures::future::BoxFuture;

use canopy::format::dbc::Database;
use canopy::runtime::text::truncate_chars;
use serde::Serialize;

use crate::error::ApiError;
use crate::history::{InvalidQuery, SignalRef, invalid};

/// One signal of the DBC catalog.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CatalogEntry {
    pub message: String,
    pub message_id: u32,
    pub signal: String,
    pub unit: String,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub comment: Option<String>,
}

/// The signals a query may name: the DBC's, and nothing else reaches SQL.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

impl Catalog {
    pub fn from_database(db: &Database) -> Self {
        let mut entries: Vec<CatalogEntry> = db
            .messages()
            .iter()
            .flat_map(|m| {
                m.signals.iter().map(move |s| CatalogEntry {
                    message: m.name.clone(),
                    message_id: m.id.raw(),
                    signal: s.name.clone(),
                    unit: s.unit.clone(),
                    minimum: s.minimum,
                    maximum: s.maximum,
                    comment: s.comment.clone(),
                })
            })
            .collect();
        entries.sort_by(|a, b| (&a.message, &a.signal).cmp(&(&b.message, &b.signal)));
        Self { entries }
    }

    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    pub fn find(&self, message: &str, signal: &str) -> Option<&CatalogEntry> {
        self.entries
            .binary_search_by(|e| (e.message.as_str(), e.signal.as_str()).cmp(&(message, signal)))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The entry for `r`, or why there is none: a name that cannot be a
    /// DBC name is bad input (400), a name the catalog lacks is a resource
    /// that does not exist (404).
    pub fn check(&self, r: &SignalRef) -> Result<&CatalogEntry, CatalogError> {
        for (field, name) in [("message", &r.message_name), ("signal", &r.signal_name)] {
            if !is_dbc_name(name) {
                return Err(CatalogError::Invalid(invalid(
                    field,
                    format!(
                        "{:?} is not a DBC name (a letter or _, then letters, digits or _; at most 128)",
                        truncate_chars(name, 80)
                    ),
                )));
            }
        }
        self.find(&r.message_name, &r.signal_name).ok_or_else(|| {
            CatalogError::Unknown(format!(
                "no signal {:?} of message {:?} in this vehicle's DBC (GET /vehicles/{{id}}/signals lists them)",
                r.signal_name, r.message_name
            ))
        })
    }
}

/// Why [`Catalog::check`] found no entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Invalid(InvalidQuery),
    #[error("{0}")]
    Unknown(String),
}

/// `^[A-Za-z_][A-Za-z0-9_]{0,127}$`, as the OpenAPI document says: what a
/// DBC names messages and signals with.
fn is_dbc_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Each vehicle's catalog, and the fleet's (for vehicles without their own DBC).
pub trait Catalogs: Send + Sync {
    fn for_vehicle<'a>(&'a self, vehicle: &'a DeviceId) -> BoxFuture<'a, Result<Arc<Catalog>, ApiError>>;
    fn fleet(&self) -> BoxFuture<'_, Result<Arc<Catalog>, ApiError>>;
}

/// The DBC files in the lake's bucket, as the decoder reads them.
pub fn from_bucket<D: ObjectStore + 'static>(
    store: D,
    source: &DbcSource,
) -> Result<DbcCache<D, Catalog>, dbc::LoadError> {
    let fallback = (dbc::BUILT_IN_NAME.to_string(), Arc::new(built_in()?));
    Ok(DbcCache::compiling(store, source, fallback, |db| {
        Catalog::from_database(&db)
    }))
}

/// The catalog of the built-in DBC, the decoder's last fallback.
pub fn built_in() -> Result<Catalog, dbc::LoadError> {
    Ok(Catalog::from_database(&dbc::built_in()?))
}

impl<D: ObjectStore> Catalogs for DbcCache<D, Catalog> {
    fn for_vehicle<'a>(&'a self, vehicle: &'a DeviceId) -> BoxFuture<'a, Result<Arc<Catalog>, ApiError>> {
        Box::pin(async move { Ok(DbcCache::for_vehicle(self, vehicle).await.map_err(unreadable)?.1) })
    }

    fn fleet(&self) -> BoxFuture<'_, Result<Arc<Catalog>, ApiError>> {
        Box::pin(async move { Ok(self.fleet_default().await.map_err(unreadable)?.1) })
    }
}

/// One catalog for every vehicle, whatever the bucket holds (the router's tests).
impl Catalogs for Arc<Catalog> {
    fn for_vehicle<'a>(&'a self, _: &'a DeviceId) -> BoxFuture<'a, Result<Arc<Catalog>, ApiError>> {
        Box::pin(async move { Ok(self.clone()) })
    }

    fn fleet(&self) -> BoxFuture<'_, Result<Arc<Catalog>, ApiError>> {
        Box::pin(async move { Ok(self.clone()) })
    }
}

/// A DBC that does not compile fails the decoder too (its objects wait in
/// the dead-letter queue), so the API says which file is at fault.
fn unreadable(e: DbcCacheError) -> ApiError {
    match e {
        DbcCacheError::Dbc { .. } => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
        other => ApiError::internal(StatusCode::BAD_GATEWAY, "reading the vehicle's DBC failed", &other),
    }
}
