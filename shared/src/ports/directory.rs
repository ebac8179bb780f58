//! The fleet's directory, and the counts and index kept beside it:
//! - which vehicles each [`View`] lists, in id order, and which of them have
//!   each status, so a page of the fleet, a search by id prefix or the
//!   vehicles of one status read a page of entries, not the fleet;
//! - how many vehicles of each view have each [`Status`], so the fleet's
//!   counts are a few items;
//! - each view's vehicles in each [`Order`] (last heard, state of charge,
//!   hottest cell), so a sorted page of the fleet reads a page of entries;
//! - when each vehicle not yet silent was last heard, so finding the ones
//!   that fell silent reads those, not the fleet;
//! - when each alerting vehicle last tripped a rule, so finding the ones
//!   that calmed down reads those.
//!
//! Each vehicle has a [`Record`] of its views and [`Standing`]; a change of
//! it changes the entries, counts and index in one step that happens whole
//! or not at all ([`Change`]). Nothing is written while the record stays the
//! same: a vehicle moves when it changes status, group, or five-minute step
//! of "last heard" or of its last tripped rule, not per message.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use super::TableError;
use crate::domain::access::View;
use crate::domain::device_id::DeviceId;
use crate::domain::standing::{Counts, Filter, Order, Standing, Status};

/// Partitions of each view's entries: a vehicle's entry is one partition's
/// (its id's hash), so a fleet coming online at once spreads its writes.
pub const DIRECTORY_SHARDS: u32 = 8;

/// What a listing asks for: ids starting with `prefix` (empty: every id),
/// of the vehicles `filter` holds (none: every vehicle), after `after`
/// (exclusive), `limit` of them, in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing<'a> {
    pub prefix: &'a str,
    pub filter: Option<Filter>,
    pub after: Option<&'a str>,
    pub limit: usize,
}

impl<'a> Listing<'a> {
    /// Where the listing's key range starts: the cursor, or the prefix if it
    /// is later (the range holds the cursor itself, which [`Listing::holds`] drops).
    pub fn start(&self) -> &'a str {
        match self.after {
            Some(after) if after > self.prefix => after,
            _ => self.prefix,
        }
    }

    /// Whether `id` belongs on the listing (before the limit).
    pub fn holds(&self, id: &str) -> bool {
        id.starts_with(self.prefix) && self.after.is_none_or(|a| id > a)
    }
}

/// What a sorted listing asks for: the vehicles ranked by `order`, lowest
/// first or highest first, after the vehicle at `after` (exclusive), `limit`
/// of them. Equal ranks go in id order, reversed when descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranking<'a> {
    pub order: Order,
    pub descending: bool,
    /// The previous page's last (rank, id).
    pub after: Option<(i64, &'a str)>,
    pub limit: usize,
}

impl Ranking<'_> {
    /// Whether (rank, id) comes after the cursor in this ranking.
    pub fn holds(&self, rank: i64, id: &str) -> bool {
        self.after.is_none_or(|after| {
            if self.descending {
                (rank, id) < after
            } else {
                (rank, id) > after
            }
        })
    }
}

/// The first `limit` of several partitions' ranked pages, each once, in the ranking's order.
pub fn merge_ranked(
    pages: impl IntoIterator<Item = Vec<(DeviceId, i64)>>,
    ranking: &Ranking<'_>,
) -> Vec<(DeviceId, i64)> {
    let all: BTreeSet<(i64, DeviceId)> = pages.into_iter().flatten().map(|(id, rank)| (rank, id)).collect();
    let ordered: Box<dyn Iterator<Item = (i64, DeviceId)>> = if ranking.descending {
        Box::new(all.into_iter().rev())
    } else {
        Box::new(all.into_iter())
    };
    ordered.take(ranking.limit).map(|(rank, id)| (id, rank)).collect()
}

/// The first `limit` ids of several sorted pages, each once, in id order.
pub fn merge_listing(pages: impl IntoIterator<Item = Vec<DeviceId>>, limit: usize) -> Vec<DeviceId> {
    let all: BTreeSet<DeviceId> = pages.into_iter().flatten().collect();
    all.into_iter().take(limit).collect()
}

