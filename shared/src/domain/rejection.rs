//! Why a message was not accepted: the reason, and the field at fault.

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{reason}")]
pub struct Rejection {
    pub reason: String,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

pub fn reject(reason: impl Into<String>) -> Rejection {
    Rejection {
        reason: reason.into(),
        field: None,
    }
}

/// A rejection for what `field` holds (or lacks).
pub fn reject_at(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection {
        reason: reason.into(),
        field: Some(field.to_string()),
    }
}
