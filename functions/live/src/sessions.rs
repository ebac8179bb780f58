//! The WebSocket API's three routes, knowing nothing of Lambda: a client
//! connects (with its access token where people sign in), sends protocol
//! messages, and goes. Replies go back through the [`ConnectionPoster`], as
//! the fan-out's updates do, so one path reaches the client in AWS and on
//! the local stack.

use canopy::domain::access::{AccessPolicy, Caller, Denied};
use canopy::ports::TableError;
use canopy::ports::live::{
    Connection, ConnectionPoster, ConnectionStore, PostError, SignedIn, Subscription, TokenVerifier,
};
use canopy::ports::state::{LatestState, LatestStateStore};
use futures::stream::{self, StreamExt};

use crate::protocol::{self, ClientMessage, ServerMessage};

/// Why a connection was refused at `$connect`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// 401: no token, or one that is not valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: a valid user in no Canopy group.
    #[error("{0}")]
    Forbidden(String),
    /// 429: the user has as many connections open as one may.
    #[error("{0}")]
    TooMany(String),
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The verifier where nobody signs in (the local stack): it is never asked.
pub struct NoSignIn;

impl TokenVerifier for NoSignIn {
    async fn verify(&self, _: &str, _: i64) -> Result<SignedIn, String> {
        Err("nobody signs in here".into())
    }
}

/// Connections one user may hold open at once (a console per browser tab).
pub const MAX_CONNECTIONS_PER_USER: usize = 10;
/// Table pages a fleet subscription's snapshot reads at most (100 states
/// each); past them the snapshot says it is partial, and the changes that
/// follow still cover the whole fleet.
pub const MAX_SNAPSHOT_PAGES: usize = 10;

pub struct Sessions<C, P, S, V> {
    pub connections: C,
    pub poster: P,
    pub state: S,
    /// Checks access tokens; none where nobody signs in (the local stack).
    pub verifier: Option<V>,
    pub access: AccessPolicy,
    /// How long a connection's record lives without a disconnect (API
    /// Gateway closes a WebSocket after two hours).
    pub ttl_s: i64,
}

