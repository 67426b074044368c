//! Messages between a client and the signaling server (the `/ws` WebSocket).
//!
//! Every message is one JSON object in one text frame, with a `type` field.
//! Unknown fields are ignored, so later versions can add fields.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
pub use serde_json::value::RawValue;

use crate::{ErrorCode, PROTOCOL_VERSION, ProtocolError};

/// A member of a room: its server-assigned peer id and its nickname.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The peer id, assigned by the server (derived from the member's key
    /// when it joined with one), unique within the room while the member is
    /// in it.
    pub id: String,
    /// The nickname, unique (case-insensitively) within the room.
    pub nick: String,
}

/// A STUN or TURN server, in the shape of WebRTC's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// The TURN username, if the server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password, if the server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A message from a client to the server.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage<'a> {
    /// Join a room under a nickname. Answered by `joined` or an error.
    Join {
        /// The protocol version the client speaks ([`PROTOCOL_VERSION`]).
        v: u32,
        /// The room id.
        room: Cow<'a, str>,
        /// The nickname.
        nick: Cow<'a, str>,
        /// The member key: a secret the client picked at random and keeps
        /// for its session. With one, the peer id is derived from it
        /// ([`crate::peer_id_from_key`]) and the membership can be resumed
        /// on a new connection; without, the peer id is random.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Cow<'a, str>>,
    },
    /// Leave the room for good: the server tells the room at once and
    /// closes the connection normally.
    Leave,
    /// Take another nickname in the room, keeping the membership and peer
    /// id. Answered by `renamed` or an error (`bad_nick`, `nick_taken`,
    /// `not_joined`); the other members get `peer_renamed`.
    Rename {
        /// The new nickname, under the rules of `join`'s.
        nick: Cow<'a, str>,
    },
    /// Relay `payload` to the member `to` of the same room.
    Signal {
        /// The recipient's peer id.
        to: Cow<'a, str>,
        /// Any JSON object; the server passes it on untouched.
        payload: &'a RawValue,
    },
}

/// A message from the server to a client.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// The client is now in the room.
    Joined {
        /// The protocol version the server speaks.
        v: u32,
        /// The room id.
        room: Cow<'a, str>,
        /// The client itself, with its assigned peer id.
        you: Member,
        /// Everyone else in the room, in the order they joined.
        members: Vec<Member>,
        /// ICE servers for the client's peer connections.
        ice_servers: Vec<IceServer>,
        /// Whether this join took over an existing membership (same key):
        /// the room was not told anything about it.
        resumed: bool,
    },
    /// Someone joined the client's room.
    PeerJoined {
        /// The new member.
        peer: Member,
    },
    /// The client's `rename` went through: it is now known by `you.nick`.
    Renamed {
        /// The client itself, with its new nickname.
        you: Member,
    },
    /// Another member of the client's room took a new nickname.
    PeerRenamed {
        /// The member, with its new nickname.
        peer: Member,
    },
    /// Someone left the client's room.
    PeerLeft {
        /// The peer id of the member who left.
        id: Cow<'a, str>,
    },
    /// A signal relayed from another member of the room.
    Signal {
        /// The sender's peer id, set by the server.
        from: Cow<'a, str>,
        /// The payload, as the sender sent it.
        payload: &'a RawValue,
    },
    /// Fresh ICE servers (new TURN credentials) for the client's next peer
    /// connections, sent while it is in a room before the last ones
    /// expire.
    IceServers {
        /// As in `joined`.
        ice_servers: Vec<IceServer>,
    },
    /// A request could not be carried out.
    Error {
        /// The stable error code.
        code: ErrorCode,
        /// A human-readable explanation.
        message: Cow<'a, str>,
        /// For a refused signal (`peer_busy`): its recipient's peer id.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<Cow<'a, str>>,
    },
}

impl ClientMessage<'_> {
    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// A `join` for the current protocol version, without a key: the
    /// server assigns a random peer id.
    pub fn join<'a>(room: &'a str, nick: &'a str) -> ClientMessage<'a> {
        ClientMessage::Join {
            v: PROTOCOL_VERSION,
            room: Cow::Borrowed(room),
            nick: Cow::Borrowed(nick),
            key: None,
        }
    }

    /// A `rename` to `nick`.
    pub fn rename(nick: &str) -> ClientMessage<'_> {
        ClientMessage::Rename {
            nick: Cow::Borrowed(nick),
        }
    }

    /// A `join` for the current protocol version with a member key, so that
    /// the membership survives a lost connection.
    pub fn join_with_key<'a>(room: &'a str, nick: &'a str, key: &'a str) -> ClientMessage<'a> {
        ClientMessage::Join {
            v: PROTOCOL_VERSION,
            room: Cow::Borrowed(room),
            nick: Cow::Borrowed(nick),
            key: Some(Cow::Borrowed(key)),
        }
    }
}

