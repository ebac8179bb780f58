//! The WebSocket API's three routes, knowing nothing of Lambda: a client
//! connects (with its access token where people sign in), sends protocol
//! messages, and goes. Replies go back through the [`ConnectionPoster`], as
//! the fan-out's updates do, so one path reaches the client in AWS and on
//! the local stack.

use canopy::domain::access::{AccessPolicy, Caller, Denied};
use canopy::ports::TableError;
use canopy::ports::directory::{Listing, VehicleDirectory, merge_listing};
use canopy::ports::live::{
    Connection, ConnectionPoster, ConnectionStore, PostError, SignedIn, Subscription, TokenVerifier,
};
use canopy::ports::state::{LatestState, LatestStateStore};
use futures::future::try_join_all;

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
/// Vehicles a fleet subscription's snapshot holds at most: the fleet's
/// first, in id order (one page of the directory, one batch read of their
/// states), whatever the fleet's size. Past them the snapshot says it is
/// partial (`GET /vehicles` pages through the rest), and the changes that
/// follow cover the whole fleet.
pub const SNAPSHOT_VEHICLES: usize = 100;

pub struct Sessions<C, P, S, V, D> {
    pub connections: C,
    pub poster: P,
    pub state: S,
    /// The fleet's directory: which vehicles a fleet snapshot holds.
    pub directory: D,
    /// Checks access tokens; none where nobody signs in (the local stack).
    pub verifier: Option<V>,
    pub access: AccessPolicy,
    /// How long a connection's record lives without a disconnect (API
    /// Gateway closes a WebSocket after two hours).
    pub ttl_s: i64,
}

impl<C, P, S, V, D> Sessions<C, P, S, V, D>
where
    C: ConnectionStore,
    P: ConnectionPoster,
    S: LatestStateStore,
    V: TokenVerifier,
    D: VehicleDirectory,
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
            Ok(ClientMessage::Subscribe { subscription, snapshot }) => {
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
                if !snapshot {
                    return Ok(());
                }
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
    /// whether a fleet's was cut at [`SNAPSHOT_VEHICLES`].
    async fn snapshot(
        &self,
        caller: Option<&Caller>,
        subscription: &Subscription,
    ) -> Result<(Vec<LatestState>, bool), TableError> {
        let Ok(scope) = self.access.scope(caller) else {
            return Ok((Vec::new(), false));
        };
        let (mut ids, partial) = match subscription {
            Subscription::Fleet => {
                // The caller's views only, as the API lists them: one more than
                // the snapshot says whether it is whole.
                let listing = Listing {
                    prefix: "",
                    filter: None,
                    after: None,
                    limit: SNAPSHOT_VEHICLES + 1,
                };
                let views = scope.views();
                let pages = try_join_all(views.iter().map(|view| self.directory.list(view, listing))).await?;
                let mut ids = merge_listing(pages, SNAPSHOT_VEHICLES + 1);
                let partial = ids.len() > SNAPSHOT_VEHICLES;
                ids.truncate(SNAPSHOT_VEHICLES);
                (ids, partial)
            }
            Subscription::Vehicles(ids) => (ids.iter().cloned().collect(), false),
        };
        // A view keeps who its group held when each vehicle was entered.
        ids.retain(|id| scope.allows(id.as_str()));
        Ok((self.state.get_many(&ids).await?, partial))
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
    use canopy::adapters::memory::{
        MemoryConnectionStore, MemoryDirectory, MemoryPoster, MemoryStateTable, MemoryTokenVerifier,
    };
    use canopy::domain::access::{VehicleGroups, View};
    use canopy::domain::device_id::DeviceId;
    use canopy::domain::standing::Standing;
    use serde_json::Value;

    use super::*;

    type Memory = Sessions<MemoryConnectionStore, MemoryPoster, MemoryStateTable, MemoryTokenVerifier, MemoryDirectory>;

    fn sessions(verifier: Option<MemoryTokenVerifier>) -> Memory {
        Sessions {
            connections: MemoryConnectionStore::default(),
            poster: MemoryPoster::default(),
            state: MemoryStateTable::default(),
            directory: MemoryDirectory::default(),
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
    async fn a_fleet_snapshot_is_the_fleets_first_vehicles_read_as_a_page_whatever_its_size() {
        let s = sessions(None);
        for i in 0..2_000 {
            let id = DeviceId::new(format!("veh-{i:05}")).unwrap();
            let t = telemetry(&id, 1, 10);
            s.directory.enter(&id, &[View::All], Standing::of(&t)).await.unwrap();
            s.state.put_if_newer(&t, 1).await.unwrap();
        }
        s.connect("c1", None, 0).await.unwrap();
        let (lists, gets) = (s.directory.faults.calls("list_query"), s.state.faults.calls("get_many"));
        s.message("c1", r#"{"action":"subscribe","fleet":true}"#, 0)
            .await
            .unwrap();
        let got = replies(&s, "c1");
        let states: Vec<&str> = (got[1..].iter())
            .flat_map(|m| m["states"].as_array().unwrap())
            .map(|state| state["vehicle_id"].as_str().unwrap())
            .collect();
        assert_eq!(states.len(), SNAPSHOT_VEHICLES);
        assert_eq!((states[0], states[SNAPSHOT_VEHICLES - 1]), ("veh-00000", "veh-00099"));
        assert!(
            got[1..].iter().all(|m| m["partial"] == true),
            "the snapshot says it is partial"
        );
        assert_eq!(
            (
                s.directory.faults.calls("list_query") - lists,
                s.state.faults.calls("get_many") - gets
            ),
            (8, 1),
            "a query per partition of the fleet's view, one batch read of states"
        );
        s.connect("c2", None, 0).await.unwrap();
        s.message("c2", r#"{"action":"subscribe","fleet":true,"snapshot":false}"#, 0)
            .await
            .unwrap();
        let got = replies(&s, "c2");
        assert_eq!(
            (got.len(), got[0]["type"].as_str()),
            (1, Some("subscribed")),
            "no snapshot: {got:?}"
        );
        assert_eq!(s.directory.faults.calls("list_query") - lists, 8, "and no read");
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
