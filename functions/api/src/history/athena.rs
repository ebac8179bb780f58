//! [`History`] on Athena: parameterised queries in the stack's workgroup (which
//! caps bytes scanned), polled with backoff, cancelled at the deadline.
//!
//! A chart's query ([`series_sql`]) reads a rollup tier for all but short
//! ranges and reduces in SQL to each bucket's first, lowest, highest and last
//! point, so a result stays within four rows per requested point and
//! `GetQueryResults` pages (1,000 rows each) stay few. A chart of a range that
//! ended an hour ago reuses Athena's stored result for an hour.

use std::time::Duration;

use aws_sdk_athena::Client;
use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, ResultConfiguration, ResultReuseByAgeConfiguration,
    ResultReuseConfiguration, Row,
};
use chrono::NaiveDate;

use crate::history::devices::device_points_sql;
use crate::history::plan::{BucketRow, Plan, Reduced, SERIES_COLUMNS, reduce, series_sql};
use crate::history::trips::{TRIP_COLUMNS, TripRow, trips_sql};
use crate::history::{FleetStat, History, HistoryError, Param, SignalRef, Sql, TimeRange, fleet_stat, fleet_stats_sql};
use canopy::adapters::aws::error_text;
use canopy::domain::device_id::DeviceId;
use canopy::domain::lttb::Point;

