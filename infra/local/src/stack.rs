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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::ScalarAttributeType;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter, QueueConfiguration,
    S3KeyFilter,
};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use canopy::adapters::aws::dynamodb::{DynamoAlertLog, DynamoDeviceStateTable, DynamoLedger, DynamoStateTable};
use canopy::adapters::aws::iot::IotPublisher;
use canopy::adapters::aws::s3::S3Store;
use canopy::adapters::aws::sns::SnsNotifier;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::state::LatestStateStore;
use canopy::runtime::metrics::MetricsSink;
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_decoder::event::{DecoderEvent, DecoderResponse};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::basic_ingest::LOCAL_PREFIX;
use crate::resources::{TableSpec, create_table};
use crate::services::{Moto, free_port, moto_server_path};
use crate::template::{ACCOUNT, REGION, RuleTarget, Template, queue_url};
use canopy_rules::TopicRule;

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

/// Faults a test injects into the functions' invocations.
#[derive(Default, Debug)]
pub struct InvocationFaults {
    /// Invocations still to kill, and how long each runs before it is.
    kill: std::sync::Mutex<(u32, Duration)>,
}

impl InvocationFaults {
    /// Kills the next `count` queue invocations still running `after` they
    /// start, as a Lambda runtime dies mid-batch (a timeout, out of memory):
    /// whatever the handler did by then stays done, nothing of the batch is
    /// deleted, and every record comes back after the visibility timeout.
    pub fn kill_next(&self, count: u32, after: Duration) {
        *self.kill.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (count, after);
    }

    /// How long the next invocation may run, when it is to be killed.
    fn deadline(&self) -> Option<Duration> {
        let kill = self.kill.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (kill.0 > 0).then_some(kill.1)
    }

    fn killed(&self) {
        let mut kill = self.kill.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kill.0 = kill.0.saturating_sub(1);
    }
}

/// What the stack has done, for summaries, tests and `make cost`.
#[derive(Default, Debug)]
pub struct StackCounters {
    pub mqtt_messages: AtomicU64,
    /// Of them, sent through the broker (billed as messaging), in IoT Core's 5 KB units.
    pub broker_units: AtomicU64,
    /// Of them, sent by Basic Ingest (not billed as messaging).
    pub basic_ingest_messages: AtomicU64,
    /// Rules whose topic filter a message matched, in 5 KB units (IoT Core bills each).
    pub rules_triggered_units: AtomicU64,
    /// Rule actions run, in 5 KB units.
    pub rule_action_units: AtomicU64,
    pub rule_matches: AtomicU64,
    pub invocations: AtomicU64,
    pub failed_invocations: AtomicU64,
    /// Invocations [`InvocationFaults`] killed mid-batch.
    pub killed_invocations: AtomicU64,
    pub records_retried: AtomicU64,
    /// Asynchronous invocations (the rules' Lambda actions) started and not
    /// yet done, retries included: pending work, as queued messages are.
    pub async_in_flight: AtomicU64,
    /// Invocations and their durations, by function (logical id).
    pub functions: std::sync::Mutex<BTreeMap<String, FunctionUse>>,
}

/// A function's invocations and their billed time (each rounded up to 1 ms, as Lambda bills).
#[derive(Default, Debug, Clone, Copy, PartialEq)]
pub struct FunctionUse {
    pub invocations: u64,
    pub billed_ms: u64,
}

impl StackCounters {
    pub fn invoked(&self, function: &str, took: Duration) {
        if let Ok(mut functions) = self.functions.lock() {
            let f = functions.entry(function.to_string()).or_default();
            f.invocations += 1;
            f.billed_ms += took.as_nanos().div_ceil(1_000_000) as u64;
        }
    }
}

/// IoT Core meters messages, rules and actions in 5 KB units.
pub fn iot_units(payload_bytes: usize) -> u64 {
    payload_bytes.div_ceil(5 * 1024).max(1) as u64
}

/// A function's handler, built by the same constructor as its Lambda's `main.rs`.
enum Handler {
    Decoder(Box<canopy_decoder::Decoder<S3Store>>),
    Telemetry(canopy_telemetry::TelemetryHandler<DynamoStateTable, DynamoDeviceStateTable, DynamoLedger, S3Store>),
    Alerts(canopy_alerts::AlertsHandler<DynamoAlertLog, SnsNotifier, IotPublisher, DynamoDeviceStateTable>),
}

