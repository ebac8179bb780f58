//! [`TokenVerifier`] for a Cognito user pool, without calling Cognito: the
//! access token's signature is checked against the pool's public keys (its
//! JWKS, fetched once and again only for a key id not seen before, at most
//! once a minute, or every few seconds while it cannot be read: [`Refetch`]),
//! then its claims ([`jwt`]). The caller's groups are the
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
/// After a fetch that failed, the next may start this much later: a pool
/// whose keys could not be read is usable again soon, and while they cannot
/// be read a flood of tokens costs one fetch per interval, not one each.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// When the JWKS may be fetched again.
#[derive(Debug, Default)]
struct Refetch {
    next_at: Option<Instant>,
}

impl Refetch {
    /// Whether a fetch may start at `now`; if so the next is put off by
    /// [`REFETCH_AFTER`], so fetches never overlap.
    fn start(&mut self, now: Instant) -> bool {
        if self.next_at.is_some_and(|at| now < at) {
            return false;
        }
        self.next_at = Some(now + REFETCH_AFTER);
        true
    }

    /// The fetch started at `now` failed: the next may start sooner.
    fn failed(&mut self, now: Instant) {
        self.next_at = Some(now + RETRY_AFTER_FAILURE);
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub struct CognitoVerifier {
    expected: Expected,
    jwks_url: String,
    http: Client<Https, Empty<Bytes>>,
    keys: RwLock<Arc<HashMap<String, PublicKey>>>,
    refetch: Mutex<Refetch>,
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
            refetch: Mutex::default(),
        })
    }

    /// The key `kid`, from the cache or a fresh JWKS.
    async fn key(&self, kid: &str) -> Result<PublicKey, String> {
        if let Some(key) = self.cached().get(kid) {
            return Ok(key.clone());
        }
        let due = self
            .refetch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .start(Instant::now());
        if due {
            let keys = self.fetch().await.map_err(|e| {
                let mut refetch = self.refetch.lock().unwrap_or_else(PoisonError::into_inner);
                refetch.failed(Instant::now());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_unknown_keys_fetches_once_a_minute_and_an_outage_once_per_retry_interval() {
        let t0 = Instant::now();
        let mut refetch = Refetch::default();
        assert!(refetch.start(t0), "the first key fetches");
        let flood = (1..1_000)
            .filter(|ms| refetch.start(t0 + Duration::from_millis(*ms)))
            .count();
        assert_eq!(
            flood, 0,
            "a thousand made-up key ids within a second fetch nothing more"
        );
        assert!(!refetch.start(t0 + REFETCH_AFTER - Duration::from_millis(1)));
        assert!(refetch.start(t0 + REFETCH_AFTER));

        // The keys cannot be read: retried after the short interval, not per token.
        let t1 = t0 + REFETCH_AFTER;
        refetch.failed(t1);
        let during = (0..=5_000)
            .filter(|ms| refetch.start(t1 + Duration::from_millis(*ms)))
            .count();
        assert_eq!(during, 1, "one retry within five seconds of a failure: {during}");
        assert!(!refetch.start(t1 + RETRY_AFTER_FAILURE + Duration::from_secs(1)));
    }
}
