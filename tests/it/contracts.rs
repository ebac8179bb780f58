//! The ports' contract suites (`canopy::adapters::contract`) against the AWS
//! adapters on moto: the same suites the memory adapters pass in the
//! library's unit tests, so a service tested on memory is tested on what AWS does.

use canopy::adapters::aws::dynamodb::{
    DynamoAlertLog, DynamoConnectionStore, DynamoDeviceStateTable, DynamoDirectory, DynamoKeyStore, DynamoLedger,
    DynamoQuotaCounter, DynamoStateTable,
};
use canopy::adapters::aws::iot::IotPublisher;
use canopy::adapters::aws::sns::SnsNotifier;
use canopy::adapters::aws::sqs::SqsQueue;
use canopy::adapters::contract;
use canopy_local::resources::{
    alerts_table, connections_table, create_topic, device_state_table, fleet_index_table, keys_table, ledger_table,
    quota_table, state_table,
};
use canopy_tests::local;

#[tokio::test]
async fn s3_keeps_the_object_store_contract() {
    contract::object_store(&local::bucket("contract").await, "s3").await;
}

#[tokio::test]
async fn dynamodb_keeps_the_latest_state_contract() {
    let table = local::table(state_table, "contract-state").await;
    contract::latest_state(&DynamoStateTable::new(local::dynamodb().await, &table), "ddb").await;
}

#[tokio::test]
async fn dynamodb_keeps_the_device_state_contract() {
    let table = local::table(device_state_table, "contract-devices").await;
    contract::device_state(&DynamoDeviceStateTable::new(local::dynamodb().await, &table), "ddb").await;
}

#[tokio::test]
async fn dynamodb_keeps_the_ledger_contract() {
    let table = local::table(ledger_table, "contract-ledger").await;
    contract::ledger(&DynamoLedger::new(local::dynamodb().await, &table), "ddb").await;
}

#[tokio::test]
async fn dynamodb_keeps_the_alert_log_contract() {
    let table = local::table(alerts_table, "contract-alerts").await;
    let index = local::table(fleet_index_table, "contract-index").await;
    contract::alert_log(&DynamoAlertLog::new(local::dynamodb().await, &table, &index), "ddb").await;
}

#[tokio::test]
async fn dynamodb_keeps_the_vehicle_directory_contract() {
    let index = local::table(fleet_index_table, "contract-directory").await;
    let directory = DynamoDirectory::new(local::dynamodb().await, &index);
    contract::vehicle_directory(&directory, "ddb").await;
    contract::vehicle_rankings(&directory, "ddb").await;
}

#[tokio::test]
async fn dynamodb_keeps_the_quota_contract() {
    let table = local::table(quota_table, "contract-quota").await;
    contract::quota_counter(&DynamoQuotaCounter::new(local::dynamodb().await, &table), "ddb").await;
}

#[tokio::test]
async fn sns_and_iot_keep_the_messaging_contracts() {
    let sdk = local::sdk().await;
    let topic = create_topic(&aws_sdk_sns::Client::new(&sdk), &local::unique("contract"))
        .await
        .unwrap();
    let capture = local::SnsCapture::subscribe(&topic).await;
    contract::notifier(&SnsNotifier::new(&sdk, &topic), "sns", async || {
        capture.received().await
    })
    .await;
    contract::device_publisher(&IotPublisher::new(&sdk), "iot").await;
}

#[tokio::test]
async fn dynamodb_keeps_the_key_store_contract() {
    let table = local::table(keys_table, "contract-keys").await;
    contract::key_store(&DynamoKeyStore::new(local::dynamodb().await, &table), "ddb").await;
}

#[tokio::test]
async fn sqs_keeps_the_message_queue_contract() {
    let sdk = local::sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = local::unique("contract-queue");
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    contract::message_queue(&SqsQueue::new(&sdk, &url), "sqs", async || {
        let mut bodies = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                return bodies;
            }
            bodies.extend(got.messages().iter().filter_map(|m| m.body().map(str::to_string)));
        }
    })
    .await;
}

#[tokio::test]
async fn dynamodb_keeps_the_connection_store_contract() {
    let table = local::table(connections_table, "contract-connections").await;
    contract::connection_store(&DynamoConnectionStore::new(local::dynamodb().await, &table), "ddb").await;
}