impl Handler {
    /// An SQS event source's batch; the ids of the messages to retry.
    async fn invoke_batch(&self, event: SqsEvent) -> Result<Vec<String>, String> {
        let response = match self {
            Handler::Decoder(h) => match h.handle(DecoderEvent::Sqs(event)).await {
                Ok(DecoderResponse::Batch(response)) => response,
                Ok(DecoderResponse::Decoded { .. }) => {
                    return Err("the decoder answered a batch as a notification".into());
                }
                Err(e) => return Err(e.to_string()),
            },
            Handler::Telemetry(h) => h.handle(event).await,
            Handler::Alerts(_) => return Err("the alerts function has no queue".into()),
        };
        Ok(response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect())
    }

    /// An asynchronous invocation (an IoT rule's, a schedule's) with `event`.
    async fn invoke_event(&self, event: Value) -> Result<(), String> {
        match self {
            Handler::Alerts(h) => h.handle(event).await.map(|_| ()).map_err(|e| e.to_string()),
            _ => Err("only the alerts function is invoked asynchronously".into()),
        }
    }
}

/// Lambda retries a failed asynchronous invocation after a minute, then
/// after two more; here after a second and two, so a test sees the retries.
const ASYNC_RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// A function of the template and its handler, invoked as Lambda invokes it.
struct LocalFunction {
    logical_id: String,
    handler: Handler,
    /// An invocation still running after this long is stopped (its `Timeout`).
    timeout: Option<Duration>,
    /// Retries of a failed asynchronous invocation.
    async_retries: u32,
    /// Where an asynchronous event goes once its retries are spent.
    dead_letter_queue: Option<String>,
}

impl LocalFunction {
    /// `work` under the function's timeout; `None` when it ran out.
    async fn within_timeout<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, work).await.ok(),
            None => Some(work.await),
        }
    }

    /// One attempt of an asynchronous invocation, timed and counted.
    async fn attempt_event(&self, event: &Value, counters: &StackCounters) -> Result<(), String> {
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let outcome = self
            .within_timeout(self.handler.invoke_event(event.clone()))
            .await
            .unwrap_or_else(|| Err(format!("timed out after {:?}", self.timeout.unwrap_or_default())));
        counters.invoked(&self.logical_id, started.elapsed());
        if outcome.is_err() {
            counters.failed_invocations.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

/// Lambda's asynchronous invocation, as an IoT rule's Lambda action makes
/// it: the caller does not wait; a failed attempt is retried as the
/// function's `EventInvokeConfig` says, and an event whose retries are spent
/// goes to the function's dead-letter queue.
fn invoke_async(function: Arc<LocalFunction>, event: Value, sqs: aws_sdk_sqs::Client, counters: Arc<StackCounters>) {
    counters.async_in_flight.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        run_async(&function, &event, &sqs, &counters).await;
        counters.async_in_flight.fetch_sub(1, Ordering::SeqCst);
    });
}

