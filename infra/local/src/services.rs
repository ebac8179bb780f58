//! Local services the stack and the tests run on loopback: moto server for
//! the AWS APIs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot start {program}: {error} (run `make venv` to install it)")]
    Spawn { program: String, error: std::io::Error },
    #[error("{what} did not answer on {endpoint} within {seconds} s")]
    Timeout {
        what: &'static str,
        endpoint: String,
        seconds: u64,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A free TCP port on loopback (the OS picks; we release it for the service).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The virtualenv `make venv` creates: `$CANOPY_CACHE/venv`, by default `~/.cache/canopy/venv`.
pub fn venv() -> PathBuf {
    let cache = std::env::var_os("CANOPY_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache")
            .join("canopy")
    });
    cache.join("venv")
}

/// Where `moto_server` is: `CANOPY_MOTO_SERVER`, else the virtualenv's.
pub fn moto_server_path() -> PathBuf {
    std::env::var_os("CANOPY_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| venv().join("bin").join("moto_server"))
}

/// The Python with the test tools (pyarrow, DuckDB): `CANOPY_PYTHON`, else the virtualenv's.
pub fn python_path() -> PathBuf {
    std::env::var_os("CANOPY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| venv().join("bin").join("python"))
}

/// `moto_server`, with its DynamoDB isolating requests and reading what
/// DynamoDB reads (see the file).
const MOTO_AS_DYNAMODB: &str = include_str!("moto_dynamodb.py");

/// A moto server child process on a loopback port; killed when dropped, and
/// by the kernel when this process dies.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start(program: &Path) -> Result<Self, ServiceError> {
        Self::start_in(program, None)
    }

    /// A moto server working in `dir`, where its request recorder writes
    /// `moto_recording` (`POST /moto-api/recorder/start-recording` starts it).
    pub fn start_in(program: &Path, dir: Option<&Path>) -> Result<Self, ServiceError> {
        let port = free_port()?;
        let mut args = vec![
            "-H".to_string(),
            "127.0.0.1".to_string(),
            "-p".to_string(),
            port.to_string(),
        ];
        // moto_server is a script of its virtualenv's Python: run that Python
        // with moto's DynamoDB isolating requests, querying one partition and
        // rolling back only what a transaction touched (moto_dynamodb.py).
        let python = program.with_file_name("python");
        let child = if python.is_file() {
            args.splice(0..0, ["-c".to_string(), MOTO_AS_DYNAMODB.to_string()]);
            spawn_tied_to_process_in(&python, &args, dir)?
        } else {
            spawn_tied_to_process_in(program, &args, dir)?
        };
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        moto.wait_ready(Duration::from_secs(30))?;
        Ok(moto)
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), ServiceError> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.request("GET", "/moto-api/").is_ok_and(|status| status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(ServiceError::Timeout {
            what: "moto server",
            endpoint: self.endpoint.clone(),
            seconds: limit.as_secs(),
        })
    }

    /// Clears every resource moto holds.
    pub fn reset(&self) -> Result<(), ServiceError> {
        self.request("POST", "/moto-api/reset").map(|_| ())
    }

    /// A bodiless request to moto's own API; the HTTP status.
    pub fn request(&self, method: &str, path: &str) -> Result<u16, ServiceError> {
        let (status, _) = http(&self.endpoint, method, path, None)?;
        Ok(status)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `program` so that it dies with this process. The kernel's
/// parent-death signal follows the spawning *thread*, so a thread that lives as
/// long as the process does the spawning and then parks.
pub fn spawn_tied_to_process(program: &Path, args: &[String]) -> Result<Child, ServiceError> {
    spawn_tied_to_process_in(program, args, None)
}

/// [`spawn_tied_to_process`] in the working directory `dir`.
pub fn spawn_tied_to_process_in(program: &Path, args: &[String], dir: Option<&Path>) -> Result<Child, ServiceError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let program_path = program.to_path_buf();
    let args = args.to_vec();
    let dir = dir.map(Path::to_path_buf);
    std::thread::Builder::new()
        .name("service-parent".into())
        .spawn(move || {
            let mut command = Command::new(&program_path);
            command
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(dir) = &dir {
                command.current_dir(dir);
            }
            // SAFETY: prctl is async-signal-safe; it only asks for SIGTERM when this thread dies.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let _ = tx.send(command.spawn());
            loop {
                std::thread::park();
            }
        })?;
    let spawned = rx.recv().map_err(|_| std::io::Error::other("service thread ended"))?;
    spawned.map_err(|error| ServiceError::Spawn {
        program: program.display().to_string(),
        error,
    })
}

/// A minimal HTTP/1.1 exchange on loopback (moto's own API needs no more).
pub fn http(endpoint: &str, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), ServiceError> {
    http_with(endpoint, method, path, &[], body)
}

/// [`http`] with more request headers (a device key, say).
pub fn http_with(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String), ServiceError> {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let mut extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        extra.push_str("Content-Type: application/json\r\n");
    }
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// How long one request to moto may take before it is given up and
/// retried, and one call with its retries: a stalled request (a moto thread
/// starved on a loaded machine, a connection it dropped) fails instead of
/// parking the poller or the rules engine that made it.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The SDK configuration for moto on `endpoint`: the region the template's
/// local names assume, moto's placeholder credentials, whatever the
/// environment says (a developer's real keys never leave for loopback), and
/// timeouts on every call.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let credentials = aws_credential_types::Credentials::new("testing", "testing", None, None, "canopy-local");
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    canopy::adapters::aws::loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(crate::template::REGION))
        .credentials_provider(credentials)
        .timeout_config(timeouts)
        .load()
        .await
}
