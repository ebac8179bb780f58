//! `/alerts` and `/vehicles/{id}/alerts`: the alert log, newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use canopy::domain::alert::Alert;
use canopy::domain::device_id::DeviceId;
use canopy::ports::alert_log::{FeedPosition, merge_feed};
use futures::future::try_join_all;
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{self, Identity};
use crate::app::Api;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::history::InvalidQuery;
use crate::openapi::{ListErrors, ReadErrors};
use crate::params::{AlertPage, FeedPage, VehiclePath, before_us, page_limit};

/// What a feed cursor seals: `feed:` and the position of the page's last alert.
const FEED_CURSOR: &str = "feed:";

/// A page of the fleet's alerts.
#[derive(Serialize, ToSchema)]
pub struct FleetAlerts {
    pub alerts: Vec<Alert>,
    /// The next page's `after`; null on the last page.
    pub next: Option<String>,
}

/// A vehicle's alerts.
#[derive(Serialize, ToSchema)]
pub struct VehicleAlerts {
    #[schema(value_type = String)]
    pub vehicle_id: DeviceId,
    pub alerts: Vec<Alert>,
}

/// The fleet's alerts (vehicles in the caller's scope), newest first, paged
///
/// Read from the fleet's feed, kept as alerts are recorded: every alert of
/// every vehicle in scope, whatever the fleet's size; a page costs a read of
/// each feed partition of each of the caller's groups.
#[utoipa::path(get, path = "/alerts", operation_id = "listFleetAlerts", params(FeedPage), responses(
    (status = 200, description = "Alerts", body = FleetAlerts),
    ListErrors,
))]
pub async fn fleet(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiQuery(page): ApiQuery<FeedPage>,
) -> Result<Json<FleetAlerts>, ApiError> {
    let scope = access::scope(&api.access, &identity)?;
    let limit = page_limit(page.limit)?;
    let after = match (&page.after, before_us(page.before.as_deref())?) {
        (Some(cursor), _) => Some(open_cursor(&api, cursor)?),
        // Before a time: after every position of that microsecond's start.
        (None, Some(ts_us)) => Some(FeedPosition {
            ts_us,
            stream: String::new(),
            rule: String::new(),
        }),
        (None, None) => None,
    };
    let views = scope.views();
    let reads = views.iter().map(|view| api.alerts.feed(view, limit, after.as_ref()));
    let mut alerts = merge_feed(try_join_all(reads).await?, limit);
    let next = (alerts.len() == limit)
        .then(|| {
            alerts
                .last()
                .map(|a| api.cursors.seal(&format!("{FEED_CURSOR}{}", FeedPosition::of(a).key())))
        })
        .flatten();
    // A view holds the vehicles its group held when each alert was written;
    // a group narrowed since must not show what it no longer holds.
    alerts.retain(|a| scope.allows(a.vehicle_id.as_str()));
    Ok(Json(FleetAlerts { alerts, next }))
}

fn open_cursor(api: &Api, cursor: &str) -> Result<FeedPosition, ApiError> {
    let text = api.cursors.open("after", cursor)?;
    let position = text.strip_prefix(FEED_CURSOR).and_then(FeedPosition::from_key);
    position.ok_or_else(|| {
        ApiError::from(InvalidQuery {
            field: "after".into(),
            problem: "not a cursor of this listing (pass the `next` of the previous page as it is)".into(),
        })
    })
}

/// A vehicle's alerts, newest first
#[utoipa::path(get, path = "/vehicles/{id}/alerts", operation_id = "listVehicleAlerts", params(VehiclePath, AlertPage), responses(
    (status = 200, description = "Alerts", body = VehicleAlerts),
    ReadErrors,
))]
pub async fn vehicle(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(path): ApiPath<VehiclePath>,
    ApiQuery(page): ApiQuery<AlertPage>,
) -> Result<Json<VehicleAlerts>, ApiError> {
    let id = api.readable_vehicle(&identity, &path.id)?;
    let limit = page_limit(page.limit)?;
    let before = before_us(page.before.as_deref())?;
    let alerts = api.alerts.alerts(id.as_str(), limit, before).await?;
    Ok(Json(VehicleAlerts { vehicle_id: id, alerts }))
}
