//! Configuration from environment variables, validated at start-up with
//! messages that name the variable.

use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct EnvError {
    pub name: String,
    pub problem: String,
}

/// A variable that must be set and not empty.
pub fn required(name: &str) -> Result<String, EnvError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        Ok(_) => Err(EnvError {
            name: name.to_string(),
            problem: "is empty".to_string(),
        }),
        Err(_) => Err(EnvError {
            name: name.to_string(),
            problem: "is not set".to_string(),
        }),
    }
}

/// A variable with a default.
pub fn or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// A variable parsed as `T`, with a default when unset.
pub fn parse_or<T: FromStr>(name: &str, default: T) -> Result<T, EnvError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|e| EnvError {
            name: name.to_string(),
            problem: format!("{v:?} is not valid: {e}"),
        }),
        _ => Ok(default),
    }
}
