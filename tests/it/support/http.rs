//! The tests' one HTTP client, for whatever they ask over a socket: the
//! local stack's API (as the console or a vehicle asks it), moto's own
//! APIs (Athena's seeded results, the state manager) and moto's Cognito.
//!
//! The exchange is canopy-local's minimal HTTP/1.1 one (all loopback needs),
//! run off the async runtime: a test's stack serves its API on the test's
//! own runtime, which a blocking call made on it could starve.

use canopy_local::stack::Stack;
use serde_json::Value;

/// The local stack's API, as an endpoint.
pub fn api(stack: &Stack) -> String {
    format!("http://{}", stack.api)
}

/// A `GET` of `path` on `endpoint`.
pub fn get(endpoint: &str, path: &str) -> Request {
    request("GET", endpoint, path)
}

/// A `POST` to `path` on `endpoint`.
pub fn post(endpoint: &str, path: &str) -> Request {
    request("POST", endpoint, path)
}

/// A request of `method` for `path` on `endpoint` (`http://host:port`);
/// without a body, and JSON unless a `Content-Type` header says otherwise.
pub fn request(method: &str, endpoint: &str, path: &str) -> Request {
    Request {
        method: method.to_string(),
        endpoint: endpoint.to_string(),
        path: path.to_string(),
        headers: Vec::new(),
        body: None,
    }
}

pub struct Request {
    method: String,
    endpoint: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Request {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The body, as it is sent: JSON or not (a test of bad input sends what it likes).
    pub fn body(mut self, text: impl Into<String>) -> Self {
        self.body = Some(text.into());
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.body(body.to_string())
    }

    /// Sends the request and reads the whole answer; a request that cannot
    /// be made at all fails the test, naming it.
    pub async fn send(self) -> Response {
        let what = format!("{} {}{}", self.method, self.endpoint, self.path);
        tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            canopy_local::services::http_with(&self.endpoint, &self.method, &self.path, &headers, self.body.as_deref())
        })
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .map(|(status, text)| Response { status, text })
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    }
}

/// What came back: the status and the body's text.
pub struct Response {
    pub status: u16,
    pub text: String,
}

impl Response {
    /// The body as JSON; `null` when it is not JSON (an empty body, say).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The status and the body as JSON, to compare or destructure at once.
    pub fn parts(&self) -> (u16, Value) {
        (self.status, self.json())
    }
}
