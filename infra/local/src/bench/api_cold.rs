//! The first chart of an API function that has just started, as a user in
//! AWS waits for it: the release `api` binary (the AWS wiring: the lake
//! reader over `object_store`'s S3 client, the SDK's DynamoDB client), started
//! with the stack's environment and a runtime API that hands it one HTTP API
//! event, a day's chart of PackCurrent to 2,000 points. Its S3 requests go to
//! moto through a [`LatencyProxy`] playing S3 (25 ms to the first byte,
//! 100 MB/s), its other AWS requests through one playing DynamoDB (8 ms).
//!
//! Timed from process start (the init: configuration, SDK clients) to the
//! answer posted back, each run a new process: nothing kept from the one
//! before. What Lambda itself spends creating the sandbox comes before and
//! is not ours to measure.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use canopy::domain::access::ADMIN_GROUP;
use canopy::domain::device_id::DeviceId;
use canopy::format::dbc::Database;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::api::{DAY_START_US, DAY_US, POINTS, lay_out_day};
use super::latency_proxy::LatencyProxy;
use super::s3_model::Latency;
use crate::stack::Stack;

/// The first chart's target, init included.
pub const TARGET_MS: f64 = 700.0;

/// DynamoDB from Lambda in the same region, as `make bench-fleet` models it.
const DYNAMODB: Latency = Latency {
    first_byte: Duration::from_millis(8),
    bytes_per_s: 100_000_000,
};

/// A start that has not answered in this long has hung.
const GIVE_UP: Duration = Duration::from_secs(30);

/// How to time the API function's cold starts.
pub struct ColdStart<'a> {
    pub stack: &'a Stack,
    /// The release `api` binary.
    pub binary: &'a Path,
    pub runs: usize,
}

/// What the cold starts gave, in ms, each list sorted.
#[derive(Debug, Clone)]
pub struct ColdAnswer {
    layout: String,
    /// Process start → its first request for an event.
    init_ms: Vec<f64>,
    /// Process start → the chart's answer posted.
    total_ms: Vec<f64>,
    /// S3 requests of one start (the catalog's DBC and the chart).
    s3_requests: u64,
    other_requests: u64,
}

impl ColdAnswer {
    /// The slowest start: with a handful of runs, the p95 there is.
    pub fn total_ms(&self) -> f64 {
        self.total_ms.last().copied().unwrap_or(f64::INFINITY)
    }

    /// The summary's line.
    pub fn line(&self, verdict: &str) -> String {
        let median = |v: &[f64]| v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
        format!(
            "first chart after a cold start ({}), init included: S3 model p95 {:.1} ms (p50 {:.1} ms, of it init {:.1} ms), \
             {} S3 requests and {} DynamoDB requests, {} runs; target < {TARGET_MS:.0} ms: {verdict}",
            self.layout,
            self.total_ms(),
            median(&self.total_ms),
            median(&self.init_ms),
            self.s3_requests,
            self.other_requests,
            self.total_ms.len(),
        )
    }
}

impl ColdStart<'_> {
    /// Lays out a day as compaction leaves it at 23:xx in the stack's
    /// bucket, then starts the function `runs` times.
    pub async fn measure(&self, db: &Database, vehicle: &DeviceId) -> Result<ColdAnswer> {
        let dir = tempfile::tempdir()?;
        let layout = lay_out_day(db, dir.path(), vehicle)?;
        let uploaded = upload(self.stack, dir.path()).await?;
        let function = (self.stack.template.functions.iter())
            .find(|f| f.binary == "api")
            .context("the template has no function of binary api")?;
        let mut env = self.stack.environment(&function.logical_id).unwrap_or_default();
        let s3 = LatencyProxy::start(&self.stack.endpoint, Latency::AWS).await?;
        let other = LatencyProxy::start(&self.stack.endpoint, DYNAMODB).await?;
        env.insert("AWS_ENDPOINT_URL".into(), other.endpoint.clone());
        env.insert("AWS_ENDPOINT_URL_S3".into(), s3.endpoint.clone());
        env.insert("AWS_ALLOW_HTTP".into(), "true".into());
        let mut answer = ColdAnswer {
            layout: format!("{layout}, {uploaded} objects in moto"),
            init_ms: Vec::new(),
            total_ms: Vec::new(),
            s3_requests: 0,
            other_requests: 0,
        };
        for _ in 0..self.runs.max(1) {
            let (s3_before, other_before) = (s3.requests(), other.requests());
            let start = first_chart(self.binary, &env, &chart_event(vehicle)).await?;
            answer.init_ms.push(start.init.as_secs_f64() * 1e3);
            answer.total_ms.push(start.answered.as_secs_f64() * 1e3);
            answer.s3_requests = s3.requests() - s3_before;
            answer.other_requests = other.requests() - other_before;
        }
        answer.init_ms.sort_by(f64::total_cmp);
        answer.total_ms.sort_by(f64::total_cmp);
        Ok(answer)
    }
}

