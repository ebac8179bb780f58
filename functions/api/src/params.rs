//! What the routes take in their paths and query strings, as types: the
//! bounds each states (the OpenAPI document is generated from them) and the
//! checks that turn them into the domain's values. A value that does not
//! parse is refused by [`crate::extract`], naming the parameter.

use canopy::domain::standing::Filter;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::MAX_PAGE;
use crate::error::ApiError;
use crate::history::{self, InvalidQuery, TimeRange, invalid};

/// A vehicle or device id: 1-64 of A-Z a-z 0-9 _ -.
pub const ID_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$";

/// `/vehicles/{id}…`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VehiclePath {
    /// Vehicle id: 1-64 of A-Z a-z 0-9 _ -
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")]
    pub id: String,
}

/// `/vehicles/{id}/signals/{message}/{signal}`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SignalPath {
    /// Vehicle id: 1-64 of A-Z a-z 0-9 _ -
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")]
    pub id: String,
    /// The message's DBC name (GET /vehicles/{id}/signals lists them; an unknown one answers 404)
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    pub message: String,
    /// The signal's DBC name (GET /vehicles/{id}/signals lists them; an unknown one answers 404)
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    pub signal: String,
}

/// A page of vehicles.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VehiclePage {
    /// Page size (1-100, default 50)
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u64>,
    /// The `next` of the previous page, as it is: an opaque cursor. One this API did not give is refused (400).
    #[param(pattern = "^[A-Za-z0-9_-]{1,400}$", nullable = false)]
    pub after: Option<String>,
    /// Only vehicles whose id starts with this (case-sensitive)
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$", nullable = false)]
    pub prefix: Option<String>,
    /// Only vehicles doing this now: driving, charging, parked or silent; or alerting (tripped an
    /// alert rule within the last 15 minutes, whatever their status)
    #[param(value_type = Option<String>, pattern = "^(driving|charging|parked|silent|alerting)$", nullable = false)]
    pub status: Option<Filter>,
    /// The whole fleet in this order instead of by id, lowest first (`-` first: highest first):
    /// last heard (by five-minute step), state of charge or hottest cell (in whole units, as of
    /// the vehicle's last five-minute step or change of status). Not with `prefix` or `status`.
    #[param(pattern = "^-?(last_heard|soc_pct|cell_temp_max_c)$", nullable = false)]
    pub sort: Option<String>,
}

/// A page of the fleet's alert feed, newest first.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedPage {
    /// Page size (1-100, default 50)
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u64>,
    /// Only alerts before this RFC 3339 time
    #[param(format = DateTime, nullable = false)]
    pub before: Option<String>,
    /// The `next` of the previous page, as it is: an opaque cursor. One this API did not give is refused (400).
    #[param(pattern = "^[A-Za-z0-9_-]{1,400}$", nullable = false)]
    pub after: Option<String>,
}

/// A page of alerts, newest first.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertPage {
    /// Page size (1-100, default 50)
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u64>,
    /// Only alerts before this RFC 3339 time
    #[param(format = DateTime, nullable = false)]
    pub before: Option<String>,
}

// Each struct below lists its own `from` and `to` rather than flattening a
// shared range struct: serde's flatten reads a query string's values as
// text, and the numbers beside them (`max_points`, `gap_s`) would not parse.

/// A time range and how many points to draw it with.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Chart {
    /// RFC 3339; default: a day before `to`. At most the 31 days before `to` are read (the answer's from_us says where it starts); a `from` not before `to` asks for nothing, answered empty
    #[param(format = DateTime, nullable = false)]
    pub from: Option<String>,
    /// RFC 3339, exclusive; default: now
    #[param(format = DateTime, nullable = false)]
    pub to: Option<String>,
    /// 3-10000, default 1000
    #[param(minimum = 3, maximum = 10000, nullable = false)]
    pub max_points: Option<u64>,
}

/// A time range and the gap that splits trips.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TripRange {
    /// RFC 3339; default: a day before `to`. At most the 31 days before `to` are read (the answer's from_us says where it starts); a `from` not before `to` asks for nothing, answered empty
    #[param(format = DateTime, nullable = false)]
    pub from: Option<String>,
    /// RFC 3339, exclusive; default: now
    #[param(format = DateTime, nullable = false)]
    pub to: Option<String>,
    /// Seconds between two messages that split trips: 10-86400, default 300 (5 minutes)
    #[param(minimum = 10, maximum = 86400, nullable = false)]
    pub gap_s: Option<i64>,
}

