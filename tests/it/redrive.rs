//! Dead letters after a fix: an object the decoder cannot decode (its
//! vehicle's DBC does not parse) fails until it lands in the dead-letter
//! queue; once the DBC is fixed, a redrive decodes it.

use std::time::Duration;

use bytes::Bytes;
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy::format::lake::keys::RawKey;
use canopy::ports::store::ObjectStore;
use canopy_tests::fixtures::{self, database};
use canopy_tests::local::{self, waiting};

use crate::support::poll::eventually;

/// How long the pipeline has for each step.
const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn a_dead_letter_is_decoded_once_its_dbc_is_fixed_and_the_queue_redriven() {
    let stack = local::own_stack().await;
    let store = S3Store::new(&stack.sdk, &stack.bucket);
    let vehicle = DeviceId::new("veh-dlq").unwrap();
    let dbc_key = format!("dbc/vehicles/{vehicle}.dbc");
    store
        .put(&dbc_key, Bytes::from_static(b"BO_ 1 Broken: 8 X\n SG_ nope"), None)
        .await
        .unwrap();
    let frames = fixtures::frames(&database(), 500, 1_700_000_000_000_000, 3, 0);
    let raw = RawKey::new(vehicle.clone(), frames[0].ts_us, 1);
    store
        .put(&raw.raw_key(), Bytes::from(fixtures::raw_file(&frames)), None)
        .await
        .unwrap();

    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    eventually("the object in the dead-letter queue", WAIT, || async {
        waiting(&sqs, "RawObjectsDeadLetterQueue").await == 1
    })
    .await;
    assert!(store.exists(&raw.decoded_key()).await.unwrap().is_none());

    // The fix: the vehicle's DBC, valid. Then the redrive.
    store
        .put(&dbc_key, Bytes::from(std::fs::read(fixtures::DBC).unwrap()), None)
        .await
        .unwrap();
    assert_eq!(stack.redrive("RawObjectsDeadLetterQueue").await.unwrap(), 1);
    eventually("the object decoded", WAIT, || async {
        store.exists(&raw.decoded_key()).await.unwrap().is_some()
    })
    .await;
    assert_eq!(waiting(&sqs, "RawObjectsDeadLetterQueue").await, 0);
    assert_eq!(
        stack.redrive("RawObjectsDeadLetterQueue").await.unwrap(),
        0,
        "nothing left"
    );
    assert!(stack.redrive("NoSuchQueue").await.is_err());
}
