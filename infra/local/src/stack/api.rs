//! The HTTP side: the API router (DataFusion for history) with the ingest
//! route on one port, and the live stream's WebSocket server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use canopy_api::history::datafusion::DataFusionHistory;
use canopy_api::history::lake::{LakeHistory, LakeReader};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::template::Template;

/// The live stream: its sessions behind the API's `/live`, and its fan-out
/// on the streams of the tables the template's `live-fanout` function reads,
/// polled as often as Lambda polls a stream (four times a second, here ten).
pub(super) fn start_live(
    template: &Template,
    sdk: &aws_config::SdkConfig,
    tasks: &mut Vec<JoinHandle<()>>,
    ready: &mut Vec<(String, tokio::sync::oneshot::Receiver<()>)>,
) -> Result<Option<Arc<crate::live::LocalLive>>> {
    let Some(fanout) = template.functions.iter().find(|f| f.binary == "live-fanout") else {
        return Ok(None);
    };
    let Some(routes) = template.functions.iter().find(|f| f.binary == "live") else {
        return Ok(None);
    };
    let live = Arc::new(
        crate::live::LocalLive::new(&routes.environment, &fanout.environment, sdk)
            .with_context(|| format!("functions {} and {}", routes.logical_id, fanout.logical_id))?,
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

pub(super) async fn serve_api(
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
    // As deployed: charts from the lake's objects, the rest from the engine
    // that plays Athena here.
    let lake = LakeReader::at_endpoint(endpoint, bucket)?;
    let history = LakeHistory {
        lake: lake.clone(),
        rest: DataFusionHistory::s3(endpoint, bucket).await?,
    };
    let api = canopy_api::Api::with_history(&config, sdk, history, lake)?;
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
