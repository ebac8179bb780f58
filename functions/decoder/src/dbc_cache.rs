//! The DBC each vehicle's objects are decoded with, cached across invocations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canopy::domain::vehicle::VehicleId;
use canopy::format::dbc::{Database, LoadOptions};
use canopy::format::lake::keys::DBC_PREFIX;
use canopy::ports::store::{ObjectStore, StoreError};
use tracing::warn;

use crate::object::DecodeObjectError;

/// The DBC that applies to each vehicle: `dbc/vehicles/<vehicle id>.dbc` when
/// the bucket has one, else the default key, else the DBC compiled into the
/// binary. Compiled databases are kept across invocations and fetched again
/// when their ETag changes (checked at most every `refresh`).
pub struct DbcCache<S> {
    store: S,
    default_key: String,
    fallback: (String, Arc<Database>),
    refresh: Duration,
    options: LoadOptions,
    entries: Mutex<HashMap<String, Entry>>,
    /// Problems tolerated in DBC files compiled since the last [`Self::take_warnings`].
    warnings: AtomicU64,
}

#[derive(Clone)]
enum Cached {
    Present { etag: String, db: Arc<Database> },
    Missing,
}

#[derive(Clone)]
struct Entry {
    cached: Cached,
    checked: Instant,
}

impl<S: ObjectStore> DbcCache<S> {
    pub fn new(
        store: S,
        default_key: &str,
        fallback: (String, Arc<Database>),
        refresh: Duration,
        options: LoadOptions,
    ) -> Self {
        Self {
            store,
            default_key: default_key.to_string(),
            fallback,
            refresh,
            options,
            entries: Mutex::new(HashMap::new()),
            warnings: AtomicU64::new(0),
        }
    }

    /// How many DBC problems were tolerated since the last call (for metrics).
    pub fn take_warnings(&self) -> u64 {
        self.warnings.swap(0, Ordering::Relaxed)
    }

    /// The key of a vehicle's own DBC.
    pub fn vehicle_key(vehicle: &VehicleId) -> String {
        format!("{DBC_PREFIX}vehicles/{vehicle}.dbc")
    }

    /// The DBC for `vehicle` and the name it goes by (its key, or `built-in:<name>`).
    pub async fn for_vehicle(&self, vehicle: &VehicleId) -> Result<(String, Arc<Database>), DecodeObjectError> {
        for key in [Self::vehicle_key(vehicle), self.default_key.clone()] {
            if let Some(db) = self.lookup(&key).await? {
                return Ok((key, db));
            }
        }
        Ok(self.fallback.clone())
    }

    async fn lookup(&self, key: &str) -> Result<Option<Arc<Database>>, DecodeObjectError> {
        let known = self.entries.lock().map_err(|_| poisoned(key))?.get(key).cloned();
        if let Some(entry) = &known
            && entry.checked.elapsed() < self.refresh
        {
            return Ok(match &entry.cached {
                Cached::Present { db, .. } => Some(db.clone()),
                Cached::Missing => None,
            });
        }
        let cached = match self.store.exists(key).await? {
            None => Cached::Missing,
            Some(info) => match known.map(|e| e.cached) {
                Some(Cached::Present { etag, db }) if etag == info.etag => Cached::Present { etag, db },
                _ => {
                    let object = self.store.get(key).await?;
                    let name = format!("s3://{}/{key}", self.store.bucket());
                    let db = Database::from_bytes_with(&object.body, &name, self.options).map_err(|error| {
                        DecodeObjectError::Dbc {
                            key: key.to_string(),
                            error,
                        }
                    })?;
                    for warning in db.warnings() {
                        warn!(%warning, "DBC problem tolerated");
                    }
                    self.warnings.fetch_add(db.warnings().len() as u64, Ordering::Relaxed);
                    Cached::Present {
                        etag: object.etag,
                        db: Arc::new(db),
                    }
                }
            },
        };
        let result = match &cached {
            Cached::Present { db, .. } => Some(db.clone()),
            Cached::Missing => None,
        };
        self.entries.lock().map_err(|_| poisoned(key))?.insert(
            key.to_string(),
            Entry {
                cached,
                checked: Instant::now(),
            },
        );
        Ok(result)
    }
}

fn poisoned(key: &str) -> DecodeObjectError {
    DecodeObjectError::Store(StoreError::Failed {
        bucket: String::new(),
        key: key.to_string(),
        message: "DBC cache lock poisoned".to_string(),
    })
}
