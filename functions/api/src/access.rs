//! Who may read which vehicles, and how often they may ask for history.
//!
//! In AWS the JWT authorizer has already checked the access token; its claims
//! reach the handler in the request context. The caller's Cognito groups decide:
//!
//! - `fleet-admin`: every vehicle.
//! - a vehicle group named in `VEHICLE_GROUPS`: the vehicles it lists.
//! - `viewer` with no vehicle group: every vehicle when no vehicle groups are
//!   configured, none when some are (groups then partition the fleet).
//! - no Canopy group: 403.
//!
//! A vehicle outside the caller's scope answers 404, as a vehicle that does
//! not exist does, so a viewer cannot learn which ids another group holds.
//!
//! On the local stack there is no sign-in: no claims, every vehicle.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use canopy::domain::vehicle::VehicleId;
use lambda_http::request::RequestContext;

use crate::error::ApiError;

pub const ADMIN_GROUP: &str = "fleet-admin";
pub const VIEWER_GROUP: &str = "viewer";

/// The signed-in user behind a request, from the access token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `sub`: the user's id in the pool, stable across sign-ins.
    pub subject: String,
    /// `cognito:groups`.
    pub groups: BTreeSet<String>,
}

impl Caller {
    /// The caller the claims name; `None` without a `sub`.
    pub fn from_claims(claims: &HashMap<String, String>) -> Option<Self> {
        let subject = claims.get("sub").filter(|s| !s.is_empty())?.clone();
        let groups = claims
            .get("cognito:groups")
            .map(|g| parse_groups(g))
            .unwrap_or_default();
        Some(Self { subject, groups })
    }
}

/// `cognito:groups` as API Gateway's HTTP API hands it over: an array claim
/// flattened to `[a b]`; a JSON array or a comma list are accepted too.
pub fn parse_groups(claim: &str) -> BTreeSet<String> {
    let claim = claim.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(claim) {
        return list.into_iter().filter(|g| !g.is_empty()).collect();
    }
    claim
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// The caller of a request, when the request came through the JWT authorizer.
#[derive(Debug, Clone)]
pub struct Identity(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let caller = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .and_then(|jwt| Caller::from_claims(&jwt.claims)),
            _ => None,
        };
        Ok(Self(caller))
    }
}

/// A vehicle id, or every id starting with a prefix (`veh-1*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn matches(&self, id: &str) -> bool {
        match self {
            Self::Exact(e) => id == e,
            Self::Prefix(p) => id.starts_with(p.as_str()),
        }
    }
}

/// `VEHICLE_GROUPS`: `north=veh-001,veh-002;south=veh-1*`. Each group is a
/// Cognito group of the same name; a user in it reads the vehicles it lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VehicleGroups(BTreeMap<String, Vec<Pattern>>);

impl VehicleGroups {
    /// The groups of `text`, or what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut groups = BTreeMap::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, members) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not group=vehicle,vehicle"))?;
            let name = name.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
                return Err(format!("group name {name:?}: letters, digits, '-' and '_' only"));
            }
            if [ADMIN_GROUP, VIEWER_GROUP].contains(&name) {
                return Err(format!("group name {name:?} is a role, not a vehicle group"));
            }
            let mut patterns = Vec::new();
            for member in members.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                let (id, prefix) = match member.strip_suffix('*') {
                    Some(p) => (p, true),
                    None => (member, false),
                };
                // A prefix need not be a whole id, but it must be the start of one.
                let probe = if prefix { format!("{id}x") } else { id.to_string() };
                VehicleId::new(&probe).map_err(|e| format!("group {name}: {member:?}: {e}"))?;
                patterns.push(if prefix {
                    Pattern::Prefix(id.to_string())
                } else {
                    Pattern::Exact(id.to_string())
                });
            }
            if patterns.is_empty() {
                return Err(format!("group {name} lists no vehicles"));
            }
            if groups.insert(name.to_string(), patterns).is_some() {
                return Err(format!("group {name} is given twice"));
            }
        }
        Ok(Self(groups))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which vehicles a caller reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Only(Vec<Pattern>),
}

impl Scope {
    pub fn allows(&self, vehicle: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(patterns) => patterns.iter().any(|p| p.matches(vehicle)),
        }
    }

    /// `vehicle` when in scope; otherwise the 404 a missing vehicle gets.
    pub fn check(&self, vehicle: &VehicleId) -> Result<(), ApiError> {
        if self.allows(vehicle.as_str()) {
            Ok(())
        } else {
            Err(no_vehicle(vehicle))
        }
    }
}

