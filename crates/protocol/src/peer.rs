//! Messages between peers over their RTCDataChannel (label `chat`).
//!
//! Each data-channel message is one JSON object, an *envelope*, with an
//! envelope version `v`, a `type` and a unique `id`. A receiver ignores
//! envelopes whose `type` it does not know and fields it does not know, so
//! that acknowledgements, history and typing notices can be added without
//! breaking older peers.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{MAX_TEXT_BYTES, ProtocolError};

/// The envelope version written by this implementation.
pub const ENVELOPE_VERSION: u32 = 1;

/// Longest envelope id, in characters.
pub const MAX_ID_LEN: usize = 64;

/// Latest timestamp, in ms since the epoch: the last instant a JavaScript
/// `Date` can hold.
pub const MAX_TS: u64 = 8_640_000_000_000_000;

/// A data-channel envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage<'a> {
    /// A chat message.
    Chat(Chat<'a>),
    /// An envelope of a type this implementation does not know; ignore it.
    Unknown {
        /// The envelope's `type`.
        kind: Cow<'a, str>,
    },
}

/// A chat message: `{"v":1,"type":"chat","id":…,"ts":…,"text":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat<'a> {
    /// A unique id chosen by the author: 1 to 64 characters of
    /// `A-Z a-z 0-9 - _`.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// When the author sent it, in milliseconds since the Unix epoch, by the
    /// author's clock.
    pub ts: u64,
    /// The text: 1 to [`MAX_TEXT_BYTES`] bytes of UTF-8.
    #[serde(borrow)]
    pub text: Cow<'a, str>,
}

#[derive(Serialize)]
struct Tagged<'a, T> {
    v: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(default)]
    v: Option<u64>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

impl<'a> PeerMessage<'a> {
    /// Parses and validates an envelope.
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        // serde would read a JSON array as a struct, field by field.
        if !text.trim_start().starts_with('{') {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|e| ProtocolError::from_json(&e))?;
            return Err(ProtocolError::BadMessage(
                "an envelope must be a JSON object".into(),
            ));
        }
        let header: Header<'a> =
            serde_json::from_str(text).map_err(|e| ProtocolError::from_json(&e))?;
        match header.v {
            Some(v) if v >= 1 => {}
            Some(_) => {
                return Err(ProtocolError::BadField {
                    field: "v",
                    reason: "must be 1 or more",
                });
            }
            None => return Err(ProtocolError::MissingField("v")),
        }
        let kind = header.kind.ok_or(ProtocolError::MissingField("type"))?;
        match kind.as_ref() {
            "chat" => {
                let chat: Chat<'a> =
                    serde_json::from_str(text).map_err(|e| ProtocolError::from_json(&e))?;
                chat.validate()?;
                Ok(PeerMessage::Chat(chat))
            }
            _ => Ok(PeerMessage::Unknown { kind }),
        }
    }
}

impl Chat<'_> {
    /// Checks the id and text rules.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        validate_id(&self.id)?;
        if self.ts > MAX_TS {
            return Err(ProtocolError::BadField {
                field: "ts",
                reason: "must be at most 8640000000000000 (the last time a date can show)",
            });
        }
        if self.text.is_empty() {
            return Err(ProtocolError::BadField {
                field: "text",
                reason: "must not be empty",
            });
        }
        if self.text.len() > MAX_TEXT_BYTES {
            return Err(ProtocolError::BadField {
                field: "text",
                reason: "must be at most 16384 bytes of UTF-8",
            });
        }
        Ok(())
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Tagged {
            v: ENVELOPE_VERSION,
            kind: "chat",
            body: self,
        })
        .unwrap_or_else(|_| String::from("{}"))
    }
}

/// Checks an envelope id: 1 to 64 characters of `A-Z a-z 0-9 - _`.
pub fn validate_id(id: &str) -> Result<(), ProtocolError> {
    if id.is_empty()
        || id.len() > MAX_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ProtocolError::BadField {
            field: "id",
            reason: "must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_round_trip() {
        let chat = Chat {
            id: "abc".into(),
            ts: 5,
            text: "hi \"there\"".into(),
        };
        let json = chat.to_json();
        assert_eq!(
            json,
            r#"{"v":1,"type":"chat","id":"abc","ts":5,"text":"hi \"there\""}"#
        );
        assert_eq!(PeerMessage::parse(&json).unwrap(), PeerMessage::Chat(chat));
    }

    #[test]
    fn unknown_types_are_ignorable() {
        let msg = PeerMessage::parse(r#"{"v":2,"type":"typing","id":"x"}"#).unwrap();
        assert!(matches!(msg, PeerMessage::Unknown { .. }));
    }
}
