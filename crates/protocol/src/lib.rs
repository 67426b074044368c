//! The peerchat wire protocol, version 1.
//!
//! Two kinds of messages are defined here, both JSON text:
//!
//! * [`signaling`]: between a client and the signaling server over the `/ws`
//!   WebSocket (join a room, presence, relaying WebRTC offers, answers and ICE
//!   candidates).
//! * [`peer`]: between two peers over their RTCDataChannel (chat messages).
//!
//! The crate is pure: no I/O, no async runtime. `docs/protocol.md` in the
//! repository is the normative description; the JSON test vectors in
//! `tests/vectors/` are checked against both this crate and the web client.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod file;
pub mod identity;
pub mod peer;
pub mod signaling;
pub mod turn;
pub mod validate;

mod error;

pub use error::{ErrorCode, ProtocolError};
pub use identity::peer_id_from_key;
pub use validate::{validate_key, validate_nick, validate_room_id};

/// The protocol version spoken by this crate, sent in `join` and `joined`.
pub const PROTOCOL_VERSION: u32 = 2;

/// Longest chat text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Longest nickname, in Unicode scalar values.
pub const MAX_NICK_CHARS: usize = 32;

/// Shortest room id, in characters (22 base64url characters carry 132 bits).
pub const MIN_ROOM_ID_LEN: usize = 22;

/// Longest room id, in characters.
pub const MAX_ROOM_ID_LEN: usize = 64;

/// Shortest member key, in characters (22 base64url characters carry 132
/// bits).
pub const MIN_KEY_LEN: usize = 22;

/// Longest member key, in characters.
pub const MAX_KEY_LEN: usize = 64;