/// What the indexes hold of a vehicle: the views (by [`View::key`]) that
/// list it, its standing, and while it is alerting, the step it last
/// tripped a rule in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub views: BTreeSet<String>,
    pub standing: Standing,
    pub alerting: Option<i64>,
}

impl Record {
    /// The record after a message with `standing`, for a vehicle in `views`.
    /// A standing heard before the recorded one is stale and the recorded one
    /// stays; so does a silence, until the vehicle is heard in a later step.
    /// The readings are taken only when the vehicle moves in the sorted
    /// listings (see [`Standing`]).
    pub fn after(old: Option<&Record>, views: &[View], standing: Standing) -> Record {
        let standing = match old {
            Some(old)
                if standing.heard < old.standing.heard
                    || (standing.heard == old.standing.heard && old.standing.status == Status::Silent)
                    || !standing.moved_from(&old.standing) =>
            {
                old.standing
            }
            Some(old) if !standing.reranked_from(&old.standing) => Standing {
                readings: old.standing.readings,
                ..standing
            },
            _ => standing,
        };
        Record {
            views: views.iter().map(View::key).collect(),
            standing,
            alerting: old.and_then(|o| o.alerting),
        }
    }

    /// The record after a message with `standing` that tripped a rule: as
    /// [`Record::after`], and alerting since the message's step (or a later
    /// one already recorded).
    pub fn alerted(old: Option<&Record>, views: &[View], standing: Standing) -> Record {
        let mut record = Record::after(old, views, standing);
        record.alerting = record.alerting.max(Some(standing.heard));
        record
    }

    /// The record once its alerting is over: `Some` only if the vehicle last
    /// tripped a rule in step `step` and not since.
    pub fn calmed(old: Option<&Record>, step: i64) -> Option<Record> {
        let old = old?;
        (old.alerting == Some(step)).then(|| Record {
            alerting: None,
            ..old.clone()
        })
    }

    /// The record once silence is found: `Some` only if the vehicle was
    /// last heard in step `heard` and is not silent already.
    pub fn silenced(old: Option<&Record>, heard: i64) -> Option<Record> {
        let old = old?;
        (old.standing.heard == heard && old.standing.status != Status::Silent).then(|| Record {
            standing: Standing {
                status: Status::Silent,
                ..old.standing
            },
            ..old.clone()
        })
    }

    /// What the record counts and files the vehicle under in each view.
    fn filters(&self) -> impl Iterator<Item = Filter> {
        std::iter::once(Filter::Status(self.standing.status)).chain(self.alerting.map(|_| Filter::Alerting))
    }

    /// The step this record keeps in the heard index: none once silent.
    fn heard_entry(&self) -> Option<i64> {
        (self.standing.status != Status::Silent).then_some(self.standing.heard)
    }

    /// The (view, order, rank) entries this record keeps in the sorted listings.
    fn ranks(&self) -> BTreeSet<(String, Order, i64)> {
        let ranks: Vec<(Order, i64)> = Order::ALL
            .into_iter()
            .filter_map(|order| Some((order, self.standing.rank(order)?)))
            .collect();
        self.views
            .iter()
            .flat_map(|view| ranks.iter().map(move |(order, rank)| (view.clone(), *order, *rank)))
            .collect()
    }
}

/// What a record's change writes, besides the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Views whose entry is written, and removed.
    pub entered: Vec<String>,
    pub left: Vec<String>,
    /// (view, filter) entries written, and removed: a view's vehicles by status, and alerting.
    pub filed: Vec<(String, Filter)>,
    pub unfiled: Vec<(String, Filter)>,
    /// Per view, what each filter's count moves by (never zero).
    pub counts: BTreeMap<String, Vec<(Filter, i64)>>,
    /// The heard index's entry removed (its step), and the one written.
    pub unheard: Option<i64>,
    pub heard: Option<i64>,
    /// The alerting index's entry removed (its step), and the one written.
    pub calmed: Option<i64>,
    pub alerting: Option<i64>,
    /// (view, order, rank) entries of the sorted listings written, and removed.
    pub ranked: Vec<(String, Order, i64)>,
    pub unranked: Vec<(String, Order, i64)>,
}

