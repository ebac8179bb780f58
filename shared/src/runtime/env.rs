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
    match vars.var(name) {
        Some(v) if !v.trim().is_empty() => v.trim().parse().map_err(|e| EnvError {
            name: name.to_string(),
            problem: format!("{v:?} is not valid: {e}"),
        }),
        _ => Ok(default),
    }
}
