//! The live stream: a WebSocket API whose clients subscribe to the fleet or
//! to chosen vehicles and are pushed every change of their latest state and
//! every alert, at most once a second each.
//!
//! - [`protocol`]: the messages both ways (version 1; `docs/live-protocol.md`).
//! - [`sessions`]: `$connect` (the access token, in AWS), client messages, `$disconnect`.
//! - [`fanout`]: changes from the state table's and the alert log's streams
//!   to the connections that subscribed to them.
//! - [`Config`], [`Live`]: the wiring the Lambdas' mains and the local stack share.
//!
//! Two functions in AWS: `live` behind the WebSocket API's routes, and
//! `live-fanout` on the tables' DynamoDB streams. The local stack runs the
//! same code: the routes on its API port (`/live`), the fan-out on moto's streams.

pub mod fanout;
pub mod protocol;
pub mod sessions;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use canopy::adapters::aws::apigateway::ApiGatewayPoster;
use canopy::adapters::aws::cognito::CognitoVerifier;
use canopy::adapters::aws::dynamodb::{self, DynamoConnectionStore, DynamoDirectory, DynamoStateTable};
use canopy::domain::access::{AccessPolicy, VehicleGroups};
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::live::{CachedConnections, ConnectionPoster, ConnectionStore, TokenVerifier};
use canopy::ports::state::LatestStateStore;
use canopy::runtime::env::{self, EnvError};

use crate::fanout::{Change, Fanout};
use crate::sessions::{Refused, Sessions};

/// Configuration from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONNECTIONS_TABLE`: open connections and their subscriptions.
    pub connections_table: String,
    /// `STATE_TABLE`: where a subscription's snapshot is read.
    pub state_table: String,
    /// `FLEET_INDEX_TABLE` (the routes' only): the fleet's directory, which
    /// vehicles a fleet snapshot holds.
    pub fleet_index_table: Option<String>,
    /// `USER_POOL_ID`: whose access tokens are taken; unset where nobody
    /// signs in (the local stack).
    pub user_pool_id: Option<String>,
    /// `COGNITO_CLIENT_IDS`: the pool's app clients whose tokens are taken (comma-separated).
    pub client_ids: BTreeSet<String>,
    /// `AWS_REGION` (Lambda sets it): the pool's region, in its issuer.
    pub region: String,
    /// `COGNITO_JWKS_URL` (optional): where the pool's keys are read when it
    /// is not AWS's (moto's, in tests); by default the pool's own JWKS.
    pub jwks_url: Option<String>,
    /// `VEHICLE_GROUPS`: as the API's.
    pub vehicle_groups: VehicleGroups,
    /// `LIVE_ENDPOINT`: the WebSocket API stage's management URL.
    pub endpoint: Option<String>,
    /// `LIVE_INTERVAL_MS` (default 1000): at most one message per connection per interval.
    pub interval: Duration,
}

impl Config {
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        let interval_ms: u64 = env::parse_or(vars, "LIVE_INTERVAL_MS", 1000)?;
        if !(100..=10_000).contains(&interval_ms) {
            return Err(EnvError {
                name: "LIVE_INTERVAL_MS".into(),
                problem: format!("{interval_ms} is outside 100..=10000"),
            });
        }
        let optional = |name: &str| vars.var(name).filter(|v| !v.trim().is_empty());
        let user_pool_id = optional("USER_POOL_ID");
        let client_ids: BTreeSet<String> = env::or(vars, "COGNITO_CLIENT_IDS", "")
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Self {
            connections_table: env::required(vars, "CONNECTIONS_TABLE")?,
            state_table: env::required(vars, "STATE_TABLE")?,
            fleet_index_table: optional("FLEET_INDEX_TABLE"),
            region: env::or(vars, "AWS_REGION", "us-east-1"),
            jwks_url: optional("COGNITO_JWKS_URL"),
            client_ids,
            user_pool_id,
            vehicle_groups: VehicleGroups::parse(&env::or(vars, "VEHICLE_GROUPS", "")).map_err(|problem| EnvError {
                name: "VEHICLE_GROUPS".into(),
                problem,
            })?,
            endpoint: optional("LIVE_ENDPOINT"),
            interval: Duration::from_millis(interval_ms),
        })
    }

    /// The fleet index table, which the routes need.
    pub fn directory(&self) -> Result<&str, EnvError> {
        self.fleet_index_table.as_deref().ok_or_else(|| EnvError {
            name: "FLEET_INDEX_TABLE".into(),
            problem: "is not set: a fleet subscription's snapshot lists the fleet from it".into(),
        })
    }

    pub fn access(&self) -> AccessPolicy {
        AccessPolicy {
            vehicle_groups: self.vehicle_groups.clone(),
            identity_required: self.user_pool_id.is_some(),
        }
    }
}

