//! A DBC file, loaded strictly and leniently; every message of what loads
//! decodes any payload (the input's last 64 bytes) without panicking, and
//! encodes what it decoded.

use canopy::format::dbc::{Database, LoadOptions};

pub fn run(data: &[u8]) {
    let split = data.len().saturating_sub(64);
    let (text, payload) = data.split_at(split);
    let Ok(text) = std::str::from_utf8(text) else { return };
    for strict in [true, false] {
        let Ok(db) = Database::from_text_with(text, "fuzz.dbc", LoadOptions { strict }) else {
            continue;
        };
        let mut values = Vec::new();
        for message in db.messages() {
            if message.decode(payload, &mut values).is_ok() {
                let _ = message.encode(|i, _| values.iter().find(|v| usize::from(v.signal) == i).map(|v| v.value));
            }
        }
    }
}
