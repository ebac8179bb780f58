//! One moto server per test binary, started on first use and gone with the
//! process; every test works in buckets of its own.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use canopy::adapters::aws::s3::S3Store;
use canopy_local::services::{Moto, moto_server_path};

static MOTO: OnceLock<Moto> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Warnings and errors of the stack and the functions, into the output of
/// the test that caused them (shown when it fails): a retry, a dropped
/// record or a failed invocation is then in the report, not guessed at.
pub fn log_warnings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_test_writer()
            .try_init();
    });
}

/// The moto server of this test run.
pub fn moto() -> &'static Moto {
    log_warnings();
    MOTO.get_or_init(|| {
        let path = moto_server_path();
        Moto::start(&path).unwrap_or_else(|e| panic!("the tests need moto server: {e}"))
    })
}

pub async fn sdk() -> aws_config::SdkConfig {
    canopy_local::services::sdk_config(&moto().endpoint).await
}

/// A name no other test of this run uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh, empty bucket.
pub async fn bucket(prefix: &str) -> S3Store {
    let sdk = sdk().await;
    let name = unique(prefix);
    let store = S3Store::new(&sdk, &name);
    if let Err(e) = store.client().create_bucket().bucket(&name).send().await {
        panic!("creating bucket {name}: {e:?}");
    }
    store
}

/// A binary of this workspace, built beside the test binary (`cargo test --workspace` builds them).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .unwrap_or_default();
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p {name}`)",
        path.display()
    );
    path
}

/// Clients of the local endpoint.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk().await)
}

/// A fresh table of `spec`'s kind, under a unique name.
pub async fn table(kind: fn(&str) -> canopy_local::resources::TableSpec<'_>, prefix: &str) -> String {
    let name = unique(prefix);
    canopy_local::resources::create_table(&dynamodb().await, &kind(&name))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    name
}

/// What SNS delivers to a topic, caught the way a subscriber would: an SQS
/// queue subscribed to it. (moto's `/moto-api/data.json` answers 500 once S3
/// holds multipart objects, so its record of sent messages cannot be read.)
pub struct SnsCapture {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SnsCapture {
    pub async fn subscribe(topic_arn: &str) -> SnsCapture {
        Self::subscribe_on(&sdk().await, topic_arn).await
    }

    /// [`Self::subscribe`] on the moto server `sdk` reaches (a stack's own).
    pub async fn subscribe_on(sdk: &aws_config::SdkConfig, topic_arn: &str) -> SnsCapture {
        let sdk = sdk.clone();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("sns-capture"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create queue: {e:?}"))
            .queue_url
            .unwrap_or_default();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("queue attributes: {e:?}"));
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        aws_sdk_sns::Client::new(&sdk)
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("subscribe: {e:?}"));
        SnsCapture { sqs, queue_url }
    }

    /// Everything delivered so far, oldest first: (subject, message).
    pub async fn received(&self) -> Vec<(String, String)> {
        self.received_timed()
            .await
            .into_iter()
            .map(|(subject, message, _)| (subject, message))
            .collect()
    }

    /// [`Self::received`], each with when SNS delivered it (ms since the epoch).
    pub async fn received_timed(&self) -> Vec<(String, String, i64)> {
        use aws_sdk_sqs::types::MessageSystemAttributeName;
        let mut out = Vec::new();
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive: {e:?}"));
            let messages = batch.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let envelope: serde_json::Value =
                    serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_else(|e| panic!("SNS envelope: {e}"));
                let sent_ms = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_default();
                out.push((
                    envelope["Subject"].as_str().unwrap_or_default().to_string(),
                    envelope["Message"].as_str().unwrap_or_default().to_string(),
                    sent_ms,
                ));
            }
        }
    }
}

/// Messages waiting (visible) in the template's queue `queue`.
pub async fn waiting(sqs: &aws_sdk_sqs::Client, queue: &str) -> u64 {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(canopy_local::template::queue_url(queue))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap_or_else(|e| panic!("queue {queue}: {e}"));
    attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The local stack of the repository's template on a moto of its own (the
/// lake's bucket is named by the template, so another test's stack on a
/// shared moto would see its objects), every queue's visibility timeout 1 s.
pub async fn own_stack() -> canopy_local::stack::Stack {
    own_stack_with_visibility(1).await
}

/// [`own_stack`] with every queue's visibility timeout `seconds`: longer than
/// a batch of the telemetry function takes under a flood, so a message is not
/// delivered again while its first delivery is still being handled.
pub async fn own_stack_with_visibility(seconds: u64) -> canopy_local::stack::Stack {
    log_warnings();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    canopy_local::stack::Stack::start(canopy_local::stack::StackOptions {
        template: repo.join("template.yaml"),
        moto_endpoint: None,
        mqtt_port: 0,
        api_port: 0,
        visibility_timeout_s: Some(seconds),
        functions_endpoint: None,
        batching_windows: false,
    })
    .await
    .unwrap()
}
