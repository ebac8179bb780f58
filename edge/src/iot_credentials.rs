//! S3 upload credentials from the AWS IoT credentials provider: the vehicle
//! trades the certificate it connects to MQTT with for temporary credentials
//! of the stack's upload role (`GET /role-aliases/<alias>/credentials`, TLS
//! client authentication, the thing name in `x-amzn-iot-thingname`). No
//! long-lived AWS key sits on a vehicle, and no helper script, curl or Python
//! is needed there: the binary and its bundle are enough.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::config::IotCredentialsConfig;

/// Credentials are fetched again this long before they expire, so an upload
/// that starts just before expiry still finishes with valid ones.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// A credentials endpoint that does not answer within this is tried again at
/// the uploader's next attempt rather than holding it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum IotCredentialsError {
    #[error("upload.credentials.{key}: reading {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("upload.credentials.{key}: {path}: {problem}")]
    Pem {
        key: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("upload.credentials.endpoint: {0}")]
    Endpoint(String),
    #[error("{endpoint}: {problem}")]
    Exchange { endpoint: String, problem: String },
    #[error("{endpoint} refused the certificate's exchange with HTTP {status}: {message}")]
    Refused {
        endpoint: String,
        status: u16,
        message: String,
    },
}

/// The credentials provider's answer (its `credentials` object).
#[derive(Deserialize)]
struct Answer {
    credentials: AnswerCredentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// RFC 3339, like `2026-11-28T15:00:00Z`.
    expiration: String,
}

/// Temporary credentials for one thing, fetched with its certificate and kept
/// until [`REFRESH_BEFORE`] their expiry.
pub struct IotCredentials {
    host: String,
    port: u16,
    role_alias: String,
    thing_name: String,
    tls: TlsConnector,
    cached: Mutex<Option<Credentials>>,
}

impl IotCredentials {
    /// Reads the CA, certificate and key named by `config` (errors name the key).
    pub fn new(config: &IotCredentialsConfig, thing_name: &str) -> Result<Self, IotCredentialsError> {
        let (host, port) = host_and_port(&config.endpoint)?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in certificates(&config.ca, "ca")? {
            roots.add(ca).map_err(|e| IotCredentialsError::Pem {
                key: "ca",
                path: config.ca.clone(),
                problem: e.to_string(),
            })?;
        }
        let key = read(&config.key, "key")?;
        let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| IotCredentialsError::Pem {
            key: "key",
            path: config.key.clone(),
            problem: format!("no private key: {e}"),
        })?;
        let cert = certificates(&config.cert, "cert")?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_root_certificates(roots).with_client_auth_cert(cert, key))
            .map_err(|e| IotCredentialsError::Pem {
                key: "cert",
                path: config.cert.clone(),
                problem: format!("the certificate and key do not make a TLS client identity: {e}"),
            })?;
        Ok(Self {
            host,
            port,
            role_alias: config.role_alias.clone(),
            thing_name: thing_name.to_string(),
            tls: TlsConnector::from(Arc::new(tls)),
            cached: Mutex::new(None),
        })
    }

    /// The cached credentials while they last, else fresh ones.
    pub async fn credentials(&self) -> Result<Credentials, IotCredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expiry().is_some_and(|e| e > SystemTime::now() + REFRESH_BEFORE)
        {
            return Ok(c.clone());
        }
        let fresh = self.fetch().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    fn endpoint(&self) -> String {
        format!("https://{}:{}", self.host, self.port)
    }

    async fn fetch(&self) -> Result<Credentials, IotCredentialsError> {
        let endpoint = self.endpoint();
        let failed = |problem: String| IotCredentialsError::Exchange {
            endpoint: endpoint.clone(),
            problem,
        };
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| failed(format!("connecting: {e}")))?;
            let name = ServerName::try_from(self.host.clone()).map_err(|e| failed(e.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| failed(format!("TLS with the vehicle's certificate: {e}")))?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| failed(e.to_string()))?;
            let connection = tokio::spawn(connection);
            let request = hyper::Request::get(format!("/role-aliases/{}/credentials", self.role_alias))
                .header(hyper::header::HOST, &self.host)
                .header("x-amzn-iot-thingname", &self.thing_name)
                .body(Empty::<Bytes>::new())
                .map_err(|e| failed(e.to_string()))?;
            let response = sender.send_request(request).await.map_err(|e| failed(e.to_string()))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| failed(format!("reading the answer: {e}")))?
                .to_bytes();
            connection.abort();
            Ok::<_, IotCredentialsError>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| failed(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))??;
        if !status.is_success() {
            return Err(IotCredentialsError::Refused {
                endpoint,
                status: status.as_u16(),
                message: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            });
        }
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|e| failed(format!("an answer without credentials: {e}")))?;
        let c = answer.credentials;
        let expiry = chrono::DateTime::parse_from_rfc3339(&c.expiration)
            .map_err(|e| failed(format!("expiration {:?}: {e}", c.expiration)))?;
        Ok(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            Some(SystemTime::from(expiry)),
            "aws-iot-credentials-provider",
        ))
    }
}

