//! What the routes read, as trait objects. Each trait is a port of
//! `canopy::ports` (or [`History`]) with boxed futures and a blanket
//! implementation for every adapter of that port, so [`crate::Api`] holds
//! DynamoDB, Athena or the memory adapters alike without type parameters,
//! and the routes are plain functions of `State<Arc<Api>>`.

use canopy::domain::access::View;
use canopy::domain::alert::Alert;
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kind;
use canopy::domain::lttb::Point;
use canopy::domain::standing::Counts;
use canopy::ports::alert_log::{AlertLog, FeedPosition};
use canopy::ports::device_state::{DeviceState, DeviceStateStore};
use canopy::ports::directory::{Listing, Ranking, VehicleDirectory};
use canopy::ports::quota::QuotaCounter;
use canopy::ports::state::{LatestState, LatestStateStore};
use canopy::ports::{Page, TableError};
use chrono::NaiveDate;
use futures::future::BoxFuture;

use crate::history::{FleetStat, History, HistoryError, Plan, Reduced, SignalRef, TimeRange, TripRow};

/// Vehicles' latest states ([`LatestStateStore`]'s reads).
pub trait StateReads: Send + Sync {
    fn get<'a>(&'a self, vehicle: &'a DeviceId) -> BoxFuture<'a, Result<Option<LatestState>, TableError>>;
    fn get_many<'a>(&'a self, vehicles: &'a [DeviceId]) -> BoxFuture<'a, Result<Vec<LatestState>, TableError>>;
}

impl<T: LatestStateStore> StateReads for T {
    fn get<'a>(&'a self, vehicle: &'a DeviceId) -> BoxFuture<'a, Result<Option<LatestState>, TableError>> {
        Box::pin(LatestStateStore::get(self, vehicle))
    }
    fn get_many<'a>(&'a self, vehicles: &'a [DeviceId]) -> BoxFuture<'a, Result<Vec<LatestState>, TableError>> {
        Box::pin(LatestStateStore::get_many(self, vehicles))
    }
}

/// The fleet's directory and counts ([`VehicleDirectory`]'s reads).
pub trait DirectoryReads: Send + Sync {
    fn list<'a>(&'a self, view: &'a View, listing: Listing<'a>) -> BoxFuture<'a, Result<Vec<DeviceId>, TableError>>;
    fn ranked<'a>(
        &'a self,
        view: &'a View,
        ranking: Ranking<'a>,
    ) -> BoxFuture<'a, Result<Vec<(DeviceId, i64)>, TableError>>;
    fn counts<'a>(&'a self, view: &'a View) -> BoxFuture<'a, Result<Counts, TableError>>;
}

impl<T: VehicleDirectory> DirectoryReads for T {
    fn list<'a>(&'a self, view: &'a View, listing: Listing<'a>) -> BoxFuture<'a, Result<Vec<DeviceId>, TableError>> {
        Box::pin(VehicleDirectory::list(self, view, listing))
    }
    fn ranked<'a>(
        &'a self,
        view: &'a View,
        ranking: Ranking<'a>,
    ) -> BoxFuture<'a, Result<Vec<(DeviceId, i64)>, TableError>> {
        Box::pin(VehicleDirectory::ranked(self, view, ranking))
    }
    fn counts<'a>(&'a self, view: &'a View) -> BoxFuture<'a, Result<Counts, TableError>> {
        Box::pin(VehicleDirectory::counts(self, view))
    }
}

/// The alert log ([`AlertLog`]'s read).
pub trait AlertReads: Send + Sync {
    fn alerts<'a>(
        &'a self,
        stream: &'a str,
        limit: usize,
        before_us: Option<i64>,
    ) -> BoxFuture<'a, Result<Vec<Alert>, TableError>>;
    fn feed<'a>(
        &'a self,
        view: &'a View,
        limit: usize,
        after: Option<&'a FeedPosition>,
    ) -> BoxFuture<'a, Result<Vec<Alert>, TableError>>;
}

