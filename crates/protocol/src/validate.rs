//! Validation rules shared by the server and every client.

use crate::{
    MAX_KEY_LEN, MAX_NICK_CHARS, MAX_ROOM_ID_LEN, MIN_KEY_LEN, MIN_ROOM_ID_LEN, ProtocolError,
};

/// Checks a room id: 22 to 64 characters of the base64url alphabet
/// (`A-Z a-z 0-9 - _`).
pub fn validate_room_id(room: &str) -> Result<(), ProtocolError> {
    if room.len() < MIN_ROOM_ID_LEN {
        return Err(ProtocolError::BadRoom(
            "must be at least 22 characters (128 random bits)",
        ));
    }
    if room.len() > MAX_ROOM_ID_LEN {
        return Err(ProtocolError::BadRoom("must be at most 64 characters"));
    }
    if !is_base64url(room) {
        return Err(ProtocolError::BadRoom(
            "may contain only A-Z, a-z, 0-9, '-' and '_'",
        ));
    }
    Ok(())
}

/// Checks a member key (the optional `key` of `join`): 22 to 64 characters
/// of the base64url alphabet (`A-Z a-z 0-9 - _`), like a room id.
pub fn validate_key(key: &str) -> Result<(), ProtocolError> {
    if key.len() < MIN_KEY_LEN {
        return Err(ProtocolError::BadKey(
            "must be at least 22 characters (128 random bits)",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ProtocolError::BadKey("must be at most 64 characters"));
    }
    if !is_base64url(key) {
        return Err(ProtocolError::BadKey(
            "may contain only A-Z, a-z, 0-9, '-' and '_'",
        ));
    }
    Ok(())
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a nickname: 1 to 32 Unicode scalar values, no leading or trailing
/// white space, no control characters and no default-ignorable code points
/// (see [`is_forbidden_in_nick`]).
pub fn validate_nick(nick: &str) -> Result<(), ProtocolError> {
    if nick.is_empty() {
        return Err(ProtocolError::BadNick("must not be empty"));
    }
    if nick.chars().count() > MAX_NICK_CHARS {
        return Err(ProtocolError::BadNick("must be at most 32 characters"));
    }
    if nick.trim() != nick {
        return Err(ProtocolError::BadNick(
            "must not start or end with white space",
        ));
    }
    if nick.chars().any(is_forbidden_in_nick) {
        return Err(ProtocolError::BadNick(
            "must not contain control characters or invisible (default-ignorable) ones",
        ));
    }
    Ok(())
}

/// Characters a nickname may not contain: C0 and C1 controls (Unicode
/// category Cc), and every default-ignorable code point
/// ([`is_default_ignorable`]): characters that show as nothing, and so can
/// make a name look like another (zero-width and directional marks, bidi
/// controls, variation selectors, tag characters, Hangul fillers, …).
pub fn is_forbidden_in_nick(c: char) -> bool {
    c.is_control() || is_default_ignorable(c)
}

/// Whether `c` has Unicode's `Default_Ignorable_Code_Point` property. Read
/// from UTS #39's skeleton, which drops exactly those (and maps every other
/// character to at least one), so the property comes from the same Unicode
/// data as the confusables.
pub fn is_default_ignorable(c: char) -> bool {
    let mut buf = [0; 4];
    unicode_security::skeleton(c.encode_utf8(&mut buf))
        .next()
        .is_none()
}

/// The form of a nickname used to decide whether two are the same, so that
/// nobody can take a name that looks like another member's: compatibility
/// normalization (NFKC: `ａｌｉｃｅ` is `alice`), lower case (`Alice` is
/// `alice`), then UTS #39's confusable skeleton (a Cyrillic `а` is a Latin
/// `a`, `zoë` composed or not is the same), lower-cased again.
pub fn nick_key(nick: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded = nick.nfkc().collect::<String>().to_lowercase();
    unicode_security::skeleton(&folded)
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids() {
        assert!(validate_room_id("abcdefghijABCDEFGHIJ-_").is_ok());
        assert!(validate_room_id(&"a".repeat(64)).is_ok());
        assert!(validate_room_id(&"a".repeat(65)).is_err());
        assert!(validate_room_id("short").is_err());
        assert!(validate_room_id("abcdefghijABCDEFGHIJ/.").is_err());
        assert!(validate_room_id("abcdefghijABCDEFGHIJé").is_err());
    }

    #[test]
    fn keys() {
        assert!(validate_key("abcdefghijABCDEFGHIJ-_").is_ok());
        assert!(validate_key(&"k".repeat(64)).is_ok());
        assert!(validate_key(&"k".repeat(65)).is_err());
        assert!(validate_key(&"k".repeat(21)).is_err());
        assert!(validate_key("abcdefghijABCDEFGHIJ+/").is_err());
    }

    #[test]
    fn nicks() {
        assert!(validate_nick("alice").is_ok());
        assert!(validate_nick("Ünïcødé 名前").is_ok());
        assert!(validate_nick(&"é".repeat(32)).is_ok());
        assert!(validate_nick(&"é".repeat(33)).is_err());
        assert!(validate_nick("").is_err());
        assert!(validate_nick(" alice").is_err());
        assert!(validate_nick("al\nice").is_err());
        assert!(validate_nick("ali\u{202E}ce").is_err());
        for invisible in ['\u{E0061}', '\u{3164}', '\u{FE0F}', '\u{034F}', '\u{00AD}'] {
            assert!(
                validate_nick(&format!("al{invisible}ice")).is_err(),
                "{invisible:?}"
            );
        }
        assert_eq!(nick_key("ÄLICE"), nick_key("älice"));
        assert_eq!(nick_key("alice"), nick_key("\u{430}lice"));
        assert_eq!(nick_key("alice"), nick_key("ａｌｉｃｅ"));
        assert_eq!(nick_key("zo\u{eb}"), nick_key("zoe\u{308}"));
        assert_ne!(nick_key("alice"), nick_key("alicia"));
    }
}
