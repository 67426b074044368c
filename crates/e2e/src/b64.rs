//! Base64url without padding (RFC 4648 §5), the only text form of bytes in
//! this protocol. Decoding is strict: no padding, no white space, and the
//! unused bits of the last character must be zero, so every byte string has
//! exactly one text form.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding, refusing any other form.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Whether every character is of the base64url alphabet.
pub fn is_alphabet(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict() {
        assert_eq!(decode("AAE"), Some(vec![0, 1]));
        assert_eq!(encode(&[0, 1]), "AAE");
        // Non-zero unused bits, padding, the standard alphabet: refused.
        assert_eq!(decode("AAF"), None);
        assert_eq!(decode("AAE="), None);
        assert_eq!(decode("+/8"), None);
        assert_eq!(decode("A"), None);
        assert!(is_alphabet("aZ09-_"));
        assert!(!is_alphabet("a+b"));
    }
}