// The SDK wants providers printable; the TLS identity and credentials stay out.
impl std::fmt::Debug for IotCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IotCredentials")
            .field("endpoint", &self.endpoint())
            .field("role_alias", &self.role_alias)
            .field("thing_name", &self.thing_name)
            .finish_non_exhaustive()
    }
}

impl ProvideCredentials for IotCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.credentials().await.map_err(CredentialsError::provider_error)
        })
    }
}

/// Start-up validation of `upload.credentials.endpoint`.
pub fn check_endpoint(endpoint: &str) -> Result<(), IotCredentialsError> {
    host_and_port(endpoint).map(|_| ())
}

/// `https://host[:port]` with nothing after it.
fn host_and_port(endpoint: &str) -> Result<(String, u16), IotCredentialsError> {
    let bad = |problem: &str| IotCredentialsError::Endpoint(format!("{endpoint:?}: {problem}"));
    let rest = endpoint
        .strip_prefix("https://")
        .ok_or_else(|| bad("must start with https://"))?
        .trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(bad(
            "expected https://<host>[:port], like the output of `aws iot describe-endpoint --endpoint-type iot:CredentialProvider`",
        ));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => Ok((
            host.to_string(),
            port.parse()
                .map_err(|_| bad("the port is not a number from 1 to 65535"))?,
        )),
        None => Ok((rest.to_string(), 443)),
    }
}

