//! Messages between peers over their RTCDataChannel (label `chat`).
//!
//! Each data-channel message is one JSON object, an *envelope*, with an
//! envelope version `v` and a `type`:
//!
//! * `chat`: a message its author sends to each member directly;
//! * `ack`: "I hold all your messages up to this sequence number";
//! * `sync`: "here is what I hold; send me what I lack" (on channel open);
//! * `history`: a batch of messages answering a `sync`;
//! * `typing`: the sender is typing.
//!
//! A receiver ignores envelopes whose `type` it does not know and fields it
//! does not know, so that later versions can add either.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{MAX_TEXT_BYTES, ProtocolError, validate_nick};

/// The envelope version written by this implementation.
pub const ENVELOPE_VERSION: u32 = 1;

/// Longest message id or author id, in characters.
pub const MAX_ID_LEN: usize = 64;

/// Latest timestamp, in ms since the epoch: the last instant a JavaScript
/// `Date` can hold.
pub const MAX_TS: u64 = 8_640_000_000_000_000;

/// Largest sequence number or Lamport clock: the largest integer a
/// JavaScript number holds exactly (2^53 - 1).
pub const MAX_COUNTER: u64 = (1 << 53) - 1;

/// How far another member's word may move a receiver's Lamport clock, or
/// its own sequence numbers, past what it knows itself (2^30): no real room
/// sends a billion messages, and without a bound a forged `chat`, `sync` or
/// `history` could push a counter to [`MAX_COUNTER`] and stop it there.
pub const MAX_JUMP: u64 = 1 << 30;

/// Most messages in one `history` envelope.
pub const MAX_HISTORY_BATCH: usize = 1000;

/// Most authors in one `sync` envelope.
pub const MAX_SYNC_AUTHORS: usize = 1024;

/// A data-channel envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage<'a> {
    /// A chat message, from the author of the link it arrived on.
    Chat(Chat<'a>),
    /// The sender holds every message of ours with a sequence number up to
    /// `upto`.
    Ack {
        /// The highest sequence number up to which the sender holds all of
        /// our messages.
        upto: u64,
    },
    /// What the sender holds, per author; answer with a `history`.
    Sync(Sync<'a>),
    /// Messages the sender holds, answering a `sync`.
    History(Vec<Record<'a>>),
    /// The sender is typing.
    Typing,
    /// An envelope of a type this implementation does not know; ignore it.
    Unknown {
        /// The envelope's `type`.
        kind: Cow<'a, str>,
    },
}

/// A chat message:
/// `{"v":1,"type":"chat","id":…,"seq":…,"clock":…,"ts":…,"text":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat<'a> {
    /// A unique id chosen by the author: 1 to 64 characters of
    /// `A-Z a-z 0-9 - _`.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The author's sequence number for it: 1 for the author's first
    /// message in the room, then 2, 3, … without gaps.
    pub seq: u64,
    /// The author's Lamport clock when sending it: one more than the
    /// greatest clock the author had seen.
    pub clock: u64,
    /// When the author sent it, in milliseconds since the Unix epoch, by the
    /// author's clock.
    pub ts: u64,
    /// The text: 1 to [`MAX_TEXT_BYTES`] bytes of UTF-8.
    #[serde(borrow)]
    pub text: Cow<'a, str>,
}

/// A message inside a `history` envelope: a chat message with its author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<'a> {
    /// The author's peer id.
    #[serde(borrow)]
    pub author: Cow<'a, str>,
    /// The author's nickname when they sent it.
    #[serde(borrow)]
    pub nick: Cow<'a, str>,
    /// As in [`Chat`].
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// As in [`Chat`].
    pub seq: u64,
    /// As in [`Chat`].
    pub clock: u64,
    /// As in [`Chat`].
    pub ts: u64,
    /// As in [`Chat`].
    #[serde(borrow)]
    pub text: Cow<'a, str>,
}

/// A `sync`: for each author, the highest sequence number up to which the
/// sender holds all of that author's messages.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sync<'a> {
    /// Author peer id → sequence number.
    #[serde(borrow)]
    pub have: BTreeMap<Cow<'a, str>, u64>,
}

