//! [`TokenVerifier`] on Cognito: `GetUser` with the access token (Cognito
//! checks its signature, expiry and revocation, and that it carries the
//! `aws.cognito.signin.user.admin` scope the API requires too), then the
//! user's groups from `AdminListGroupsForUser`. No signing keys to fetch or
//! cache: the pool itself answers.

use std::collections::BTreeSet;

use aws_sdk_cognitoidentityprovider::Client;

use super::error_text;
use crate::domain::access::Caller;
use crate::ports::live::TokenVerifier;

#[derive(Clone, Debug)]
pub struct CognitoVerifier {
    client: Client,
    user_pool_id: String,
}

impl CognitoVerifier {
    pub fn new(config: &aws_config::SdkConfig, user_pool_id: &str) -> Self {
        Self {
            client: Client::new(config),
            user_pool_id: user_pool_id.to_string(),
        }
    }
}

impl TokenVerifier for CognitoVerifier {
    async fn verify(&self, token: &str) -> Result<Caller, String> {
        let user = self
            .client
            .get_user()
            .access_token(token)
            .send()
            .await
            .map_err(|e| format!("the access token is not valid: {}", error_text(&e)))?;
        let subject = user
            .user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .unwrap_or(user.username())
            .to_string();
        let mut groups = BTreeSet::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .admin_list_groups_for_user()
                .user_pool_id(&self.user_pool_id)
                .username(user.username())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| format!("the user's groups: {}", error_text(&e)))?;
            groups.extend(page.groups().iter().filter_map(|g| g.group_name().map(str::to_string)));
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(Caller { subject, groups }),
            }
        }
    }
}