impl<'a> ClientMessage<'a> {
    /// Parses a client message, borrowing from `text` where it can.
    ///
    /// Checks the shape of the message and, for `join`, the version, room id
    /// and nickname rules; whether the room or nickname is available is for
    /// the server to decide.
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        let fields = Fields::parse(text)?;
        if fields.from.is_some() {
            return Err(ProtocolError::ForgedSender);
        }
        match fields.kind()? {
            "join" => {
                let v: u64 = fields.get(fields.v, "v", "must be a positive integer")?;
                if v != u64::from(PROTOCOL_VERSION) {
                    return Err(ProtocolError::UnsupportedVersion(v));
                }
                let room = fields.string(fields.room, "room")?;
                crate::validate_room_id(&room)?;
                let nick = fields.string(fields.nick, "nick")?;
                crate::validate_nick(&nick)?;
                let key = match fields.key {
                    Some(_) => {
                        let key = fields.string(fields.key, "key")?;
                        crate::validate_key(&key)?;
                        Some(key)
                    }
                    None => None,
                };
                Ok(ClientMessage::Join {
                    v: PROTOCOL_VERSION,
                    room,
                    nick,
                    key,
                })
            }
            "leave" => Ok(ClientMessage::Leave),
            "rename" => {
                let nick = fields.string(fields.nick, "nick")?;
                crate::validate_nick(&nick)?;
                Ok(ClientMessage::Rename { nick })
            }
            "signal" => Ok(ClientMessage::Signal {
                to: fields.string(fields.to, "to")?,
                payload: fields.object(fields.payload, "payload")?,
            }),
            other => Err(ProtocolError::UnknownType(other.to_owned())),
        }
    }
}

impl ServerMessage<'_> {
    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

impl<'a> ServerMessage<'a> {
    /// Parses a server message, borrowing from `text` where it can.
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        let fields = Fields::parse(text)?;
        match fields.kind()? {
            "joined" => {
                let v: u64 = fields.get(fields.v, "v", "must be a positive integer")?;
                if v != u64::from(PROTOCOL_VERSION) {
                    return Err(ProtocolError::UnsupportedVersion(v));
                }
                Ok(ServerMessage::Joined {
                    v: PROTOCOL_VERSION,
                    room: fields.string(fields.room, "room")?,
                    you: fields.get(fields.you, "you", "must be a member object")?,
                    members: fields.get(fields.members, "members", "must be a list of members")?,
                    ice_servers: match fields.ice_servers {
                        Some(_) => fields.get(
                            fields.ice_servers,
                            "ice_servers",
                            "must be a list of ICE servers",
                        )?,
                        None => Vec::new(),
                    },
                    resumed: match fields.resumed {
                        Some(_) => {
                            fields.get(fields.resumed, "resumed", "must be true or false")?
                        }
                        None => false,
                    },
                })
            }
            "peer_joined" => Ok(ServerMessage::PeerJoined {
                peer: fields.get(fields.peer, "peer", "must be a member object")?,
            }),
            "renamed" => Ok(ServerMessage::Renamed {
                you: fields.get(fields.you, "you", "must be a member object")?,
            }),
            "peer_renamed" => Ok(ServerMessage::PeerRenamed {
                peer: fields.get(fields.peer, "peer", "must be a member object")?,
            }),
            "peer_left" => Ok(ServerMessage::PeerLeft {
                id: fields.string(fields.id, "id")?,
            }),
            "signal" => Ok(ServerMessage::Signal {
                from: fields.string(fields.from, "from")?,
                payload: fields.object(fields.payload, "payload")?,
            }),
            "ice_servers" => Ok(ServerMessage::IceServers {
                ice_servers: fields.get(
                    fields.ice_servers,
                    "ice_servers",
                    "must be a list of ICE servers",
                )?,
            }),
            "error" => Ok(ServerMessage::Error {
                code: fields.get(fields.code, "code", "must be a string")?,
                message: match fields.message {
                    Some(_) => fields.string(fields.message, "message")?,
                    None => Cow::Borrowed(""),
                },
                to: match fields.to {
                    Some(_) => Some(fields.string(fields.to, "to")?),
                    None => None,
                },
            }),
            other => Err(ProtocolError::UnknownType(other.to_owned())),
        }
    }

    /// An error message with its code and human-readable text.
    pub fn error(code: ErrorCode, message: impl Into<Cow<'a, str>>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            to: None,
        }
    }
}

