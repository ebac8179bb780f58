//! The `alerts` Lambda: the IoT rules invoke it with telemetry that trips a
//! rule and with every device status (a station's, judged by its kind's
//! declaration); a schedule invokes it to find silent devices, to mark the
//! vehicles unheard for too long silent in the fleet's counts, and to end
//! the alerting of vehicles that tripped no rule for a while. It raises
//! the alerts through SNS, the alert log, and the vehicle's or device's
//! alert topic, once per vehicle or device and rule per cooldown.
//!
//! - [`Config`]: its environment, validated at start-up.
//! - [`AlertsHandler`]: the handler, built by [`AlertsHandler::from_env`]
//!   (the Lambda's `main.rs` and the local stack call the same constructor).
//! - [`raise`]: the work, knowing nothing of Lambda.

pub mod raise;

use std::future::Future;
use std::time::{Duration, Instant};

use canopy::adapters::aws::dynamodb::{self, DynamoAlertLog, DynamoDeviceStateTable, DynamoDirectory};
use canopy::adapters::aws::iot::IotPublisher;
use canopy::adapters::aws::sns::SnsNotifier;
use canopy::domain::access::VehicleGroups;
use canopy::domain::alert::{self, Rule};
use canopy::domain::device::DeviceRecord;
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kind;
use canopy::domain::kind::Kinds;
use canopy::domain::standing::{DEFAULT_SILENT_AFTER_MS, Standing, calm_before, heard_bucket, silent_before};
use canopy::domain::telemetry::ClockBounds;
use canopy::domain::telemetry::Telemetry;
use canopy::format::device::TOPIC_KIND;
use canopy::format::telemetry::{Message, SERVER_FIELDS, TOPIC_VEHICLE_ID};
use canopy::ports::alert_log::AlertLog;
use canopy::ports::device_state::DeviceStateStore;
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::messaging::{DevicePublisher, Notifier};
use canopy::runtime::env::{self, EnvError};
use canopy::runtime::metrics::{Metrics, MetricsSink, Unit};
use futures::future::try_join_all;
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::raise::{RaiseError, Raised, Raiser};

#[derive(Debug, Clone)]
pub struct Config {
    /// `ALERTS_TABLE`: the alert log and cooldowns.
    pub table: String,
    /// `ALERT_TOPIC_ARN`: the SNS topic people subscribe to.
    pub topic_arn: String,
    /// `DEVICE_STATE_TABLE`: the devices a silence check reads.
    pub device_state_table: String,
    /// `FLEET_INDEX_TABLE`: the fleet's alert feeds, and its directory.
    pub index_table: String,
    /// `VEHICLE_SILENT_AFTER_SECONDS` (default 900): how long a vehicle goes
    /// unheard before the fleet counts it silent.
    pub silent_after_ms: i64,
    /// `VEHICLE_GROUPS` (optional, as the API's): each group's feed gets its vehicles' alerts.
    pub groups: VehicleGroups,
    pub rules: Vec<Rule>,
    /// `ALERT_RETENTION_DAYS`: how long the log keeps an alert.
    pub retention: Duration,
    /// `MAX_CLOCK_AHEAD_SECONDS`, `MAX_MESSAGE_AGE_SECONDS`: how far a
    /// message's `ts` may be from the time IoT Core received it.
    pub clock: ClockBounds,
}

