//! Indexes of ids by step (when each vehicle or device was last heard, or
//! last tripped a rule): sort keys `<step, 12 digits>#<id>`, so a partition's
//! query reads the earliest steps first.

use aws_sdk_dynamodb::Client;
use futures::future::try_join_all;

use super::{get_s, s, table_error};
use crate::domain::device_id::DeviceId;
use crate::ports::TableError;
use crate::ports::directory::{DIRECTORY_SHARDS, merge_earliest};

/// The sort key of `id` at `step`.
pub(super) fn step_sk(step: i64, id: &DeviceId) -> String {
    format!("{:012}#{id}", step.max(0))
}

/// Where an index lives: its table, and the names of its partition and sort keys.
pub(super) struct StepIndex<'a> {
    pub client: &'a Client,
    pub table: &'a str,
    pub pk_name: &'a str,
    pub sk_name: &'a str,
}

impl StepIndex<'_> {
    /// The earliest `limit` entries of all the index's partitions (`pk_of`
    /// names each), as [`StepIndex::page`] reads each, all at once.
    pub async fn earliest(
        &self,
        pk_of: impl Fn(u32) -> String,
        before: i64,
        after: Option<(i64, &DeviceId)>,
        limit: usize,
    ) -> Result<Vec<(DeviceId, i64)>, TableError> {
        let pages =
            try_join_all((0..DIRECTORY_SHARDS).map(|shard| self.page(pk_of(shard), before, after, limit))).await?;
        Ok(merge_earliest(pages, limit))
    }

    /// Up to `limit` entries of partition `pk` at a step before `before`,
    /// after the entry `after` (exclusive), earliest first.
    pub async fn page(
        &self,
        pk: String,
        before: i64,
        after: Option<(i64, &DeviceId)>,
        limit: usize,
    ) -> Result<Vec<(DeviceId, i64)>, TableError> {
        let mut query = self
            .client
            .query()
            .table_name(self.table)
            .expression_attribute_names("#pk", self.pk_name)
            .expression_attribute_names("#sk", self.sk_name)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":before", s(format!("{:012}", before.max(0))));
        query = match after {
            None => query.key_condition_expression("#pk = :pk AND #sk < :before"),
            Some((step, id)) => query
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :after AND :before")
                .expression_attribute_values(":after", s(step_sk(step, id))),
        };
        let out = query
            // One more: the range holds `after` itself.
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| table_error(self.table, e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(|item| {
                let (step, id) = get_s(item, self.sk_name)?.split_once('#')?;
                Some((DeviceId::new(id).ok()?, step.parse::<i64>().ok()?))
            })
            .filter(|(id, step)| *step < before && after.is_none_or(|(s, a)| (*step, id) > (s, a)))
            .take(limit)
            .collect())
    }
}
