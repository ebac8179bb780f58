//! The JSON Web Tokens a Cognito user pool issues, checked as its
//! documentation says an access token must be: an RS256 signature over
//! `header.payload` by a key of the pool's JWKS, then the claims (the
//! pool's issuer, `token_use` = `access`, a `client_id` of our own app
//! clients, `exp` not passed). No other algorithm is taken: `none`, HS256 or
//! a key the token carries itself never reach the signature check.

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;

use crate::domain::access::Caller;

/// Why a token is refused; the text is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the access token is not valid: {0}")]
pub struct Refused(pub String);

fn refused(problem: impl Into<String>) -> Refused {
    Refused(problem.into())
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// A token split and decoded, its signature not yet checked.
#[derive(Debug)]
pub struct Token<'a> {
    signing_input: &'a str,
    /// The key that signed it, by the JWKS's `kid`.
    pub kid: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Token<'a> {
    /// Three base64url parts, an RS256 header with a `kid`.
    pub fn parse(token: &'a str) -> Result<Self, Refused> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused("not a JSON Web Token (three parts separated by dots)"));
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| refused(format!("its {what} is not base64url")))
        };
        let header: Header = serde_json::from_slice(&decode(header, "header")?)
            .map_err(|e| refused(format!("its header is not a JWT header: {e}")))?;
        if header.alg != "RS256" {
            return Err(refused(format!(
                "it is signed with {}; only RS256 is taken",
                header.alg
            )));
        }
        let kid = header.kid.ok_or_else(|| refused("its header names no key (kid)"))?;
        let signing_input = &token[..token.len() - signature.len() - 1];
        Ok(Self {
            signing_input,
            kid,
            payload: decode(payload, "payload")?,
            signature: decode(signature, "signature")?,
        })
    }

    /// The claims, once `key` has verified the signature.
    pub fn verified_claims(&self, key: &PublicKey) -> Result<Claims, Refused> {
        RsaPublicKeyComponents { n: &key.n, e: &key.e }
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                self.signing_input.as_bytes(),
                &self.signature,
            )
            .map_err(|_| refused("its signature does not verify"))?;
        serde_json::from_slice(&self.payload)
            .map_err(|e| refused(format!("its claims are not what Cognito issues: {e}")))
    }
}

/// An RSA public key of a JWKS: modulus and exponent, big-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    kty: String,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The RS256 keys of a JWKS document, by `kid`; others are left out.
pub fn keys(jwks: &[u8]) -> Result<HashMap<String, PublicKey>, String> {
    let jwks: Jwks = serde_json::from_slice(jwks).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    for key in jwks.keys {
        if key.kty != "RSA" || key.alg.as_deref().is_some_and(|a| a != "RS256") {
            continue;
        }
        let (Some(n), Some(e)) = (key.n, key.e) else { continue };
        let decode = |v: &str| URL_SAFE_NO_PAD.decode(v.trim_end_matches('='));
        if let (Ok(n), Ok(e)) = (decode(&n), decode(&e)) {
            keys.insert(key.kid, PublicKey { n, e });
        }
    }
    Ok(keys)
}

/// The claims of a Cognito token that say whose it is and for what.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub token_use: String,
    /// An access token's app client (an ID token has `aud` instead).
    pub client_id: Option<String>,
    pub exp: i64,
    pub sub: String,
    /// Absent when the user is in no group.
    #[serde(rename = "cognito:groups", default)]
    pub groups: Vec<String>,
}

/// What a token must say to be ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
    pub issuer: String,
    /// The pool's app clients whose tokens are taken.
    pub client_ids: BTreeSet<String>,
}

