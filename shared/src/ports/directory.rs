//! The fleet's directory: which vehicles each [`View`] lists, in id order,
//! so a page of the fleet or a search by id prefix reads a page of entries,
//! not the fleet. Entries are written when a vehicle is first heard and when
//! the views it belongs to change, never per message: a vehicle's record of
//! its views says whether anything changed.

use std::collections::BTreeSet;
use std::future::Future;

use super::TableError;
use crate::domain::access::View;
use crate::domain::device_id::DeviceId;

/// Partitions of each view's entries: a vehicle's entry is one partition's
/// (its id's hash), so a fleet coming online at once spreads its writes.
pub const DIRECTORY_SHARDS: u32 = 8;

/// What a listing asks for: ids starting with `prefix` (empty: every id),
/// after `after` (exclusive), `limit` of them, in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing<'a> {
    pub prefix: &'a str,
    pub after: Option<&'a str>,
    pub limit: usize,
}

impl Listing<'_> {
    /// Whether `id` belongs on the listing (before the limit).
    pub fn holds(&self, id: &str) -> bool {
        id.starts_with(self.prefix) && self.after.is_none_or(|a| id > a)
    }
}

/// The first `limit` ids of several sorted pages, each once, in id order.
pub fn merge_listing(pages: impl IntoIterator<Item = Vec<DeviceId>>, limit: usize) -> Vec<DeviceId> {
    let all: BTreeSet<DeviceId> = pages.into_iter().flatten().collect();
    all.into_iter().take(limit).collect()
}

pub trait VehicleDirectory: Send + Sync {
    /// Lists `vehicle` in exactly `views`: entries in views it was not yet
    /// in are written and entries in views it left are removed. Reads the
    /// vehicle's record of its views first and writes nothing when they are
    /// the same, so calling it again is one read; true when anything changed.
    fn enter(&self, vehicle: &DeviceId, views: &[View]) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// The first `listing.limit` vehicles of `view` the listing holds, in id order.
    fn list(&self, view: &View, listing: Listing<'_>)
    -> impl Future<Output = Result<Vec<DeviceId>, TableError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<DeviceId> {
        list.iter().map(|id| DeviceId::new(*id).expect("id")).collect()
    }

    #[test]
    fn merged_pages_are_in_id_order_each_once_and_cut_to_the_limit() {
        let merged = merge_listing([ids(&["a-2", "b-1"]), ids(&["a-1", "a-2", "c-1"])], 3);
        assert_eq!(merged, ids(&["a-1", "a-2", "b-1"]));
    }

    #[test]
    fn a_listing_holds_ids_with_its_prefix_after_its_cursor() {
        let listing = Listing {
            prefix: "veh-1",
            after: Some("veh-10"),
            limit: 5,
        };
        assert!(listing.holds("veh-11"));
        assert!(!listing.holds("veh-10"));
        assert!(!listing.holds("veh-09"));
        assert!(!listing.holds("veh-2"));
    }
}
