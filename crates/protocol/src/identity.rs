//! Peer ids derived from a member key.
//!
//! A client that sends a `key` with `join` gets a peer id derived from it
//! and the room id, instead of a random one. Only the holder of the key can
//! claim that id again, on a new connection or after the server restarted
//! and forgot everything, because the id is a one-way function of the key.

use sha2::{Digest, Sha256};

/// What the derivation hashes before the room id, so that these hashes
/// cannot be mistaken for any other use of SHA-256.
const DOMAIN: &[u8] = b"peerchat peer id\n";

/// The peer id of the member with this `key` in `room`: the first 8 bytes of
/// SHA-256(`"peerchat peer id\n" + room + "\n" + key`) as 16 lowercase hex
/// digits. Pure: the same inputs always give the same id.
///
/// The inputs are not checked here; the server only derives ids from a room
/// id and a key that passed [`crate::validate_room_id`] and
/// [`crate::validate_key`].
pub fn peer_id_from_key(room: &str, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(DOMAIN)
        .chain_update(room.as_bytes())
        .chain_update(b"\n")
        .chain_update(key.as_bytes())
        .finalize();
    let mut id = String::with_capacity(16);
    for byte in &digest[..8] {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    id
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex_digits_and_depend_on_room_and_key() {
        let room = "abcdefghijklmnopqrstuv";
        let key = "0123456789ABCDEFGHIJ-_";
        let id = peer_id_from_key(room, key);
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| HEX.contains(&b)));
        assert_eq!(id, peer_id_from_key(room, key));
        assert_ne!(id, peer_id_from_key("abcdefghijklmnopqrstuw", key));
        assert_ne!(id, peer_id_from_key(room, "0123456789ABCDEFGHIJ-a"));
    }

    #[test]
    fn the_separator_keeps_room_and_key_apart() {
        // Without the newline between them these two would hash the same.
        assert_ne!(
            peer_id_from_key("abcdefghijklmnopqrstuvw", "xyz0123456789012345678"),
            peer_id_from_key("abcdefghijklmnopqrstuv", "wxyz0123456789012345678"),
        );
    }
}
