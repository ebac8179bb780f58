//! Structured logs: JSON lines (what CloudWatch Logs indexes) filtered by
//! `RUST_LOG`, `info` by default.

use tracing_subscriber::EnvFilter;

/// JSON logs on standard output, for Lambda.
pub fn init_json() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .try_init();
}

/// Human-readable logs on standard error, for command-line tools.
pub fn init_text() {
    init_text_or("info");
}

/// Text logs filtered by `RUST_LOG`, else by `default`.
pub fn init_text_or(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}
