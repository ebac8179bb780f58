//! Configuration from environment variables, validated at start-up with
//! messages that name the variable.

use std::collections::BTreeMap;
use std::str::FromStr;

/// Where variables come from: the process environment in Lambda, a map of the
/// template's values on the local stack (several functions in one process).
pub trait Vars {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct Process;

impl Vars for Process {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Vars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct EnvError {
    pub name: String,
    pub problem: String,
}

/// A variable that must be set and not empty.
pub fn required(vars: &impl Vars, name: &str) -> Result<String, EnvError> {
    match vars.var(name) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(EnvError {
            name: name.to_string(),
            problem: "is empty".to_string(),
        }),
        None => Err(EnvError {
            name: name.to_string(),
            problem: "is not set".to_string(),
        }),
    }
}

/// A variable with a default.
pub fn or(vars: &impl Vars, name: &str, default: &str) -> String {
    vars.var(name)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// A variable parsed as `T`, with a default when unset.
pub fn parse_or<T: FromStr>(vars: &impl Vars, name: &str, default: T) -> Result<T, EnvError>
where
    T::Err: std::fmt::Display,
{
    Ok(parse(vars, name)?.unwrap_or(default))
}

/// A variable parsed as `T`; `None` when unset (or blank).
pub fn parse<T: FromStr>(vars: &impl Vars, name: &str) -> Result<Option<T>, EnvError>
where
    T::Err: std::fmt::Display,
{
    match vars.var(name) {
        Some(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|e| EnvError {
            name: name.to_string(),
            problem: format!("{v:?} is not valid: {e}"),
        }),
        _ => Ok(None),
    }
}

/// How far a message's clock may be from the server's:
/// `MAX_CLOCK_AHEAD_SECONDS` (default 300) and `MAX_MESSAGE_AGE_SECONDS`
/// (default 604,800: a week of buffering on a vehicle offline).
pub fn clock_bounds(vars: &impl Vars) -> Result<crate::domain::telemetry::ClockBounds, EnvError> {
    let defaults = crate::domain::telemetry::ClockBounds::default();
    let seconds = |name: &str, default_ms: i64| -> Result<i64, EnvError> {
        let s: u32 = parse_or(vars, name, u32::try_from(default_ms / 1000).unwrap_or(u32::MAX))?;
        Ok(i64::from(s) * 1000)
    };
    Ok(crate::domain::telemetry::ClockBounds {
        max_ahead_ms: seconds("MAX_CLOCK_AHEAD_SECONDS", defaults.max_ahead_ms)?,
        max_behind_ms: seconds("MAX_MESSAGE_AGE_SECONDS", defaults.max_behind_ms)?,
    })
}
