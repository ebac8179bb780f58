//! The signals a vehicle's history may be asked for: the catalog of the DBC
//! its data is decoded with, found as the decoder finds it (the shared
//! [`DbcCache`]), so a vehicle with its own DBC is charted by its own names.

use std::sync::Arc;

use axum::http::StatusCode;
use canopy::domain::device_id::DeviceId;
use canopy::format::dbc;
use canopy::ports::store::ObjectStore;
use canopy::services::dbc_cache::{DbcCache, DbcCacheError, DbcSource};
use futures::future::BoxFuture;

use crate::error::ApiError;
use crate::history::Catalog;

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
