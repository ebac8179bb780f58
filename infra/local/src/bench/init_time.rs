//! How long each Lambda binary takes to start: from process start to its first
//! request for an event (`GET /2018-06-01/runtime/invocation/next`), which a
//! function sends once its init code (configuration, SDK clients) is done.
//!
//! The runtime API here is the smallest one that measures that: it records the
//! time of the first request and never answers it, so no event is handled and
//! nothing but init is timed. Each function runs with the environment the
//! template gives it on the local stack, so its configuration validates as it
//! does in AWS.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;

use crate::stack::Stack;

/// A function that starts slower than this has hung, not started.
const GIVE_UP: Duration = Duration::from_secs(20);

/// One function's starts.
#[derive(Debug, Clone)]
pub struct InitTimes {
    pub function: String,
    pub binary: String,
    pub bytes: u64,
    /// Each start's init time, sorted.
    pub runs: Vec<Duration>,
}

impl InitTimes {
    pub fn median(&self) -> Duration {
        self.runs[self.runs.len() / 2]
    }
}

/// The first request a process sent to the runtime API, and when.
#[derive(Debug)]
pub struct FirstRequest {
    pub request_line: String,
    pub after: Duration,
}

/// Starts `binary` once with `env` and a runtime API of its own; returns its
/// first request. An init that fails (a bad variable, a panic) posts to
/// `/runtime/init/error` or exits: both are errors here, with its stderr.
pub async fn init_time(binary: &Path, env: &std::collections::BTreeMap<String, String>) -> Result<FirstRequest> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?;
    let name = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "init-time")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    // Read as it comes: a function that logs more than a pipe holds would
    // otherwise block in its init, and be reported as one that never asked.
    let stderr = child.stderr.take().map(|mut e| {
        tokio::spawn(async move {
            let mut text = String::new();
            e.read_to_string(&mut text).await.ok();
            text
        })
    });
    let first = first_http_request(&listener, started);
    let outcome = tokio::select! {
        first = tokio::time::timeout(GIVE_UP, first) => first,
        status = child.wait() => {
            let stderr = match stderr {
                Some(task) => task.await.unwrap_or_default(),
                None => String::new(),
            };
            bail!("{name} exited before asking for an event ({}): {}", status?, stderr.trim());
        }
    };
    let (request_line, after, connection) = match outcome {
        Ok(first) => first?,
        Err(_) => bail!("{name} asked for no event within {GIVE_UP:?}"),
    };
    child.kill().await.ok();
    drop(connection);
    if !request_line.starts_with("GET /2018-06-01/runtime/invocation/next ") {
        bail!("{name}'s first request was {request_line:?}, not for an event (did its init fail?)");
    }
    Ok(FirstRequest { request_line, after })
}

/// The first HTTP request line any connection to `listener` sends, the time
/// since `started` it came, and its connection. A connection that sends
/// something else is left alone: on loopback, a client of another process
/// that reconnects to a port it once knew (an MQTT client whose broker
/// stopped) may reach this listener first.
async fn first_http_request(
    listener: &TcpListener,
    started: Instant,
) -> std::io::Result<(String, Duration, BufReader<tokio::net::TcpStream>)> {
    let mut reading = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                reading.spawn(async move {
                    let mut lines = BufReader::new(stream);
                    let mut request_line = String::new();
                    // Bounded: a client that sends no line ends here, not in memory.
                    (&mut lines).take(8 * 1024).read_line(&mut request_line).await.ok()?;
                    let http = request_line.split_ascii_whitespace().nth(2).is_some_and(|v| v.starts_with("HTTP/1."));
                    http.then(|| (request_line.trim_end().to_string(), started.elapsed(), lines))
                });
            }
            Some(read) = reading.join_next() => {
                if let Ok(Some(first)) = read {
                    return Ok(first);
                }
            }
        }
    }
}

/// Every function in the stack's template whose binary is in `bin_dir`,
/// started `runs` times each. A template function without its binary there
/// is an error: a measurement that silently skips one is no measurement.
pub async fn measure(stack: &Stack, bin_dir: &Path, runs: usize) -> Result<Vec<InitTimes>> {
    let mut all = Vec::new();
    for f in &stack.template.functions {
        let binary: PathBuf = bin_dir.join(&f.binary);
        let bytes = std::fs::metadata(&binary)
            .with_context(|| format!("{} (the binary of {}); build it first", binary.display(), f.logical_id))?
            .len();
        let env = stack.environment(&f.logical_id).unwrap_or_default();
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            times.push(init_time(&binary, &env).await?.after);
        }
        times.sort();
        all.push(InitTimes {
            function: f.logical_id.clone(),
            binary: f.binary.clone(),
            bytes,
            runs: times,
        });
    }
    Ok(all)
}

/// The table `make bench-lambdas` prints.
pub fn report(times: &[InitTimes]) -> String {
    let mut out = format!(
        "{:<28} {:<12} {:>9} {:>10} {:>10} {:>10}\n",
        "function", "binary", "MB", "init p50", "min", "max"
    );
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    for t in times {
        out.push_str(&format!(
            "{:<28} {:<12} {:>9.2} {:>10} {:>10} {:>10}\n",
            t.function,
            t.binary,
            t.bytes as f64 / 1e6,
            ms(t.median()),
            ms(t.runs[0]),
            ms(t.runs[t.runs.len() - 1]),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_stray_client_on_the_port_is_not_taken_for_the_function() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // An MQTT CONNECT, with no line end: it is never a request line.
        let mut stray = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stray.write_all(b"\x10\x1b\x00\x04MQTT\x04\x02").await.expect("write");
        let mut binary = tokio::net::TcpStream::connect(addr).await.expect("connect");
        binary.write_all(b"\x00\x01garbage\n").await.expect("write");
        let mut function = tokio::net::TcpStream::connect(addr).await.expect("connect");
        function
            .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        let first = tokio::time::timeout(Duration::from_secs(5), first_http_request(&listener, Instant::now()))
            .await
            .expect("in time")
            .expect("read");
        assert_eq!(first.0, "GET /2018-06-01/runtime/invocation/next HTTP/1.1");
    }
}
