//! The API over AWS (feature `aws`, on by default): DynamoDB for state,
//! alerts and quotas, the lake's bucket for DBC files and charts, and Athena
//! or DataFusion for the other history. Without it the router runs on the memory adapters
//! alone (the fuzz target), with no AWS SDK to build.

use canopy::adapters::aws::dynamodb::{
    self, DynamoAlertLog, DynamoDeviceStateTable, DynamoDirectory, DynamoQuotaCounter, DynamoStateTable,
};
use std::sync::Arc;

use canopy::adapters::aws::s3::S3Store;
use canopy::domain::kind::Kinds;
use canopy::runtime::env;

use crate::access::AccessPolicy;
use crate::history::athena::AthenaHistory;
use crate::history::lake::{LakeHistory, LakeReader};
use crate::ports::HistoryReads;
use crate::raw::RawReads;
use crate::{Api, Config, StartError, catalogs};

impl Api {
    /// The API over DynamoDB with `history` (Athena in Lambda, DataFusion on
    /// the local stack). Without sign-in (the local stack) every caller reads every vehicle.
    pub fn with_history(
        config: &Config,
        sdk: &aws_config::SdkConfig,
        history: impl HistoryReads + 'static,
        raw: impl RawReads + 'static,
    ) -> Result<Self, StartError> {
        let client = dynamodb::client(sdk);
        Ok(Self {
            history: Arc::new(history),
            raw: Arc::new(raw),
            state: Arc::new(DynamoStateTable::new(client.clone(), &config.state_table)),
            directory: Arc::new(DynamoDirectory::new(client.clone(), &config.index_table)),
            alerts: Arc::new(DynamoAlertLog::new(
                client.clone(),
                &config.alerts_table,
                &config.index_table,
            )),
            devices: Arc::new(DynamoDeviceStateTable::new(client.clone(), &config.device_state_table)),
            kinds: Kinds::builtin(),
            catalogs: Box::new(catalogs::from_bucket(
                S3Store::new(sdk, &config.data_bucket),
                &config.dbc,
            )?),
            access: AccessPolicy {
                vehicle_groups: config.vehicle_groups.clone(),
                identity_required: false,
            },
            quota_counter: Arc::new(DynamoQuotaCounter::new(client, &config.quota_table)),
            history_quota: config.history_quota,
            console: config.console.clone(),
            history_deadline: config.history_deadline,
            cursors: match &config.cursor_secret {
                Some(secret) => crate::cursor::Cursors::new(secret),
                None => crate::cursor::Cursors::ephemeral(),
            },
        })
    }

    /// The API as deployed: configuration from `vars`, DynamoDB, the lake's
    /// objects for charts and Athena for the other history, every data route
    /// behind the JWT authorizer.
    pub fn from_env(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<Self, StartError> {
        let config = Config::from_vars(vars)?;
        if config.cursor_secret.is_none() {
            return Err(canopy::runtime::env::EnvError {
                name: "CURSOR_SECRET".into(),
                problem: "is not set: each instance would seal cursors under a key of its own, and the next page, read by another, would be refused".into(),
            }
            .into());
        }
        // Charts, trips and fleet statistics from the lake's objects (two
        // rounds of S3 requests); stations' fields from Athena.
        let lake = LakeReader::from_env(&config.data_bucket).map_err(|e| canopy::runtime::env::EnvError {
            name: "DATA_BUCKET".into(),
            problem: format!("the lake's reader: {e}"),
        })?;
        let history = LakeHistory {
            lake: lake.clone(),
            rest: AthenaHistory::new(sdk, &config.workgroup, &config.database),
        };
        let mut api = Self::with_history(&config, sdk, history, lake)?;
        api.access.identity_required = true;
        Ok(api)
    }
}