/// One asynchronous event through its attempts, then to the dead-letter queue.
async fn run_async(function: &LocalFunction, event: &Value, sqs: &aws_sdk_sqs::Client, counters: &StackCounters) {
    let mut attempt = 0usize;
    let error = loop {
        match function.attempt_event(event, counters).await {
            Ok(()) => return,
            Err(e) if attempt < function.async_retries as usize => {
                warn!(function = %function.logical_id, error = %e, attempt, "asynchronous invocation failed; retrying");
                let delay = ASYNC_RETRY_DELAYS[attempt.min(ASYNC_RETRY_DELAYS.len() - 1)];
                attempt += 1;
                tokio::time::sleep(delay).await;
            }
            Err(e) => break e,
        }
    };
    let Some(queue) = &function.dead_letter_queue else {
        tracing::error!(function = %function.logical_id, %error, "asynchronous invocation failed and its retries are spent; the event is dropped");
        return;
    };
    tracing::error!(function = %function.logical_id, %error, %queue, "asynchronous invocation failed and its retries are spent; the event goes to the dead-letter queue");
    let sent = sqs
        .send_message()
        .queue_url(queue_url(queue))
        .message_body(event.to_string())
        .send()
        .await;
    if let Err(e) = sent {
        tracing::error!(function = %function.logical_id, %queue, error = %canopy::adapters::aws::error_text(&e), "the dead-letter queue did not take the event; it is lost");
    }
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
        let mut handlers: BTreeMap<String, Arc<LocalFunction>> = BTreeMap::new();
        for f in &template.functions {
            if let Some(handler) = handler(&f.binary, &f.environment, &functions_sdk)? {
                let function = LocalFunction {
                    logical_id: f.logical_id.clone(),
                    handler,
                    timeout: f.timeout,
                    async_retries: f.async_retries,
                    dead_letter_queue: f.dead_letter_queue.clone(),
                };
                handlers.insert(f.logical_id.clone(), Arc::new(function));
            }
        }

        let mut tasks = Vec::new();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        for f in &template.functions {
            let Some(h) = handlers.get(&f.logical_id) else { continue };
            if let (Some(every), Handler::Alerts(_)) = (f.every, &h.handler) {
                tasks.push(tokio::spawn(run_alerts_schedule(h.clone(), every, counters.clone())));
            }
            for (queue, batch, window) in &f.queues {
                let source = EventSource {
                    queue: queue.clone(),
                    batch: *batch,
                    window: if options.batching_windows {
                        *window
                    } else {
                        Duration::ZERO
                    },
                };
                tasks.push(tokio::spawn(poll_queue(
                    sqs.clone(),
                    source,
                    h.clone(),
                    counters.clone(),
                    faults.clone(),
                )));
            }
        }
        for f in template.functions.iter().filter(|f| f.binary == "compactor") {
            if let Some(every) = f.every {
                let compactor = canopy_decoder::compact::Compactor::from_env(&f.environment, &functions_sdk)?;
                tasks.push(tokio::spawn(run_schedule(
                    f.logical_id.clone(),
                    compactor,
                    every,
                    counters.clone(),
                )));
            }
        }
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
        for (what, listening) in ready {
            match tokio::time::timeout(READY_WITHIN, listening).await {
                Ok(Ok(())) => {}
                _ => bail!("{what} did not start within {READY_WITHIN:?}"),
            }
        }

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

fn handler(binary: &str, env: &BTreeMap<String, String>, sdk: &aws_config::SdkConfig) -> Result<Option<Handler>> {
    let sink = MetricsSink::Log;
    Ok(Some(match binary {
        "decoder" => Handler::Decoder(Box::new(
            canopy_decoder::Decoder::from_env(env, sdk)?.with_metrics(sink),
        )),
        "telemetry" => Handler::Telemetry(canopy_telemetry::TelemetryHandler::from_env(env, sdk)?.with_metrics(sink)),
        "alerts" => Handler::Alerts(canopy_alerts::AlertsHandler::from_env(env, sdk)?.with_metrics(sink)),
        // Served over HTTP instead (serve_api); the live stream's fan-out
        // runs on its tables' streams (start_live).
        "api" | "ingest" | "live" | "live-fanout" => return Ok(None),
        // Run on its schedule instead (run_schedule).
        "compactor" => return Ok(None),
        other => bail!("the template's function binary {other:?} has no local handler"),
    }))
}

/// The compactor's schedule: a run as of now, every `every`, as EventBridge
/// would invoke it; a failed run is logged and the next one redoes it.
async fn run_schedule(
    function: String,
    compactor: canopy_decoder::compact::Compactor<S3Store>,
    every: std::time::Duration,
    counters: Arc<StackCounters>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        let outcome = compactor.run(chrono::Utc::now().timestamp_micros()).await;
        counters.invoked(&function, started.elapsed());
        match outcome {
            Ok(report) => {
                info!(
                    compacted = report.compacted.len(),
                    deleted = report.deleted,
                    failed = report.failed.len(),
                    quarantined = report.quarantined.len(),
                    "compaction run"
                );
                for (unit, error) in &report.failed {
                    warn!(unit = %unit.describe(), %error, "a unit failed to compact; it is tried again next run");
                }
            }
            Err(e) => warn!(error = %e, "compaction run failed"),
        }
    }
}

/// The alerts function's schedule (its silence check), invoked every
/// `every` with the event EventBridge sends.
async fn run_alerts_schedule(function: Arc<LocalFunction>, every: Duration, counters: Arc<StackCounters>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let event = serde_json::json!({
            "source": "aws.events",
            "detail-type": "Scheduled Event",
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "detail": {},
        });
        // The next tick runs the check again: no retry, as for a schedule's missed run.
        if let Err(e) = function.attempt_event(&event, &counters).await {
            warn!(function = %function.logical_id, error = %e, "scheduled run failed");
        }
    }
}