impl Config {
    /// Rules from `ALERT_RULES` (a JSON array of rules) or, when unset, the
    /// vehicle kind's rules as `kinds/vehicle.toml` declares them, with the
    /// thresholds of their `threshold_variable`s (`OVER_TEMPERATURE_C`,
    /// `LOW_SOC_PCT`, `CELL_IMBALANCE_V`) and the cooldown
    /// `ALERT_COOLDOWN_SECONDS` set where given.
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        let rules = match vars.var("ALERT_RULES").filter(|s| !s.trim().is_empty()) {
            Some(json) => serde_json::from_str::<Vec<Rule>>(&json).map_err(|e| EnvError {
                name: "ALERT_RULES".into(),
                problem: format!("not a JSON array of rules: {e}"),
            })?,
            None => {
                let mut rules = alert::vehicle_rules_with(|variable| env::parse(vars, variable))?;
                // One cooldown for every rule where it is set; each declared one otherwise.
                if let Some(seconds) = env::parse::<u64>(vars, "ALERT_COOLDOWN_SECONDS")? {
                    for rule in &mut rules {
                        rule.cooldown = Duration::from_secs(seconds);
                    }
                }
                rules
            }
        };
        let days: u64 = env::parse_or(vars, "ALERT_RETENTION_DAYS", 90)?;
        Ok(Self {
            table: env::required(vars, "ALERTS_TABLE")?,
            topic_arn: env::required(vars, "ALERT_TOPIC_ARN")?,
            device_state_table: env::required(vars, "DEVICE_STATE_TABLE")?,
            index_table: env::required(vars, "FLEET_INDEX_TABLE")?,
            silent_after_ms: env::parse_or(vars, "VEHICLE_SILENT_AFTER_SECONDS", DEFAULT_SILENT_AFTER_MS / 1000)?
                * 1000,
            groups: VehicleGroups::parse(&env::or(vars, "VEHICLE_GROUPS", "")).map_err(|problem| EnvError {
                name: "VEHICLE_GROUPS".into(),
                problem,
            })?,
            rules,
            retention: Duration::from_secs(days * 24 * 3600),
            clock: env::clock_bounds(vars)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AlertError(String);

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AlertsResponse {
    /// The message was not valid telemetry: answered, not failed (a retry would not make it valid).
    Rejected { rejected: String },
    Raised {
        sent: u64,
        suppressed: u64,
        already_sent: u64,
    },
}

/// Devices or vehicles a check reads per page of a heard or alerting index.
const SILENCE_PAGE: usize = 100;
/// Pages of unheard vehicles one check marks at most; the rest wait a minute.
const MAX_SILENCE_PAGES: usize = 100;

/// The handler: one telemetry message or device status as an IoT rule
/// delivers it, or a scheduled silence check.
pub struct AlertsHandler<A, N, D, S, R> {
    raiser: Raiser<A, N, D>,
    devices: S,
    directory: R,
    silent_after_ms: i64,
    kinds: Kinds,
    clock: ClockBounds,
    metrics: MetricsSink,
}

impl AlertsHandler<DynamoAlertLog, SnsNotifier, IotPublisher, DynamoDeviceStateTable, DynamoDirectory> {
    /// The function as deployed: configuration from `vars`, DynamoDB, SNS and IoT Core.
    pub fn from_env(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<Self, EnvError> {
        let config = Config::from_vars(vars)?;
        let client = dynamodb::client(sdk);
        let raiser = Raiser {
            log: DynamoAlertLog::new(client.clone(), &config.table, &config.index_table),
            notifier: SnsNotifier::new(sdk, &config.topic_arn),
            device: IotPublisher::new(sdk),
            rules: config.rules,
            retention: config.retention,
            groups: config.groups,
        };
        let devices = DynamoDeviceStateTable::new(client.clone(), &config.device_state_table);
        let directory = DynamoDirectory::new(client, &config.index_table);
        Ok(Self::new(raiser, devices, directory)
            .with_clock(config.clock)
            .with_silent_after(config.silent_after_ms))
    }
}

impl<A: AlertLog, N: Notifier, D: DevicePublisher, S: DeviceStateStore, R: VehicleDirectory>
    AlertsHandler<A, N, D, S, R>
{
    pub fn new(raiser: Raiser<A, N, D>, devices: S, directory: R) -> Self {
        Self {
            raiser,
            devices,
            directory,
            silent_after_ms: DEFAULT_SILENT_AFTER_MS,
            kinds: Kinds::builtin(),
            clock: ClockBounds::default(),
            metrics: MetricsSink::default(),
        }
    }

    pub fn with_clock(mut self, clock: ClockBounds) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_silent_after(mut self, silent_after_ms: i64) -> Self {
        self.silent_after_ms = silent_after_ms;
        self
    }

    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
    }

    /// Handles one message or a scheduled check. A failure to send fails
    /// the invocation, so Lambda retries it; the cooldown keeps the retry
    /// from sending twice.
    pub async fn handle(&self, event: Value) -> Result<AlertsResponse, AlertError> {
        let started = Instant::now();
        let mut metrics = Metrics::new("alerts");
        let now_ms = chrono::Utc::now().timestamp_millis();
        let raised = if is_schedule(&event) {
            self.check_silence(now_ms).await
        } else if event.get(TOPIC_KIND).is_some() && event.get(TOPIC_VEHICLE_ID).is_none() {
            let checked = DeviceRecord::from_json(&self.kinds, &event)
                .and_then(|r| r.check_clock(self.clock, now_ms).map(|()| r));
            match checked {
                Ok(r) => match self.kinds.get(&r.kind) {
                    Some(kind) => self.raiser.raise_device(kind, &r, now_ms).await,
                    None => return Err(AlertError(format!("kind {} validated but not declared", r.kind))),
                },
                Err(rejection) => return Ok(self.rejected(&rejection.reason, metrics)),
            }
        } else {
            // A v1 message is one sample; of a v2 message, the valid samples count.
            let checked = Message::from_json(&event).and_then(|m| m.within_clock(self.clock, now_ms).into_valid());
            match checked {
                Ok(samples) => match self.mark_alerting(&samples).await {
                    Ok(()) => self.raiser.raise_samples(&samples, now_ms).await,
                    Err(e) => Err(RaiseError {
                        alert: "vehicles#alerting".into(),
                        message: e.to_string(),
                    }),
                },
                Err(rejection) => return Ok(self.rejected(&rejection.reason, metrics)),
            }
        };
        metrics.add(
            "DurationMs",
            started.elapsed().as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        );
        match raised {
            Ok(r) => {
                metrics
                    .count("AlertsSent", r.sent)
                    .count("AlertsSuppressed", r.suppressed)
                    .count("AlertsAlreadySent", r.already_sent)
                    .count("VehicleNotifyFailures", r.vehicle_notify_failures)
                    .emit(self.metrics);
                Ok(AlertsResponse::Raised {
                    sent: r.sent,
                    suppressed: r.suppressed,
                    already_sent: r.already_sent,
                })
            }
            Err(e) => {
                metrics.count("AlertFailures", 1).emit(self.metrics);
                Err(AlertError(e.to_string()))
            }
        }
    }

    fn rejected(&self, reason: &str, mut metrics: Metrics) -> AlertsResponse {
        warn!(%reason, "message rejected");
        metrics.count("MessagesRejected", 1).emit(self.metrics);
        AlertsResponse::Rejected {
            rejected: reason.to_string(),
        }
    }

    /// Every declared kind's silence rules over its devices that may have
    /// gone silent; the vehicles that fell silent marked so in the fleet's
    /// counts, and those that calmed down no longer alerting.
    async fn check_silence(&self, now_ms: i64) -> Result<Raised, RaiseError> {
        let silenced = self.silence_vehicles(now_ms).await.map_err(|e| RaiseError {
            alert: "vehicles#silence".into(),
            message: e.to_string(),
        })?;
        if silenced > 0 {
            info!(silenced, "vehicles marked silent");
        }
        let calmed = self.calm_vehicles(now_ms).await.map_err(|e| RaiseError {
            alert: "vehicles#alerting".into(),
            message: e.to_string(),
        })?;
        if calmed > 0 {
            info!(calmed, "vehicles no longer alerting");
        }
        let mut total = Raised::default();
        for kind in self.kinds.iter() {
            total.add(&self.silence_devices(kind, now_ms).await?);
        }
        Ok(total)
    }

    /// Raises the silence alerts of `kind`'s devices, reading its heard
    /// index for the devices last heard before its shortest silence rule
    /// (eight queries when none was), not every device of the kind. A device
    /// leaves the index once even its longest silence was told, until it is
    /// heard again; one whose alert a cooldown held back stays, to be told
    /// once the cooldown ends.
    async fn silence_devices(&self, kind: &Kind, now_ms: i64) -> Result<Raised, RaiseError> {
        let afters: Vec<i64> = kind
            .silent_rules()
            .map(|(_, after)| i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
            .collect();
        let (Some(&shortest), Some(&longest)) = (afters.iter().min(), afters.iter().max()) else {
            return Ok(Raised::default());
        };
        let failed = |e: canopy::ports::TableError| RaiseError {
            alert: format!("{}/*#silence", kind.name),
            message: e.to_string(),
        };
        // The step `shortest` ago included: a device heard early in it may be silent already.
        let before = heard_bucket(now_ms.saturating_sub(shortest)) + 1;
        let mut total = Raised::default();
        let mut after: Option<(i64, DeviceId)> = None;
        for _ in 0..MAX_SILENCE_PAGES {
            let page = self
                .devices
                .unheard(
                    &kind.name,
                    before,
                    after.as_ref().map(|(step, id)| (*step, id)),
                    SILENCE_PAGE,
                )
                .await
                .map_err(failed)?;
            let states = try_join_all(page.iter().map(|(id, _)| self.devices.get(&kind.name, id.as_str())))
                .await
                .map_err(failed)?;
            for ((id, step), state) in page.iter().zip(states) {
                let state = match state {
                    Some(state) if state.heard_step() == *step => state,
                    // Filed at a step it left (a write that failed halfway), or gone.
                    other => {
                        let now_at = other.map(|s| s.heard_step());
                        self.devices
                            .refile(&kind.name, id, *step, now_at)
                            .await
                            .map_err(failed)?;
                        continue;
                    }
                };
                let r = self
                    .raiser
                    .raise_silent(kind, std::slice::from_ref(&state), now_ms)
                    .await?;
                if now_ms - state.heard_at_ms() > longest && r.suppressed == 0 {
                    self.devices.refile(&kind.name, id, *step, None).await.map_err(failed)?;
                }
                total.add(&r);
            }
            match page.last() {
                Some((id, step)) if page.len() == SILENCE_PAGE => after = Some((*step, id.clone())),
                _ => break,
            }
        }
        Ok(total)
    }
}

impl<A, N, D, S, R: VehicleDirectory> AlertsHandler<A, N, D, S, R> {
    /// Marks the vehicle alerting in the fleet's counts and listings when a
    /// sample trips a rule, whether or not its cooldown lets an alert out
    /// (the vehicle is alerting all the same). Before the alert is raised,
    /// so a retry after a failure marks it again (a second mark writes nothing).
    async fn mark_alerting(&self, samples: &[Telemetry]) -> Result<(), canopy::ports::TableError> {
        let Some(tripped) = samples
            .iter()
            .find(|t| !alert::evaluate(&self.raiser.rules, t).is_empty())
        else {
            return Ok(());
        };
        let views = self.raiser.groups.views_of(tripped.vehicle_id.as_str());
        self.directory
            .alerted(&tripped.vehicle_id, &views, Standing::of(tripped))
            .await?;
        Ok(())
    }

    /// Ends the alerting of the vehicles that tripped no rule within
    /// [`canopy::domain::standing::ALERTING_FOR_MS`], reading the alerting
    /// index (earliest first), not the fleet; how many it ended.
    async fn calm_vehicles(&self, now_ms: i64) -> Result<u64, canopy::ports::TableError> {
        let before = calm_before(now_ms);
        // False when it tripped a rule since: it left this step of the index.
        sweep(
            |limit| self.directory.calming(before, limit),
            |vehicle, step| async move { self.directory.calm(&vehicle, step).await },
        )
        .await
    }

    /// Marks silent the vehicles last heard before the allowance, reading the
    /// heard index (the vehicles not silent yet, longest unheard first), not
    /// the fleet; how many it marked.
    async fn silence_vehicles(&self, now_ms: i64) -> Result<u64, canopy::ports::TableError> {
        let before = silent_before(now_ms, self.silent_after_ms);
        // False when it was heard since: it left this step of the index.
        sweep(
            |limit| self.directory.unheard(before, limit),
            |vehicle, step| async move { self.directory.silence(&vehicle, step).await },
        )
        .await
    }
}

/// Acts on each (vehicle, step) an index holds before some step, a page at a
/// time until a page comes back short (or [`MAX_SILENCE_PAGES`] pages):
/// acting takes a vehicle out of the page, so each page starts from the
/// index's start again. How many times `act` changed something.
async fn sweep<Found, Acted>(
    find: impl Fn(usize) -> Found,
    act: impl Fn(DeviceId, i64) -> Acted,
) -> Result<u64, canopy::ports::TableError>
where
    Found: Future<Output = Result<Vec<(DeviceId, i64)>, canopy::ports::TableError>>,
    Acted: Future<Output = Result<bool, canopy::ports::TableError>>,
{
    let mut changed = 0;
    for _ in 0..MAX_SILENCE_PAGES {
        let page = find(SILENCE_PAGE).await?;
        let full = page.len() == SILENCE_PAGE;
        for (vehicle, step) in page {
            if act(vehicle, step).await? {
                changed += 1;
            }
        }
        if !full {
            break;
        }
    }
    Ok(changed)
}

/// An EventBridge schedule's event (what the silence check runs on). A
/// message through an IoT rule always carries the rule's topic fields, which
/// no payload may bring itself, so no device can make its message look like one.
fn is_schedule(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        && SERVER_FIELDS.iter().all(|field| event.get(field).is_none())
}

#[cfg(test)]
mod tests {
    use canopy::adapters::memory::{
        MemoryAlertLog, MemoryDevicePublisher, MemoryDeviceStateTable, MemoryDirectory, MemoryNotifier,
    };
    use canopy::domain::access::View;
    use canopy::domain::device_id::DeviceId;
    use canopy::domain::standing::{Standing, Status, heard_bucket};

    use super::*;

    #[tokio::test]
    async fn the_sample_events_are_answered() {
        let vars = std::collections::BTreeMap::from([
            ("ALERTS_TABLE".to_string(), "t".to_string()),
            ("ALERT_TOPIC_ARN".to_string(), "arn".to_string()),
            ("DEVICE_STATE_TABLE".to_string(), "d".to_string()),
            ("FLEET_INDEX_TABLE".to_string(), "f".to_string()),
        ]);
        let config = Config::from_vars(&vars).unwrap();
        let handler = AlertsHandler::new(
            Raiser {
                log: MemoryAlertLog::default(),
                notifier: MemoryNotifier::default(),
                device: MemoryDevicePublisher::default(),
                rules: config.rules,
                retention: config.retention,
                groups: Default::default(),
            },
            MemoryDeviceStateTable::default(),
            MemoryDirectory::default(),
        );
        let hot: Value = serde_json::from_str(include_str!("../../../events/telemetry-hot.json")).unwrap();
        assert!(matches!(
            handler.handle(hot).await.unwrap(),
            AlertsResponse::Raised { sent: 1, .. }
        ));
        // Three hot samples of one v2 message: one alert, from the first.
        let hot_v2: Value = serde_json::from_str(include_str!("../../../events/telemetry-v2-hot.json")).unwrap();
        assert!(matches!(
            handler.handle(hot_v2).await.unwrap(),
            AlertsResponse::Raised {
                sent: 1,
                suppressed: 0,
                ..
            }
        ));
        let sent = handler.raiser.notifier.sent();
        assert!(sent.last().unwrap().body.contains("61.20 °C"), "{sent:?}");
        let cool: Value = serde_json::from_str(include_str!("../../../events/telemetry.json")).unwrap();
        assert!(matches!(
            handler.handle(cool).await.unwrap(),
            AlertsResponse::Raised { sent: 0, .. }
        ));
        assert!(matches!(
            handler.handle(serde_json::json!({"v": 1})).await.unwrap(),
            AlertsResponse::Rejected { .. }
        ));
    }

    #[tokio::test]
    async fn a_vehicle_message_dressed_as_a_schedule_is_judged_as_telemetry() {
        let handler = memory_handler();
        let mut forged: Value = serde_json::from_str(include_str!("../../../events/telemetry.json")).unwrap();
        forged["source"] = serde_json::json!("aws.events");
        forged["detail-type"] = serde_json::json!("Scheduled Event");
        forged[TOPIC_VEHICLE_ID] = forged["vehicle_id"].clone();
        assert!(!is_schedule(&forged), "the rule's topic field gives it away");
        let schedule = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert!(is_schedule(&schedule));
        assert!(
            !is_schedule(&serde_json::json!({"detail-type": "Scheduled Event"})),
            "from EventBridge only"
        );
        // A device's fields beside a vehicle's: the vehicle's way, never a device's.
        let mut both = forged.clone();
        both[TOPIC_KIND] = serde_json::json!("canopy-station");
        both["topic_device_id"] = serde_json::json!("st-01");
        // Judged as a vehicle's message (and refused: `detail-type` is no field of telemetry).
        assert!(matches!(
            handler.handle(both).await.unwrap(),
            AlertsResponse::Rejected { .. }
        ));
        assert!(
            handler
                .devices
                .list("canopy-station", 10, None)
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[test]
    fn the_vehicle_rules_are_the_declared_ones_with_the_deployments_thresholds() {
        let mut vars = std::collections::BTreeMap::from([
            ("ALERTS_TABLE".to_string(), "t".to_string()),
            ("ALERT_TOPIC_ARN".to_string(), "arn".to_string()),
            ("DEVICE_STATE_TABLE".to_string(), "d".to_string()),
            ("FLEET_INDEX_TABLE".to_string(), "f".to_string()),
        ]);
        let summary = |rules: &[Rule]| -> Vec<(String, f64, u64)> {
            rules
                .iter()
                .map(|r| (r.name.clone(), r.threshold, r.cooldown.as_secs()))
                .collect()
        };
        let declared = Config::from_vars(&vars).unwrap().rules;
        assert_eq!(declared, alert::vehicle_rules());
        assert_eq!(
            summary(&declared),
            [
                ("over-temperature".into(), 60.0, 600),
                ("low-state-of-charge".into(), 10.0, 600),
                ("cell-imbalance".into(), 0.15, 600)
            ]
        );
        vars.insert("OVER_TEMPERATURE_C".into(), "70".into());
        vars.insert("CELL_IMBALANCE_V".into(), "0.2".into());
        vars.insert("ALERT_COOLDOWN_SECONDS".into(), "30".into());
        assert_eq!(
            summary(&Config::from_vars(&vars).unwrap().rules),
            [
                ("over-temperature".into(), 70.0, 30),
                ("low-state-of-charge".into(), 10.0, 30),
                ("cell-imbalance".into(), 0.2, 30)
            ]
        );
        vars.insert("LOW_SOC_PCT".into(), "low".into());
        let err = Config::from_vars(&vars).unwrap_err().to_string();
        assert!(err.contains("LOW_SOC_PCT"), "{err}");
        vars.remove("LOW_SOC_PCT");
        vars.insert("ALERT_COOLDOWN_SECONDS".into(), "soon".into());
        let err = Config::from_vars(&vars).unwrap_err().to_string();
        assert!(err.contains("ALERT_COOLDOWN_SECONDS") && err.contains("soon"), "{err}");
    }

    #[test]
    fn an_unknown_measure_in_the_rules_names_the_variable_and_the_measure() {
        let vars = std::collections::BTreeMap::from([
            ("ALERTS_TABLE".to_string(), "t".to_string()),
            ("ALERT_TOPIC_ARN".to_string(), "arn".to_string()),
            ("DEVICE_STATE_TABLE".to_string(), "d".to_string()),
            (
                "ALERT_RULES".to_string(),
                r#"[{"name":"x","measure":"oil","comparison":">","threshold":1,"severity":"info","cooldown":1}]"#
                    .to_string(),
            ),
        ]);
        let err = Config::from_vars(&vars).unwrap_err().to_string();
        assert!(
            err.contains("ALERT_RULES") && err.contains("unknown measure \"oil\""),
            "{err}"
        );
    }

    /// A station's status as the device rule delivers it, `seconds` ago.
    fn station(id: &str, seq: u64, seconds_ago: i64, available: i64, slot_temp: f64) -> Value {
        let now = chrono::Utc::now() - chrono::Duration::seconds(seconds_ago);
        serde_json::json!({"station_id": id, "ts": now.to_rfc3339(), "seq": seq, "slots": 2,
            "batteries_available": available, "charging": 2 - available, "faulted": 0, "swaps_today": 3,
            "temperature_c": 20.0, "grid_power_kw": 11.0, "slot_soc_pct": [100, 50], "slot_temp_c": [25.0, slot_temp],
            "topic_kind": "canopy-station", "topic_device_id": id, "received_at": now.timestamp_millis()})
    }

    fn memory_handler()
    -> AlertsHandler<MemoryAlertLog, MemoryNotifier, MemoryDevicePublisher, MemoryDeviceStateTable, MemoryDirectory>
    {
        AlertsHandler::new(
            Raiser {
                log: MemoryAlertLog::default(),
                notifier: MemoryNotifier::default(),
                device: MemoryDevicePublisher::default(),
                rules: Vec::new(),
                retention: Duration::from_secs(3600),
                groups: Default::default(),
            },
            MemoryDeviceStateTable::default(),
            MemoryDirectory::default(),
        )
    }

    fn counts(r: AlertsResponse) -> (u64, u64) {
        match r {
            AlertsResponse::Raised { sent, suppressed, .. } => (sent, suppressed),
            AlertsResponse::Rejected { rejected } => panic!("rejected: {rejected}"),
        }
    }

    #[tokio::test]
    async fn a_station_with_no_charged_battery_alerts_once_per_cooldown() {
        let handler = memory_handler();
        // Five statuses of an empty station within its 900 s cooldown: one alert.
        let mut sent = 0;
        for seq in 0..5 {
            sent += counts(
                handler
                    .handle(station("st-01", seq, 600 - seq as i64 * 60, 0, 30.0))
                    .await
                    .unwrap(),
            )
            .0;
        }
        assert_eq!(sent, 1);
        // Another station's window is its own; a hot slot is its own rule.
        assert_eq!(
            counts(handler.handle(station("st-02", 1, 500, 0, 30.0)).await.unwrap()),
            (1, 0)
        );
        assert_eq!(
            counts(handler.handle(station("st-03", 1, 500, 2, 58.5)).await.unwrap()),
            (1, 0)
        );
        assert_eq!(
            counts(handler.handle(station("st-04", 1, 500, 2, 30.0)).await.unwrap()),
            (0, 0)
        );
        let notes = handler.raiser.notifier.sent();
        assert!(
            notes[0]
                .body
                .starts_with("The station st-01 reported a Charged batteries ready to swap of 0.00"),
            "{}",
            notes[0].body
        );
        assert!(notes[2].subject.contains("58.5"), "{}", notes[2].subject);
        let logged = handler.raiser.log.alerts("station/st-01", 10, None).await.unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0].device_topic(), "cmd/canopy-station/st-01/alert");
        let json = serde_json::to_value(&logged[0]).unwrap();
        assert_eq!(
            (json["kind"].as_str(), json["device_id"].as_str()),
            (Some("station"), Some("st-01"))
        );
        assert!(json.get("vehicle_id").is_none());
        // A bad status is refused with its reason, not retried.
        let mut bad = station("st-05", 1, 10, 0, 30.0);
        bad["batteries_available"] = serde_json::json!(3);
        match handler.handle(bad).await.unwrap() {
            AlertsResponse::Rejected { rejected } => assert!(rejected.contains("more than slots"), "{rejected}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_check_marks_silent_the_vehicles_unheard_past_the_allowance_reading_only_those() {
        let handler = memory_handler();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let heard = |minutes_ago: i64| heard_bucket(now_ms - minutes_ago * 60_000);
        let quiet: Vec<DeviceId> = (0..250)
            .map(|n| DeviceId::new(format!("veh-q{n:03}")).unwrap())
            .collect();
        let fine = DeviceId::new("veh-fine").unwrap();
        for (vehicle, minutes_ago) in quiet.iter().map(|v| (v, 40)).chain([(&fine, 2)]) {
            let standing = Standing::new(Status::Parked, heard(minutes_ago));
            handler.directory.enter(vehicle, &[View::All], standing).await.unwrap();
        }
        let tick = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        handler.handle(tick.clone()).await.unwrap();
        let counts = handler.directory.counts(&View::All).await.unwrap();
        assert_eq!((counts.silent, counts.parked), (250, 1), "{counts:?}");
        let reads = handler.directory.faults.calls("steps_query");
        handler.handle(tick).await.unwrap();
        assert_eq!(
            handler.directory.faults.calls("steps_query") - reads,
            16,
            "the next check finds nobody new: one query per partition of the heard and the alerting index"
        );
    }

    #[tokio::test]
    async fn a_tripped_rule_marks_the_vehicle_alerting_until_the_check_finds_it_calm() {
        let mut handler = memory_handler();
        handler.raiser.rules = alert::vehicle_rules_with(|_| Ok::<_, EnvError>(None)).unwrap();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut hot: Value = serde_json::from_str(include_str!("../../../events/telemetry-hot.json")).unwrap();
        let tick = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        let alerting = || async { handler.directory.counts(&View::All).await.unwrap().alerting };
        hot["received_at"] = serde_json::json!(now_ms - 20 * 60_000);
        hot["ts"] = serde_json::json!(
            chrono::DateTime::from_timestamp_millis(now_ms - 20 * 60_000)
                .unwrap()
                .to_rfc3339()
        );
        handler.handle(hot.clone()).await.unwrap();
        assert_eq!(alerting().await, 1, "marked, and counted");
        // A retry marks nothing twice.
        handler.handle(hot.clone()).await.unwrap();
        assert_eq!(alerting().await, 1);
        handler.handle(tick.clone()).await.unwrap();
        assert_eq!(alerting().await, 0, "twenty minutes without a trip: calm");
        hot["received_at"] = serde_json::json!(now_ms);
        hot["ts"] = serde_json::json!(chrono::DateTime::from_timestamp_millis(now_ms).unwrap().to_rfc3339());
        handler.handle(hot).await.unwrap();
        handler.handle(tick).await.unwrap();
        assert_eq!(alerting().await, 1, "tripped just now: alerting still");
        let cool: Value = serde_json::from_str(include_str!("../../../events/telemetry.json")).unwrap();
        handler.handle(cool).await.unwrap();
        assert_eq!(alerting().await, 1, "a message that trips nothing does not end it");
    }

    #[tokio::test]
    async fn a_silent_station_alerts_once_a_silence_and_the_check_reads_only_stations_that_may_be_silent() {
        let handler = memory_handler();
        let kinds = Kinds::builtin();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let put = |id: String, seq: u64, seconds_ago: i64| {
            let r = DeviceRecord::from_json(&kinds, &station(&id, seq, seconds_ago, 1, 30.0)).unwrap();
            let devices = &handler.devices;
            async move { devices.put_if_newer(&r, now_ms).await.unwrap() }
        };
        for n in 0..1_000 {
            put(format!("st-{n:04}"), 1, 20).await;
        }
        put("st-quiet".into(), 1, 700).await;
        let faults = &handler.devices.faults;
        let reads = || (faults.calls("unheard_query"), faults.calls("get"), faults.calls("list"));
        let tick = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(counts(handler.handle(tick.clone()).await.unwrap()), (1, 0));
        assert_eq!(
            reads(),
            (1, 1, 0),
            "the index, then the one quiet station's state: not the thousand"
        );
        // Told: it leaves the index until heard again, so the next check reads nothing more.
        assert!(matches!(
            handler.handle(tick.clone()).await.unwrap(),
            AlertsResponse::Raised {
                sent: 0,
                already_sent: 0,
                ..
            }
        ));
        assert_eq!(reads(), (2, 1, 0));
        let log = &handler.raiser.log;
        let logged = |id: &'static str| async move { log.alerts(id, 10, None).await.unwrap().len() };
        assert_eq!(logged("station/st-quiet").await, 1);
        let note = &handler.raiser.notifier.sent()[0];
        assert!(
            note.body.contains("st-quiet has not been heard from for 7"),
            "{}",
            note.body
        );
        assert_eq!(
            logged("station/st-0000").await,
            0,
            "a station heard lately never alerts"
        );
        // Heard again, and silent again within the rule's hour of cooldown:
        // held back, and kept in the index to be told once the cooldown ends.
        put("st-quiet".into(), 2, 650).await;
        assert_eq!(counts(handler.handle(tick).await.unwrap()), (0, 1));
        // Entries before the step of the stations heard 20 s ago: a step of
        // `now_ms` itself would hold them too whenever the test runs within
        // 20 s after a step begins.
        let quiet = handler
            .devices
            .unheard("station", heard_bucket(now_ms - 20_000), None, 10)
            .await
            .unwrap();
        assert_eq!(
            quiet,
            [(DeviceId::new("st-quiet").unwrap(), heard_bucket(now_ms - 650_000))]
        );
    }

    #[tokio::test]
    async fn a_station_filed_at_a_step_it_left_is_moved_not_told() {
        let handler = memory_handler();
        let kinds = Kinds::builtin();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let r = DeviceRecord::from_json(&kinds, &station("st-1", 1, 20, 1, 30.0)).unwrap();
        handler.devices.put_if_newer(&r, now_ms).await.unwrap();
        // As a write that failed halfway leaves it: also filed an hour ago.
        let id = DeviceId::new("st-1").unwrap();
        let stale = heard_bucket(now_ms - 3_600_000);
        handler
            .devices
            .refile("station", &id, stale, Some(stale))
            .await
            .unwrap();
        let tick = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(counts(handler.handle(tick).await.unwrap()), (0, 0));
        let left = handler
            .devices
            .unheard("station", heard_bucket(now_ms) + 1, None, 10)
            .await
            .unwrap();
        assert_eq!(left, [(id, heard_bucket(now_ms - 20_000))], "only its own step is left");
    }
}
