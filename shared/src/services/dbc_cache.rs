//! The DBC each vehicle's data is decoded with, cached across invocations:
//! the decoder decodes with it and the API validates and lists signals with it,
//! so both always agree on what a vehicle's signals are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::domain::device_id::DeviceId;
use crate::format::dbc::{Database, LoadError, LoadOptions};
use crate::format::lake::keys::DBC_PREFIX;
use crate::ports::store::{ObjectStore, StoreError};
use crate::runtime::env::{self, EnvError};

/// Why a vehicle's DBC could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DbcCacheError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("DBC {key}: {error}")]
    Dbc { key: String, error: LoadError },
    #[error("DBC cache for {key}: lock poisoned")]
    Poisoned { key: String },
}

/// The DBC that applies to each vehicle: `dbc/vehicles/<vehicle id>.dbc` when
/// the bucket has one, else the default key, else the DBC compiled into the
/// binary. Each DBC is compiled once into a `T` (the decoder keeps the
/// [`Database`]; the API a catalog of its signals), kept across invocations
/// and fetched again when its ETag changes (checked at most every `refresh`).
pub struct DbcCache<S, T = Database> {
    store: S,
    source: DbcSource,
    fallback: (String, Arc<T>),
    compile: fn(Database) -> T,
    entries: Mutex<HashMap<String, Entry<T>>>,
    /// Problems tolerated in DBC files compiled since the last [`Self::take_warnings`].
    warnings: AtomicU64,
}

enum Cached<T> {
    Present { etag: String, compiled: Arc<T> },
    Missing,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Present { etag, compiled } => Self::Present {
                etag: etag.clone(),
                compiled: compiled.clone(),
            },
            Self::Missing => Self::Missing,
        }
    }
}

impl<T> Cached<T> {
    fn compiled(&self) -> Option<Arc<T>> {
        match self {
            Self::Present { compiled, .. } => Some(compiled.clone()),
            Self::Missing => None,
        }
    }
}

struct Entry<T> {
    cached: Cached<T>,
    checked: Instant,
}

/// Where a cache finds its DBC files and how it reads them.
#[derive(Debug, Clone)]
pub struct DbcSource {
    /// The DBC of vehicles without their own (`DBC_KEY`).
    pub default_key: String,
    /// How often a cached DBC's ETag is checked (`DBC_REFRESH_SECONDS`).
    pub refresh: Duration,
    /// Strict or tolerant parsing (`DBC_STRICT`).
    pub options: LoadOptions,
}

impl DbcSource {
    /// From `DBC_KEY` (default `dbc/ev_powertrain.dbc`), `DBC_REFRESH_SECONDS`
    /// (60) and `DBC_STRICT` (`true` or `false`, default false: tolerate, with
    /// a warning, the problems cantools' strict mode refuses).
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        Ok(Self {
            default_key: env::or(vars, "DBC_KEY", "dbc/ev_powertrain.dbc"),
            refresh: Duration::from_secs(env::parse_or(vars, "DBC_REFRESH_SECONDS", 60)?),
            options: LoadOptions {
                strict: env::parse_or(vars, "DBC_STRICT", false)?,
            },
        })
    }
}

impl<S: ObjectStore> DbcCache<S, Database> {
    /// A cache of the databases themselves, falling back to `fallback`.
    pub fn new(store: S, source: &DbcSource, fallback: (String, Arc<Database>)) -> Self {
        Self::compiling(store, source, fallback, |db| db)
    }
}

impl<S: ObjectStore, T> DbcCache<S, T> {
    /// A cache that keeps what `compile` makes of each DBC, `fallback` when
    /// the bucket has none.
    pub fn compiling(store: S, source: &DbcSource, fallback: (String, Arc<T>), compile: fn(Database) -> T) -> Self {
        Self {
            store,
            source: source.clone(),
            fallback,
            compile,
            entries: Mutex::new(HashMap::new()),
            warnings: AtomicU64::new(0),
        }
    }

    /// How many DBC problems were tolerated since the last call (for metrics).
    pub fn take_warnings(&self) -> u64 {
        self.warnings.swap(0, Ordering::Relaxed)
    }

    /// The key of a vehicle's own DBC.
    pub fn vehicle_key(vehicle: &DeviceId) -> String {
        format!("{DBC_PREFIX}vehicles/{vehicle}.dbc")
    }

    /// The DBC for `vehicle` and the name it goes by (its key, or `built-in:<name>`).
    pub async fn for_vehicle(&self, vehicle: &DeviceId) -> Result<(String, Arc<T>), DbcCacheError> {
        let key = Self::vehicle_key(vehicle);
        if let Some(compiled) = self.lookup(&key).await? {
            return Ok((key, compiled));
        }
        self.fleet_default().await
    }

    /// The DBC of vehicles without their own: the default key's, else the fallback.
    pub async fn fleet_default(&self) -> Result<(String, Arc<T>), DbcCacheError> {
        Ok(match self.lookup(&self.source.default_key).await? {
            Some(compiled) => (self.source.default_key.clone(), compiled),
            None => self.fallback.clone(),
        })
    }

    async fn lookup(&self, key: &str) -> Result<Option<Arc<T>>, DbcCacheError> {
        let known = self
            .entries
            .lock()
            .map_err(|_| poisoned(key))?
            .get(key)
            .map(|e| (e.cached.clone(), e.checked.elapsed() < self.source.refresh));
        if let Some((cached, true)) = &known {
            return Ok(cached.compiled());
        }
        let cached = match self.store.exists(key).await? {
            None => Cached::Missing,
            Some(info) => match known.map(|(cached, _)| cached) {
                Some(Cached::Present { etag, compiled }) if etag == info.etag => Cached::Present { etag, compiled },
                _ => {
                    let object = self.store.get(key).await?;
                    let name = format!("s3://{}/{key}", self.store.bucket());
                    let db = Database::from_bytes_with(&object.body, &name, self.source.options).map_err(|error| {
                        DbcCacheError::Dbc {
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
                        compiled: Arc::new((self.compile)(db)),
                    }
                }
            },
        };
        let result = cached.compiled();
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

fn poisoned(key: &str) -> DbcCacheError {
    DbcCacheError::Poisoned { key: key.to_string() }
}