fn read(path: &Path, key: &'static str) -> Result<Vec<u8>, IotCredentialsError> {
    std::fs::read(path).map_err(|source| IotCredentialsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path, key: &'static str) -> Result<Vec<CertificateDer<'static>>, IotCredentialsError> {
    let pem = read(path, key)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IotCredentialsError::Pem {
            key,
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(IotCredentialsError::Pem {
            key,
            path: path.to_path_buf(),
            problem: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::server::WebPkiClientVerifier;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsAcceptor;

    use super::*;

    /// A CA, and a certificate it signed for `name`.
    pub(crate) struct Pki {
        ca: rcgen::Certificate,
        ca_key: KeyPair,
    }

    impl Pki {
        pub(crate) fn new() -> Self {
            let ca_key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            Self {
                ca: params.self_signed(&ca_key).unwrap(),
                ca_key,
            }
        }

        pub(crate) fn ca_pem(&self) -> String {
            self.ca.pem()
        }

        pub(crate) fn issue(&self, name: &str) -> (rcgen::Certificate, KeyPair) {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .signed_by(&key, &self.ca, &self.ca_key)
                .unwrap();
            (cert, key)
        }
    }

    /// The credentials provider's part: answers `/role-aliases/canopy-upload/credentials`
    /// for thing `veh-001` to clients with a certificate of its CA, counting exchanges.
    pub(crate) struct Endpoint {
        pub(crate) port: u16,
        exchanges: Arc<AtomicUsize>,
        /// How long the credentials it hands out last.
        lifetime_s: Arc<AtomicI64>,
    }

    /// A TLS server for `localhost` with a certificate of `server`, taking only
    /// clients with a certificate of `clients`, as AWS IoT's endpoints do.
    pub(crate) fn mutual_tls(server: &Pki, clients: &Pki) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(clients.ca.der().clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
        let (cert, key) = server.issue("localhost");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    pub(crate) async fn endpoint(server: &Pki, vehicles: &Pki) -> Endpoint {
        let acceptor = mutual_tls(server, vehicles);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let exchanges = Arc::new(AtomicUsize::new(0));
        let lifetime_s = Arc::new(AtomicI64::new(3_600));
        let (counted, lifetime) = (exchanges.clone(), lifetime_s.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                // A client without an accepted certificate fails the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).to_lowercase();
                let (status, body) = if !request.starts_with("get /role-aliases/canopy-upload/credentials ") {
                    (
                        "404 Not Found",
                        r#"{"message":"Role alias does not exist"}"#.to_string(),
                    )
                } else if !request.contains("\r\nx-amzn-iot-thingname: veh-001\r\n") {
                    ("403 Forbidden", r#"{"message":"Access Denied"}"#.to_string())
                } else {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let expiration = chrono::Utc::now() + chrono::Duration::seconds(lifetime.load(Ordering::SeqCst));
                    let n = counted.load(Ordering::SeqCst);
                    let body = serde_json::json!({"credentials": {
                        "accessKeyId": format!("ASIAVEHICLE{n}"),
                        "secretAccessKey": "secret",
                        "sessionToken": "token",
                        "expiration": expiration.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    }});
                    ("200 OK", body.to_string())
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        Endpoint {
            port,
            exchanges,
            lifetime_s,
        }
    }

    /// The vehicle's bundle: the endpoint's CA, a certificate and its key.
    pub(crate) fn bundle(
        dir: &Path,
        trusted: &Pki,
        identity: &Pki,
        port: u16,
        role_alias: &str,
    ) -> IotCredentialsConfig {
        let (cert, key) = identity.issue("veh-001");
        std::fs::write(dir.join("ca.pem"), trusted.ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        IotCredentialsConfig {
            endpoint: format!("https://localhost:{port}"),
            role_alias: role_alias.into(),
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    #[tokio::test]
    async fn the_certificate_buys_credentials_that_are_kept_until_shortly_before_expiry() {
        let (server_pki, vehicle_pki) = (Pki::new(), Pki::new());
        let endpoint = endpoint(&server_pki, &vehicle_pki).await;
        let dir = tempfile::tempdir().unwrap();
        let provider = IotCredentials::new(
            &bundle(dir.path(), &server_pki, &vehicle_pki, endpoint.port, "canopy-upload"),
            "veh-001",
        )
        .unwrap();

        let first = provider.provide_credentials().await.unwrap();
        assert_eq!(first.access_key_id(), "ASIAVEHICLE1");
        assert_eq!(first.session_token(), Some("token"));
        let left = first.expiry().unwrap().duration_since(SystemTime::now()).unwrap();
        assert!(
            left > Duration::from_secs(3_500) && left <= Duration::from_secs(3_600),
            "{left:?}"
        );
        for _ in 0..5 {
            assert_eq!(provider.credentials().await.unwrap().access_key_id(), "ASIAVEHICLE1");
        }
        assert_eq!(endpoint.exchanges.load(Ordering::SeqCst), 1, "cached while they last");

        // Credentials inside the refresh margin are replaced at the next use.
        endpoint
            .lifetime_s
            .store(REFRESH_BEFORE.as_secs() as i64 - 10, Ordering::SeqCst);
        provider.cached.lock().await.take();
        assert_eq!(provider.credentials().await.unwrap().access_key_id(), "ASIAVEHICLE2");
        assert_eq!(provider.credentials().await.unwrap().access_key_id(), "ASIAVEHICLE3");
        assert_eq!(endpoint.exchanges.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_certificate_the_endpoint_does_not_know_gets_nothing() {
        let (server_pki, vehicle_pki, stranger) = (Pki::new(), Pki::new(), Pki::new());
        let endpoint = endpoint(&server_pki, &vehicle_pki).await;
        let dir = tempfile::tempdir().unwrap();
        let provider = IotCredentials::new(
            &bundle(dir.path(), &server_pki, &stranger, endpoint.port, "canopy-upload"),
            "veh-001",
        )
        .unwrap();
        let e = provider.credentials().await.unwrap_err().to_string();
        assert!(e.contains(&format!("https://localhost:{}", endpoint.port)), "{e}");
        assert_eq!(endpoint.exchanges.load(Ordering::SeqCst), 0);

        // Nor does a vehicle trust an endpoint its CA file does not vouch for.
        let provider = IotCredentials::new(
            &bundle(dir.path(), &stranger, &vehicle_pki, endpoint.port, "canopy-upload"),
            "veh-001",
        )
        .unwrap();
        let e = provider.credentials().await.unwrap_err().to_string();
        assert!(e.contains("TLS"), "{e}");
        assert_eq!(endpoint.exchanges.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_refusal_is_reported_with_its_status_and_message() {
        let (server_pki, vehicle_pki) = (Pki::new(), Pki::new());
        let endpoint = endpoint(&server_pki, &vehicle_pki).await;
        let dir = tempfile::tempdir().unwrap();
        let config = bundle(dir.path(), &server_pki, &vehicle_pki, endpoint.port, "canopy-upload");
        let foreign = IotCredentials::new(&config, "veh-002").unwrap();
        let e = foreign.credentials().await.unwrap_err().to_string();
        assert!(e.contains("HTTP 403") && e.contains("Access Denied"), "{e}");
        let config = IotCredentialsConfig {
            role_alias: "nope".into(),
            ..config
        };
        let e = IotCredentials::new(&config, "veh-001")
            .unwrap()
            .credentials()
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP 404") && e.contains("Role alias"), "{e}");
    }

    #[test]
    fn unreadable_bundle_files_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let config = bundle(dir.path(), &pki, &pki, 1, "a");
        std::fs::write(&config.key, "not a key").unwrap();
        let e = IotCredentials::new(&config, "veh-001").unwrap_err().to_string();
        assert!(e.starts_with("upload.credentials.key: "), "{e}");
        std::fs::remove_file(&config.ca).unwrap();
        let e = IotCredentials::new(&config, "veh-001").unwrap_err().to_string();
        assert!(e.starts_with("upload.credentials.ca: reading "), "{e}");
    }
}
