//! The API's configuration, from the environment (the Lambda's) or the
//! template's variables (the local stack's).

use std::time::Duration;

use canopy::runtime::env::{self, EnvError};
use canopy::services::dbc_cache::DbcSource;

use crate::access::VehicleGroups;
use crate::console::ConsoleConfig;
use crate::quota::HistoryQuota;

/// Configuration from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `STATE_TABLE`: each vehicle's latest state.
    pub state_table: String,
    /// `ALERTS_TABLE`: the alert log.
    pub alerts_table: String,
    /// `FLEET_INDEX_TABLE`: the fleet's alert feeds.
    pub index_table: String,
    /// `DEVICE_STATE_TABLE`: each declared device's latest state.
    pub device_state_table: String,
    /// `ATHENA_WORKGROUP`: where history queries run.
    pub workgroup: String,
    /// `GLUE_DATABASE`: the lake's tables.
    pub database: String,
    /// `QUOTA_TABLE`: history queries per user and minute.
    pub quota_table: String,
    /// `DATA_BUCKET`: the lake's bucket, whose `dbc/` holds the DBC files.
    pub data_bucket: String,
    /// `DBC_KEY`, `DBC_REFRESH_SECONDS`, `DBC_STRICT`: as the decoder's, so
    /// both read a vehicle's signals from the same DBC.
    pub dbc: DbcSource,
    /// `HISTORY_QUERIES_PER_MINUTE` (default 60; 0 for no quota).
    pub history_quota: HistoryQuota,
    /// `VEHICLE_GROUPS` (optional): `north=veh-001,veh-002;south=veh-1*`.
    pub vehicle_groups: VehicleGroups,
    /// `CONSOLE_AUTH_DOMAIN` and `CONSOLE_CLIENT_ID` (both or neither): the
    /// console's sign-in; `LIVE_URL`: its live stream.
    pub console: ConsoleConfig,
    /// `HISTORY_DEADLINE_SECONDS` (default 25, at most 28): one request's
    /// history queries all end by then, below the function's 29 s timeout.
    pub history_deadline: Duration,
    /// `CURSOR_SECRET`: the key listings' cursors are sealed under, the same
    /// for every instance; unset (one process: the local stack), a key of
    /// the process's own.
    pub cursor_secret: Option<String>,
}

impl Config {
    /// From `vars`: the process environment in Lambda, the template's map on the local stack.
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        Ok(Self {
            state_table: env::required(vars, "STATE_TABLE")?,
            alerts_table: env::required(vars, "ALERTS_TABLE")?,
            index_table: env::required(vars, "FLEET_INDEX_TABLE")?,
            device_state_table: env::required(vars, "DEVICE_STATE_TABLE")?,
            workgroup: env::required(vars, "ATHENA_WORKGROUP")?,
            database: env::required(vars, "GLUE_DATABASE")?,
            quota_table: env::required(vars, "QUOTA_TABLE")?,
            data_bucket: env::required(vars, "DATA_BUCKET")?,
            dbc: DbcSource::from_vars(vars)?,
            history_quota: HistoryQuota {
                per_minute: env::parse_or(vars, "HISTORY_QUERIES_PER_MINUTE", HistoryQuota::DEFAULT_PER_MINUTE)?,
            },
            vehicle_groups: VehicleGroups::parse(&env::or(vars, "VEHICLE_GROUPS", "")).map_err(|problem| EnvError {
                name: "VEHICLE_GROUPS".into(),
                problem,
            })?,
            console: ConsoleConfig::from_vars(vars)?,
            history_deadline: {
                let seconds: u64 = env::parse_or(vars, "HISTORY_DEADLINE_SECONDS", 25)?;
                if !(1..=28).contains(&seconds) {
                    return Err(EnvError {
                        name: "HISTORY_DEADLINE_SECONDS".into(),
                        problem: format!("{seconds} is not within 1..=28 (the function times out at 29 s)"),
                    });
                }
                Duration::from_secs(seconds)
            },
            cursor_secret: vars.var("CURSOR_SECRET").filter(|s| !s.trim().is_empty()),
        })
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("the built-in DBC: {0}")]
    Dbc(#[from] canopy::format::dbc::LoadError),
}
