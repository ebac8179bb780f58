//! Device keys: how a device that does not speak MQTT with a certificate
//! (a gateway, a phone, a test rig) posts telemetry over HTTPS.
//!
//! A key is `cnk_<key id>_<secret>`. The key id (12 hex digits) names the key
//! in listings and revocations and is not secret; the secret (64 hex digits,
//! 256 random bits) is shown once, when the key is made, and kept only as its
//! SHA-256. A slow password hash would buy nothing here: the secret is random,
//! not chosen by a person, so there is no dictionary to guess from.
//!
//! A key is bound to one device: whatever it posts belongs to that device, as
//! an MQTT message belongs to the vehicle its topic names.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::domain::device_id::DeviceId;

const PREFIX: &str = "cnk_";
const KEY_ID_HEX: usize = 12;
const SECRET_HEX: usize = 64;

/// The requests a minute a key may make when its maker names no rate.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 120;
/// The highest rate a key may carry: one request every 10 ms.
pub const MAX_RATE_PER_MINUTE: u32 = 6_000;
/// The longest label a key may carry.
pub const MAX_LABEL: usize = 128;

/// A key as the key table keeps it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceKey {
    pub key_id: String,
    /// The device whose telemetry the key posts.
    pub device_id: DeviceId,
    /// SHA-256 of the secret, lower-case hex.
    #[serde(skip)]
    pub secret_sha256: String,
    /// Requests a minute; past it the device gets 429 until the minute ends.
    pub rate_per_minute: u32,
    /// What the key is for, in its maker's words.
    pub label: String,
    pub created_at_ms: i64,
    /// When the key was revoked; a revoked key authenticates nothing.
    pub revoked_at_ms: Option<i64>,
}

/// A key just made: the record to store and the text to hand the device once.
pub struct IssuedKey {
    pub record: DeviceKey,
    /// The whole key, `cnk_<key id>_<secret>`: shown once, stored nowhere.
    pub plaintext: String,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey")
            .field("record", &self.record)
            .field("plaintext", &"<secret>")
            .finish()
    }
}

/// Why a key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("rate {0} requests a minute is outside 1..={MAX_RATE_PER_MINUTE}")]
    Rate(u32),
    #[error("label is longer than {MAX_LABEL} characters or holds control characters")]
    Label,
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// A presented key that cannot be one of ours: its text is wrong, whatever the table holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a device key (expected cnk_, 12 hex digits, _ and 64 hex digits, lower case)")]
pub struct MalformedKey;

/// A presented key, split: the id to look up and the secret to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub key_id: &'a str,
    secret: &'a str,
}

impl<'a> PresentedKey<'a> {
    pub fn parse(text: &'a str) -> Result<Self, MalformedKey> {
        let rest = text.trim().strip_prefix(PREFIX).ok_or(MalformedKey)?;
        let (key_id, secret) = rest.split_once('_').ok_or(MalformedKey)?;
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex(key_id, KEY_ID_HEX) || !hex(secret, SECRET_HEX) {
            return Err(MalformedKey);
        }
        Ok(Self { key_id, secret })
    }

    /// Whether this is the key `record` was made for (revoked or not). The
    /// digests are compared in time that does not depend on where they differ.
    pub fn matches(&self, record: &DeviceKey) -> bool {
        let digest = sha256_hex(self.secret);
        let same_length = digest.len() == record.secret_sha256.len();
        let difference = digest
            .bytes()
            .zip(record.secret_sha256.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        record.key_id == self.key_id && same_length && difference == 0
    }
}

/// Makes a key for `device`: fresh random id and secret.
pub fn issue(device: DeviceId, rate_per_minute: u32, label: &str, now_ms: i64) -> Result<IssuedKey, IssueError> {
    if !(1..=MAX_RATE_PER_MINUTE).contains(&rate_per_minute) {
        return Err(IssueError::Rate(rate_per_minute));
    }
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(IssueError::Label);
    }
    let mut random = [0u8; KEY_ID_HEX / 2 + SECRET_HEX / 2];
    getrandom::fill(&mut random).map_err(|e| IssueError::Random(e.to_string()))?;
    let (id, secret) = random.split_at(KEY_ID_HEX / 2);
    let (key_id, secret) = (hex(id), hex(secret));
    Ok(IssuedKey {
        plaintext: format!("{PREFIX}{key_id}_{secret}"),
        record: DeviceKey {
            key_id,
            device_id: device,
            secret_sha256: sha256_hex(&secret),
            rate_per_minute,
            label: label.to_string(),
            created_at_ms: now_ms,
            revoked_at_ms: None,
        },
    })
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceId {
        DeviceId::new("veh-001").unwrap()
    }

    #[test]
    fn an_issued_key_opens_its_record_and_nothing_else() {
        let a = issue(device(), 60, "gateway", 1).unwrap();
        let b = issue(device(), 60, "gateway", 1).unwrap();
        assert_ne!(a.record.key_id, b.record.key_id);
        assert_eq!(a.plaintext.len(), 4 + 12 + 1 + 64);
        let presented = PresentedKey::parse(&a.plaintext).unwrap();
        assert_eq!(presented.key_id, a.record.key_id);
        assert!(presented.matches(&a.record));
        assert!(!presented.matches(&b.record), "another key's record");
        // Only the digest is kept, and it is not the secret.
        assert!(!a.plaintext.contains(&a.record.secret_sha256));
        assert_eq!(a.record.secret_sha256.len(), 64);
        assert!(!format!("{a:?}").contains(&a.plaintext[17..]), "Debug hides the secret");
    }

    #[test]
    fn a_changed_secret_matches_nothing() {
        let mut key = issue(device(), 60, "", 1).unwrap();
        let mut wrong = key.plaintext.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(!PresentedKey::parse(&wrong).unwrap().matches(&key.record));
        key.record.key_id = "000000000000".into();
        assert!(
            !PresentedKey::parse(&key.plaintext).unwrap().matches(&key.record),
            "another id"
        );
    }

    #[test]
    fn malformed_keys_are_refused_before_any_lookup() {
        for text in [
            "",
            "cnk_",
            "key",
            "cnk_0123456789ab",
            "cnk_0123456789ab_",
            "cnk_0123456789a_0000000000000000000000000000000000000000000000000000000000000000",
            "cnk_0123456789ag_0000000000000000000000000000000000000000000000000000000000000000",
            "cnk_0123456789AB_0000000000000000000000000000000000000000000000000000000000000000",
            "xyz_0123456789ab_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(PresentedKey::parse(text), Err(MalformedKey), "{text:?}");
        }
    }

    #[test]
    fn rates_and_labels_are_bounded() {
        assert_eq!(issue(device(), 0, "", 1).unwrap_err(), IssueError::Rate(0));
        assert_eq!(
            issue(device(), MAX_RATE_PER_MINUTE + 1, "", 1).unwrap_err(),
            IssueError::Rate(MAX_RATE_PER_MINUTE + 1)
        );
        assert_eq!(issue(device(), 1, "a\nb", 1).unwrap_err(), IssueError::Label);
        assert_eq!(
            issue(device(), 1, &"x".repeat(MAX_LABEL + 1), 1).unwrap_err(),
            IssueError::Label
        );
    }
}
