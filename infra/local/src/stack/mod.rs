//! The local stack running: moto and an MQTT broker on loopback, the
//! template's resources created in moto under their local names, every SQS
//! event source polled into its function's handler (as Lambda's event source
//! mappings do, with partial batch failures), the IoT topic rules evaluated on
//! the MQTT stream, and the API router served with DataFusion for history,
//! with the ingest function's `POST /ingest` on the same port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use canopy::adapters::aws::dynamodb::{DynamoAlertLog, DynamoDeviceStateTable, DynamoStateTable};
use canopy::ports::alert_log::AlertLog;
use canopy::ports::state::LatestStateStore;
use tokio::task::JoinHandle;
use tracing::info;

use crate::services::{Moto, free_port, moto_server_path};
use crate::template::{REGION, Template, queue_url};

mod api;
mod counters;
mod functions;
mod provision;
mod queues;
mod rules;

use api::{serve_api, start_live};
pub use counters::{FunctionUse, InvocationFaults, StackCounters, iot_units};
use functions::{local_functions, spawn_schedules};
use provision::create_resources;
use queues::EventSources;
pub use queues::redrive_queue;
use rules::run_rules;

/// How long the stack's own parts may take to start listening.
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct StackOptions {
    pub template: PathBuf,
    /// A moto server already running; else one is started.
    pub moto_endpoint: Option<String>,
    /// The MQTT broker's port; 0 picks a free one.
    pub mqtt_port: u16,
    /// The API's port; 0 picks a free one.
    pub api_port: u16,
    /// Every queue's visibility timeout instead of the template's: a test
    /// sees a failing message reach its dead-letter queue in seconds.
    pub visibility_timeout_s: Option<u64>,
    /// Where the functions (and the API) reach AWS, when not where moto is:
    /// a proxy a test takes down plays an outage between the functions and
    /// the services, while IoT Core's and Lambda's own parts (the rules
    /// engine, the event source mappings) keep reaching moto, as in AWS.
    pub functions_endpoint: Option<String>,
    /// Hold SQS batches for their event source's MaximumBatchingWindowInSeconds,
    /// as Lambda does (`make cost`: a batch is an archive PUT); off, a batch
    /// goes as soon as messages are there, so latency tests measure the code.
    pub batching_windows: bool,
}

pub struct Stack {
    pub endpoint: String,
    pub mqtt: SocketAddr,
    pub api: SocketAddr,
    pub bucket: String,
    pub template: Template,
    pub template_path: PathBuf,
    pub sdk: aws_config::SdkConfig,
    pub counters: Arc<StackCounters>,
    pub faults: Arc<InvocationFaults>,
    /// The live stream, when the template has its functions.
    pub live: Option<Arc<crate::live::LocalLive>>,
    tasks: Vec<JoinHandle<()>>,
    _moto: Option<Moto>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Waits for each part that must listen before anything is written, naming
/// the one that did not.
async fn wait_ready(ready: Vec<(String, tokio::sync::oneshot::Receiver<()>)>) -> Result<()> {
    for (what, listening) in ready {
        match tokio::time::timeout(READY_WITHIN, listening).await {
            Ok(Ok(())) => {}
            _ => bail!("{what} did not start within {READY_WITHIN:?}"),
        }
    }
    Ok(())
}

impl Stack {
    pub async fn start(options: StackOptions) -> Result<Stack> {
        let template = Template::load(&options.template)?;
        let (moto, endpoint) = match options.moto_endpoint {
            Some(endpoint) => (None, endpoint),
            None => {
                let moto = Moto::start(&moto_server_path())?;
                let endpoint = moto.endpoint.clone();
                (Some(moto), endpoint)
            }
        };
        let port = if options.mqtt_port == 0 {
            free_port()?
        } else {
            options.mqtt_port
        };
        let mqtt: SocketAddr = ([127, 0, 0, 1], port).into();
        crate::broker::spawn(mqtt)?;
        crate::broker::wait_listening(mqtt)?;

        let sdk = crate::services::sdk_config(&endpoint).await;
        let bucket = create_resources(&template, &sdk, options.visibility_timeout_s).await?;
        let functions_endpoint = options.functions_endpoint.clone().unwrap_or_else(|| endpoint.clone());
        let functions_sdk = crate::services::sdk_config(&functions_endpoint).await;
        let counters = Arc::new(StackCounters::default());
        let faults = Arc::new(InvocationFaults::default());
        let handlers = local_functions(&template, &functions_sdk)?;
        let mut tasks = Vec::new();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let sources = EventSources {
            sqs: &sqs,
            counters: &counters,
            faults: &faults,
            batching_windows: options.batching_windows,
        };
        sources.spawn(&template, &handlers, &mut tasks);
        spawn_schedules(&template, &handlers, &functions_sdk, &counters, &mut tasks)?;
        // What must be listening before a test or a vehicle may write: the
        // stream readers and the rules engine's subscriptions.
        let mut ready = Vec::new();
        let live = start_live(&template, &functions_sdk, &mut tasks, &mut ready)?;
        let (subscribed, rules_ready) = tokio::sync::oneshot::channel();
        ready.push(("the rules engine's subscriptions".to_string(), rules_ready));
        tasks.push(tokio::spawn(run_rules(
            template.clone(),
            mqtt,
            sqs.clone(),
            handlers,
            counters.clone(),
            subscribed,
        )?));
        wait_ready(ready).await?;

        let api = serve_api(
            &template,
            &functions_sdk,
            &functions_endpoint,
            &bucket,
            options.api_port,
            live.clone(),
            mqtt,
        )
        .await?;
        tasks.push(api.1);
        info!(%endpoint, %mqtt, api = %api.0, %bucket, "local stack up");
        Ok(Stack {
            endpoint,
            mqtt,
            api: api.0,
            bucket,
            template,
            template_path: options.template.clone(),
            sdk,
            counters,
            faults,
            live,
            tasks,
            _moto: moto,
        })
    }

