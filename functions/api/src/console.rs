//! The web console (`web/`, React + uPlot), embedded at build time
//! (`build.rs`) and served by the same router as the API: `/` and `/docs`
//! answer the app's page, `/assets/…` its hashed files, `/config.json` what it
//! needs to sign in. All four are open; the data routes keep the authorizer.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use canopy::runtime::env::{self, EnvError};
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::ApiPath;

/// One built file: its bytes and, when `scripts/compress.mjs` made them, gzipped.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Hashed names change with their content: a browser keeps them a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page names the current hashes, so it is checked on every load.
const REVALIDATE: &str = "no-cache";

fn serve(asset: &'static Asset, request: &HeaderMap, cache: &'static str) -> Response {
    let gzip_ok = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    match asset.gzip {
        Some(gzip) if gzip_ok => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (headers, gzip).into_response()
        }
        _ => (headers, asset.body).into_response(),
    }
}

/// The app's page, for `/` and `/docs` (the app renders the route it finds).
pub async fn page(request: HeaderMap, config: &ConsoleConfig) -> Response {
    match asset("/index.html") {
        Some(index) => {
            let mut response = serve(index, &request, REVALIDATE);
            // Scripts and styles from this origin only; the API is this origin, the
            // managed login a redirect, the token exchange goes to the user
            // pool's own domain (no other pool's), and the live stream to its
            // own API's origin (this one's `/live` where it has none).
            let live = config.live_url.as_deref().map(origin).unwrap_or_default();
            let cognito = config
                .auth
                .as_ref()
                .map(|auth| origin(&format!("https://{}", auth.domain)))
                .unwrap_or_default();
            let policy = format!(
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
                 connect-src 'self'{cognito}{live}; \
                 frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
            );
            if let Ok(value) = HeaderValue::from_str(&policy) {
                response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
            }
            response
        }
        None => ApiError::new(StatusCode::NOT_FOUND, "the console is not built").into_response(),
    }
}

/// ` <scheme>://<host>` of a URL, for a CSP source list (nothing for what is not one).
fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let host = rest.split('/').next().unwrap_or_default();
    let clean = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
    if clean(scheme) && clean(host) && !host.is_empty() {
        format!(" {scheme}://{host}")
    } else {
        String::new()
    }
}

pub async fn file(ApiPath(path): ApiPath<String>, request: HeaderMap) -> Response {
    match asset(&format!("/assets/{path}")) {
        Some(a) => serve(a, &request, IMMUTABLE),
        None => ApiError::new(StatusCode::NOT_FOUND, format!("no console file assets/{path}")).into_response(),
    }
}

/// Where the console signs in: Cognito's managed login (authorization code
/// with PKCE). `None` on the local stack, which has no sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsoleAuth {
    /// The user pool's domain, as `name.auth.region.amazoncognito.com`.
    pub domain: String,
    pub client_id: String,
}

/// What the console learns from `/config.json` before its first request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsoleConfig {
    /// Cognito managed login; none where there is no sign-in (the local stack).
    pub auth: Option<ConsoleAuth>,
    /// `LIVE_URL`: the live stream's `wss://` URL; none where it is this
    /// server's own `/live` (the local stack).
    pub live_url: Option<String>,
}

impl ConsoleConfig {
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        Ok(Self {
            auth: auth_from_vars(vars)?,
            live_url: vars.var("LIVE_URL").filter(|u| !u.trim().is_empty()),
        })
    }
}

/// `CONSOLE_AUTH_DOMAIN` and `CONSOLE_CLIENT_ID`: both or neither.
pub fn auth_from_vars(vars: &impl env::Vars) -> Result<Option<ConsoleAuth>, EnvError> {
    let domain = env::or(vars, "CONSOLE_AUTH_DOMAIN", "");
    let client_id = env::or(vars, "CONSOLE_CLIENT_ID", "");
    match (domain.is_empty(), client_id.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some(ConsoleAuth { domain, client_id })),
        (true, false) => Err(EnvError {
            name: "CONSOLE_AUTH_DOMAIN".into(),
            problem: "is not set, but CONSOLE_CLIENT_ID is: set both or neither".into(),
        }),
        (false, true) => Err(EnvError {
            name: "CONSOLE_CLIENT_ID".into(),
            problem: "is not set, but CONSOLE_AUTH_DOMAIN is: set both or neither".into(),
        }),
    }
}

pub fn config_json(config: &ConsoleConfig) -> Response {
    let mut response = Json(config).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_live_streams_origin_joins_the_pages_connect_sources() {
        assert_eq!(
            origin("wss://abc123.execute-api.eu-west-1.amazonaws.com/live"),
            " wss://abc123.execute-api.eu-west-1.amazonaws.com"
        );
        for not_one in ["", "live", "wss://", "wss://a b/live", "wss://x'; script-src *"] {
            assert_eq!(origin(not_one), "", "{not_one:?}");
        }
    }

    #[test]
    fn the_page_is_always_there() {
        // Built or not, the router has a page to answer with.
        let index = asset("/index.html").expect("index.html");
        assert!(index.content_type.starts_with("text/html"));
        assert!(
            std::str::from_utf8(index.body)
                .unwrap()
                .contains("<title>Canopy</title>")
        );
        for a in ASSETS {
            assert!(a.path.starts_with('/'), "{}", a.path);
            if a.path.starts_with("/assets/") {
                // The cache headers promise that a name never changes content.
                let stem = a.path.rsplit('/').next().unwrap();
                assert!(stem.contains('-'), "{} is not hashed", a.path);
            }
        }
    }

    #[tokio::test]
    async fn the_page_may_connect_to_its_own_pools_domain_and_no_other() {
        let config = ConsoleConfig {
            auth: Some(ConsoleAuth {
                domain: "canopy-7.auth.eu-west-1.amazoncognito.com".into(),
                client_id: "abc".into(),
            }),
            live_url: Some("wss://live.example.com/live".into()),
        };
        let response = page(HeaderMap::new(), &config).await;
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        let connect = policy
            .split(';')
            .find(|d| d.trim().starts_with("connect-src"))
            .unwrap()
            .trim();
        assert_eq!(
            connect,
            "connect-src 'self' https://canopy-7.auth.eu-west-1.amazoncognito.com wss://live.example.com"
        );
        let local = page(HeaderMap::new(), &ConsoleConfig::default()).await;
        let policy = local.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        assert!(policy.contains("connect-src 'self';"), "{policy}");
    }

    #[test]
    fn sign_in_takes_both_settings_or_neither() {
        let vars = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(auth_from_vars(&vars(&[])).unwrap(), None);
        let both = vars(&[
            ("CONSOLE_AUTH_DOMAIN", "d.auth.eu-west-1.amazoncognito.com"),
            ("CONSOLE_CLIENT_ID", "abc"),
        ]);
        assert_eq!(auth_from_vars(&both).unwrap().unwrap().client_id, "abc");
        let error = auth_from_vars(&vars(&[("CONSOLE_CLIENT_ID", "abc")])).unwrap_err();
        assert_eq!(error.name, "CONSOLE_AUTH_DOMAIN");
    }
}