impl Change {
    pub fn between(old: Option<&Record>, new: &Record) -> Change {
        let no_views = BTreeSet::new();
        let old_views = old.map_or(&no_views, |o| &o.views);
        let filed_as = |r: Option<&Record>| -> BTreeSet<(String, Filter)> {
            r.into_iter()
                .flat_map(|r| {
                    r.views
                        .iter()
                        .flat_map(move |v| r.filters().map(move |f| (v.clone(), f)))
                })
                .collect()
        };
        let (filed_before, filed_now) = (filed_as(old), filed_as(Some(new)));
        let mut counts: BTreeMap<String, BTreeMap<Filter, i64>> = BTreeMap::new();
        for (view, filter) in &filed_before {
            *counts.entry(view.clone()).or_default().entry(*filter).or_default() -= 1;
        }
        for (view, filter) in &filed_now {
            *counts.entry(view.clone()).or_default().entry(*filter).or_default() += 1;
        }
        let (was, is) = (old.and_then(Record::heard_entry), new.heard_entry());
        let (alerting_was, alerting_is) = (old.and_then(|o| o.alerting), new.alerting);
        let (ranked_before, ranked_now) = (old.map(Record::ranks).unwrap_or_default(), new.ranks());
        Change {
            entered: new.views.difference(old_views).cloned().collect(),
            left: old_views.difference(&new.views).cloned().collect(),
            filed: filed_now.difference(&filed_before).cloned().collect(),
            unfiled: filed_before.difference(&filed_now).cloned().collect(),
            counts: counts
                .into_iter()
                .map(|(view, moves)| (view, moves.into_iter().filter(|(_, n)| *n != 0).collect::<Vec<_>>()))
                .filter(|(_, moves)| !moves.is_empty())
                .collect(),
            unheard: was.filter(|_| was != is),
            heard: is.filter(|_| was != is),
            calmed: alerting_was.filter(|_| alerting_was != alerting_is),
            alerting: alerting_is.filter(|_| alerting_was != alerting_is),
            ranked: ranked_now.difference(&ranked_before).cloned().collect(),
            unranked: ranked_before.difference(&ranked_now).cloned().collect(),
        }
    }
}

/// The counts of several views' partitions, added up.
pub fn add_counts(parts: impl IntoIterator<Item = Counts>) -> Counts {
    let mut total = Counts::default();
    for part in parts {
        for filter in Filter::ALL {
            total.add(filter, part.get(filter));
        }
    }
    total
}

/// The earliest-step `limit` of several partitions' (vehicle, step) pages.
pub fn merge_earliest(pages: impl IntoIterator<Item = Vec<(DeviceId, i64)>>, limit: usize) -> Vec<(DeviceId, i64)> {
    let mut all: Vec<(DeviceId, i64)> = pages.into_iter().flatten().collect();
    all.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    all.truncate(limit);
    all
}

