use std::fmt;

use serde::{Deserialize, Serialize};

/// Stable error codes carried by `{"type":"error","code":…}` messages.
///
/// Clients match on these; the accompanying `message` is for humans and may
/// change. New codes may be added in later versions, so a client must treat
/// an unknown code as a generic error ([`ErrorCode::Unknown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON.
    BadJson,
    /// The frame was a binary WebSocket frame; the protocol is text only.
    BinaryFrame,
    /// The frame was JSON but a field was missing or of the wrong kind.
    BadMessage,
    /// The `type` field named no message this server knows.
    UnknownType,
    /// The frame was larger than the server's message size limit.
    TooLarge,
    /// The `v` field of `join` named a version this server does not speak.
    UnsupportedVersion,
    /// A message other than `join` was sent before joining a room.
    NotJoined,
    /// `join` was sent on a connection that is already in a room.
    AlreadyJoined,
    /// The room id is not valid.
    BadRoom,
    /// The nickname is not valid.
    BadNick,
    /// The member key of `join` is not valid.
    BadKey,
    /// Another member of the room already uses that nickname.
    NickTaken,
    /// The room has as many members as the server allows.
    RoomFull,
    /// A client tried to set the sender (`from`) of a signal itself.
    ForgedSender,
    /// A signal named a peer that is not in the sender's room.
    UnknownPeer,
    /// A signal named a member whose connection was lost and who may still
    /// come back; it was not delivered.
    PeerAway,
    /// A signal to a member whose queue is backed up (it reads more slowly
    /// than it is sent to, or the sender has its fair share of the queue
    /// already); it was not delivered: send it again later.
    PeerBusy,
    /// The member joined again (same key) on another connection, which took
    /// its place; this connection is closed.
    Replaced,
    /// The client sent more messages than its rate limit allows; the
    /// message was dropped.
    RateLimited,
    /// The client did not join a room in time; the connection is closed.
    JoinTimeout,
    /// The client did not read its messages fast enough; the connection is
    /// closed.
    SlowConsumer,
    /// The server is shutting down; the connection is closed.
    ShuttingDown,
    /// A code this implementation does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::BinaryFrame => "binary_frame",
            Self::BadMessage => "bad_message",
            Self::UnknownType => "unknown_type",
            Self::TooLarge => "too_large",
            Self::UnsupportedVersion => "unsupported_version",
            Self::NotJoined => "not_joined",
            Self::AlreadyJoined => "already_joined",
            Self::BadRoom => "bad_room",
            Self::BadNick => "bad_nick",
            Self::BadKey => "bad_key",
            Self::NickTaken => "nick_taken",
            Self::RoomFull => "room_full",
            Self::ForgedSender => "forged_sender",
            Self::UnknownPeer => "unknown_peer",
            Self::PeerAway => "peer_away",
            Self::PeerBusy => "peer_busy",
            Self::Replaced => "replaced",
            Self::RateLimited => "rate_limited",
            Self::JoinTimeout => "join_timeout",
            Self::SlowConsumer => "slow_consumer",
            Self::ShuttingDown => "shutting_down",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message could not be accepted, with its stable [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not valid JSON.
    #[error("not valid JSON: {0}")]
    BadJson(String),
    /// Valid JSON, but not an object with the fields a message needs.
    #[error("malformed message: {0}")]
    BadMessage(String),
    /// A required field is absent.
    #[error("malformed message: field `{0}` is missing")]
    MissingField(&'static str),
    /// A field holds the wrong kind of value.
    #[error("malformed message: field `{field}` {reason}")]
    BadField {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A text field is longer than allowed.
    #[error("malformed message: field `{field}` must be at most {max} bytes of UTF-8")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// The limit, in bytes.
        max: usize,
    },
    /// The `type` is not one this implementation knows.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// `join` asked for a protocol version this implementation lacks.
    #[error(
        "protocol version {0} is not supported: this server speaks version 2, with end-to-end protected signaling; update your peerchat client (in a browser, reload the page)"
    )]
    UnsupportedVersion(u64),
    /// A client set `from` on a signal.
    #[error("the sender of a signal is set by the server; `from` must not be sent")]
    ForgedSender,
    /// The room id breaks the rules in [`crate::validate_room_id`].
    #[error("invalid room id: {0}")]
    BadRoom(&'static str),
    /// The nickname breaks the rules in [`crate::validate_nick`].
    #[error("invalid nickname: {0}")]
    BadNick(&'static str),
    /// The member key breaks the rules in [`crate::validate_key`].
    #[error("invalid key: {0}")]
    BadKey(&'static str),
}

impl ProtocolError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadJson(_) => ErrorCode::BadJson,
            Self::BadMessage(_)
            | Self::MissingField(_)
            | Self::BadField { .. }
            | Self::TooLong { .. } => ErrorCode::BadMessage,
            Self::UnknownType(_) => ErrorCode::UnknownType,
            Self::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            Self::ForgedSender => ErrorCode::ForgedSender,
            Self::BadRoom(_) => ErrorCode::BadRoom,
            Self::BadNick(_) => ErrorCode::BadNick,
            Self::BadKey(_) => ErrorCode::BadKey,
        }
    }

    /// Classifies a serde_json error: syntax errors are `bad_json`, anything
    /// else (wrong shape) is `bad_message`.
    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => Self::BadJson(err.to_string()),
            Category::Data => Self::BadMessage(err.to_string()),
        }
    }
}
