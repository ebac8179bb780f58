//! [`TokenVerifier`] for a Cognito user pool, without calling Cognito: the
//! access token's signature is checked against the pool's public keys (its
//! JWKS, fetched once and again only for a key id not seen before, at most
//! once a minute), then its claims ([`jwt`]). The caller's groups are the
//! verified token's `cognito:groups`: nothing is looked up by a name the
//! token's holder chose.

pub mod jwt;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use self::jwt::{Expected, PublicKey, Token};
use crate::ports::live::{SignedIn, TokenVerifier};

/// An unknown key id fetches the JWKS again at most this often: a flood of
/// made-up key ids costs one fetch a minute, not one per token.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub struct CognitoVerifier {
    expected: Expected,
    jwks_url: String,
    http: Client<Https, Empty<Bytes>>,
    keys: RwLock<Arc<HashMap<String, PublicKey>>>,
    fetched: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for CognitoVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoVerifier")
            .field("expected", &self.expected)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl CognitoVerifier {
    /// Tokens of the pool `pool_id` in `region` issued to `client_ids`. Its
    /// keys come from the pool's JWKS, or from `jwks_url` where the pool is
    /// not AWS's (moto serves the same document at
    /// `<endpoint>/<pool id>/.well-known/jwks.json`).
    pub fn new(
        region: &str,
        pool_id: &str,
        client_ids: BTreeSet<String>,
        jwks_url: Option<String>,
    ) -> Result<Self, std::io::Error> {
        let expected = Expected::pool(region, pool_id, client_ids);
        let jwks_url = jwks_url.unwrap_or_else(|| format!("{}/.well-known/jwks.json", expected.issuer));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            expected,
            jwks_url,
            http: Client::builder(TokioExecutor::new()).build(https),
            keys: RwLock::default(),
            fetched: Mutex::default(),
        })
    }

    /// The key `kid`, from the cache or a fresh JWKS.
    async fn key(&self, kid: &str) -> Result<PublicKey, String> {
        if let Some(key) = self.cached().get(kid) {
            return Ok(key.clone());
        }
        let due = {
            let mut fetched = self.fetched.lock().unwrap_or_else(PoisonError::into_inner);
            let due = fetched.is_none_or(|at| at.elapsed() >= REFETCH_AFTER);
            if due {
                *fetched = Some(Instant::now());
            }
            due
        };
        if due {
            let keys = self.fetch().await.map_err(|e| {
                *self.fetched.lock().unwrap_or_else(PoisonError::into_inner) = None;
                format!("the user pool's keys could not be read: {e}")
            })?;
            *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        }
        self.cached().get(kid).cloned().ok_or_else(|| {
            format!("the access token is not valid: it is signed by a key ({kid}) this pool does not have")
        })
    }

    fn cached(&self) -> Arc<HashMap<String, PublicKey>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn fetch(&self) -> Result<HashMap<String, PublicKey>, String> {
        let uri: hyper::Uri = self.jwks_url.parse().map_err(|e| format!("{}: {e}", self.jwks_url))?;
        let response = tokio::time::timeout(FETCH_TIMEOUT, self.http.get(uri))
            .await
            .map_err(|_| format!("{} did not answer within {FETCH_TIMEOUT:?}", self.jwks_url))?
            .map_err(|e| format!("{}: {e}", self.jwks_url))?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", self.jwks_url, response.status()));
        }
        let body = tokio::time::timeout(FETCH_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| format!("{} did not answer within {FETCH_TIMEOUT:?}", self.jwks_url))?
            .map_err(|e| format!("{}: {e}", self.jwks_url))?
            .to_bytes();
        jwt::keys(&body).map_err(|e| format!("{}: {e}", self.jwks_url))
    }
}

impl TokenVerifier for CognitoVerifier {
    async fn verify(&self, token: &str, now_s: i64) -> Result<SignedIn, String> {
        let token = Token::parse(token).map_err(|e| e.to_string())?;
        let key = self.key(&token.kid).await?;
        let claims = token.verified_claims(&key).map_err(|e| e.to_string())?;
        let (caller, expires_at_s) = self.expected.caller(&claims, now_s).map_err(|e| e.to_string())?;
        Ok(SignedIn { caller, expires_at_s })
    }
}
