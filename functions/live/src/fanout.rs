//! Changes of vehicles' state and new alerts, pushed to the connections
//! subscribed to them: at most one message per connection per interval
//! (about a second), carrying everything of that interval.
//!
//! The changes come whole from the tables' streams (their new images), so
//! nothing is read per change: a fleet's writes cost the fan-out nothing
//! while no console watches. The connections are read whole only when they
//! changed ([`canopy::ports::live::CachedConnections`]): a batch otherwise
//! reads one item, their version.
//!
//! The throttle leads: the first change after a quiet interval goes out at
//! once (an alert reaches the console in the time a read and a post take),
//! and what follows within the interval is held and sent, merged, when the
//! interval ends. A vehicle's state is only ever sent newer than the last
//! one a connection got, and an alert once per connection. A connection
//! that is gone (410) is forgotten; a slow one delays nobody else (posts go
//! out concurrently, each with a deadline).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use canopy::adapters::aws::dynamodb::images;
use canopy::domain::access::AccessPolicy;
use canopy::domain::alert::Alert;
use canopy::domain::device_id::DeviceId;
use canopy::ports::TableError;
use canopy::ports::live::{Connection, ConnectionPoster, ConnectionStore, PostError};
use canopy::ports::state::LatestState;
use futures::stream::{self, StreamExt};

use crate::protocol::{self, ProtocolError, ServerMessage};

/// What changed, as a table's stream carries it: the item as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A vehicle's latest state was written.
    State(LatestState),
    /// An alert was logged.
    Alert(Alert),
}

impl Change {
    /// A change from a stream record's new image, in DynamoDB's JSON: a
    /// latest-state item (its key is `vehicle_id` alone) or an alert of the
    /// log; `None` for the log's cooldown windows and what is neither.
    pub fn from_image(image: &serde_json::Value) -> Option<Self> {
        if image.get("sk").is_some() {
            images::alert_from_image(image).map(Self::Alert)
        } else {
            images::state_from_image(image).map(Self::State)
        }
    }
}

/// What a delivery or a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub held: usize,
    pub gone: usize,
    pub failed: usize,
}

/// Alerts remembered per connection, to send each once whatever redelivers it.
const REMEMBERED_ALERTS: usize = 256;
/// Posts in flight at once.
const POSTS_AT_ONCE: usize = 32;

/// Per connection: when it was last sent to, what waits, what it has.
#[derive(Default)]
struct Outbox {
    last_sent_ms: Option<i64>,
    states: BTreeMap<DeviceId, LatestState>,
    alerts: Vec<Alert>,
    /// The newest state time sent per vehicle: states never go back.
    sent_ts: HashMap<DeviceId, i64>,
    sent_alerts: VecDeque<(DeviceId, i64, String)>,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.states.is_empty() && self.alerts.is_empty()
    }

    fn hold(&mut self, states: &[&LatestState], alerts: &[&Alert]) {
        for s in states {
            let vehicle = &s.telemetry.vehicle_id;
            let newer_than_sent = self.sent_ts.get(vehicle).is_none_or(|t| *t < s.telemetry.ts_us());
            let newer_than_held = self
                .states
                .get(vehicle)
                .is_none_or(|held| held.telemetry.ts_us() < s.telemetry.ts_us());
            if newer_than_sent && newer_than_held {
                self.states.insert(vehicle.clone(), (*s).clone());
            }
        }
        for a in alerts {
            let key = (a.vehicle_id.clone(), a.ts_us, a.rule.clone());
            let held = self
                .alerts
                .iter()
                .any(|h| (&h.vehicle_id, h.ts_us, &h.rule) == (&key.0, key.1, &key.2));
            if !held && !self.sent_alerts.contains(&key) {
                self.alerts.push((*a).clone());
            }
        }
    }

    /// The held changes as messages (one, unless they are too large for
    /// one); the outbox remembers them as sent.
    fn take(&mut self, now_ms: i64) -> Vec<String> {
        let states: Vec<LatestState> = std::mem::take(&mut self.states).into_values().collect();
        let mut alerts = std::mem::take(&mut self.alerts);
        alerts.sort_by(|a, b| (a.ts_us, &a.vehicle_id, &a.rule).cmp(&(b.ts_us, &b.vehicle_id, &b.rule)));
        for s in &states {
            self.sent_ts.insert(s.telemetry.vehicle_id.clone(), s.telemetry.ts_us());
        }
        for a in &alerts {
            self.sent_alerts
                .push_back((a.vehicle_id.clone(), a.ts_us, a.rule.clone()));
            if self.sent_alerts.len() > REMEMBERED_ALERTS {
                self.sent_alerts.pop_front();
            }
        }
        self.last_sent_ms = Some(now_ms);
        protocol::updates(&states, &alerts, false)
    }
}

