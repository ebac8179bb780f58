//! Who may read which vehicles, as the API answers it: the caller from the
//! request (in AWS the JWT authorizer has already checked the access token;
//! its claims reach the handler in the request context) and the rules of
//! [`canopy::domain::access`]. A vehicle outside the caller's scope answers
//! 404, as a vehicle that does not exist does, so a viewer cannot learn
//! which ids another group holds.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use canopy::domain::device_id::DeviceId;
use lambda_http::request::RequestContext;

pub use canopy::domain::access::{
    ADMIN_GROUP, AccessPolicy, Caller, Denied, Pattern, Scope, VIEWER_GROUP, VehicleGroups, parse_groups,
};

use crate::error::ApiError;

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

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        let status = match denied {
            Denied::SignIn => StatusCode::UNAUTHORIZED,
            Denied::NoGroup => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, denied.to_string())
    }
}

/// The scope of the request's caller.
pub fn scope(policy: &AccessPolicy, identity: &Identity) -> Result<Scope, ApiError> {
    Ok(policy.scope(identity.0.as_ref())?)
}

/// `vehicle` when `scope` holds it; otherwise the 404 a missing vehicle gets.
pub fn check(scope: &Scope, vehicle: &DeviceId) -> Result<(), ApiError> {
    if scope.allows(vehicle.as_str()) {
        Ok(())
    } else {
        Err(no_vehicle(vehicle))
    }
}

pub fn no_vehicle(vehicle: &DeviceId) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no vehicle {vehicle}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_401_403_and_404() {
        let grouped = AccessPolicy {
            vehicle_groups: VehicleGroups::parse("north=veh-001").unwrap(),
            identity_required: true,
        };
        assert_eq!(
            scope(&grouped, &Identity(None)).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        let nobody = Identity(Some(Caller {
            subject: "u".into(),
            groups: ["nobody".to_string()].into(),
        }));
        assert_eq!(scope(&grouped, &nobody).unwrap_err().status, StatusCode::FORBIDDEN);
        let viewer = Identity(Some(Caller {
            subject: "u".into(),
            groups: ["viewer".to_string()].into(),
        }));
        let denied = check(&scope(&grouped, &viewer).unwrap(), &DeviceId::new("veh-001").unwrap()).unwrap_err();
        assert_eq!(denied.status, StatusCode::NOT_FOUND);
    }
}