fn to_json(value: &impl Serialize) -> String {
    // Serializing these types cannot fail: every map key is a string and
    // every value is plain data.
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

/// Every field any message may have, each kept as unparsed JSON so that a
/// field of the wrong kind is reported as such rather than as bad JSON.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    v: Option<&'a RawValue>,
    #[serde(borrow, default)]
    room: Option<&'a RawValue>,
    #[serde(borrow, default)]
    nick: Option<&'a RawValue>,
    #[serde(borrow, default)]
    key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    to: Option<&'a RawValue>,
    #[serde(borrow, default)]
    from: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    you: Option<&'a RawValue>,
    #[serde(borrow, default)]
    members: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ice_servers: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resumed: Option<&'a RawValue>,
    #[serde(borrow, default)]
    peer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    code: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// A string that borrows from the input when it has no escapes.
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> Fields<'a> {
    fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        // serde would read a JSON array as a struct, field by field.
        if !text.trim_start().starts_with('{') {
            // Report bad JSON as such; anything else is not an object.
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|e| ProtocolError::from_json(&e))?;
            return Err(ProtocolError::BadMessage(
                "a message must be a JSON object".into(),
            ));
        }
        let fields: Fields<'a> =
            serde_json::from_str(text).map_err(|e| ProtocolError::from_json(&e))?;
        Ok(fields)
    }

    fn kind(&self) -> Result<&'a str, ProtocolError> {
        let raw = self.kind.ok_or(ProtocolError::MissingField("type"))?;
        let kind: &'a str =
            serde_json::from_str(raw.get()).map_err(|_| ProtocolError::BadField {
                field: "type",
                reason: "must be a string without escapes",
            })?;
        Ok(kind)
    }

    fn get<T: Deserialize<'a>>(
        &self,
        raw: Option<&'a RawValue>,
        name: &'static str,
        reason: &'static str,
    ) -> Result<T, ProtocolError> {
        let raw = raw.ok_or(ProtocolError::MissingField(name))?;
        serde_json::from_str(raw.get()).map_err(|_| ProtocolError::BadField {
            field: name,
            reason,
        })
    }

    fn string(
        &self,
        raw: Option<&'a RawValue>,
        name: &'static str,
    ) -> Result<Cow<'a, str>, ProtocolError> {
        let Str(s) = self.get(raw, name, "must be a string")?;
        Ok(s)
    }

    fn object(
        &self,
        raw: Option<&'a RawValue>,
        name: &'static str,
    ) -> Result<&'a RawValue, ProtocolError> {
        let raw = raw.ok_or(ProtocolError::MissingField(name))?;
        if !raw.get().starts_with('{') {
            return Err(ProtocolError::BadField {
                field: name,
                reason: "must be an object",
            });
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_payload_passes_through_verbatim() {
        let text = r#"{"type":"signal","to":"abc","payload":{"b": [1, 2], "a":"x"}}"#;
        let ClientMessage::Signal { to, payload } = ClientMessage::parse(text).unwrap() else {
            panic!("not a signal");
        };
        assert!(matches!(to, Cow::Borrowed("abc")));
        let out = ServerMessage::Signal {
            from: Cow::Borrowed("me"),
            payload,
        }
        .to_json();
        assert_eq!(
            out,
            r#"{"type":"signal","from":"me","payload":{"b": [1, 2], "a":"x"}}"#
        );
    }

    #[test]
    fn errors_are_classified() {
        let code = |t: &str| ClientMessage::parse(t).unwrap_err().code();
        assert_eq!(code("{"), ErrorCode::BadJson);
        assert_eq!(code("[]"), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"nope"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"signal","to":"a","from":"b","payload":{}}"#),
            ErrorCode::ForgedSender
        );
        assert_eq!(
            code(r#"{"type":"signal","to":"a","payload":"x"}"#),
            ErrorCode::BadMessage
        );
        let join = |key: &str| {
            format!(
                r#"{{"type":"join","v":2,"room":"abcdefghijklmnopqrstuv","nick":"a","key":{key}}}"#
            )
        };
        assert_eq!(code(&join(r#""short""#)), ErrorCode::BadKey);
        assert_eq!(code(&join("5")), ErrorCode::BadMessage);
    }

    #[test]
    fn join_with_key_and_leave_round_trip() {
        let key = "k".repeat(22);
        let join = ClientMessage::join_with_key("abcdefghijklmnopqrstuv", "al", &key);
        let text = join.to_json();
        let ClientMessage::Join { key, .. } = ClientMessage::parse(&text).unwrap() else {
            panic!("not a join: {text}");
        };
        assert_eq!(key.as_deref(), Some("kkkkkkkkkkkkkkkkkkkkkk"));
        assert!(
            !ClientMessage::join("abcdefghijklmnopqrstuv", "al")
                .to_json()
                .contains("key")
        );
        assert_eq!(ClientMessage::Leave.to_json(), r#"{"type":"leave"}"#);
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"leave","why":"bye"}"#),
            Ok(ClientMessage::Leave)
        ));
    }
}