pub struct Fanout<C, P> {
    pub connections: C,
    pub poster: P,
    pub access: AccessPolicy,
    /// At most one message per connection per interval.
    pub interval: Duration,
    /// How long one post may take before it is given up (the client is slow).
    pub post_timeout: Duration,
    outboxes: Mutex<HashMap<String, Outbox>>,
}

impl<C: ConnectionStore, P: ConnectionPoster> Fanout<C, P> {
    pub fn new(connections: C, poster: P, access: AccessPolicy, interval: Duration) -> Self {
        Self {
            connections,
            poster,
            access,
            interval,
            post_timeout: Duration::from_secs(2),
            outboxes: Mutex::default(),
        }
    }

    fn outboxes(&self) -> MutexGuard<'_, HashMap<String, Outbox>> {
        self.outboxes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `changes` for every connection they concern, and sends to those
    /// whose interval has passed.
    pub async fn deliver(&self, changes: &[Change], now_ms: i64) -> Result<Delivery, TableError> {
        let mut states = Vec::new();
        let mut alerts = Vec::new();
        for change in changes {
            match change {
                Change::State(s) => states.push(s.clone()),
                Change::Alert(a) => alerts.push(a.clone()),
            }
        }
        if states.is_empty() && alerts.is_empty() {
            return Ok(Delivery::default());
        }
        let now_s = now_ms.div_euclid(1000);
        let (connections, ended): (Vec<Connection>, Vec<Connection>) = self
            .connections
            .list()
            .await?
            .into_iter()
            .partition(|c| c.expires_at_s > now_s);
        for connection in &ended {
            self.end(&connection.id).await;
        }
        {
            let mut outboxes = self.outboxes();
            // Connections that closed without a word are forgotten here too.
            let open: HashSet<&str> = connections.iter().map(|c| c.id.as_str()).collect();
            outboxes.retain(|id, _| open.contains(id.as_str()));
            for connection in &connections {
                let (mine_states, mine_alerts) = self.concerning(connection, &states, &alerts);
                if !mine_states.is_empty() || !mine_alerts.is_empty() {
                    outboxes
                        .entry(connection.id.clone())
                        .or_default()
                        .hold(&mine_states, &mine_alerts);
                }
            }
        }
        Ok(self.flush(now_ms).await)
    }

    /// Sends what is held for connections whose interval has passed.
    pub async fn flush(&self, now_ms: i64) -> Delivery {
        let interval_ms = self.interval.as_millis() as i64;
        let (due, held): (Vec<(String, Vec<String>)>, usize) = {
            let mut outboxes = self.outboxes();
            let mut due = Vec::new();
            let mut held = 0;
            for (id, outbox) in outboxes.iter_mut().filter(|(_, o)| !o.is_empty()) {
                if outbox.last_sent_ms.is_none_or(|t| now_ms - t >= interval_ms) {
                    due.push((id.clone(), outbox.take(now_ms)));
                } else {
                    held += 1;
                }
            }
            (due, held)
        };
        // Futures collected first (see `read`).
        let posts: Vec<_> = due.iter().map(|(id, texts)| self.post(id, texts)).collect();
        let results: Vec<_> = stream::iter(posts).buffer_unordered(POSTS_AT_ONCE).collect().await;
        let mut delivery = Delivery {
            held,
            ..Delivery::default()
        };
        for (id, posted) in results {
            match posted {
                Ok(Ok(())) => delivery.sent += 1,
                Ok(Err(PostError::Gone(_))) => {
                    delivery.gone += 1;
                    self.outboxes().remove(id);
                    if let Err(e) = self.connections.delete(id).await {
                        tracing::warn!(error = %e, connection = %id, "gone connection not deleted");
                    }
                }
                Ok(Err(e)) => {
                    delivery.failed += 1;
                    tracing::warn!(error = %e, "update not sent");
                }
                Err(_) => {
                    delivery.failed += 1;
                    tracing::warn!(connection = %id, "update not sent in time: a slow client");
                }
            }
        }
        delivery
    }

