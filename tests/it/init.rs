//! Every function of the template starts as Lambda would start it: its binary,
//! as built, with the environment the template gives it, asks a Lambda
//! Runtime API for its first event. A function whose init fails (a variable
//! it cannot parse, an SDK client that cannot be built) posts an init error or
//! exits instead, and the test names it.

use canopy_local::bench::init_time;
use canopy_tests::local;

#[tokio::test]
async fn every_function_of_the_template_starts_and_asks_for_an_event() {
    let stack = local::own_stack().await;
    assert!(
        stack.template.functions.len() >= 8,
        "the template's functions: {:?}",
        stack
            .template
            .functions
            .iter()
            .map(|f| &f.logical_id)
            .collect::<Vec<_>>()
    );
    let bin_dir = local::binary("canopy-local")
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let times = init_time::measure(&stack, &bin_dir, 1).await.unwrap();
    assert_eq!(times.len(), stack.template.functions.len());
    println!("{}", init_time::report(&times));
}

#[tokio::test]
async fn a_function_whose_configuration_is_wrong_is_named_with_its_error() {
    let stack = local::own_stack().await;
    let mut env = stack.environment("DecoderFunction").unwrap();
    env.remove("DATA_BUCKET");
    let err = init_time::init_time(&local::binary("decoder"), &env)
        .await
        .expect_err("a decoder without its bucket must not start");
    assert!(err.to_string().contains("DATA_BUCKET"), "{err:#}");
}