/// How a query is waited for.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
    /// After this the query is cancelled and the caller gets a timeout (504).
    pub deadline: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        // API Gateway gives up at 30 s; answer before it does.
        Self {
            first: Duration::from_millis(200),
            max: Duration::from_secs(2),
            deadline: Duration::from_secs(25),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AthenaHistory {
    client: Client,
    workgroup: String,
    database: String,
    /// Where results go when the workgroup does not enforce its own location.
    output: Option<String>,
    polling: Polling,
}

impl AthenaHistory {
    pub fn new(config: &aws_config::SdkConfig, workgroup: &str, database: &str) -> Self {
        Self {
            client: Client::new(config),
            workgroup: workgroup.to_string(),
            database: database.to_string(),
            output: None,
            polling: Polling::default(),
        }
    }

    pub fn with_output(mut self, location: &str) -> Self {
        self.output = Some(location.to_string());
        self
    }

    pub fn with_polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    /// Runs `sql` and returns its rows (without the header row), each a
    /// column list of optional strings (NULL is `None`).
    pub async fn run(&self, sql: &Sql) -> Result<Vec<Vec<Option<String>>>, HistoryError> {
        self.run_reusing(sql, None).await
    }

    /// As [`run`](Self::run), letting Athena answer from the stored result of
    /// the same query run within `reuse_minutes` (no scan, no start-up).
    pub async fn run_reusing(
        &self,
        sql: &Sql,
        reuse_minutes: Option<i32>,
    ) -> Result<Vec<Vec<Option<String>>>, HistoryError> {
        let id = self.start(sql, reuse_minutes).await?;
        self.wait(&id).await?;
        self.results(&id).await
    }

    /// Starts `sql` with its parameters; the query's id.
    async fn start(&self, sql: &Sql, reuse_minutes: Option<i32>) -> Result<String, HistoryError> {
        let mut request = self
            .client
            .start_query_execution()
            .query_string(&sql.text)
            .work_group(&self.workgroup)
            .query_execution_context(QueryExecutionContext::builder().database(&self.database).build());
        if let Some(minutes) = reuse_minutes {
            let by_age = ResultReuseByAgeConfiguration::builder()
                .enabled(true)
                .max_age_in_minutes(minutes)
                .build();
            request = request.result_reuse_configuration(
                ResultReuseConfiguration::builder()
                    .result_reuse_by_age_configuration(by_age)
                    .build(),
            );
        }
        for p in &sql.params {
            request = request.execution_parameters(literal(p));
        }
        if let Some(output) = &self.output {
            request = request.result_configuration(ResultConfiguration::builder().output_location(output).build());
        }
        let started = request
            .send()
            .await
            .map_err(|e| failed("(not started)", error_text(&e)))?;
        let id = started.query_execution_id().unwrap_or_default().to_string();
        crate::history::started(&id);
        Ok(id)
    }

    /// Polls with backoff until the query succeeds; stops it at the deadline.
    async fn wait(&self, id: &str) -> Result<(), HistoryError> {
        let begun = tokio::time::Instant::now();
        let mut wait = self.polling.first;
        loop {
            let execution = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(|e| failed(id, error_text(&e)))?;
            let status = execution.query_execution().and_then(|q| q.status());
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => return Ok(()),
                Some(QueryExecutionState::Failed) | Some(QueryExecutionState::Cancelled) => {
                    let reason = status
                        .and_then(|s| s.state_change_reason())
                        .unwrap_or("no reason given")
                        .to_string();
                    return Err(failed(id, reason));
                }
                _ => {}
            }
            if begun.elapsed() + wait > self.polling.deadline {
                // Nobody will read the answer: stop paying for the scan.
                let _ = self.client.stop_query_execution().query_execution_id(id).send().await;
                return Err(HistoryError::Timeout {
                    query_id: id.to_string(),
                    seconds: self.polling.deadline.as_secs(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.polling.max);
        }
    }

    /// Every page of a finished query's rows, without the header row.
    async fn results(&self, id: &str) -> Result<Vec<Vec<Option<String>>>, HistoryError> {
        let mut rows = Vec::new();
        let mut pages = self
            .client
            .get_query_results()
            .query_execution_id(id)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut first_page = true;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed(id, error_text(&e)))?;
            let Some(set) = page.result_set() else { continue };
            let names: Vec<&str> = set
                .result_set_metadata()
                .map(|m| m.column_info().iter().map(|c| c.name()).collect())
                .unwrap_or_default();
            for (i, row) in set.rows().iter().enumerate() {
                let values = cells(row);
                // Athena repeats the column names as the first row of a SELECT's results.
                let is_header = first_page && i == 0 && is_header(&values, &names);
                if !is_header {
                    rows.push(values);
                }
            }
            first_page = false;
        }
        Ok(rows)
    }
}

/// How long a chart's result may be reused: an hour once its range ended
/// an hour ago (later uploads are rare then; the edge sends within minutes),
/// never while the range is still filling.
pub fn reuse_minutes(plan: &Plan) -> Option<i32> {
    settled_reuse(plan.range)
}

/// An hour's reuse for a range that ended an hour ago.
fn settled_reuse(range: TimeRange) -> Option<i32> {
    let settled_us = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
    (range.to_us <= settled_us).then_some(60)
}

fn failed(query_id: &str, message: String) -> HistoryError {
    HistoryError::Failed {
        query_id: query_id.to_string(),
        message,
    }
}

fn is_header(values: &[Option<String>], names: &[&str]) -> bool {
    !names.is_empty()
        && values
            .iter()
            .map(|v| v.as_deref().unwrap_or(""))
            .eq(names.iter().copied())
}

/// The text Athena runs for `text` with execution parameters `params` (as
/// it received them): each `?` replaced, in order, by its parameter. A test
/// runs this on DataFusion to prove the SQL Athena gets is SQL an engine answers.
pub fn as_athena_runs_it(text: &str, params: &[String]) -> String {
    let mut out = String::with_capacity(text.len() + 16 * params.len());
    let mut params = params.iter();
    for c in text.chars() {
        match (c, c == '?') {
            (_, true) => out.push_str(params.next().map_or("?", String::as_str)),
            (c, false) => out.push(c),
        }
    }
    out
}

/// An execution parameter: Athena pastes it into the SQL as a literal, so a
/// string carries its own quotes (inner quotes doubled).
pub fn literal(p: &Param) -> String {
    match p {
        Param::Str(s) => format!("'{}'", s.replace('\'', "''")),
        Param::Int(i) => i.to_string(),
    }
}

fn cells(row: &Row) -> Vec<Option<String>> {
    row.data()
        .iter()
        .map(|d| d.var_char_value().map(str::to_string))
        .collect()
}

fn number<T: std::str::FromStr>(row: &[Option<String>], i: usize, what: &str) -> Result<T, String> {
    row.get(i)
        .and_then(|v| v.as_deref())
        .ok_or_else(|| format!("column {i} ({what}) is missing"))?
        .parse()
        .map_err(|_| format!("column {i} ({what}) is not a number: {:?}", row[i]))
}

/// A [`series_sql`] answer's rows: Athena hands every cell over as text.
fn bucket_rows(rows: &[Vec<Option<String>>]) -> Result<Vec<BucketRow>, String> {
    rows.iter()
        .map(|row| {
            BucketRow::from_cells(
                |i| number(row, i, SERIES_COLUMNS[i].0),
                |i| number(row, i, SERIES_COLUMNS[i].0),
            )
        })
        .collect()
}

impl History for AthenaHistory {
    async fn reduced(&self, vehicle: &DeviceId, signal: &SignalRef, plan: &Plan) -> Result<Reduced, HistoryError> {
        let sql = series_sql(plan, vehicle, signal);
        let rows = self.run_reusing(&sql, reuse_minutes(plan)).await?;
        let rows = bucket_rows(&rows).map_err(|message| HistoryError::Failed {
            query_id: "(results)".into(),
            message,
        })?;
        Ok(reduce(plan, &rows))
    }

    async fn fleet_stats(&self, date: NaiveDate) -> Result<Vec<FleetStat>, HistoryError> {
        let rows = self.run(&fleet_stats_sql("telemetry", date)).await?;
        rows.iter()
            .map(|row| {
                let mut v = [0.0; 10];
                for (k, slot) in v.iter_mut().enumerate() {
                    *slot = number(row, 3 + k, "statistic")?;
                }
                Ok(fleet_stat(
                    row.first().cloned().flatten().unwrap_or_default(),
                    number(row, 1, "hour")?,
                    number(row, 2, "messages")?,
                    v,
                ))
            })
            .collect::<Result<_, String>>()
            .map_err(|message| HistoryError::Failed {
                query_id: "(results)".into(),
                message,
            })
    }

    async fn trips(&self, vehicle: &DeviceId, range: TimeRange, gap_us: i64) -> Result<Vec<TripRow>, HistoryError> {
        let sql = trips_sql("telemetry", vehicle, range, gap_us);
        let rows = self.run_reusing(&sql, settled_reuse(range)).await?;
        rows.iter()
            .map(|row| {
                TripRow::from_cells(
                    |i| number(row, i, TRIP_COLUMNS[i].0),
                    |i| number(row, i, TRIP_COLUMNS[i].0),
                )
            })
            .collect::<Result<_, String>>()
            .map_err(|message| HistoryError::Failed {
                query_id: "(results)".into(),
                message,
            })
    }

    async fn device_points(
        &self,
        kind: &canopy::domain::kind::Kind,
        id: &DeviceId,
        field: &str,
        range: TimeRange,
    ) -> Result<Vec<Point>, HistoryError> {
        let sql = device_points_sql(kind, field, id, range);
        let rows = self.run_reusing(&sql, settled_reuse(range)).await?;
        rows.iter()
            .map(|row| {
                Ok(Point {
                    ts_us: number(row, 0, "ts_us")?,
                    value: number(row, 1, "value")?,
                })
            })
            .collect::<Result<_, String>>()
            .map_err(|message| HistoryError::Failed {
                query_id: "(results)".into(),
                message,
            })
    }

    /// Stops each query (one that already ended answers with an error, ignored).
    async fn cancel(&self, query_ids: &[String]) {
        let stops = query_ids
            .iter()
            .map(|id| self.client.stop_query_execution().query_execution_id(id).send());
        for (id, result) in query_ids.iter().zip(futures::future::join_all(stops).await) {
            if let Err(e) = result {
                tracing::info!(query_id = %id, error = %error_text(&e), "query not stopped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_parameters_carry_their_quotes() {
        assert_eq!(literal(&Param::Str("veh-01".into())), "'veh-01'");
        assert_eq!(literal(&Param::Str("it's".into())), "'it''s'");
        assert_eq!(literal(&Param::Int(-5)), "-5");
    }

    #[test]
    fn rows_as_text_become_bucket_rows() {
        let row = |v: [&str; 18]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        let rows = vec![row([
            "1", "2", "2", "1", "0", "1.0", "90", "2.0", "40", "0.5", "0", "1.0", "10", "0.5", "9.0", "2.5", "12.0",
            "3",
        ])];
        let parsed = bucket_rows(&rows).unwrap();
        assert_eq!(parsed[0].is, [true, false, false, true]);
        assert_eq!(parsed[0].min, canopy::domain::lttb::Point { ts_us: 40, value: 0.5 });
        assert_eq!((parsed[0].n_all, parsed[0].oor_all), (10, 3));
        let bad = vec![row([
            "1", "1", "1", "1", "x", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "0",
        ])];
        assert!(bucket_rows(&bad).unwrap_err().contains("not a number"));
    }

    #[test]
    fn only_settled_ranges_reuse_results() {
        let now = chrono::Utc::now().timestamp_micros();
        let at = |to_us| {
            crate::history::plan::plan(
                crate::history::TimeRange::new(to_us - 3_600_000_000, to_us).unwrap(),
                100,
            )
        };
        assert_eq!(reuse_minutes(&at(now - 2 * 3_600_000_000)), Some(60));
        assert_eq!(reuse_minutes(&at(now)), None);
    }
}