pub fn no_vehicle(vehicle: &VehicleId) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no vehicle {vehicle}"))
}

/// The rules above, as configured.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    pub vehicle_groups: VehicleGroups,
    /// True in Lambda: a request without claims did not come through the
    /// authorizer (a misconfigured route) and is refused.
    pub identity_required: bool,
}

impl AccessPolicy {
    pub fn scope(&self, identity: &Identity) -> Result<Scope, ApiError> {
        let Some(caller) = &identity.0 else {
            return if self.identity_required {
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "sign in: this route needs an access token",
                ))
            } else {
                Ok(Scope::All)
            };
        };
        if caller.groups.contains(ADMIN_GROUP) {
            return Ok(Scope::All);
        }
        let mine: Vec<Pattern> = self
            .vehicle_groups
            .0
            .iter()
            .filter(|(name, _)| caller.groups.contains(name.as_str()))
            .flat_map(|(_, patterns)| patterns.iter().cloned())
            .collect();
        if !mine.is_empty() {
            return Ok(Scope::Only(mine));
        }
        if caller.groups.contains(VIEWER_GROUP) {
            return Ok(if self.vehicle_groups.is_empty() {
                Scope::All
            } else {
                Scope::Only(Vec::new())
            });
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("your account is in no Canopy group (ask for {VIEWER_GROUP} or {ADMIN_GROUP})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(groups: &[&str]) -> Identity {
        Identity(Some(Caller {
            subject: "user-1".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }))
    }

    #[test]
    fn groups_claims_in_every_shape_api_gateway_may_send() {
        let expected: BTreeSet<String> = ["viewer".to_string(), "north".to_string()].into();
        assert_eq!(parse_groups("[viewer north]"), expected);
        assert_eq!(parse_groups(r#"["viewer","north"]"#), expected);
        assert_eq!(parse_groups("viewer,north"), expected);
        assert_eq!(parse_groups("viewer"), ["viewer".to_string()].into());
        assert!(parse_groups("[]").is_empty());
    }

    #[test]
    fn claims_without_a_subject_name_no_caller() {
        let mut claims = HashMap::from([("cognito:groups".to_string(), "[viewer]".to_string())]);
        assert_eq!(Caller::from_claims(&claims), None);
        claims.insert("sub".into(), "abc".into());
        assert_eq!(Caller::from_claims(&claims).unwrap().groups.len(), 1);
    }

    #[test]
    fn vehicle_groups_parse_and_name_what_is_wrong() {
        let groups = VehicleGroups::parse("north=veh-001, veh-002 ; south=veh-1*").unwrap();
        let policy = AccessPolicy {
            vehicle_groups: groups,
            identity_required: true,
        };
        let north = policy.scope(&caller(&["viewer", "north"])).unwrap();
        assert!(north.allows("veh-001") && north.allows("veh-002"));
        assert!(!north.allows("veh-0021") && !north.allows("veh-100"));
        let south = policy.scope(&caller(&["south"])).unwrap();
        assert!(south.allows("veh-100") && south.allows("veh-1") && !south.allows("veh-001"));
        assert!(VehicleGroups::parse("").unwrap().is_empty());
        for (bad, says) in [
            ("north", "is not group=vehicle"),
            ("viewer=veh-001", "is a role"),
            ("north=", "lists no vehicles"),
            ("north=veh 1", "group north"),
            ("a=veh-1;a=veh-2", "twice"),
            ("no rth=veh-1", "letters, digits"),
        ] {
            let error = VehicleGroups::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn roles_and_groups_decide_the_scope() {
        let open = AccessPolicy::default();
        assert_eq!(open.scope(&Identity(None)).unwrap(), Scope::All, "the local stack");
        assert_eq!(open.scope(&caller(&["viewer"])).unwrap(), Scope::All);
        assert_eq!(
            open.scope(&caller(&["nobody"])).unwrap_err().status,
            StatusCode::FORBIDDEN
        );

        let grouped = AccessPolicy {
            vehicle_groups: VehicleGroups::parse("north=veh-001").unwrap(),
            identity_required: true,
        };
        assert_eq!(
            grouped.scope(&Identity(None)).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(grouped.scope(&caller(&["fleet-admin"])).unwrap(), Scope::All);
        let ungrouped_viewer = grouped.scope(&caller(&["viewer"])).unwrap();
        assert!(!ungrouped_viewer.allows("veh-001"), "groups partition the fleet");
        let denied = ungrouped_viewer.check(&VehicleId::new("veh-001").unwrap()).unwrap_err();
        assert_eq!(denied.status, StatusCode::NOT_FOUND);
    }
}
