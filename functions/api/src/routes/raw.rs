//! `/vehicles/{id}/raw`: a vehicle's raw CAN frames of a window, as a log
//! for CANalyzer, SavvyCAN, asammdf or python-can ([`crate::raw`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use canopy::format::can_log::{FrameFilter, LogFormat};
use chrono::{DateTime, SecondsFormat};

use crate::access::Identity;
use crate::app::Api;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::history::{TimeRange, invalid};
use crate::openapi::HistoryErrors;
use crate::params::{RawWindow, VehiclePath};
use crate::raw::{self, ANSWER_BYTES, Asked, MAX_WINDOW_US};

/// The frames the answer holds.
pub const FRAMES_HEADER: &str = "canopy-frames";
/// Where the next request starts, when the answer was cut.
pub const NEXT_FROM_HEADER: &str = "canopy-next-from";

/// A binary log's bytes (BLF).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct LogBytes(pub Vec<u8>);

/// A vehicle's raw frames in a window, as a CAN log
///
/// Every frame the vehicle's edge uploaded in the window, on the buses and
/// of the identifiers asked (all when none are named), with its capture
/// time, bus, identifier, flags and payload: candump, Vector ASC or BLF,
/// or CSV. An answer holds at most 4 MiB of log and a day of frames; a
/// window with more is cut (after the frames of one time), and the
/// `Canopy-Next-From` header names the time to ask from next.
#[utoipa::path(get, path = "/vehicles/{id}/raw", operation_id = "exportRaw", params(VehiclePath, RawWindow), responses(
    (status = 200, description = "The log, as an attachment",
        headers(
            ("Canopy-Frames" = u64, description = "Frames in the log"),
            ("Canopy-Next-From" = String, description = "RFC 3339: present when the log was cut; ask again from this time for the rest"),
        ),
        content(
            (String = "text/plain"),
            (LogBytes = "application/octet-stream"),
            (String = "text/csv"),
        )),
    HistoryErrors,
))]
pub async fn vehicle(
    State(api): State<Arc<Api>>,
    identity: Identity,
    ApiPath(path): ApiPath<VehiclePath>,
    ApiQuery(asked): ApiQuery<RawWindow>,
) -> Result<Response, ApiError> {
    let vehicle = api.readable_vehicle(&identity, &path.id)?;
    let (window, rest_from_us) = window(asked.from.as_deref(), asked.to.as_deref())?;
    let format = match asked.format.as_deref() {
        None => LogFormat::Candump,
        Some(name) => LogFormat::named(name)
            .ok_or_else(|| invalid("format", format!("{name:?} is none of candump, asc, blf, csv")))?,
    };
    let asked = Asked {
        vehicle,
        window,
        only: FrameFilter {
            buses: crate::params::buses(asked.bus.as_deref())?,
            ids: crate::params::can_ids(asked.ids.as_deref())?,
        },
        format,
    };
    api.admit_history(&identity).await?;
    let export = api
        .run_history(raw::export(api.raw.as_ref(), &asked, ANSWER_BYTES))
        .await?;
    let next_from_us = export.next_from_us.or(rest_from_us);
    let started = DateTime::from_timestamp_micros(window.from_us)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ");
    let file = format!("{}_{started}.{}", asked.vehicle, format.extension());
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(format.content_type())),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        export.log,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static(FRAMES_HEADER), HeaderValue::from(export.frames));
    if let Some(next) = next_from_us.and_then(DateTime::from_timestamp_micros)
        && let Ok(value) = HeaderValue::from_str(&next.to_rfc3339_opts(SecondsFormat::Micros, true))
    {
        headers.insert(HeaderName::from_static(NEXT_FROM_HEADER), value);
    }
    Ok(response)
}

/// The window one answer covers: `to` defaults to now and `from` to an
/// hour before it; a window longer than a day is answered a day at a time,
/// from `from`. With it, where the rest starts when it was shortened.
fn window(from: Option<&str>, to: Option<&str>) -> Result<(TimeRange, Option<i64>), ApiError> {
    let time = |field: &str, s: &str| -> Result<i64, ApiError> {
        let at = crate::params::range(None, Some(s)).map_err(|_| {
            invalid(
                field,
                format!(
                    "{:?} is not an RFC 3339 time",
                    canopy::runtime::text::truncate_chars(s, 40)
                ),
            )
        })?;
        Ok(at.to_us)
    };
    let to_us = match to {
        Some(s) => time("to", s)?,
        None => chrono::Utc::now().timestamp_micros(),
    };
    let from_us = match from {
        Some(s) => time("from", s)?,
        None => to_us - 3_600_000_000,
    };
    let end_us = to_us.min(from_us.saturating_add(MAX_WINDOW_US));
    let window = TimeRange {
        from_us,
        to_us: end_us.max(from_us),
    };
    Ok((window, (end_us < to_us).then_some(end_us)))
}
