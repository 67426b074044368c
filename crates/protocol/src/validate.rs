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
/// white space, no control characters and no invisible formatting characters
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
            "must not contain control or invisible formatting characters",
        ));
    }
    Ok(())
}

/// Characters a nickname may not contain: C0 and C1 controls (Unicode
/// category Cc), and invisible characters that can disguise a name: soft
/// hyphen, zero-width and directional marks, bidi embeddings, overrides and
/// isolates, invisible operators and the byte-order mark.
pub fn is_forbidden_in_nick(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
        )
}

/// The form of a nickname used to decide whether two are the same: Unicode
/// lower case, so `Alice` and `alice` cannot both be in one room.
pub fn nick_key(nick: &str) -> String {
    nick.to_lowercase()
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
        assert_eq!(nick_key("ÄLICE"), nick_key("älice"));
    }
}
