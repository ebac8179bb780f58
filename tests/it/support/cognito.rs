//! moto's Cognito user pools, over the service's JSON API: pools, app
//! clients, users in groups, and their tokens, for the tests of who may
//! connect (no SDK of its own in the build for a few set-up calls).

use canopy_tests::local;
use serde_json::{Value, json};

use super::http;

/// One Cognito action on moto (`CreateUserPool`, …) with `body`; the answer.
pub async fn call(action: &str, body: Value) -> Value {
    let target = format!("AWSCognitoIdentityProviderService.{action}");
    let answer = http::post(&local::moto().endpoint, "/")
        .header("X-Amz-Target", &target)
        .header("Content-Type", "application/x-amz-json-1.1")
        // moto finds the service and region in the credential scope; it checks no signature.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/cognito-idp/aws4_request, SignedHeaders=host, Signature=0",
        )
        .json(&body)
        .send()
        .await;
    assert_eq!(answer.status, 200, "{action}: {}", answer.text);
    answer.json()
}

/// A new pool; its id.
pub async fn pool(name: &str) -> String {
    let created = call("CreateUserPool", json!({"PoolName": local::unique(name)})).await;
    created["UserPool"]["Id"].as_str().unwrap_or_default().to_string()
}

/// A new app client of `pool` that signs users in with their password; its id.
pub async fn app_client(pool: &str, name: &str) -> String {
    let created = call(
        "CreateUserPoolClient",
        json!({"UserPoolId": pool, "ClientName": name, "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"]}),
    )
    .await;
    created["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub const PASSWORD: &str = "Correct-Horse-9";

/// A user of `pool` in `groups` (made when missing), with [`PASSWORD`].
pub async fn user(pool: &str, username: &str, groups: &[&str]) {
    call(
        "AdminCreateUser",
        json!({"UserPoolId": pool, "Username": username, "MessageAction": "SUPPRESS"}),
    )
    .await;
    call(
        "AdminSetUserPassword",
        json!({"UserPoolId": pool, "Username": username, "Password": PASSWORD, "Permanent": true}),
    )
    .await;
    for group in groups {
        let listed = call("ListGroups", json!({"UserPoolId": pool})).await;
        let exists = listed["Groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["GroupName"] == *group));
        if !exists {
            call("CreateGroup", json!({"UserPoolId": pool, "GroupName": group})).await;
        }
        call(
            "AdminAddUserToGroup",
            json!({"UserPoolId": pool, "Username": username, "GroupName": group}),
        )
        .await;
    }
}

/// `username`'s access and ID tokens from signing in to `client` of `pool`.
pub async fn sign_in(pool: &str, client: &str, username: &str) -> (String, String) {
    let auth = call(
        "AdminInitiateAuth",
        json!({"UserPoolId": pool, "ClientId": client, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
               "AuthParameters": {"USERNAME": username, "PASSWORD": PASSWORD}}),
    )
    .await;
    let result = &auth["AuthenticationResult"];
    let token = |name: &str| {
        result[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name}: {auth}"))
            .to_string()
    };
    (token("AccessToken"), token("IdToken"))
}

/// Where moto serves `pool`'s keys, as Cognito does at the pool's issuer.
pub fn jwks_url(pool: &str) -> String {
    format!("{}/{pool}/.well-known/jwks.json", local::moto().endpoint)
}

/// A claim of `token` (its payload decoded, not verified).
pub fn claim(token: &str, name: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null)[name].clone()
}

/// `token` with one claim changed after signing.
pub fn tampered(token: &str, name: &str, value: Value) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(&parts[1]).unwrap_or_default()).unwrap_or(Value::Null);
    claims[name] = value;
    parts[1] = engine.encode(claims.to_string());
    parts.join(".")
}