/// Every tier object under `root` put in the stack's bucket under its key
/// (the decoded objects stay out: a day's chart reads a tier).
async fn upload(stack: &Stack, root: &Path) -> Result<usize> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let key = path.strip_prefix(root)?.to_string_lossy().into_owned();
                if key.starts_with("rollup_") {
                    files.push((key, path));
                }
            }
        }
    }
    let s3 = aws_sdk_s3::Client::new(&stack.sdk);
    let count = files.len();
    let mut puts = futures::stream::iter(files.into_iter().map(|(key, path)| {
        let s3 = s3.clone();
        let bucket = stack.bucket.clone();
        async move {
            let body = aws_sdk_s3::primitives::ByteStream::from(std::fs::read(&path)?);
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(body)
                .send()
                .await
                .with_context(|| format!("putting {key}"))?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(16);
    while let Some(put) = puts.next().await {
        put?;
    }
    Ok(count)
}

/// The console's first chart of a vehicle: PackCurrent over the day, 2,000
/// points, asked by a fleet admin, as API Gateway's HTTP API hands it over
/// after its JWT authorizer.
fn chart_event(vehicle: &DeviceId) -> Value {
    let time = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let path = format!("/vehicles/{vehicle}/signals/BMS_PackStatus/PackCurrent");
    let query = format!(
        "from={}&to={}&max_points={POINTS}",
        time(DAY_START_US),
        time(DAY_START_US + DAY_US)
    );
    json!({
        "version": "2.0", "routeKey": "ANY /{proxy+}", "rawPath": path, "rawQueryString": query,
        "headers": {"host": "abc.execute-api.us-east-1.amazonaws.com", "accept": "application/json"},
        "requestContext": {
            "routeKey": "ANY /{proxy+}", "accountId": "123456789012", "stage": "$default", "requestId": "cold-start",
            "authorizer": {"jwt": {
                "claims": {"sub": "bench", "cognito:groups": format!("[{ADMIN_GROUP}]"), "token_use": "access"},
                "scopes": ["aws.cognito.signin.user.admin"]
            }},
            "apiId": "abc", "domainName": "abc.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc",
            "time": "07/Dec/2026:21:00:00 +0000", "timeEpoch": 1_796_677_200_000i64,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "bench"}
        },
        "isBase64Encoded": false
    })
}

/// One start: when it asked for its first event, and when it answered it.
struct Start {
    init: Duration,
    answered: Duration,
}

/// The function's answer: when it came and its body, or the error it posted.
type Answer = Result<(Duration, Bytes), String>;

/// What the runtime API saw of one process.
struct Runtime {
    started: Instant,
    event: String,
    init: Mutex<Option<oneshot::Sender<Duration>>>,
    answer: Mutex<Option<oneshot::Sender<Answer>>>,
}

impl Runtime {
    fn send_answer(&self, answer: Answer) {
        let sender = self
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            sender.send(answer).ok();
        }
    }
}

/// Lambda's runtime API, for one event: the first `next` gets `event`, the
/// others wait forever (the process is stopped once it has answered).
fn runtime_api(runtime: Arc<Runtime>) -> Router {
    async fn next(State(rt): State<Arc<Runtime>>) -> (HeaderMap, String) {
        let first = rt.init.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let Some(first) = first else {
            std::future::pending::<()>().await;
            unreachable!("a pending future never ends");
        };
        first.send(rt.started.elapsed()).ok();
        let mut headers = HeaderMap::new();
        let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
        headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("cold-start"));
        headers.insert(
            "lambda-runtime-deadline-ms",
            HeaderValue::from_str(&deadline.to_string()).unwrap_or(HeaderValue::from_static("0")),
        );
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:api"),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            HeaderValue::from_static("Root=1-00000000-000000000000000000000000;Sampled=0"),
        );
        (headers, rt.event.clone())
    }
    async fn response(State(rt): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
        rt.send_answer(Ok((rt.started.elapsed(), body)));
        StatusCode::ACCEPTED
    }
    async fn error(State(rt): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
        rt.send_answer(Err(String::from_utf8_lossy(&body).into_owned()));
        StatusCode::ACCEPTED
    }
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(runtime)
}

/// Starts `binary` with `env`, hands it `event` and waits for its answer,
/// which must be a chart of [`POINTS`] points.
async fn first_chart(binary: &Path, env: &BTreeMap<String, String>, event: &Value) -> Result<Start> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (init_tx, init_rx) = oneshot::channel();
    let (answer_tx, answer_rx) = oneshot::channel();
    let started = Instant::now();
    let runtime = Arc::new(Runtime {
        started,
        event: event.to_string(),
        init: Mutex::new(Some(init_tx)),
        answer: Mutex::new(Some(answer_tx)),
    });
    let server = tokio::spawn(async move { axum::serve(listener, runtime_api(runtime)).await });
    let mut child = tokio::process::Command::new(binary)
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/api")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let outcome = tokio::select! {
        answer = tokio::time::timeout(GIVE_UP, answer_rx) => answer,
        status = child.wait() => bail!("{} exited before answering ({})", binary.display(), status?),
    };
    child.kill().await.ok();
    server.abort();
    let (answered, body) = match outcome {
        Ok(Ok(Ok(answer))) => answer,
        Ok(Ok(Err(error))) => bail!("the function failed: {error}"),
        _ => bail!("no answer within {GIVE_UP:?}"),
    };
    let init = init_rx.await.context("it answered without asking for the event")?;
    let response: Value = serde_json::from_slice(&body).context("the function's answer")?;
    let status = response["statusCode"].as_u64();
    let chart: Value = serde_json::from_str(response["body"].as_str().unwrap_or_default())
        .with_context(|| format!("the answer's body (status {status:?})"))?;
    let points = chart["series"]["points"].as_array().map_or(0, Vec::len);
    if status != Some(200) || points != POINTS {
        bail!("status {status:?}, {points} points: {chart}");
    }
    Ok(Start { init, answered })
}