/// Two hours: API Gateway closes a WebSocket connection after that.
pub const CONNECTION_TTL_S: i64 = 2 * 3600;

/// The deployed adapters.
pub type AwsSessions = Sessions<
    CachedConnections<DynamoConnectionStore>,
    ApiGatewayPoster,
    DynamoStateTable,
    CognitoVerifier,
    DynamoDirectory,
>;
pub type AwsFanout = Fanout<CachedConnections<DynamoConnectionStore>, ApiGatewayPoster>;

/// The two services on AWS, built from the environment.
pub struct Live;

impl Live {
    fn poster(config: &Config, sdk: &aws_config::SdkConfig) -> Result<ApiGatewayPoster, EnvError> {
        let endpoint = config.endpoint.as_deref().ok_or_else(|| EnvError {
            name: "LIVE_ENDPOINT".into(),
            problem: "is not set".into(),
        })?;
        Ok(ApiGatewayPoster::new(sdk, endpoint))
    }

    pub fn sessions(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<AwsSessions, EnvError> {
        let config = Config::from_vars(vars)?;
        let fleet_index_table = config.directory()?;
        let client = dynamodb::client(sdk);
        Ok(Sessions {
            connections: CachedConnections::new(DynamoConnectionStore::new(client.clone(), &config.connections_table)),
            poster: Self::poster(&config, sdk)?,
            state: DynamoStateTable::new(client.clone(), &config.state_table),
            directory: DynamoDirectory::new(client, fleet_index_table),
            verifier: match config.user_pool_id.as_deref() {
                Some(_) if config.client_ids.is_empty() => {
                    return Err(EnvError {
                        name: "COGNITO_CLIENT_IDS".into(),
                        problem: "is empty: with USER_POOL_ID set, name the app clients whose tokens the stream takes"
                            .into(),
                    });
                }
                Some(pool) => Some(
                    CognitoVerifier::new(&config.region, pool, config.client_ids.clone(), config.jwks_url.clone())
                        .map_err(|e| EnvError {
                            name: "USER_POOL_ID".into(),
                            problem: format!("the HTTPS client for the pool's keys: {e}"),
                        })?,
                ),
                None => None,
            },
            access: config.access(),
            ttl_s: CONNECTION_TTL_S,
        })
    }

    pub fn fanout(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<AwsFanout, EnvError> {
        let config = Config::from_vars(vars)?;
        Ok(Fanout::new(
            CachedConnections::new(DynamoConnectionStore::new(
                dynamodb::client(sdk),
                &config.connections_table,
            )),
            Self::poster(&config, sdk)?,
            config.access(),
            config.interval,
        ))
    }
}

fn response(status: i64, body: &str) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = Some(body.to_string().into());
    r
}

/// One WebSocket API event ($connect, $disconnect, a message) through the sessions.
pub async fn handle_route<C, P, S, V, D>(
    sessions: &Sessions<C, P, S, V, D>,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse
where
    C: ConnectionStore,
    P: ConnectionPoster,
    S: LatestStateStore,
    V: TokenVerifier,
    D: VehicleDirectory,
{
    let context = &event.request_context;
    let Some(id) = context.connection_id.as_deref() else {
        return response(400, "no connection id");
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let outcome = match context.route_key.as_deref() {
        Some("$connect") => {
            let token = event.query_string_parameters.first("token");
            match sessions.connect(id, token, now_ms).await {
                Ok(()) => Ok(()),
                Err(Refused::Unauthenticated(m)) => return response(401, &m),
                Err(Refused::Forbidden(m)) => return response(403, &m),
                Err(Refused::TooMany(m)) => return response(429, &m),
                Err(Refused::Table(e)) => Err(e),
            }
        }
        Some("$disconnect") => sessions.disconnect(id).await,
        _ => sessions.message(id, event.body.as_deref().unwrap_or(""), now_ms).await,
    };
    match outcome {
        Ok(()) => response(200, ""),
        Err(e) => {
            tracing::error!(error = %e, connection = %id, "live route failed");
            response(500, "the live stream failed for a moment; connect again")
        }
    }
}

/// The changes of a stream batch: state writes and new alerts, from the
/// records' new images (a removed item, or an alert log's cooldown window,
/// changes nothing a client sees).
pub fn changes_of(event: &StreamEvent) -> Vec<Change> {
    event
        .records
        .iter()
        .filter(|r| r.event_name != "REMOVE")
        .filter_map(|r| Change::from_image(&serde_json::to_value(&r.change.new_image).ok()?))
        .collect()
}