/// [`Stack::redrive`] for a stack already running on `sdk`'s endpoint.
pub async fn redrive_queue(template: &Template, sdk: &aws_config::SdkConfig, dead_letter_queue: &str) -> Result<u64> {
    let source = template
        .queues
        .iter()
        .find(|q| q.redrive.as_ref().is_some_and(|(dlq, _)| dlq == dead_letter_queue))
        .with_context(|| format!("no queue of the template sends its dead letters to {dead_letter_queue}"))?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    crate::redrive::redrive(&sqs, &queue_url(dead_letter_queue), &queue_url(&source.name)).await
}

/// Creates the template's tables, queues, topics and buckets in moto; the data bucket's name.
async fn create_resources(
    template: &Template,
    sdk: &aws_config::SdkConfig,
    visibility_timeout_s: Option<u64>,
) -> Result<String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    for t in &template.tables {
        let spec = TableSpec {
            name: &t.name,
            hash: (&t.hash.0, ScalarAttributeType::from(t.hash.1.as_str())),
            range: t
                .range
                .as_ref()
                .map(|(n, k)| (n.as_str(), ScalarAttributeType::from(k.as_str()))),
            ttl: t.ttl.as_deref(),
            stream: t.stream,
        };
        create_table(&dynamodb, &spec).await?;
    }
    let sqs = aws_sdk_sqs::Client::new(sdk);
    // Dead-letter queues first: the others name them.
    let mut queues = template.queues.clone();
    queues.sort_by_key(|q| q.redrive.is_some());
    for q in &queues {
        let mut request = sqs.create_queue().queue_name(&q.name);
        if let Some(timeout) = visibility_timeout_s.or(q.visibility_timeout_s) {
            request = request.attributes(QueueAttributeName::VisibilityTimeout, timeout.to_string());
        }
        if let Some((dlq, count)) = &q.redrive {
            let policy = json!({"deadLetterTargetArn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{dlq}"), "maxReceiveCount": count});
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        request
            .send()
            .await
            .with_context(|| format!("creating queue {}", q.name))?;
    }
    let sns = aws_sdk_sns::Client::new(sdk);
    for topic in &template.topics {
        crate::resources::create_topic(&sns, topic).await?;
    }
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build());
    let mut data_bucket = None;
    for b in &template.buckets {
        s3.create_bucket()
            .bucket(&b.name)
            .send()
            .await
            .with_context(|| format!("creating bucket {}", b.name))?;
        if b.notifications.is_empty() {
            continue;
        }
        let mut configuration = NotificationConfiguration::builder();
        for (queue, prefix, suffix) in &b.notifications {
            let rules = [(FilterRuleName::Prefix, prefix), (FilterRuleName::Suffix, suffix)]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(name, value)| FilterRule::builder().name(name).value(value).build())
                .collect::<Vec<_>>();
            configuration = configuration.queue_configurations(
                QueueConfiguration::builder()
                    .queue_arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"))
                    .events(Event::from("s3:ObjectCreated:*"))
                    .filter(
                        NotificationConfigurationFilter::builder()
                            .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                            .build(),
                    )
                    .build()?,
            );
        }
        s3.put_bucket_notification_configuration()
            .bucket(&b.name)
            .notification_configuration(configuration.build())
            .send()
            .await
            .with_context(|| format!("notifications of bucket {}", b.name))?;
        data_bucket = Some(b.name.clone());
    }
    data_bucket.ok_or_else(|| anyhow!("the template has no bucket with notifications (the data bucket)"))
}