impl Expected {
    pub fn pool(region: &str, pool_id: &str, client_ids: BTreeSet<String>) -> Self {
        Self {
            issuer: format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}"),
            client_ids,
        }
    }

    /// The caller `claims` name, when they are an unexpired access token of
    /// our pool for one of our clients, at `now_s`; with when it expires.
    pub fn caller(&self, claims: &Claims, now_s: i64) -> Result<(Caller, i64), Refused> {
        if claims.iss != self.issuer {
            return Err(refused(format!("it was issued by {}, not by this pool", claims.iss)));
        }
        if claims.token_use != "access" {
            return Err(refused(format!(
                "it is an {} token; connect with an access token",
                claims.token_use
            )));
        }
        match &claims.client_id {
            Some(client) if self.client_ids.contains(client) => {}
            _ => return Err(refused("it was issued to another app client")),
        }
        if claims.exp <= now_s {
            return Err(refused("it has expired; sign in again"));
        }
        if claims.sub.is_empty() {
            return Err(refused("it names no user (sub)"));
        }
        let caller = Caller {
            subject: claims.sub.clone(),
            groups: claims.groups.iter().filter(|g| !g.is_empty()).cloned().collect(),
        };
        Ok((caller, claims.exp))
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use serde_json::{Value, json};

    use super::*;

    /// A 2048-bit RSA key made for these tests alone (PKCS#8, DER).
    const TEST_KEY: &[u8] = include_bytes!("testdata/test-rsa-2048.pk8");
    const POOL: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool";

    fn key_pair() -> RsaKeyPair {
        RsaKeyPair::from_pkcs8(TEST_KEY).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn sign(header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let pair = key_pair();
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{input}.{}", b64(&signature))
    }

    fn jwks() -> HashMap<String, PublicKey> {
        let pair = key_pair();
        let components: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let doc = json!({"keys": [
            {"kid": "k1", "kty": "RSA", "alg": "RS256", "use": "sig", "n": b64(&components.n), "e": b64(&components.e)},
            {"kid": "ec", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        ]});
        keys(doc.to_string().as_bytes()).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": POOL, "token_use": "access", "client_id": "console", "exp": 2_000, "sub": "u-1",
               "username": "operator", "cognito:groups": ["viewer", "north"]})
    }

    fn expected() -> Expected {
        Expected {
            issuer: POOL.into(),
            client_ids: ["console".to_string(), "cli".to_string()].into(),
        }
    }

    fn check(token: &str, now_s: i64) -> Result<(Caller, i64), Refused> {
        let token = Token::parse(token)?;
        let keys = jwks();
        let key = keys.get(&token.kid).ok_or_else(|| refused("unknown key"))?;
        expected().caller(&token.verified_claims(key)?, now_s)
    }

    #[test]
    fn a_signed_access_token_of_our_pool_names_its_user_and_groups() {
        let token = sign(&json!({"alg": "RS256", "kid": "k1"}), &claims());
        let (caller, exp) = check(&token, 1_000).unwrap();
        assert_eq!(caller.subject, "u-1");
        assert_eq!(caller.groups, ["north".to_string(), "viewer".to_string()].into());
        assert_eq!(exp, 2_000);
        let mut none = claims();
        none.as_object_mut().unwrap().remove("cognito:groups");
        let (caller, _) = check(&sign(&json!({"alg": "RS256", "kid": "k1"}), &none), 1_000).unwrap();
        assert!(caller.groups.is_empty());
        assert_eq!(jwks().len(), 1, "the EC key is left out");
    }

    #[test]
    fn every_other_token_is_refused_with_its_reason() {
        let header = json!({"alg": "RS256", "kid": "k1"});
        let with = |field: &str, value: Value| {
            let mut c = claims();
            c[field] = value;
            sign(&header, &c)
        };
        let cases = [
            (
                with(
                    "iss",
                    json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"),
                ),
                "issued by",
            ),
            (with("token_use", json!("id")), "id token"),
            (with("client_id", json!("someone-else")), "another app client"),
            (with("exp", json!(1_000)), "expired"),
            (sign(&json!({"alg": "HS256", "kid": "k1"}), &claims()), "only RS256"),
            (sign(&json!({"alg": "none"}), &claims()), "only RS256"),
            (sign(&json!({"alg": "RS256"}), &claims()), "no key"),
            ("a.b".to_string(), "three parts"),
            ("!!.!!.!!".to_string(), "base64url"),
        ];
        for (token, why) in cases {
            let e = check(&token, 1_000).unwrap_err();
            assert!(e.0.contains(why), "{why}: {e}");
        }
        // A claim changed after signing: the signature no longer verifies.
        let token = sign(&header, &claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut tampered = claims();
        tampered["cognito:groups"] = json!(["fleet-admin"]);
        parts[1] = b64(tampered.to_string().as_bytes());
        let e = check(&parts.join("."), 1_000).unwrap_err();
        assert!(e.0.contains("signature"), "{e}");
        let mut id = claims();
        id.as_object_mut().unwrap().remove("client_id");
        assert!(
            check(&sign(&header, &id), 1_000)
                .unwrap_err()
                .0
                .contains("another app client")
        );
    }
}