/// A window of raw frames, the buses and identifiers to keep, and the log's format.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RawWindow {
    /// RFC 3339; default: an hour before `to`. A longer window than a day is answered a day at a time (Canopy-Next-From names the rest)
    #[param(format = DateTime, nullable = false)]
    pub from: Option<String>,
    /// RFC 3339, exclusive; default: now
    #[param(format = DateTime, nullable = false)]
    pub to: Option<String>,
    /// Buses to keep, comma-separated (`can0,can1`); default: every bus
    #[param(pattern = "^[A-Za-z0-9_.-]{1,32}(,[A-Za-z0-9_.-]{1,32}){0,15}$", nullable = false)]
    pub bus: Option<String>,
    /// Identifiers to keep, hexadecimal without flags, comma-separated (`1A0,18FEF100`); default: every one
    #[param(
        pattern = "^([0-9A-Fa-f]{1,7}|[01][0-9A-Fa-f]{7})(,([0-9A-Fa-f]{1,7}|[01][0-9A-Fa-f]{7})){0,63}$",
        nullable = false
    )]
    pub ids: Option<String>,
    /// The log's format: candump (default), asc, blf or csv
    #[param(pattern = "^(candump|asc|blf|csv)$", nullable = false)]
    pub format: Option<String>,
}

/// `bus`: the bus names listed, none for every bus.
pub fn buses(asked: Option<&str>) -> Result<std::collections::BTreeSet<String>, ApiError> {
    let Some(asked) = asked else {
        return Ok(Default::default());
    };
    let names: std::collections::BTreeSet<String> = asked.split(',').map(str::to_string).collect();
    let bad = names
        .iter()
        .find(|n| n.is_empty() || n.len() > 32 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
    if let Some(bad) = bad {
        return Err(invalid(
            "bus",
            format!("{:?} is not a bus name (1-32 of A-Z a-z 0-9 _ . -)", truncate(bad)),
        )
        .into());
    }
    if names.len() > 16 {
        return Err(invalid("bus", "at most 16 buses").into());
    }
    Ok(names)
}

/// `ids`: the CAN identifiers listed (hexadecimal, at most 29 bits), none for every one.
pub fn can_ids(asked: Option<&str>) -> Result<std::collections::BTreeSet<u32>, ApiError> {
    let Some(asked) = asked else {
        return Ok(Default::default());
    };
    let ids = asked
        .split(',')
        .map(|id| {
            u32::from_str_radix(id, 16)
                .ok()
                .filter(|v| id.len() <= 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) && *v <= 0x1FFF_FFFF)
                .ok_or_else(|| {
                    invalid(
                        "ids",
                        format!(
                            "{:?} is not a hexadecimal CAN identifier (at most 1FFFFFFF)",
                            truncate(id)
                        ),
                    )
                })
        })
        .collect::<Result<std::collections::BTreeSet<u32>, InvalidQuery>>()?;
    if ids.len() > 64 {
        return Err(invalid("ids", "at most 64 identifiers").into());
    }
    Ok(ids)
}

fn truncate(s: &str) -> &str {
    canopy::runtime::text::truncate_chars(s, 40)
}

/// A day of fleet statistics.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsDay {
    /// YYYY-MM-DD (UTC); default today
    #[param(format = Date, nullable = false)]
    pub date: Option<String>,
}

/// `limit`: 50 unless asked, at most [`MAX_PAGE`].
pub fn page_limit(limit: Option<u64>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=MAX_PAGE as u64).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid("limit", format!("{n} is outside 1..={MAX_PAGE}")).into()),
    }
}

/// `from` and `to`: the range a history route reads.
pub fn range(from: Option<&str>, to: Option<&str>) -> Result<TimeRange, ApiError> {
    Ok(TimeRange::parse(from, to, chrono::Utc::now())?)
}

/// `before`: only alerts older than this time.
pub fn before_us(before: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(s) = before else { return Ok(None) };
    let range = TimeRange::parse(None, Some(s), chrono::Utc::now()).map_err(|e| InvalidQuery {
        field: "before".into(),
        problem: e.problem,
    })?;
    Ok(Some(range.to_us))
}

/// `max_points`, bounded; the default when absent.
pub fn max_points(requested: Option<u64>) -> Result<usize, ApiError> {
    let requested = requested.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    Ok(history::max_points(requested)?)
}