/// Lambda's SQS event source mapping: batches of up to `batch`, the records
/// the handler reports failed stay in the queue (back after the visibility
/// timeout, to the dead-letter queue after maxReceiveCount).
async fn poll_queue(
    sqs: aws_sdk_sqs::Client,
    EventSource { queue, batch, window }: EventSource,
    function: Arc<LocalFunction>,
    counters: Arc<StackCounters>,
    faults: Arc<InvocationFaults>,
) {
    let url = queue_url(&queue);
    let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}");
    loop {
        let messages = receive_batch(&sqs, &url, batch, window).await;
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| sqs_record(m, &arn)).collect();
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let kill_after = faults.deadline();
        let invocation = function.handler.invoke_batch(event);
        let outcome = match kill_after {
            Some(after) => tokio::time::timeout(after, invocation).await.ok(),
            None => function.within_timeout(invocation).await,
        };
        counters.invoked(&function.logical_id, started.elapsed());
        let Some(outcome) = outcome else {
            if kill_after.is_some() {
                faults.killed();
                counters.killed_invocations.fetch_add(1, Ordering::Relaxed);
                warn!(%queue, "invocation killed mid-batch; the whole batch returns to the queue");
            } else {
                counters.failed_invocations.fetch_add(1, Ordering::Relaxed);
                warn!(%queue, timeout = ?function.timeout, "invocation timed out; the whole batch returns to the queue");
            }
            continue;
        };
        let failed: Vec<String> = match outcome {
            Ok(failed) => failed,
            Err(e) => {
                counters.failed_invocations.fetch_add(1, Ordering::Relaxed);
                warn!(%queue, error = %e, "invocation failed; the whole batch returns to the queue");
                messages
                    .iter()
                    .filter_map(|m| m.message_id().map(str::to_string))
                    .collect()
            }
        };
        counters
            .records_retried
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        let done: Vec<&aws_sdk_sqs::types::Message> = messages
            .iter()
            .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
            .collect();
        delete(&sqs, &url, &done).await;
    }
}

/// Up to `batch` messages: a long poll for the first, then whatever is waiting.
/// A function's SQS event source mapping.
struct EventSource {
    queue: String,
    batch: usize,
    /// How long a batch is held for more messages (its MaximumBatchingWindowInSeconds).
    window: Duration,
}

/// Up to `batch` messages; with a batching `window`, gathered until the
/// batch is full or the window since the first one has passed, as Lambda does.
async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    batch: usize,
    window: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut messages = Vec::new();
    let mut first = None::<std::time::Instant>;
    while messages.len() < batch {
        let open = first.is_some_and(|at: std::time::Instant| at.elapsed() < window);
        let wait = if messages.is_empty() || open { 1 } else { 0 };
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages((batch - messages.len()).min(10) as i32)
            .wait_time_seconds(wait)
            .send()
            .await;
        match received {
            Ok(r) if !r.messages().is_empty() => {
                first.get_or_insert_with(std::time::Instant::now);
                messages.extend(r.messages.unwrap_or_default());
            }
            Ok(_) if open => {}
            Ok(_) => break,
            Err(e) => {
                warn!(%url, error = %canopy::adapters::aws::error_text(&e), "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
        }
    }
    messages
}

/// Deletes handled messages, ten at a time; a failed delete only means a redelivery.
async fn delete(sqs: &aws_sdk_sqs::Client, url: &str, done: &[&aws_sdk_sqs::types::Message]) {
    for chunk in done.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        if let Err(e) = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            warn!(%url, error = %canopy::adapters::aws::error_text(&e), "delete failed; the messages will be delivered again");
        }
    }
}

/// A received message as Lambda's event source mapping hands it over.
fn sqs_record(m: &aws_sdk_sqs::types::Message, arn: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id().map(str::to_string);
    record.receipt_handle = m.receipt_handle().map(str::to_string);
    record.body = m.body().map(str::to_string);
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some(arn.to_string());
    record.aws_region = Some(REGION.into());
    record
}

