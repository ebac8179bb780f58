//! Text helpers for messages that quote input.

/// At most `max` characters of `s` (never splitting one): input quoted in an
/// error or a log line stays readable however long it was.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuts_at_characters_not_bytes() {
        assert_eq!(super::truncate_chars("héllo", 2), "hé");
        assert_eq!(super::truncate_chars("abc", 10), "abc");
    }
}