    /// `texts` to `id` in order, within the post timeout.
    async fn post<'a>(
        &self,
        id: &'a str,
        texts: &[String],
    ) -> (&'a str, Result<Result<(), PostError>, tokio::time::error::Elapsed>) {
        let all = async {
            for text in texts {
                self.poster.post(id, text).await?;
            }
            Ok(())
        };
        (id, tokio::time::timeout(self.post_timeout, all).await)
    }

    /// A connection past its end (its token expired, or two hours passed):
    /// told why, closed and forgotten, so a user whose access was taken away
    /// hears nothing more once their token runs out.
    async fn end(&self, id: &str) {
        self.outboxes().remove(id);
        let e = ProtocolError {
            code: "expired",
            message: "this connection has ended: its access token expired, or it reached two hours; sign in and connect again".into(),
            field: None,
        };
        let _ = self.poster.post(id, &ServerMessage::Error(&e).to_text()).await;
        if let Err(e) = self.poster.close(id).await {
            tracing::warn!(error = %e, connection = %id, "ended connection not closed");
        }
        if let Err(e) = self.connections.delete(id).await {
            tracing::warn!(error = %e, connection = %id, "ended connection not deleted");
        }
    }

    /// When the next held message is due (ms), if one is held.
    pub fn next_due_ms(&self) -> Option<i64> {
        let interval_ms = self.interval.as_millis() as i64;
        self.outboxes()
            .values()
            .filter(|o| !o.is_empty())
            .map(|o| o.last_sent_ms.map_or(0, |t| t + interval_ms))
            .min()
    }

    /// Flushes until nothing is held (a Lambda invocation's end: nothing may
    /// wait past it). Holds at most one interval.
    pub async fn drain(&self) -> Delivery {
        let mut total = Delivery::default();
        while let Some(due_ms) = self.next_due_ms() {
            let now = chrono::Utc::now().timestamp_millis();
            if due_ms > now {
                tokio::time::sleep(Duration::from_millis((due_ms - now) as u64)).await;
            }
            let d = self.flush(chrono::Utc::now().timestamp_millis()).await;
            total.sent += d.sent;
            total.gone += d.gone;
            total.failed += d.failed;
        }
        total
    }

    /// What of `states` and `alerts` the connection subscribed to and may read.
    fn concerning<'a>(
        &self,
        connection: &Connection,
        states: &'a [LatestState],
        alerts: &'a [Alert],
    ) -> (Vec<&'a LatestState>, Vec<&'a Alert>) {
        let (Some(subscription), Ok(scope)) = (&connection.subscription, self.access.scope(connection.caller.as_ref()))
        else {
            return (Vec::new(), Vec::new());
        };
        let wanted = |v: &DeviceId| subscription.includes(v) && scope.allows(v.as_str());
        (
            states.iter().filter(|s| wanted(&s.telemetry.vehicle_id)).collect(),
            alerts.iter().filter(|a| wanted(&a.vehicle_id)).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use canopy::adapters::contract::{alert, telemetry};
    use canopy::adapters::memory::{MemoryConnectionStore, MemoryPoster};
    use canopy::domain::access::{Caller, VehicleGroups};
    use canopy::ports::live::{CachedConnections, Subscription};
    use serde_json::Value;

    use super::*;

    /// As deployed: the connections kept between batches until they change.
    type Memory = Fanout<CachedConnections<MemoryConnectionStore>, MemoryPoster>;

    fn v(id: &str) -> DeviceId {
        DeviceId::new(id).unwrap()
    }

    fn fanout() -> Memory {
        Fanout::new(
            CachedConnections::new(MemoryConnectionStore::default()),
            MemoryPoster::default(),
            AccessPolicy::default(),
            Duration::from_millis(1000),
        )
    }

    /// A state change of `id` at message `seq`, `ts_s` into the contract suites' day.
    fn state(id: &str, seq: u64, ts_s: i64) -> Change {
        Change::State(LatestState {
            telemetry: telemetry(&v(id), seq, ts_s),
            updated_at_ms: 1,
        })
    }

    async fn connect(f: &Memory, id: &str, caller: Option<Caller>, subscription: Subscription) {
        f.connections
            .put(&Connection {
                id: id.into(),
                caller,
                subscription: Some(subscription),
                connected_at_ms: 0,
                expires_at_s: i64::MAX,
            })
            .await
            .unwrap();
    }

    fn only(ids: &[&str]) -> Subscription {
        Subscription::Vehicles(ids.iter().map(|i| v(i)).collect())
    }

    /// An update as the tests compare it: (vehicle, seq) of each state, `vehicle:rule` of each alert.
    type Update = (Vec<(String, u64)>, Vec<String>);

    /// The updates posted to `id`, in order.
    fn updates(f: &Memory, id: &str) -> Vec<Update> {
        f.poster
            .to(id)
            .iter()
            .map(|text| {
                let m: Value = serde_json::from_str(text).unwrap();
                assert_eq!(m["type"], "update");
                let states = m["states"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        (
                            s["vehicle_id"].as_str().unwrap().to_string(),
                            s["seq"].as_u64().unwrap(),
                        )
                    })
                    .collect();
                let alerts = m["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| format!("{}:{}", a["vehicle_id"].as_str().unwrap(), a["rule"].as_str().unwrap()))
                    .collect();
                (states, alerts)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_change_reaches_the_connections_subscribed_to_it_only() {
        let f = fanout();
        connect(&f, "a", None, only(&["veh-001"])).await;
        connect(&f, "b", None, only(&["veh-002"])).await;
        connect(&f, "fleet", None, Subscription::Fleet).await;
        let d = f.deliver(&[state("veh-001", 1, 10)], 0).await.unwrap();
        assert_eq!(d.sent, 2);
        assert_eq!(updates(&f, "a"), [(vec![("veh-001".into(), 1)], vec![])]);
        assert!(f.poster.to("b").is_empty());
        assert_eq!(updates(&f, "fleet").len(), 1);
    }

    #[tokio::test]
    async fn a_batch_reads_the_connections_version_and_lists_them_only_after_a_change() {
        let f = fanout();
        connect(&f, "a", None, Subscription::Fleet).await;
        for n in 0..10 {
            f.deliver(&[state("veh-001", n + 1, 10 + n as i64)], n as i64 * 2_000)
                .await
                .unwrap();
        }
        let table = &f.connections.inner().faults;
        assert_eq!(
            (table.calls("list"), table.calls("version")),
            (1, 10),
            "one scan in ten batches"
        );
        assert_eq!(updates(&f, "a").len(), 10);
        connect(&f, "b", None, Subscription::Fleet).await;
        f.deliver(&[state("veh-001", 20, 30)], 30_000).await.unwrap();
        assert_eq!(table.calls("list"), 2, "a new connection is listed");
        assert_eq!(updates(&f, "b").len(), 1, "and hears the next batch");
    }

    #[tokio::test]
    async fn one_message_per_interval_carries_the_newest_and_never_goes_back() {
        let f = fanout();
        connect(&f, "a", None, Subscription::Fleet).await;
        let vehicle = v("veh-001");
        f.deliver(&[state("veh-001", 1, 10)], 0).await.unwrap();
        // Within the interval: held, then sent merged once it has passed.
        assert_eq!(f.deliver(&[state("veh-001", 2, 11)], 300).await.unwrap().held, 1);
        f.deliver(&[state("veh-001", 3, 12)], 600).await.unwrap();
        assert_eq!(f.poster.to("a").len(), 1, "at most one message an interval");
        assert_eq!(f.next_due_ms(), Some(1000));
        assert_eq!(f.flush(999).await.sent, 0);
        assert_eq!(f.flush(1000).await.sent, 1);
        assert_eq!(
            updates(&f, "a"),
            [
                (vec![("veh-001".into(), 1)], vec![]),
                (vec![("veh-001".into(), 3)], vec![])
            ]
        );
        // A state older than one sent is not sent again (a late read, a replay).
        let older = LatestState {
            telemetry: telemetry(&vehicle, 2, 11),
            updated_at_ms: 1,
        };
        f.outboxes().get_mut("a").unwrap().hold(&[&older], &[]);
        assert_eq!(f.flush(5000).await.sent, 0);
    }

    #[tokio::test]
    async fn each_alert_once_whatever_redelivers_it() {
        let f = fanout();
        connect(&f, "a", None, only(&["veh-001"])).await;
        let change = Change::Alert(alert(&v("veh-001"), 7, 5));
        f.deliver(std::slice::from_ref(&change), 0).await.unwrap();
        f.deliver(&[change.clone(), change], 5_000).await.unwrap();
        assert_eq!(
            updates(&f, "a"),
            [(vec![], vec!["veh-001:over-temperature".to_string()])]
        );
    }

    #[tokio::test]
    async fn gone_connections_are_forgotten_and_a_slow_one_delays_nobody() {
        let mut f = fanout();
        f.post_timeout = Duration::from_millis(100);
        for id in ["gone", "slow", "fine"] {
            connect(&f, id, None, Subscription::Fleet).await;
        }
        f.poster.hang_up("gone");
        f.poster.slow("slow", Duration::from_secs(5));
        let started = std::time::Instant::now();
        let d = f.deliver(&[state("veh-001", 1, 10)], 0).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!((d.sent, d.gone, d.failed), (1, 1, 1));
        let left: BTreeSet<String> = f.connections.list().await.unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(left, ["fine".to_string(), "slow".to_string()].into());
    }

    #[tokio::test]
    async fn a_connection_past_its_end_hears_nothing_more_and_is_closed() {
        let f = fanout();
        connect(&f, "a", None, Subscription::Fleet).await;
        let mut ending = f.connections.get("a").await.unwrap().unwrap();
        ending.id = "ending".into();
        ending.expires_at_s = 100;
        f.connections.put(&ending).await.unwrap();
        f.deliver(&[state("veh-001", 1, 10)], 100_000).await.unwrap();
        assert_eq!(updates(&f, "a").len(), 1);
        let told: Vec<Value> = f
            .poster
            .to("ending")
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0]["code"], "expired");
        assert_eq!(f.poster.closed(), ["ending".to_string()]);
        assert!(f.connections.get("ending").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_connection_hears_only_of_vehicles_its_caller_reads() {
        let mut f = fanout();
        f.access = AccessPolicy {
            vehicle_groups: VehicleGroups::parse("north=veh-001").unwrap(),
            identity_required: true,
        };
        let north = Caller {
            subject: "u1".into(),
            groups: ["viewer".to_string(), "north".to_string()].into(),
        };
        connect(&f, "north", Some(north), Subscription::Fleet).await;
        connect(&f, "nobody", None, Subscription::Fleet).await;
        f.deliver(&[state("veh-001", 1, 10), state("veh-002", 2, 10)], 0)
            .await
            .unwrap();
        assert_eq!(updates(&f, "north"), [(vec![("veh-001".into(), 1)], vec![])]);
        assert!(f.poster.to("nobody").is_empty(), "no caller where sign-in is required");
    }
}