/// IoT Core's rules engine: every message on the broker through every
/// rule, and a Basic Ingest message through the rule it names alone. A
/// rule's name here is its logical id (in AWS, `Ref` gives a generated one).
/// `subscribed` is told once the broker acknowledged every subscription.
fn run_rules(
    template: Template,
    mqtt: SocketAddr,
    sqs: aws_sdk_sqs::Client,
    functions: BTreeMap<String, Arc<LocalFunction>>,
    counters: Arc<StackCounters>,
    subscribed: tokio::sync::oneshot::Sender<()>,
) -> Result<impl Future<Output = ()>> {
    let rules: Vec<Rule> = template
        .rules
        .iter()
        .map(|r| {
            TopicRule::parse(&r.sql)
                .map(|sql| Rule {
                    name: r.logical_id.clone(),
                    sql,
                    targets: r.targets.clone(),
                    error_queue: r.error_queue.clone(),
                })
                .with_context(|| format!("topic rule {}", r.logical_id))
        })
        .collect::<Result<_>>()?;
    let mut options = MqttOptions::new("canopy-local-rules", mqtt.ip().to_string(), mqtt.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(options, 1024);
    let filters: Vec<String> = rules
        .iter()
        .flat_map(|r| [r.sql.topic_filter.clone(), format!("{LOCAL_PREFIX}{}/#", r.name)])
        .collect();
    let actions = RuleActions {
        sqs,
        functions,
        counters: counters.clone(),
    };
    Ok(async move {
        let mut subscribed = Some(subscribed);
        let mut acknowledged = 0;
        loop {
            match events.poll().await {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    acknowledged = 0;
                    for filter in &filters {
                        if let Err(e) = client.subscribe(filter, QoS::AtLeastOnce).await {
                            warn!(%filter, error = %e, "subscribe failed");
                        }
                    }
                }
                Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                    acknowledged += 1;
                    if acknowledged == filters.len()
                        && let Some(subscribed) = subscribed.take()
                    {
                        let _ = subscribed.send(());
                    }
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    counters.mqtt_messages.fetch_add(1, Ordering::Relaxed);
                    let units = iot_units(p.payload.len());
                    let now_ms = chrono::Utc::now().timestamp_millis();
                    let (only, topic) = match crate::basic_ingest::split(&p.topic) {
                        Some((rule, topic)) => {
                            counters.basic_ingest_messages.fetch_add(1, Ordering::Relaxed);
                            (Some(rule), topic)
                        }
                        None => {
                            counters.broker_units.fetch_add(units, Ordering::Relaxed);
                            (None, p.topic.as_str())
                        }
                    };
                    for rule in rules.iter().filter(|r| only.is_none_or(|o| o == r.name)) {
                        if canopy_rules::topic_matches(&rule.sql.topic_filter, topic) {
                            counters.rules_triggered_units.fetch_add(units, Ordering::Relaxed);
                        }
                        let Some(message) = rule.sql.apply(topic, &p.payload, now_ms) else {
                            continue;
                        };
                        counters.rule_matches.fetch_add(1, Ordering::Relaxed);
                        counters
                            .rule_action_units
                            .fetch_add(units * rule.targets.len() as u64, Ordering::Relaxed);
                        actions.run(rule, topic, &p.payload, &message).await;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "rules engine lost the broker; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
}

/// A topic rule of the template, its SQL parsed.
struct Rule {
    name: String,
    sql: TopicRule,
    targets: Vec<RuleTarget>,
    error_queue: Option<String>,
}

/// What a rule's actions reach.
struct RuleActions {
    sqs: aws_sdk_sqs::Client,
    functions: BTreeMap<String, Arc<LocalFunction>>,
    counters: Arc<StackCounters>,
}

impl RuleActions {
    /// Runs each of `rule`'s actions on the message it selected. A Lambda
    /// action is an asynchronous invocation (Lambda retries it); an SQS
    /// action that fails sends IoT's error message to the rule's error action.
    async fn run(&self, rule: &Rule, topic: &str, payload: &[u8], message: &Value) {
        for target in &rule.targets {
            match target {
                RuleTarget::Queue(queue) => {
                    let sent = self
                        .sqs
                        .send_message()
                        .queue_url(queue_url(queue))
                        .message_body(message.to_string())
                        .send()
                        .await;
                    if let Err(e) = sent {
                        let error = canopy::adapters::aws::error_text(&e);
                        warn!(rule = %rule.name, %queue, %error, "rule action failed");
                        self.error_action(rule, topic, payload, &format!("SqsAction {queue}"), &error)
                            .await;
                    }
                }
                RuleTarget::Function(id) => match self.functions.get(id) {
                    Some(function) => invoke_async(
                        function.clone(),
                        message.clone(),
                        self.sqs.clone(),
                        self.counters.clone(),
                    ),
                    None => warn!(function = %id, "rule targets a function without a local handler"),
                },
            }
        }
    }

    /// The rule's error action: IoT's error message, the original payload in base64.
    async fn error_action(&self, rule: &Rule, topic: &str, payload: &[u8], action: &str, error: &str) {
        use base64::Engine as _;
        let Some(queue) = &rule.error_queue else {
            tracing::error!(rule = %rule.name, "an action failed and the rule has no error action; the message is lost");
            return;
        };
        let body = json!({
            "ruleName": rule.name,
            "topic": topic,
            "clientId": "",
            "base64OriginalPayload": base64::engine::general_purpose::STANDARD.encode(payload),
            "failures": [{"failedAction": action, "failedResource": action, "errorMessage": error}],
        });
        let sent = self
            .sqs
            .send_message()
            .queue_url(queue_url(queue))
            .message_body(body.to_string())
            .send()
            .await;
        if let Err(e) = sent {
            tracing::error!(rule = %rule.name, %queue, error = %canopy::adapters::aws::error_text(&e), "the error action failed too; the message is lost");
        }
    }
}

/// The live stream: its sessions behind the API's `/live`, and its fan-out
/// on the streams of the tables the template's `live-fanout` function reads,
/// polled as often as Lambda polls a stream (four times a second, here ten).
fn start_live(
    template: &Template,
    sdk: &aws_config::SdkConfig,
    tasks: &mut Vec<JoinHandle<()>>,
    ready: &mut Vec<(String, tokio::sync::oneshot::Receiver<()>)>,
) -> Result<Option<Arc<crate::live::LocalLive>>> {
    let Some(fanout) = template.functions.iter().find(|f| f.binary == "live-fanout") else {
        return Ok(None);
    };
    let live = Arc::new(
        crate::live::LocalLive::new(&fanout.environment, sdk)
            .with_context(|| format!("function {}", fanout.logical_id))?,
    );
    for source in &fanout.streams {
        let (tx, rx) = tokio::sync::oneshot::channel();
        ready.push((format!("the stream of {}", source.table), rx));
        tasks.push(tokio::spawn(crate::live::poll_stream(
            live.clone(),
            sdk.clone(),
            source.clone(),
            Duration::from_millis(100),
            tx,
        )));
    }
    tasks.push(tokio::spawn(crate::live::flush_held(
        live.clone(),
        Duration::from_millis(50),
    )));
    Ok(Some(live))
}

async fn serve_api(
    template: &Template,
    sdk: &aws_config::SdkConfig,
    endpoint: &str,
    bucket: &str,
    port: u16,
    live: Option<Arc<crate::live::LocalLive>>,
    mqtt: SocketAddr,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let f = template
        .functions
        .iter()
        .find(|f| f.binary == "api")
        .ok_or_else(|| anyhow!("the template has no api function"))?;
    let mut config = canopy_api::Config::from_vars(&f.environment)?;
    // There is no sign-in here: the console calls the API as it is.
    config.console.auth = None;
    // The live stream is this server's own `/live` (the console finds it there).
    config.console.live_url = None;
    let history = DataFusionHistory::s3(endpoint, bucket).await?;
    let api = canopy_api::Api::with_history(&config, sdk, history)?;
    let mut app = canopy_api::router(Arc::new(api));
    // API Gateway serves the ingest function's route on the API's URL; so does this port.
    if let Some(f) = template.functions.iter().find(|f| f.binary == "ingest") {
        // IoT Core's data plane is the broker here: the alerts rule it publishes to runs on it.
        let publisher = crate::basic_ingest::BrokerPublisher::connect(mqtt, "canopy-local-ingest")
            .await
            .map_err(|e| anyhow!("function {}: {e}", f.logical_id))?;
        let ingest = canopy_ingest::Ingest::from_env_with(&f.environment, sdk, publisher)
            .with_context(|| format!("function {}", f.logical_id))?;
        app = app.merge(canopy_ingest::router::router(Arc::new(ingest)));
    }
    // The WebSocket API has its own URL in AWS; here it is the API's `/live`.
    if let Some(live) = live {
        app = app.merge(crate::live::router(live));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // The peer's address: the ingest route counts failed keys per address.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "API server stopped");
        }
    });
    Ok((address, task))
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
    let table = stack
        .template
        .function("AlertsFunction")
        .and_then(|f| f.environment.get("ALERTS_TABLE").cloned())
        .unwrap_or_else(|| "AlertsTable".into());
    let log = DynamoAlertLog::new(canopy::adapters::aws::dynamodb::client(&stack.sdk), &table);
    Ok(log.alerts(stream, 100, None).await?)
}

/// The repository's template.yaml, found from the working directory upwards.
pub fn find_template(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("template.yaml"))
        .find(|p| p.is_file())
}
