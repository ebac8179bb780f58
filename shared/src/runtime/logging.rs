//! Structured logs: JSON lines (what CloudWatch Logs indexes) filtered by
//! `RUST_LOG`, `info` by default.
//!
//! `RUST_LOG` takes levels by target (`info`, `warn,canopy_decoder=debug`),
//! parsed as [`Targets`]: the directives every binary here is run with,
//! without `EnvFilter`'s span and field matching and the regex engine it
//! compiles into every Lambda and the vehicle's binary.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// JSON logs on standard output, for Lambda.
pub fn init_json() {
    let format = tracing_subscriber::fmt::layer().json().with_current_span(false);
    let _ = tracing_subscriber::registry()
        .with(format)
        .with(filter("info"))
        .try_init();
}

/// Human-readable logs on standard error, for command-line tools.
pub fn init_text() {
    init_text_or("info");
}

/// Text logs filtered by `RUST_LOG`, else by `default`.
pub fn init_text_or(default: &str) {
    let format = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry()
        .with(format)
        .with(filter(default))
        .try_init();
}

/// The filter `RUST_LOG` names, else `default`. A `RUST_LOG` that does not
/// parse is said on standard error and `default` used: a typo in a log
/// setting must not stop a function or a vehicle.
fn filter(default: &str) -> Targets {
    let fallback = || parse(default).unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => parse(&directives).unwrap_or_else(|e| {
            eprintln!("RUST_LOG={directives:?} does not parse ({e}); logging at {default:?}");
            fallback()
        }),
        _ => fallback(),
    }
}

/// `Targets` parses each comma-separated piece as it is: an empty piece (a
/// trailing comma) would be a directive for every target at TRACE, and
/// `EnvFilter`'s span and field syntax a directive that never matches. Both
/// are refused here instead, so they fall back with a message.
fn parse(directives: &str) -> Result<Targets, String> {
    let pieces: Vec<&str> = directives.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if let Some(piece) = pieces.iter().find(|p| p.contains(['[', '{'])) {
        return Err(format!(
            "{piece:?}: span and field filters are not supported, only target=level"
        ));
    }
    pieces
        .join(",")
        .parse()
        .map_err(|e: tracing_subscriber::filter::ParseError| e.to_string())
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn directives_set_levels_by_target() {
        let targets = parse("warn,canopy_local=info,rumqttd=off").unwrap();
        assert!(targets.would_enable("canopy_local::stack", &Level::INFO));
        assert!(!targets.would_enable("canopy_local::stack", &Level::DEBUG));
        assert!(!targets.would_enable("rumqttd::router", &Level::ERROR));
        assert!(targets.would_enable("aws_config", &Level::WARN));
        assert!(!targets.would_enable("aws_config", &Level::INFO));
        assert!(parse("info,=[").is_err());
        assert!(parse("canopy[span]=debug").is_err());

        // A stray comma or space adds nothing: still INFO, not TRACE everywhere.
        for lenient in ["info,", " info , canopy=debug", "info,,canopy=debug"] {
            let targets = parse(lenient).unwrap();
            assert!(targets.would_enable("aws_config", &Level::INFO), "{lenient}");
            assert!(!targets.would_enable("aws_config", &Level::DEBUG), "{lenient}");
        }
    }
}
