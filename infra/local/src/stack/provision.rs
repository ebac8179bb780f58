//! The template's resources created in moto under their local names (tables, buckets, queues, topics, notifications).

use anyhow::{Context, Result, anyhow};
use aws_sdk_dynamodb::types::ScalarAttributeType;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter, QueueConfiguration,
    S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use crate::resources::{TableSpec, create_table};
use crate::template::{ACCOUNT, REGION, Template};

/// Creates the template's tables, queues, topics and buckets in moto; the data bucket's name.
pub(super) async fn create_resources(
    template: &Template,
    sdk: &aws_config::SdkConfig,
    visibility_timeout_s: Option<u64>,
) -> Result<String> {
    create_tables(template, sdk).await?;
    create_queues(template, sdk, visibility_timeout_s).await?;
    let sns = aws_sdk_sns::Client::new(sdk);
    for topic in &template.topics {
        crate::resources::create_topic(&sns, topic).await?;
    }
    create_buckets(template, sdk).await
}

async fn create_tables(template: &Template, sdk: &aws_config::SdkConfig) -> Result<()> {
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
    Ok(())
}

/// The queues, each with its visibility timeout (`visibility_timeout_s`
/// overrides the template's) and its redrive policy.
async fn create_queues(
    template: &Template,
    sdk: &aws_config::SdkConfig,
    visibility_timeout_s: Option<u64>,
) -> Result<()> {
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
    Ok(())
}

/// The buckets and their ObjectCreated notifications; the name of the
/// (last) bucket that has notifications, the data bucket.
async fn create_buckets(template: &Template, sdk: &aws_config::SdkConfig) -> Result<String> {
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
        s3.put_bucket_notification_configuration()
            .bucket(&b.name)
            .notification_configuration(notifications(&b.notifications)?)
            .send()
            .await
            .with_context(|| format!("notifications of bucket {}", b.name))?;
        data_bucket = Some(b.name.clone());
    }
    data_bucket.ok_or_else(|| anyhow!("the template has no bucket with notifications (the data bucket)"))
}

/// A bucket's notifications: each (queue, key prefix, key suffix) to its
/// queue, filtered by whichever of prefix and suffix is set.
fn notifications(notifications: &[(String, String, String)]) -> Result<NotificationConfiguration> {
    let mut configuration = NotificationConfiguration::builder();
    for (queue, prefix, suffix) in notifications {
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
    Ok(configuration.build())
}