    /// The folder of the template (the repository).
    pub fn template_dir(&self) -> PathBuf {
        self.template_path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// The environment a function of the template gets here (for `make watch`).
    pub fn environment(&self, logical_id: &str) -> Option<BTreeMap<String, String>> {
        let mut env = self.template.function(logical_id)?.environment.clone();
        env.insert("AWS_ENDPOINT_URL".into(), self.endpoint.clone());
        env.insert("AWS_REGION".into(), REGION.into());
        env.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
        env.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
        Some(env)
    }

    /// Moves the dead letters of `dead_letter_queue` (a template name, like
    /// `RawObjectsDeadLetterQueue`) back to the queue that sends it them.
    pub async fn redrive(&self, dead_letter_queue: &str) -> Result<u64> {
        redrive_queue(&self.template, &self.sdk, dead_letter_queue).await
    }

    /// Messages waiting or in flight in every queue: zero when the pipeline is idle.
    pub async fn queued(&self) -> Result<u64> {
        Ok(self.queued_by_queue().await?.values().sum())
    }

    /// [`Self::queued`] per queue (dead-letter queues, which rest, left out).
    pub async fn queued_by_queue(&self) -> Result<BTreeMap<String, u64>> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut queued = BTreeMap::new();
        for q in &self.template.queues {
            if q.redrive.is_none()
                && self
                    .template
                    .queues
                    .iter()
                    .any(|o| o.redrive.as_ref().is_some_and(|r| r.0 == q.name))
            {
                continue; // a dead-letter queue: resting, not pending
            }
            let attributes = sqs
                .get_queue_attributes()
                .queue_url(queue_url(&q.name))
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .with_context(|| format!("queue {}", q.name))?;
            let count = attributes
                .attributes()
                .into_iter()
                .flat_map(|a| a.values())
                .map(|value| value.parse::<u64>().unwrap_or(0))
                .sum();
            queued.insert(q.name.clone(), count);
        }
        Ok(queued)
    }
}

/// The device-state table, as the telemetry function is configured.
pub fn device_state_table(stack: &Stack) -> DynamoDeviceStateTable {
    let table = stack
        .template
        .function("TelemetryFunction")
        .and_then(|f| f.environment.get("DEVICE_STATE_TABLE").cloned())
        .unwrap_or_else(|| "DeviceStateTable".into());
    DynamoDeviceStateTable::new(canopy::adapters::aws::dynamodb::client(&stack.sdk), &table)
}

/// The latest-state table, as the telemetry function is configured.
pub fn state_table(stack: &Stack) -> DynamoStateTable {
    let table = stack
        .template
        .function("TelemetryFunction")
        .and_then(|f| f.environment.get("STATE_TABLE").cloned())
        .unwrap_or_else(|| "StateTable".into());
    DynamoStateTable::new(canopy::adapters::aws::dynamodb::client(&stack.sdk), &table)
}

pub async fn latest_states(stack: &Stack) -> Result<Vec<canopy::ports::state::LatestState>> {
    let table = state_table(stack);
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = table.list(100, after.as_deref()).await?;
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// The alert log of `stream`: a vehicle id, or a device's `<kind>/<id>`.
pub async fn alerts_of(stack: &Stack, stream: &str) -> Result<Vec<canopy::domain::alert::Alert>> {
    let table = |variable: &str, default: &str| {
        (stack.template.function("AlertsFunction"))
            .and_then(|f| f.environment.get(variable).cloned())
            .unwrap_or_else(|| default.into())
    };
    let log = DynamoAlertLog::new(
        canopy::adapters::aws::dynamodb::client(&stack.sdk),
        &table("ALERTS_TABLE", "AlertsTable"),
        &table("FLEET_INDEX_TABLE", "FleetIndexTable"),
    );
    Ok(log.alerts(stream, 100, None).await?)
}

/// The repository's template.yaml, found from the working directory upwards.
pub fn find_template(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("template.yaml"))
        .find(|p| p.is_file())
}
