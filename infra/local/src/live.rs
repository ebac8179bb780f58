//! The live stream on the local stack: the WebSocket API's routes on the
//! API's port (`GET /live` upgrades), and the fan-out fed from moto's
//! DynamoDB streams, as Lambda's event source mappings feed it in AWS. The
//! same sessions and fan-out code runs; the messages go to the sockets
//! themselves instead of API Gateway's management API, and nobody signs in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use canopy::adapters::aws::dynamodb::{self, DynamoConnectionStore, DynamoDirectory, DynamoStateTable};
use canopy::ports::live::{CachedConnections, ConnectionPoster, PostError};
use canopy_live::fanout::{Change, Fanout};
use canopy_live::sessions::{NoSignIn, Sessions};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::warn;

use crate::template::StreamSource;

/// Messages queued for one socket at most; past it the client is too slow
/// and misses updates (the next one carries the newest state again).
const SOCKET_QUEUE: usize = 256;

/// What goes to a socket: a text message, or the server's close.
enum Outgoing {
    Text(String),
    Close,
}

/// The open sockets, by connection id: where posts go.
#[derive(Clone, Default)]
pub struct LocalPoster {
    sockets: Arc<Mutex<HashMap<String, mpsc::Sender<Outgoing>>>>,
}

impl LocalPoster {
    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Outgoing>>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.sockets().len()
    }
}

impl ConnectionPoster for LocalPoster {
    async fn post(&self, id: &str, text: &str) -> Result<(), PostError> {
        let sender = self.sockets().get(id).cloned();
        let Some(sender) = sender else {
            return Err(PostError::Gone(id.to_string()));
        };
        match sender.try_send(Outgoing::Text(text.to_string())) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(PostError::Gone(id.to_string())),
            Err(mpsc::error::TrySendError::Full(_)) => Err(PostError::Failed {
                id: id.to_string(),
                message: format!("{SOCKET_QUEUE} messages wait for this client already"),
            }),
        }
    }

    async fn close(&self, id: &str) -> Result<(), PostError> {
        let sender = self.sockets().remove(id);
        if let Some(sender) = sender {
            // Waits for room: the close comes after what was posted before it.
            let _ = sender.send(Outgoing::Close).await;
        }
        Ok(())
    }
}

pub type LocalSessions =
    Sessions<CachedConnections<DynamoConnectionStore>, LocalPoster, DynamoStateTable, NoSignIn, DynamoDirectory>;
pub type LocalFanout = Fanout<CachedConnections<DynamoConnectionStore>, LocalPoster>;

/// The live stream's two halves, over moto's tables, sharing the sockets.
pub struct LocalLive {
    pub sessions: LocalSessions,
    pub fanout: LocalFanout,
    pub poster: LocalPoster,
    /// Changes the tables' streams handed to the fan-out, and it took.
    pub changes_delivered: AtomicU64,
    next_id: AtomicU64,
}

impl LocalLive {
    /// From the live functions' environments in the template: the routes'
    /// (`live`) and the fan-out's (`live-fanout`).
    pub fn new(
        routes: &std::collections::BTreeMap<String, String>,
        fanout: &std::collections::BTreeMap<String, String>,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self> {
        let config = canopy_live::Config::from_vars(routes)?;
        let fanout_config = canopy_live::Config::from_vars(fanout)?;
        // Nobody signs in here: every connection reads every vehicle, as the API's callers do.
        let access = canopy::domain::access::AccessPolicy {
            vehicle_groups: config.vehicle_groups.clone(),
            identity_required: false,
        };
        let client = dynamodb::client(sdk);
        let poster = LocalPoster::default();
        let connections =
            || CachedConnections::new(DynamoConnectionStore::new(client.clone(), &config.connections_table));
        Ok(Self {
            sessions: Sessions {
                connections: connections(),
                poster: poster.clone(),
                state: DynamoStateTable::new(client.clone(), &config.state_table),
                directory: DynamoDirectory::new(client.clone(), config.directory()?),
                verifier: None,
                access: access.clone(),
                ttl_s: canopy_live::CONNECTION_TTL_S,
            },
            fanout: Fanout::new(connections(), poster.clone(), access, fanout_config.interval),
            poster,
            changes_delivered: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        })
    }
}

/// `GET /live`: the WebSocket API's routes.
pub fn router(live: Arc<LocalLive>) -> axum::Router {
    axum::Router::new().route("/live", get(upgrade)).with_state(live)
}

async fn upgrade(ws: WebSocketUpgrade, State(live): State<Arc<LocalLive>>) -> Response {
    ws.on_upgrade(move |socket| serve(socket, live))
}

/// One connection, as API Gateway would drive the routes: `$connect`, a
/// `$default` per message, `$disconnect`.
async fn serve(socket: WebSocket, live: Arc<LocalLive>) {
    let id = format!("local-{}", live.next_id.fetch_add(1, Ordering::Relaxed));
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Err(e) = live.sessions.connect(&id, None, now_ms).await {
        warn!(error = %e, "live connection refused");
        return;
    }
    let (tx, mut rx) = mpsc::channel::<Outgoing>(SOCKET_QUEUE);
    live.poster.sockets().insert(id.clone(), tx);
    let (mut sink, mut incoming) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let message = match out {
                Outgoing::Text(text) => Message::Text(text.into()),
                Outgoing::Close => Message::Close(None),
            };
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
    });
    while let Some(Ok(message)) = incoming.next().await {
        let text = match message {
            Message::Text(t) => t.to_string(),
            Message::Binary(_) => "(a binary message)".to_string(),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        if let Err(e) = live.sessions.message(&id, &text, now_ms).await {
            warn!(error = %e, connection = %id, "live message failed");
        }
    }
    live.poster.sockets().remove(&id);
    writer.abort();
    if let Err(e) = live.sessions.disconnect(&id).await {
        warn!(error = %e, connection = %id, "live disconnect failed");
    }
}

