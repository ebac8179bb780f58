//! [`History`] on Athena: parameterised queries in the stack's workgroup (which
//! caps bytes scanned), polled with backoff, cancelled at the deadline.
//!
//! Long series are reduced in SQL before they leave Athena: per time bucket the
//! first, last, lowest and highest point (M4), so a result never exceeds four
//! points per requested point, and `GetQueryResults` pages (1,000 rows each)
//! stay few whatever the series' length. LTTB then picks the final points.

use std::time::Duration;

use aws_sdk_athena::Client;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration, Row};
use chrono::NaiveDate;

use crate::history::{
    FleetStat, History, HistoryError, Param, SignalRef, Sql, TimeRange, fleet_stat, fleet_stats_sql, points_sql,
};
use canopy::adapters::aws::error_text;
use canopy::domain::lttb::Point;
use canopy::domain::vehicle::VehicleId;

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
        let id = self.start(sql).await?;
        self.wait(&id).await?;
        self.results(&id).await
    }

    /// Starts `sql` with its parameters; the query's id.
    async fn start(&self, sql: &Sql) -> Result<String, HistoryError> {
        let mut request = self
            .client
            .start_query_execution()
            .query_string(&sql.text)
            .work_group(&self.workgroup)
            .query_execution_context(QueryExecutionContext::builder().database(&self.database).build());
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
        Ok(started.query_execution_id().unwrap_or_default().to_string())
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

/// An execution parameter: Athena pastes it into the SQL as a literal, so a
/// string carries its own quotes (inner quotes doubled).
fn literal(p: &Param) -> String {
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

/// The M4 reduction of [`points_sql`]: per bucket of `(to - from) / buckets`,
/// the first, last, lowest and highest point.
pub fn m4_sql(vehicle: &VehicleId, signal: &SignalRef, range: TimeRange, buckets: usize) -> Sql {
    let exact = points_sql("decoded", vehicle, signal, range);
    let width = ((range.to_us - range.from_us) / buckets.max(1) as i64).max(1);
    let inner = exact.text.trim_end_matches(" ORDER BY ts_us");
    let mut params = exact.params;
    params.extend([Param::Int(range.from_us), Param::Int(width)]);
    Sql {
        text: format!(
            "SELECT min(ts_us), min_by(value, ts_us), max(ts_us), max_by(value, ts_us), \
             min_by(ts_us, value), min(value), max_by(ts_us, value), max(value) \
             FROM ({inner}) GROUP BY (ts_us - ?) / ? ORDER BY 1"
        ),
        params,
    }
}

/// Points of M4 rows, in time order, each once.
fn m4_points(rows: &[Vec<Option<String>>]) -> Result<Vec<Point>, String> {
    let mut points = Vec::with_capacity(rows.len() * 4);
    for row in rows {
        for pair in 0..4 {
            points.push(Point {
                ts_us: number(row, pair * 2, "ts_us")?,
                value: number(row, pair * 2 + 1, "value")?,
            });
        }
    }
    points.sort_by_key(|p| p.ts_us);
    points.dedup_by_key(|p| p.ts_us);
    Ok(points)
}

impl History for AthenaHistory {
    async fn points(
        &self,
        vehicle: &VehicleId,
        signal: &SignalRef,
        range: TimeRange,
        max_points: usize,
    ) -> Result<Vec<Point>, HistoryError> {
        let sql = m4_sql(vehicle, signal, range, max_points);
        let rows = self.run(&sql).await?;
        m4_points(&rows).map_err(|message| HistoryError::Failed {
            query_id: "(results)".into(),
            message,
        })
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
    fn m4_rows_become_ordered_unique_points() {
        let row = |v: [&str; 8]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        let rows = vec![
            row(["0", "1.0", "90", "2.0", "40", "0.5", "90", "2.0"]),
            row(["100", "3.0", "190", "3.5", "100", "3.0", "150", "9.0"]),
        ];
        let points = m4_points(&rows).unwrap();
        let ts: Vec<i64> = points.iter().map(|p| p.ts_us).collect();
        assert_eq!(ts, [0, 40, 90, 100, 150, 190]);
        assert!(points.iter().any(|p| p.value == 9.0));
        let bad = vec![row(["0", "x", "1", "1", "1", "1", "1", "1"])];
        assert!(m4_points(&bad).unwrap_err().contains("not a number"));
    }

    #[test]
    fn m4_keeps_every_value_a_parameter() {
        let v = VehicleId::new("veh-01").unwrap();
        let s = SignalRef {
            message_name: "M".into(),
            signal_name: "S".into(),
        };
        let sql = m4_sql(&v, &s, TimeRange::new(0, 1_000_000).unwrap(), 100);
        assert_eq!(sql.text.matches('?').count(), sql.params.len());
        assert_eq!(sql.params.last(), Some(&Param::Int(10_000)));
    }
}