pub trait VehicleDirectory: Send + Sync {
    /// Brings the indexes in line with `vehicle` being in exactly `views`
    /// with `standing` (see [`Record::after`]). Reads the record first and
    /// writes nothing when it stays the same, so calling it again is one
    /// read; true when anything changed.
    fn enter(
        &self,
        vehicle: &DeviceId,
        views: &[View],
        standing: Standing,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// The first `listing.limit` vehicles of `view` the listing holds, in id order.
    fn list(&self, view: &View, listing: Listing<'_>)
    -> impl Future<Output = Result<Vec<DeviceId>, TableError>> + Send;

    /// The first `ranking.limit` vehicles of `view` in the ranking's order, with their ranks.
    fn ranked(
        &self,
        view: &View,
        ranking: Ranking<'_>,
    ) -> impl Future<Output = Result<Vec<(DeviceId, i64)>, TableError>> + Send;

    /// How many vehicles `view` lists, by status.
    fn counts(&self, view: &View) -> impl Future<Output = Result<Counts, TableError>> + Send;

    /// Up to `limit` vehicles not silent and last heard in a step before
    /// `before`, with that step, the longest unheard first.
    fn unheard(
        &self,
        before: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(DeviceId, i64)>, TableError>> + Send;

    /// Marks `vehicle` silent if it was last heard in step `heard` and not
    /// since (see [`Record::silenced`]); true when marked.
    fn silence(&self, vehicle: &DeviceId, heard: i64) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// As [`VehicleDirectory::enter`], for a message that tripped a rule:
    /// the vehicle is alerting from the message's step (see [`Record::alerted`]).
    fn alerted(
        &self,
        vehicle: &DeviceId,
        views: &[View],
        standing: Standing,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// Up to `limit` alerting vehicles that last tripped a rule in a step
    /// before `before`, with that step, the earliest first.
    fn calming(
        &self,
        before: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(DeviceId, i64)>, TableError>> + Send;

    /// Ends `vehicle`'s alerting if it last tripped a rule in step `step`
    /// and not since (see [`Record::calmed`]); true when ended.
    fn calm(&self, vehicle: &DeviceId, step: i64) -> impl Future<Output = Result<bool, TableError>> + Send;
}

/// One directory shared by several holders (a bench's API and live sessions).
impl<T: VehicleDirectory> VehicleDirectory for std::sync::Arc<T> {
    fn enter(
        &self,
        vehicle: &DeviceId,
        views: &[View],
        standing: Standing,
    ) -> impl Future<Output = Result<bool, TableError>> + Send {
        T::enter(self, vehicle, views, standing)
    }

    fn list(
        &self,
        view: &View,
        listing: Listing<'_>,
    ) -> impl Future<Output = Result<Vec<DeviceId>, TableError>> + Send {
        T::list(self, view, listing)
    }

    fn ranked(
        &self,
        view: &View,
        ranking: Ranking<'_>,
    ) -> impl Future<Output = Result<Vec<(DeviceId, i64)>, TableError>> + Send {
        T::ranked(self, view, ranking)
    }

    fn counts(&self, view: &View) -> impl Future<Output = Result<Counts, TableError>> + Send {
        T::counts(self, view)
    }

    fn unheard(
        &self,
        before: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(DeviceId, i64)>, TableError>> + Send {
        T::unheard(self, before, limit)
    }

    fn silence(&self, vehicle: &DeviceId, heard: i64) -> impl Future<Output = Result<bool, TableError>> + Send {
        T::silence(self, vehicle, heard)
    }

    fn alerted(
        &self,
        vehicle: &DeviceId,
        views: &[View],
        standing: Standing,
    ) -> impl Future<Output = Result<bool, TableError>> + Send {
        T::alerted(self, vehicle, views, standing)
    }

    fn calming(
        &self,
        before: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(DeviceId, i64)>, TableError>> + Send {
        T::calming(self, before, limit)
    }

    fn calm(&self, vehicle: &DeviceId, step: i64) -> impl Future<Output = Result<bool, TableError>> + Send {
        T::calm(self, vehicle, step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::standing::Readings;

    fn ids(list: &[&str]) -> Vec<DeviceId> {
        list.iter().map(|id| DeviceId::new(*id).expect("id")).collect()
    }

    #[test]
    fn merged_pages_are_in_id_order_each_once_and_cut_to_the_limit() {
        let merged = merge_listing([ids(&["a-2", "b-1"]), ids(&["a-1", "a-2", "c-1"])], 3);
        assert_eq!(merged, ids(&["a-1", "a-2", "b-1"]));
    }

    fn record(views: &[&str], status: Status, heard: i64) -> Record {
        Record {
            views: views.iter().map(|v| v.to_string()).collect(),
            standing: Standing::new(status, heard),
            alerting: None,
        }
    }

    #[test]
    fn a_new_vehicle_is_entered_counted_and_heard_in_each_view() {
        let new = record(&["all", "group:n"], Status::Driving, 7);
        let change = Change::between(None, &new);
        assert_eq!(change.entered, ["all", "group:n"]);
        assert_eq!(change.counts["all"], [(Status::Driving.into(), 1)]);
        assert_eq!((change.unheard, change.heard), (None, Some(7)));
    }

    #[test]
    fn a_status_change_moves_counts_and_a_later_step_moves_the_heard_entry_only() {
        let old = record(&["all"], Status::Driving, 7);
        let parked = Change::between(Some(&old), &record(&["all"], Status::Parked, 7));
        assert_eq!(
            parked.counts["all"],
            [(Status::Driving.into(), -1), (Status::Parked.into(), 1)]
        );
        assert_eq!(parked.filed, [("all".to_string(), Status::Parked.into())]);
        assert_eq!(parked.unfiled, [("all".to_string(), Status::Driving.into())]);
        assert_eq!((parked.unheard, parked.heard, parked.entered.len()), (None, None, 0));
        let later = Change::between(Some(&old), &record(&["all"], Status::Driving, 8));
        assert!(later.counts.is_empty() && later.filed.is_empty() && later.unfiled.is_empty());
        assert_eq!((later.unheard, later.heard), (Some(7), Some(8)));
    }

    #[test]
    fn silence_leaves_the_heard_index_and_only_a_later_step_undoes_it() {
        let old = record(&["all", "group:n"], Status::Parked, 7);
        let silent = Record::silenced(Some(&old), 7).expect("silenced");
        let change = Change::between(Some(&old), &silent);
        assert_eq!(
            change.counts["group:n"],
            [(Status::Parked.into(), -1), (Status::Silent.into(), 1)]
        );
        assert_eq!((change.unheard, change.heard), (Some(7), None));
        assert_eq!(Record::silenced(Some(&old), 6), None, "heard since");
        assert_eq!(Record::silenced(Some(&silent), 7), None, "silent already");
        let views = [View::All, View::Group("n".into())];
        let late = Standing::new(Status::Driving, 7);
        assert_eq!(
            Record::after(Some(&silent), &views, late),
            silent,
            "a late message of the same step"
        );
        let back = Record::after(Some(&silent), &views, Standing::new(Status::Driving, 9));
        assert_eq!(Change::between(Some(&silent), &back).heard, Some(9));
    }

    #[test]
    fn readings_are_taken_when_the_vehicle_moves_and_move_its_sorted_entries() {
        let views = [View::All];
        let at = |heard, soc| Standing {
            readings: Readings {
                soc_pct: Some(soc),
                cell_temp_max_c: Some(30),
            },
            ..Standing::new(Status::Driving, heard)
        };
        let first = Record::after(None, &views, at(7, 80));
        let entered = Change::between(None, &first);
        assert_eq!(entered.ranked.len(), 3, "last heard, SoC and hottest cell: {entered:?}");
        let same_step = Record::after(Some(&first), &views, at(7, 79));
        assert_eq!(same_step, first, "a reading alone does not move the vehicle");
        let next_step = Record::after(Some(&first), &views, at(8, 78));
        assert_eq!(next_step.standing.heard, 8);
        assert!(
            Change::between(Some(&first), &next_step).ranked.is_empty(),
            "a step within the same span of the sorted listings keeps its readings: {next_step:?}"
        );
        let next_span = Record::after(Some(&next_step), &views, at(9, 77));
        let moved = Change::between(Some(&next_step), &next_span);
        let all = |order, rank| ("all".to_string(), order, rank);
        assert_eq!(moved.ranked, [all(Order::LastHeard, 9), all(Order::SocPct, 77)]);
        assert_eq!(moved.unranked, [all(Order::LastHeard, 6), all(Order::SocPct, 80)]);
        let parked = Standing {
            status: Status::Parked,
            ..at(10, 76)
        };
        let stopped = Record::after(Some(&next_span), &views, parked);
        assert_eq!(
            stopped.standing.readings.soc_pct,
            Some(76),
            "a change of status takes the readings"
        );
        let silent = Record::silenced(Some(&stopped), 10).expect("silenced");
        assert!(
            Change::between(Some(&stopped), &silent).ranked.is_empty(),
            "a silent vehicle keeps its place"
        );
    }

    #[test]
    fn ranked_pages_merge_in_rank_then_id_order_either_way_after_the_cursor() {
        let page = |list: &[(&str, i64)]| -> Vec<(DeviceId, i64)> {
            list.iter()
                .map(|(id, r)| (DeviceId::new(*id).expect("id"), *r))
                .collect()
        };
        let pages = [page(&[("b", 10), ("a", 40)]), page(&[("c", 10), ("d", 20)])];
        let ranking = Ranking {
            order: Order::SocPct,
            descending: true,
            after: Some((40, "a")),
            limit: 2,
        };
        assert_eq!(merge_ranked(pages.clone(), &ranking), page(&[("a", 40), ("d", 20)]));
        assert!(!ranking.holds(40, "a") && ranking.holds(20, "d") && !ranking.holds(50, "z"));
        let ascending = Ranking {
            descending: false,
            after: None,
            ..ranking
        };
        assert_eq!(merge_ranked(pages, &ascending), page(&[("b", 10), ("c", 10)]));
    }

    #[test]
    fn a_tripped_rule_files_and_counts_the_vehicle_alerting_until_it_calms() {
        let views = [View::All, View::Group("n".into())];
        let old = record(&["all", "group:n"], Status::Driving, 7);
        let alerted = Record::alerted(Some(&old), &views, Standing::new(Status::Driving, 8));
        assert_eq!((alerted.standing.heard, alerted.alerting), (8, Some(8)));
        let change = Change::between(Some(&old), &alerted);
        let alerting = |view: &str| (view.to_string(), Filter::Alerting);
        assert_eq!(change.filed, [alerting("all"), alerting("group:n")]);
        assert_eq!(change.counts["all"], [(Filter::Alerting, 1)]);
        assert_eq!((change.calmed, change.alerting), (None, Some(8)));
        // Telemetry and silence keep it alerting; a late trip does not move it back.
        let later = Record::after(Some(&alerted), &views, Standing::new(Status::Parked, 9));
        assert_eq!(later.alerting, Some(8));
        assert_eq!(
            Record::alerted(Some(&later), &views, Standing::new(Status::Parked, 6)).alerting,
            Some(8)
        );
        let again = Record::alerted(Some(&later), &views, Standing::new(Status::Parked, 10));
        let moved = Change::between(Some(&later), &again);
        assert!(moved.filed.is_empty() && moved.counts.is_empty(), "{moved:?}");
        assert_eq!((moved.calmed, moved.alerting), (Some(8), Some(10)));
        assert_eq!(Record::calmed(Some(&again), 8), None, "tripped since");
        let calm = Record::calmed(Some(&again), 10).expect("calmed");
        let change = Change::between(Some(&again), &calm);
        assert_eq!(change.unfiled, [alerting("all"), alerting("group:n")]);
        assert_eq!(change.counts["group:n"], [(Filter::Alerting, -1)]);
        assert_eq!((change.calmed, change.alerting), (Some(10), None));
        // A first message that trips a rule enters the vehicle, alerting.
        let first = Change::between(None, &Record::alerted(None, &views, Standing::new(Status::Charging, 3)));
        assert_eq!(
            first.counts["all"],
            [(Status::Charging.into(), 1), (Filter::Alerting, 1)]
        );
    }

    #[test]
    fn leaving_a_group_removes_its_entry_and_its_count() {
        let old = record(&["all", "group:n"], Status::Parked, 7);
        let change = Change::between(Some(&old), &record(&["all"], Status::Parked, 7));
        assert_eq!(
            (change.entered.len(), change.left.as_slice()),
            (0, ["group:n".to_string()].as_slice())
        );
        assert_eq!(change.counts.len(), 1);
        assert_eq!(change.counts["group:n"], [(Status::Parked.into(), -1)]);
    }

    #[test]
    fn a_listing_holds_ids_with_its_prefix_after_its_cursor() {
        let listing = Listing {
            prefix: "veh-1",
            filter: None,
            after: Some("veh-10"),
            limit: 5,
        };
        assert!(listing.holds("veh-11"));
        assert!(!listing.holds("veh-10"));
        assert!(!listing.holds("veh-09"));
        assert!(!listing.holds("veh-2"));
    }
}