impl<C, P, S, V> Sessions<C, P, S, V>
where
    C: ConnectionStore,
    P: ConnectionPoster,
    S: LatestStateStore,
    V: TokenVerifier,
{
    /// `$connect`: checks the token and records the connection, which ends
    /// when the token expires (or after `ttl_s`, whichever comes first).
    pub async fn connect(&self, id: &str, token: Option<&str>, now_ms: i64) -> Result<(), Refused> {
        let now_s = now_ms.div_euclid(1000);
        let signed_in = match &self.verifier {
            None => None,
            Some(verifier) => {
                let token = token
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Refused::Unauthenticated("connect with ?token=<an access token>".into()))?;
                Some(verifier.verify(token, now_s).await.map_err(Refused::Unauthenticated)?)
            }
        };
        let caller = signed_in.as_ref().map(|s| s.caller.clone());
        self.access.scope(caller.as_ref()).map_err(|denied| match denied {
            Denied::SignIn => Refused::Unauthenticated(denied.to_string()),
            Denied::NoGroup => Refused::Forbidden(denied.to_string()),
        })?;
        if let Some(caller) = &caller {
            let open = self
                .connections
                .list()
                .await?
                .iter()
                .filter(|c| c.expires_at_s > now_s && c.caller.as_ref().is_some_and(|o| o.subject == caller.subject))
                .count();
            if open >= MAX_CONNECTIONS_PER_USER {
                return Err(Refused::TooMany(format!(
                    "{open} connections of this user are open; at most {MAX_CONNECTIONS_PER_USER}"
                )));
            }
        }
        let ends_s = now_s + self.ttl_s;
        self.connections
            .put(&Connection {
                id: id.to_string(),
                caller,
                subscription: None,
                connected_at_ms: now_ms,
                expires_at_s: signed_in.map_or(ends_s, |s| s.expires_at_s.min(ends_s)),
            })
            .await?;
        Ok(())
    }

    /// `$default`: one client message, answered through the poster.
    pub async fn message(&self, id: &str, text: &str, now_ms: i64) -> Result<(), TableError> {
        let reply = |m: ServerMessage| m.to_text();
        let answer = match protocol::parse(text) {
            Err(e) => reply(ServerMessage::Error(&e)),
            Ok(ClientMessage::Ping) => reply(ServerMessage::Pong),
            Ok(ClientMessage::Unsubscribe) => {
                self.connections.subscribe(id, None).await?;
                reply(ServerMessage::Unsubscribed)
            }
            Ok(ClientMessage::Subscribe(subscription)) => {
                let Some(connection) = self.connections.get(id).await? else {
                    return Ok(());
                };
                if connection.expires_at_s <= now_ms.div_euclid(1000) {
                    self.end(
                        id,
                        "token_expired",
                        "the access token this connection opened with has expired; sign in and connect again",
                    )
                    .await;
                    return Ok(());
                }
                self.connections.subscribe(id, Some(&subscription)).await?;
                self.post(id, &reply(ServerMessage::Subscribed(&subscription))).await;
                // What the client would otherwise wait for: the subscription's current states.
                let (states, partial) = self.snapshot(connection.caller.as_ref(), &subscription).await?;
                for text in protocol::updates(&states, &[], partial) {
                    self.post(id, &text).await;
                }
                return Ok(());
            }
        };
        self.post(id, &answer).await;
        Ok(())
    }

    /// Tells the client why, then closes its connection and forgets it.
    async fn end(&self, id: &str, code: &'static str, message: &str) {
        let e = protocol::ProtocolError {
            code,
            message: message.to_string(),
            field: None,
        };
        self.post(id, &ServerMessage::Error(&e).to_text()).await;
        if let Err(e) = self.poster.close(id).await {
            tracing::warn!(error = %e, connection = %id, "connection not closed");
        }
        let _ = self.connections.delete(id).await;
    }

    /// `$disconnect`.
    pub async fn disconnect(&self, id: &str) -> Result<(), TableError> {
        self.connections.delete(id).await
    }

    /// The latest states the subscription and the caller's scope allow, and
    /// whether a fleet's was cut at [`MAX_SNAPSHOT_PAGES`].
    async fn snapshot(
        &self,
        caller: Option<&Caller>,
        subscription: &Subscription,
    ) -> Result<(Vec<LatestState>, bool), TableError> {
        let Ok(scope) = self.access.scope(caller) else {
            return Ok((Vec::new(), false));
        };
        let mut states = Vec::new();
        match subscription {
            Subscription::Fleet => {
                let mut after: Option<String> = None;
                for _ in 0..MAX_SNAPSHOT_PAGES {
                    let page = self.state.list(100, after.as_deref()).await?;
                    states.extend(
                        page.items
                            .into_iter()
                            .filter(|s| scope.allows(s.telemetry.vehicle_id.as_str())),
                    );
                    match page.next {
                        Some(next) => after = Some(next),
                        None => return Ok((states, false)),
                    }
                }
                Ok((states, true))
            }
            Subscription::Vehicles(ids) => {
                // Collected first: a lazy map in the stream would keep its closure in
                // the future, which the compiler then cannot show to be Send.
                let reads: Vec<_> = ids
                    .iter()
                    .filter(|id| scope.allows(id.as_str()))
                    .map(|id| self.state.get(id))
                    .collect();
                let found: Vec<_> = stream::iter(reads).buffer_unordered(16).collect().await;
                for state in found {
                    states.extend(state?);
                }
                states.sort_by(|a, b| a.telemetry.vehicle_id.cmp(&b.telemetry.vehicle_id));
                Ok((states, false))
            }
        }
    }

    async fn post(&self, id: &str, text: &str) {
        match self.poster.post(id, text).await {
            Ok(()) => {}
            Err(PostError::Gone(_)) => {
                let _ = self.connections.delete(id).await;
            }
            Err(e) => tracing::warn!(error = %e, "reply not sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use canopy::adapters::contract::telemetry;
    use canopy::adapters::memory::{MemoryConnectionStore, MemoryPoster, MemoryStateTable, MemoryTokenVerifier};
    use canopy::domain::access::VehicleGroups;
    use canopy::domain::device_id::DeviceId;
    use serde_json::Value;

    use super::*;

    type Memory = Sessions<MemoryConnectionStore, MemoryPoster, MemoryStateTable, MemoryTokenVerifier>;

    fn sessions(verifier: Option<MemoryTokenVerifier>) -> Memory {
        Sessions {
            connections: MemoryConnectionStore::default(),
            poster: MemoryPoster::default(),
            state: MemoryStateTable::default(),
            access: AccessPolicy {
                vehicle_groups: VehicleGroups::default(),
                identity_required: verifier.is_some(),
            },
            verifier,
            ttl_s: 7200,
        }
    }

    fn replies(s: &Memory, id: &str) -> Vec<Value> {
        s.poster
            .to(id)
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn where_people_sign_in_a_connection_needs_a_token_of_a_canopy_user() {
        let verifier = MemoryTokenVerifier::default();
        for (token, groups) in [("good", vec!["viewer"]), ("stranger", vec![])] {
            let caller = Caller {
                subject: token.into(),
                groups: groups.into_iter().map(String::from).collect(),
            };
            verifier.issue(token, caller, 3_600);
        }
        let s = sessions(Some(verifier));
        assert!(matches!(
            s.connect("c1", None, 0).await,
            Err(Refused::Unauthenticated(_))
        ));
        assert!(matches!(
            s.connect("c1", Some("forged"), 0).await,
            Err(Refused::Unauthenticated(_))
        ));
        assert!(matches!(
            s.connect("c1", Some("stranger"), 0).await,
            Err(Refused::Forbidden(_))
        ));
        assert!(s.connections.list().await.unwrap().is_empty());
        s.connect("c1", Some("good"), 5_000).await.unwrap();
        let c = s.connections.get("c1").await.unwrap().unwrap();
        assert_eq!(
            (c.caller.unwrap().subject.as_str(), c.expires_at_s),
            ("good", 3_600),
            "the connection ends with its token, before the two hours"
        );
        assert!(matches!(
            s.connect("c2", Some("good"), 3_600_000).await,
            Err(Refused::Unauthenticated(_))
        ));
    }

    /// A verifier that knows token `t`: user `u`, a viewer, for an hour.
    fn a_viewers_token_t() -> MemoryTokenVerifier {
        let verifier = MemoryTokenVerifier::default();
        let caller = Caller {
            subject: "u".into(),
            groups: ["viewer".to_string()].into(),
        };
        verifier.issue("t", caller, 3_600);
        verifier
    }

    #[tokio::test]
    async fn a_user_holds_a_bounded_number_of_connections() {
        let verifier = a_viewers_token_t();
        let s = sessions(Some(verifier));
        for i in 0..MAX_CONNECTIONS_PER_USER {
            s.connect(&format!("c{i}"), Some("t"), 0).await.unwrap();
        }
        assert!(matches!(
            s.connect("one-more", Some("t"), 0).await,
            Err(Refused::TooMany(_))
        ));
        s.disconnect("c0").await.unwrap();
        s.connect("one-more", Some("t"), 0).await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_whose_token_expired_is_told_and_closed_when_it_subscribes() {
        let verifier = a_viewers_token_t();
        let s = sessions(Some(verifier));
        s.connect("c1", Some("t"), 0).await.unwrap();
        s.message("c1", r#"{"action":"subscribe","fleet":true}"#, 3_600_000)
            .await
            .unwrap();
        assert_eq!(replies(&s, "c1")[0]["code"], "token_expired");
        assert!(s.poster.closed().contains(&"c1".to_string()));
        assert!(s.connections.get("c1").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_fleet_snapshot_reads_a_bounded_number_of_pages() {
        let s = sessions(None);
        for i in 0..(MAX_SNAPSHOT_PAGES * 100 + 5) {
            let id = DeviceId::new(format!("veh-{i:05}")).unwrap();
            s.state.put_if_newer(&telemetry(&id, 1, 10), 1).await.unwrap();
        }
        s.connect("c1", None, 0).await.unwrap();
        s.message("c1", r#"{"action":"subscribe","fleet":true}"#, 0)
            .await
            .unwrap();
        let got = replies(&s, "c1");
        let states: usize = got[1..].iter().map(|m| m["states"].as_array().unwrap().len()).sum();
        assert_eq!(states, MAX_SNAPSHOT_PAGES * 100);
        assert!(
            got[1..].iter().all(|m| m["partial"] == true),
            "the snapshot says it is partial"
        );
    }

    #[tokio::test]
    async fn a_subscription_is_answered_with_the_current_states_and_garbage_with_an_error() {
        let s = sessions(None);
        for (id, seq) in [("veh-001", 1), ("veh-002", 2)] {
            s.state
                .put_if_newer(&telemetry(&DeviceId::new(id).unwrap(), seq, 10), 1)
                .await
                .unwrap();
        }
        s.connect("c1", None, 0).await.unwrap();
        s.message("c1", r#"{"action":"subscribe","vehicles":["veh-002","veh-009"]}"#, 0)
            .await
            .unwrap();
        s.message("c1", "{nonsense", 0).await.unwrap();
        s.message("c1", r#"{"action":"ping"}"#, 0).await.unwrap();
        let got = replies(&s, "c1");
        assert_eq!(got[0]["type"], "subscribed");
        assert_eq!(got[0]["vehicles"], serde_json::json!(["veh-002", "veh-009"]));
        assert_eq!(got[1]["type"], "update");
        assert_eq!(got[1]["states"].as_array().unwrap().len(), 1);
        assert_eq!(got[1]["states"][0]["vehicle_id"], "veh-002");
        assert_eq!(
            (got[2]["type"].as_str(), got[2]["code"].as_str()),
            (Some("error"), Some("bad_json"))
        );
        assert_eq!(got[3]["type"], "pong");
        assert!(
            s.connections.get("c1").await.unwrap().unwrap().subscription.is_some(),
            "still subscribed"
        );
        s.message("c1", r#"{"action":"unsubscribe"}"#, 0).await.unwrap();
        assert_eq!(s.connections.get("c1").await.unwrap().unwrap().subscription, None);
        s.disconnect("c1").await.unwrap();
        assert!(s.connections.get("c1").await.unwrap().is_none());
    }
}