/// Lambda's DynamoDB event source mapping, for one table's stream: its
/// records in order, a batch at a time, into the fan-out.
///
/// As Lambda does, it keeps its place: it starts at the stream's oldest
/// record (the stack creates its tables empty), moves past a batch only once
/// the fan-out took it or the batch's retries are spent, and after an error
/// reading the stream resumes after the last record it handled, so nothing
/// written while moto was unreachable is skipped. `ready` is told once it
/// reads the stream.
pub async fn poll_stream(
    live: Arc<LocalLive>,
    sdk: aws_config::SdkConfig,
    source: StreamSource,
    every: Duration,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut reader = StreamReader::new(&sdk, &source.table);
    let mut ready = Some(ready);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let records = match reader.next_batch(source.batch).await {
            Ok(records) => records,
            Err(e) => {
                warn!(table = %source.table, error = %e, "reading the stream failed; resuming after the last record handled");
                reader.lose_place();
                continue;
            }
        };
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        let Some(last) = records.last().map(|r| r.sequence.clone()) else {
            continue;
        };
        let changes: Vec<Change> = records.into_iter().filter_map(|r| r.change).collect();
        live.deliver_with_retries(&source, &changes).await;
        reader.handled(last);
    }
}

/// One record of a stream: its sequence number, and the change it carries
/// (none for a removal or an item that is neither a state nor an alert).
struct StreamRecord {
    sequence: String,
    change: Option<Change>,
}

/// A reader of one table's stream (one shard: moto's streams have one) that
/// remembers the last record handled.
struct StreamReader {
    tables: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    /// The shard and the iterator the next read uses; none until (re)attached.
    at: Option<(String, String)>,
    /// The sequence number of the last record handled.
    handled: Option<String>,
}