#[derive(Serialize)]
struct Tagged<'a, T> {
    v: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

fn tagged<T: Serialize>(kind: &'static str, body: &T) -> String {
    serde_json::to_string(&Tagged {
        v: ENVELOPE_VERSION,
        kind,
        body,
    })
    .unwrap_or_else(|_| String::from("{}"))
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(default)]
    v: Option<u64>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AckBody {
    upto: u64,
}

#[derive(Deserialize)]
struct HistoryBody<'a> {
    #[serde(borrow)]
    messages: Vec<Record<'a>>,
}

#[derive(Serialize)]
struct HistoryOut<'a, 'b> {
    messages: &'b [Record<'a>],
}

fn json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ProtocolError> {
    serde_json::from_str(text).map_err(|e| ProtocolError::from_json(&e))
}

impl<'a> PeerMessage<'a> {
    /// Parses and validates an envelope.
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        // serde would read a JSON array as a struct, field by field.
        if !text.trim_start().starts_with('{') {
            json::<serde::de::IgnoredAny>(text)?;
            return Err(ProtocolError::BadMessage(
                "an envelope must be a JSON object".into(),
            ));
        }
        let header: Header<'a> = json(text)?;
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
                let chat: Chat<'a> = json(text)?;
                chat.validate()?;
                Ok(PeerMessage::Chat(chat))
            }
            "ack" => {
                let ack: AckBody = json(text)?;
                check_counter("upto", ack.upto, 0)?;
                Ok(PeerMessage::Ack { upto: ack.upto })
            }
            "sync" => {
                let sync: Sync<'a> = json(text)?;
                sync.validate()?;
                Ok(PeerMessage::Sync(sync))
            }
            "history" => {
                let body: HistoryBody<'a> = json(text)?;
                if body.messages.len() > MAX_HISTORY_BATCH {
                    return Err(ProtocolError::BadField {
                        field: "messages",
                        reason: "must hold at most 1000 messages",
                    });
                }
                for record in &body.messages {
                    record.validate()?;
                }
                Ok(PeerMessage::History(body.messages))
            }
            "typing" => Ok(PeerMessage::Typing),
            _ => Ok(PeerMessage::Unknown { kind }),
        }
    }
}

fn check_counter(field: &'static str, n: u64, min: u64) -> Result<(), ProtocolError> {
    if n < min || n > MAX_COUNTER {
        return Err(ProtocolError::BadField {
            field,
            reason: if min == 0 {
                "must be an integer from 0 to 9007199254740991"
            } else {
                "must be an integer from 1 to 9007199254740991"
            },
        });
    }
    Ok(())
}

fn check_message(id: &str, seq: u64, clock: u64, ts: u64, text: &str) -> Result<(), ProtocolError> {
    validate_id(id)?;
    check_counter("seq", seq, 1)?;
    check_counter("clock", clock, 1)?;
    if ts > MAX_TS {
        return Err(ProtocolError::BadField {
            field: "ts",
            reason: "must be at most 8640000000000000 (the last time a date can show)",
        });
    }
    if text.is_empty() {
        return Err(ProtocolError::BadField {
            field: "text",
            reason: "must not be empty",
        });
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(ProtocolError::TooLong {
            field: "text",
            max: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

impl Chat<'_> {
    /// Checks the id, counters, time and text rules.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        check_message(&self.id, self.seq, self.clock, self.ts, &self.text)
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> String {
        tagged("chat", self)
    }
}

impl<'a> Record<'a> {
    /// Checks the author, nickname and message rules.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        validate_author(&self.author)?;
        validate_nick(&self.nick).map_err(|_| ProtocolError::BadField {
            field: "nick",
            reason: "must follow the nickname rules",
        })?;
        check_message(&self.id, self.seq, self.clock, self.ts, &self.text)
    }

    /// The chat message by `author`/`nick` that arrived as `chat`.
    pub fn from_chat(author: &'a str, nick: &'a str, chat: Chat<'a>) -> Self {
        Self {
            author: Cow::Borrowed(author),
            nick: Cow::Borrowed(nick),
            id: chat.id,
            seq: chat.seq,
            clock: chat.clock,
            ts: chat.ts,
            text: chat.text,
        }
    }

    /// The record as the `chat` envelope its author sends.
    pub fn chat(&self) -> Chat<'_> {
        Chat {
            id: Cow::Borrowed(&self.id),
            seq: self.seq,
            clock: self.clock,
            ts: self.ts,
            text: Cow::Borrowed(&self.text),
        }
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> Record<'static> {
        Record {
            author: Cow::Owned(self.author.into_owned()),
            nick: Cow::Owned(self.nick.into_owned()),
            id: Cow::Owned(self.id.into_owned()),
            seq: self.seq,
            clock: self.clock,
            ts: self.ts,
            text: Cow::Owned(self.text.into_owned()),
        }
    }
}

impl Sync<'_> {
    /// Checks the authors and counters.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.have.len() > MAX_SYNC_AUTHORS {
            return Err(ProtocolError::BadField {
                field: "have",
                reason: "must name at most 1024 authors",
            });
        }
        for (author, &upto) in &self.have {
            validate_author(author)?;
            check_counter("have", upto, 0)?;
        }
        Ok(())
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> String {
        tagged("sync", self)
    }
}

