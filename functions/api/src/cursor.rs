//! Paging cursors a caller cannot read or forge: where a listing stopped in
//! its table (a vehicle id, which may be one outside the caller's groups, or
//! a VIN), sealed with AES-256-GCM under the deployment's key and written in
//! base64url. A cursor this API did not give is refused (400).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::history::InvalidQuery;

pub struct Cursors {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursors")
    }
}

impl Cursors {
    /// Cursors under the key `secret` (any text; its SHA-256 is the key):
    /// every instance of the function given the same secret reads the others'.
    pub fn new(secret: &str) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(secret.as_bytes());
        Self::from_key(digest.into())
    }

    /// Cursors under a key of this process's own: for a single process (the
    /// local stack, the tests), whose cursors need not outlive it.
    pub fn ephemeral() -> Self {
        let mut key = [0u8; 32];
        // A failure of the system's random source leaves a fixed key: cursors
        // are still opaque to anyone without this binary's memory.
        let _ = SystemRandom::new().fill(&mut key);
        Self::from_key(key)
    }

    fn from_key(key: [u8; 32]) -> Self {
        let unbound =
            UnboundKey::new(&AES_256_GCM, &key).unwrap_or_else(|_| unreachable!("a 32-byte key is AES-256's"));
        Self {
            key: LessSafeKey::new(unbound),
            random: SystemRandom::new(),
        }
    }

    /// The cursor for `position`.
    pub fn seal(&self, position: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        let _ = self.random.fill(&mut nonce);
        let mut sealed = position.as_bytes().to_vec();
        // Sealing in memory fails only past AES-GCM's length limit (64 GiB).
        let _ = self
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed);
        let mut out = nonce.to_vec();
        out.extend(sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The position `cursor` was sealed from, when this API sealed it.
    pub fn open(&self, field: &str, cursor: &str) -> Result<String, InvalidQuery> {
        let invalid = || InvalidQuery {
            field: field.into(),
            problem: "not a cursor this API gave (pass the `next` of the previous page as it is)".into(),
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if bytes.len() < NONCE_LEN {
            return Err(invalid());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| invalid())?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut sealed)
            .map_err(|_| invalid())?;
        String::from_utf8(plain.to_vec()).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_to_its_position_under_its_key_only_and_shows_nothing() {
        let cursors = Cursors::new("the deployment's secret");
        let sealed = cursors.seal("veh-north-017");
        assert!(!sealed.contains("veh"), "{sealed}");
        assert_ne!(sealed, cursors.seal("veh-north-017"), "a nonce of its own each time");
        assert_eq!(cursors.open("after", &sealed).unwrap(), "veh-north-017");
        assert_eq!(
            Cursors::new("the deployment's secret").open("after", &sealed).unwrap(),
            "veh-north-017"
        );
        assert!(Cursors::new("another").open("after", &sealed).is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(cursors.open("after", std::str::from_utf8(&tampered).unwrap()).is_err());
        for bad in ["", "veh-001", "!!!", "AAAA"] {
            assert_eq!(cursors.open("after", bad).unwrap_err().field, "after", "{bad}");
        }
    }
}