impl<T: AlertLog> AlertReads for T {
    fn alerts<'a>(
        &'a self,
        stream: &'a str,
        limit: usize,
        before_us: Option<i64>,
    ) -> BoxFuture<'a, Result<Vec<Alert>, TableError>> {
        Box::pin(AlertLog::alerts(self, stream, limit, before_us))
    }
    fn feed<'a>(
        &'a self,
        view: &'a View,
        limit: usize,
        after: Option<&'a FeedPosition>,
    ) -> BoxFuture<'a, Result<Vec<Alert>, TableError>> {
        Box::pin(AlertLog::feed(self, view, limit, after))
    }
}

/// The latest states of declared devices ([`DeviceStateStore`]'s reads).
pub trait DeviceReads: Send + Sync {
    fn list<'a>(
        &'a self,
        kind: &'a str,
        limit: usize,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page<DeviceState>, TableError>>;
    fn get<'a>(&'a self, kind: &'a str, id: &'a str) -> BoxFuture<'a, Result<Option<DeviceState>, TableError>>;
}

impl<T: DeviceStateStore> DeviceReads for T {
    fn list<'a>(
        &'a self,
        kind: &'a str,
        limit: usize,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page<DeviceState>, TableError>> {
        Box::pin(DeviceStateStore::list(self, kind, limit, after))
    }
    fn get<'a>(&'a self, kind: &'a str, id: &'a str) -> BoxFuture<'a, Result<Option<DeviceState>, TableError>> {
        Box::pin(DeviceStateStore::get(self, kind, id))
    }
}

/// The history quota's counter ([`QuotaCounter`]).
pub trait QuotaCounts: Send + Sync {
    fn take<'a>(
        &'a self,
        key: &'a str,
        amount: u32,
        limit: u32,
        expires_at_s: i64,
    ) -> BoxFuture<'a, Result<Option<u32>, TableError>>;
}

impl<T: QuotaCounter> QuotaCounts for T {
    fn take<'a>(
        &'a self,
        key: &'a str,
        amount: u32,
        limit: u32,
        expires_at_s: i64,
    ) -> BoxFuture<'a, Result<Option<u32>, TableError>> {
        Box::pin(QuotaCounter::take(self, key, amount, limit, expires_at_s))
    }
}

/// A query engine over the lake ([`History`]).
pub trait HistoryReads: Send + Sync {
    fn reduced<'a>(
        &'a self,
        vehicle: &'a DeviceId,
        signal: &'a SignalRef,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Reduced, HistoryError>>;
    fn fleet_stats(&self, date: NaiveDate) -> BoxFuture<'_, Result<Vec<FleetStat>, HistoryError>>;
    fn trips<'a>(
        &'a self,
        vehicle: &'a DeviceId,
        range: TimeRange,
        gap_us: i64,
    ) -> BoxFuture<'a, Result<Vec<TripRow>, HistoryError>>;
    fn device_points<'a>(
        &'a self,
        kind: &'a Kind,
        id: &'a DeviceId,
        field: &'a str,
        range: TimeRange,
    ) -> BoxFuture<'a, Result<Vec<Point>, HistoryError>>;
    fn cancel<'a>(&'a self, query_ids: &'a [String]) -> BoxFuture<'a, ()>;
}

impl<T: History> HistoryReads for T {
    fn reduced<'a>(
        &'a self,
        vehicle: &'a DeviceId,
        signal: &'a SignalRef,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Reduced, HistoryError>> {
        Box::pin(History::reduced(self, vehicle, signal, plan))
    }
    fn fleet_stats(&self, date: NaiveDate) -> BoxFuture<'_, Result<Vec<FleetStat>, HistoryError>> {
        Box::pin(History::fleet_stats(self, date))
    }
    fn trips<'a>(
        &'a self,
        vehicle: &'a DeviceId,
        range: TimeRange,
        gap_us: i64,
    ) -> BoxFuture<'a, Result<Vec<TripRow>, HistoryError>> {
        Box::pin(History::trips(self, vehicle, range, gap_us))
    }
    fn device_points<'a>(
        &'a self,
        kind: &'a Kind,
        id: &'a DeviceId,
        field: &'a str,
        range: TimeRange,
    ) -> BoxFuture<'a, Result<Vec<Point>, HistoryError>> {
        Box::pin(History::device_points(self, kind, id, field, range))
    }
    fn cancel<'a>(&'a self, query_ids: &'a [String]) -> BoxFuture<'a, ()> {
        Box::pin(History::cancel(self, query_ids))
    }
}