impl StreamReader {
    fn new(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        Self {
            tables: aws_sdk_dynamodb::Client::new(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
            table: table.to_string(),
            at: None,
            handled: None,
        }
    }

    /// An iterator after the last record handled, or at the oldest.
    async fn attach(&self) -> Result<(String, String)> {
        use aws_sdk_dynamodbstreams::types::ShardIteratorType;
        let described = self.tables.describe_table().table_name(&self.table).send().await?;
        let arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .with_context(|| format!("table {} has no stream", self.table))?
            .to_string();
        let stream = self.streams.describe_stream().stream_arn(&arn).send().await?;
        let shards = stream.stream_description().map(|d| d.shards()).unwrap_or_default();
        let [shard] = shards else {
            anyhow::bail!("stream {arn} has {} shards; the local stack reads one", shards.len());
        };
        let shard_id = shard.shard_id().context("a shard without an id")?.to_string();
        let request = self.streams.get_shard_iterator().stream_arn(&arn).shard_id(&shard_id);
        let request = match &self.handled {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let iterator = request
            .send()
            .await?
            .shard_iterator()
            .context("no shard iterator")?
            .to_string();
        Ok((shard_id, iterator))
    }

    /// The next records, up to `batch` (none when the stream holds no more yet).
    async fn next_batch(&mut self, batch: usize) -> Result<Vec<StreamRecord>> {
        let (shard, iterator) = match self.at.take() {
            Some(at) => at,
            None => self.attach().await?,
        };
        let got = self
            .streams
            .get_records()
            .shard_iterator(&iterator)
            .limit(batch.clamp(1, 1000) as i32)
            .send()
            .await?;
        let next = got.next_shard_iterator().context("the shard closed")?.to_string();
        self.at = Some((shard, next));
        Ok(got
            .records()
            .iter()
            .filter_map(|record| {
                let stream = record.dynamodb()?;
                let change = match record.event_name().map(|e| e.as_str()) {
                    Some("REMOVE") => None,
                    _ => stream
                        .new_image()
                        .and_then(|image| Change::from_image(&image_json(image))),
                };
                Some(StreamRecord {
                    sequence: stream.sequence_number()?.to_string(),
                    change,
                })
            })
            .collect())
    }

    /// The batch up to `sequence` is done with: a reattachment starts after it.
    fn handled(&mut self, sequence: String) {
        self.handled = Some(sequence);
    }

    /// The iterator may be stale after an error: the next read attaches again.
    fn lose_place(&mut self) {
        self.at = None;
    }
}

impl LocalLive {
    /// The fan-out's delivery of one batch, retried as the event source's
    /// `MaximumRetryAttempts` says (a redelivered change is not sent twice:
    /// the fan-out remembers what each connection got); past them the batch
    /// is skipped, as Lambda skips it.
    async fn deliver_with_retries(&self, source: &StreamSource, changes: &[Change]) {
        let mut attempt = 0u32;
        loop {
            let now_ms = chrono::Utc::now().timestamp_millis();
            match self.fanout.deliver(changes, now_ms).await {
                Ok(_) => {
                    self.changes_delivered
                        .fetch_add(changes.len() as u64, Ordering::Relaxed);
                    return;
                }
                Err(e) if source.retries.is_none_or(|most| attempt < most) => {
                    attempt += 1;
                    warn!(table = %source.table, error = %e, attempt, "fan-out failed; the batch is retried");
                    tokio::time::sleep(Duration::from_millis(250 << attempt.min(5))).await;
                }
                Err(e) => {
                    tracing::error!(table = %source.table, error = %e, changes = changes.len(), "fan-out failed and its retries are spent; the batch is skipped");
                    return;
                }
            }
        }
    }
}

/// Sends what the fan-out holds as each connection's interval ends (in
/// Lambda each invocation drains itself before it returns).
pub async fn flush_held(live: Arc<LocalLive>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        live.fanout.flush(chrono::Utc::now().timestamp_millis()).await;
    }
}

/// A client of the live stream, as a console is: for the latency bench and the tests.
pub struct LiveClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl LiveClient {
    /// Connects to the stack's `/live` at `api` (`127.0.0.1:port`).
    pub async fn connect(api: std::net::SocketAddr) -> Result<Self> {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{api}/live"))
            .await
            .context("connecting to /live")?;
        Ok(Self { socket })
    }

    pub async fn send(&mut self, text: &str) -> Result<()> {
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        self.socket.send(WsMessage::text(text)).await?;
        Ok(())
    }

    /// Subscribes to `vehicles` (the fleet when empty) and waits for the
    /// confirmation and the snapshot that follows it; the snapshot.
    pub async fn subscribe(&mut self, vehicles: &[&str]) -> Result<serde_json::Value> {
        let message = if vehicles.is_empty() {
            serde_json::json!({"action": "subscribe", "fleet": true})
        } else {
            serde_json::json!({"action": "subscribe", "vehicles": vehicles})
        };
        self.send(&message.to_string()).await?;
        let confirmed = self
            .next(Duration::from_secs(10))
            .await?
            .context("no answer to subscribe")?;
        anyhow::ensure!(confirmed["type"] == "subscribed", "not subscribed: {confirmed}");
        self.next(Duration::from_secs(10))
            .await?
            .context("no snapshot after subscribing")
    }

    /// The next message, or `None` if none came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<serde_json::Value>> {
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(message) = tokio::time::timeout_at(deadline, self.socket.next()).await else {
                return Ok(None);
            };
            match message {
                Some(Ok(WsMessage::Text(text))) => return Ok(Some(serde_json::from_str(&text)?)),
                Some(Ok(WsMessage::Close(_))) | None => anyhow::bail!("the live stream closed the connection"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    pub async fn close(mut self) -> Result<()> {
        self.socket.close(None).await?;
        Ok(())
    }
}

/// A stream record's image in DynamoDB's JSON, as Lambda hands it to the fan-out.
fn image_json(image: &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>) -> serde_json::Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    use serde_json::{Value, json};
    fn one(v: &A) -> Value {
        match v {
            A::S(s) => json!({"S": s}),
            A::N(n) => json!({"N": n}),
            A::Bool(b) => json!({"BOOL": b}),
            A::Null(_) => json!({"NULL": true}),
            A::Ss(v) => json!({"SS": v}),
            A::Ns(v) => json!({"NS": v}),
            A::L(items) => json!({"L": items.iter().map(one).collect::<Vec<_>>()}),
            A::M(map) => json!({"M": map.iter().map(|(k, v)| (k.clone(), one(v))).collect::<serde_json::Map<_, _>>()}),
            // Binary attributes: none in the tables the fan-out follows.
            _ => Value::Null,
        }
    }
    Value::Object(image.iter().map(|(k, v)| (k.clone(), one(v))).collect())
}