/// An `ack` envelope as JSON text.
pub fn ack_json(upto: u64) -> String {
    #[derive(Serialize)]
    struct Body {
        upto: u64,
    }
    tagged("ack", &Body { upto })
}

/// A `history` envelope as JSON text.
pub fn history_json(messages: &[Record<'_>]) -> String {
    tagged("history", &HistoryOut { messages })
}

/// A `typing` envelope as JSON text.
pub fn typing_json() -> String {
    #[derive(Serialize)]
    struct Body {}
    tagged("typing", &Body {})
}

/// Checks an author's peer id: 1 to 64 characters of `A-Z a-z 0-9 - _`.
pub fn validate_author(author: &str) -> Result<(), ProtocolError> {
    if !is_id(author) {
        return Err(ProtocolError::BadField {
            field: "author",
            reason: "must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
        });
    }
    Ok(())
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a message id: 1 to 64 characters of `A-Z a-z 0-9 - _`.
pub fn validate_id(id: &str) -> Result<(), ProtocolError> {
    if !is_id(id) {
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
            seq: 1,
            clock: 3,
            ts: 5,
            text: "hi \"there\"".into(),
        };
        let json = chat.to_json();
        assert_eq!(
            json,
            r#"{"v":1,"type":"chat","id":"abc","seq":1,"clock":3,"ts":5,"text":"hi \"there\""}"#
        );
        assert_eq!(PeerMessage::parse(&json).unwrap(), PeerMessage::Chat(chat));
    }

    #[test]
    fn history_round_trip() {
        let record = Record {
            author: "a1".into(),
            nick: "alice".into(),
            id: "m".into(),
            seq: 2,
            clock: 7,
            ts: 9,
            text: "x".into(),
        };
        let json = history_json(std::slice::from_ref(&record));
        assert_eq!(
            PeerMessage::parse(&json).unwrap(),
            PeerMessage::History(vec![record])
        );
        let sync = Sync {
            have: [(Cow::Borrowed("a1"), 4)].into_iter().collect(),
        };
        assert_eq!(
            PeerMessage::parse(&sync.to_json()).unwrap(),
            PeerMessage::Sync(sync)
        );
        assert_eq!(
            PeerMessage::parse(&ack_json(3)).unwrap(),
            PeerMessage::Ack { upto: 3 }
        );
        assert_eq!(
            PeerMessage::parse(&typing_json()).unwrap(),
            PeerMessage::Typing
        );
    }

    #[test]
    fn unknown_types_are_ignorable() {
        let msg = PeerMessage::parse(r#"{"v":2,"type":"reaction","id":"x"}"#).unwrap();
        assert!(matches!(msg, PeerMessage::Unknown { .. }));
    }
}
