//! The WebSocket API's three routes, knowing nothing of Lambda: a client
//! connects (with its access token where people sign in), sends protocol
//! messages, and goes. Replies go back through the [`ConnectionPoster`], as
//! the fan-out's updates do, so one path reaches the client in AWS and on
//! the local stack.

use canopy::domain::access::{AccessPolicy, Caller, Denied};
use canopy::ports::TableError;
use canopy::ports::live::{Connection, ConnectionPoster, ConnectionStore, PostError, Subscription, TokenVerifier};
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
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The verifier where nobody signs in (the local stack): it is never asked.
pub struct NoSignIn;

impl TokenVerifier for NoSignIn {
    async fn verify(&self, _: &str) -> Result<Caller, String> {
        Err("nobody signs in here".into())
    }
}

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
    /// `$connect`: checks the token and records the connection.
    pub async fn connect(&self, id: &str, token: Option<&str>, now_ms: i64) -> Result<(), Refused> {
        let caller = match &self.verifier {
            None => None,
            Some(verifier) => {
                let token = token
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Refused::Unauthenticated("connect with ?token=<an access token>".into()))?;
                Some(verifier.verify(token).await.map_err(Refused::Unauthenticated)?)
            }
        };
        self.access.scope(caller.as_ref()).map_err(|denied| match denied {
            Denied::SignIn => Refused::Unauthenticated(denied.to_string()),
            Denied::NoGroup => Refused::Forbidden(denied.to_string()),
        })?;
        self.connections
            .put(&Connection {
                id: id.to_string(),
                caller,
                subscription: None,
                connected_at_ms: now_ms,
                expires_at_s: now_ms / 1000 + self.ttl_s,
            })
            .await?;
        Ok(())
    }

    /// `$default`: one client message, answered through the poster.
    pub async fn message(&self, id: &str, text: &str) -> Result<(), TableError> {
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
                self.connections.subscribe(id, Some(&subscription)).await?;
                self.post(id, &reply(ServerMessage::Subscribed(&subscription))).await;
                // What the client would otherwise wait for: the subscription's current states.
                let states = self.snapshot(connection.caller.as_ref(), &subscription).await?;
                reply(ServerMessage::Update {
                    states: &states,
                    alerts: &[],
                })
            }
        };
        self.post(id, &answer).await;
        Ok(())
    }

    /// `$disconnect`.
    pub async fn disconnect(&self, id: &str) -> Result<(), TableError> {
        self.connections.delete(id).await
    }

    /// The latest states the subscription and the caller's scope allow.
    async fn snapshot(
        &self,
        caller: Option<&Caller>,
        subscription: &Subscription,
    ) -> Result<Vec<LatestState>, TableError> {
        let Ok(scope) = self.access.scope(caller) else {
            return Ok(Vec::new());
        };
        let mut states = Vec::new();
        match subscription {
            Subscription::Fleet => {
                let mut after: Option<String> = None;
                loop {
                    let page = self.state.list(100, after.as_deref()).await?;
                    states.extend(
                        page.items
                            .into_iter()
                            .filter(|s| scope.allows(s.telemetry.vehicle_id.as_str())),
                    );
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
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
            }
        }
        Ok(states)
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
    use canopy::domain::vehicle::VehicleId;
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
            verifier.tokens.lock().unwrap().insert(
                token.into(),
                Caller {
                    subject: token.into(),
                    groups: groups.into_iter().map(String::from).collect(),
                },
            );
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
        assert_eq!((c.caller.unwrap().subject.as_str(), c.expires_at_s), ("good", 7205));
    }

    #[tokio::test]
    async fn a_subscription_is_answered_with_the_current_states_and_garbage_with_an_error() {
        let s = sessions(None);
        for (id, seq) in [("veh-001", 1), ("veh-002", 2)] {
            s.state
                .put_if_newer(&telemetry(&VehicleId::new(id).unwrap(), seq, 10), 1)
                .await
                .unwrap();
        }
        s.connect("c1", None, 0).await.unwrap();
        s.message("c1", r#"{"action":"subscribe","vehicles":["veh-002","veh-009"]}"#)
            .await
            .unwrap();
        s.message("c1", "{nonsense").await.unwrap();
        s.message("c1", r#"{"action":"ping"}"#).await.unwrap();
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
        s.message("c1", r#"{"action":"unsubscribe"}"#).await.unwrap();
        assert_eq!(s.connections.get("c1").await.unwrap().unwrap().subscription, None);
        s.disconnect("c1").await.unwrap();
        assert!(s.connections.get("c1").await.unwrap().is_none());
    }
}
