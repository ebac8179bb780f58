//! Who may read which vehicles: a signed-in user's Cognito groups and the
//! fleet's vehicle groups decide, the same way for every function that
//! serves people (the query API, the live stream).
//!
//! - `fleet-admin`: every vehicle.
//! - a vehicle group named in `VEHICLE_GROUPS`: the vehicles it lists.
//! - `viewer` with no vehicle group: every vehicle when no vehicle groups are
//!   configured, none when some are (groups then partition the fleet).
//! - no Canopy group: refused.
//!
//! Where nobody signs in (the local stack) there is no caller: every vehicle.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::device_id::DeviceId;

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
                DeviceId::new(&probe).map_err(|e| format!("group {name}: {member:?}: {e}"))?;
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

    /// The views that hold `vehicle`: the whole fleet's, and each group that lists it.
    pub fn views_of(&self, vehicle: &str) -> Vec<View> {
        let groups = self
            .0
            .iter()
            .filter(|(_, patterns)| patterns.iter().any(|p| p.matches(vehicle)))
            .map(|(name, _)| View::Group(name.clone()));
        std::iter::once(View::All).chain(groups).collect()
    }
}

/// Which vehicles a caller reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// The vehicles of these vehicle groups (none: no vehicle at all).
    Only(BTreeMap<String, Vec<Pattern>>),
}

impl Scope {
    pub fn allows(&self, vehicle: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(groups) => groups.values().flatten().any(|p| p.matches(vehicle)),
        }
    }

    /// The views a fleet-wide read of this scope reads: the whole fleet's,
    /// or one per group (their union is the scope).
    pub fn views(&self) -> Vec<View> {
        match self {
            Self::All => vec![View::All],
            Self::Only(groups) => groups.keys().map(|g| View::Group(g.clone())).collect(),
        }
    }
}

/// A part of the fleet that fleet-wide indexes (the alert feed) are kept
/// for: all of it, or one vehicle group. A vehicle's entries are written to
/// each view that holds it, so a caller in one group of a large fleet reads
/// that group's entries only, never the fleet's filtered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum View {
    All,
    Group(String),
}

impl View {
    /// How indexes name the view: `all`, or `group:<name>`.
    pub fn key(&self) -> String {
        match self {
            Self::All => "all".into(),
            Self::Group(name) => format!("group:{name}"),
        }
    }
}

/// Why a caller reads nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No caller where one is required (a route the authorizer did not guard).
    #[error("sign in: this needs an access token")]
    SignIn,
    #[error("your account is in no Canopy group (ask for {VIEWER_GROUP} or {ADMIN_GROUP})")]
    NoGroup,
}

/// The rules above, as configured.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    pub vehicle_groups: VehicleGroups,
    /// True in AWS: a request without a caller did not come through sign-in
    /// (a misconfigured route) and is refused.
    pub identity_required: bool,
}

impl AccessPolicy {
    /// The vehicles `caller` reads (`None`: nobody signed in).
    pub fn scope(&self, caller: Option<&Caller>) -> Result<Scope, Denied> {
        let Some(caller) = caller else {
            return if self.identity_required {
                Err(Denied::SignIn)
            } else {
                Ok(Scope::All)
            };
        };
        if caller.groups.contains(ADMIN_GROUP) {
            return Ok(Scope::All);
        }
        let mine: BTreeMap<String, Vec<Pattern>> = self
            .vehicle_groups
            .0
            .iter()
            .filter(|(name, _)| caller.groups.contains(name.as_str()))
            .map(|(name, patterns)| (name.clone(), patterns.clone()))
            .collect();
        if !mine.is_empty() {
            return Ok(Scope::Only(mine));
        }
        if caller.groups.contains(VIEWER_GROUP) {
            return Ok(if self.vehicle_groups.is_empty() {
                Scope::All
            } else {
                Scope::Only(BTreeMap::new())
            });
        }
        Err(Denied::NoGroup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(groups: &[&str]) -> Caller {
        Caller {
            subject: "user-1".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
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
        let north = policy.scope(Some(&caller(&["viewer", "north"]))).unwrap();
        assert!(north.allows("veh-001") && north.allows("veh-002"));
        assert!(!north.allows("veh-0021") && !north.allows("veh-100"));
        let south = policy.scope(Some(&caller(&["south"]))).unwrap();
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
        assert_eq!(open.scope(None).unwrap(), Scope::All, "the local stack");
        assert_eq!(open.scope(Some(&caller(&["viewer"]))).unwrap(), Scope::All);
        assert_eq!(open.scope(Some(&caller(&["nobody"]))), Err(Denied::NoGroup));

        let grouped = AccessPolicy {
            vehicle_groups: VehicleGroups::parse("north=veh-001").unwrap(),
            identity_required: true,
        };
        assert_eq!(grouped.scope(None), Err(Denied::SignIn));
        assert_eq!(grouped.scope(Some(&caller(&["fleet-admin"]))).unwrap(), Scope::All);
        let ungrouped_viewer = grouped.scope(Some(&caller(&["viewer"]))).unwrap();
        assert!(!ungrouped_viewer.allows("veh-001"), "groups partition the fleet");
        assert!(ungrouped_viewer.views().is_empty(), "and such a viewer reads no view");
    }

    #[test]
    fn a_vehicle_is_in_the_fleets_view_and_each_of_its_groups_views() {
        let groups = VehicleGroups::parse("north=veh-001,veh-1*;all-ones=veh-1*;south=veh-2*").unwrap();
        let group = |g: &str| View::Group(g.to_string());
        assert_eq!(
            groups.views_of("veh-100"),
            [View::All, group("all-ones"), group("north")]
        );
        assert_eq!(groups.views_of("veh-001"), [View::All, group("north")]);
        assert_eq!(groups.views_of("veh-300"), [View::All]);
        let policy = AccessPolicy {
            vehicle_groups: groups,
            identity_required: true,
        };
        let both = policy.scope(Some(&caller(&["north", "south"]))).unwrap();
        assert_eq!(both.views(), [group("north"), group("south")]);
        assert_eq!(
            policy.scope(Some(&caller(&["fleet-admin"]))).unwrap().views(),
            [View::All]
        );
        assert_eq!(View::All.key(), "all");
        assert_eq!(group("north").key(), "group:north");
    }
}
