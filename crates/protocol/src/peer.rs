//! Messages between peers over their RTCDataChannel (label `chat`).
//!
//! Each data-channel message is one JSON object, an *envelope*, with an
//! envelope version `v` and a `type`:
//!
//! * `chat`: a message its author sends to each member directly;
//! * `ack`: "I hold all your messages up to this sequence number";
//! * `sync`: "here is what I hold; send me what I lack" (on channel open);
//! * `history`: a batch of messages answering a `sync`;
//! * `typing`: the sender is typing;
//! * `file` (version 2): a file offer, a log entry like `chat`;
//! * `private` (version 2): an envelope of the private conversation between
//!   the two ends of the channel, wrapped;
//! * `reply`, `edit`, `delete`, `react`, `unreact`, `room_name` (version 2):
//!   log entries like `chat` that answer, change or react to an earlier
//!   entry (named by its author and number in `re`), or name the room
//!   ([`EntryKind`]).
//!
//! A receiver ignores envelopes whose `type` it does not know and fields it
//! does not know, so that later versions can add either; an unknown
//! envelope that carries a log entry's `id`, `seq`, `clock` and `ts` counts
//! as a received entry of a kind it does not know.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::file::FileMeta;
use crate::{MAX_TEXT_BYTES, ProtocolError, validate_nick};

/// The envelope version written by this implementation.
pub const ENVELOPE_VERSION: u32 = 2;

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

/// Longest reaction (an emoji), in bytes of UTF-8.
pub const MAX_REACTION_BYTES: usize = 32;

/// Longest room name, in bytes of UTF-8.
pub const MAX_ROOM_NAME_BYTES: usize = 256;

/// The kind of a log entry. Each travels live as an envelope whose `type`
/// is its name, and in a `history` record with `"kind":NAME` (a record
/// without `kind` is a chat message).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A chat message: `text`.
    #[default]
    Chat,
    /// A file offer: `file`.
    File,
    /// A chat message answering entry `re`: `text`, `re`.
    Reply,
    /// The new text of the author's own message `re`: `text`, `re`.
    Edit,
    /// The author's own message `re` is deleted for everyone: `re`.
    Delete,
    /// The author reacts to entry `re` with the emoji `text`.
    React,
    /// The author takes back its reaction `text` to entry `re`.
    Unreact,
    /// The room's name is now `text` (empty: the room has no name).
    RoomName,
}

impl EntryKind {
    /// Its name on the wire (the `type` of its envelope, the `kind` of its
    /// record, the KIND it is signed under).
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Chat => "chat",
            EntryKind::File => "file",
            EntryKind::Reply => "reply",
            EntryKind::Edit => "edit",
            EntryKind::Delete => "delete",
            EntryKind::React => "react",
            EntryKind::Unreact => "unreact",
            EntryKind::RoomName => "room_name",
        }
    }

    /// The kind named `name`, if this implementation knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "chat" => EntryKind::Chat,
            "file" => EntryKind::File,
            "reply" => EntryKind::Reply,
            "edit" => EntryKind::Edit,
            "delete" => EntryKind::Delete,
            "react" => EntryKind::React,
            "unreact" => EntryKind::Unreact,
            "room_name" => EntryKind::RoomName,
            _ => return None,
        })
    }

    /// Whether entries of this kind name another entry in `re`.
    pub fn has_target(self) -> bool {
        matches!(
            self,
            EntryKind::Reply
                | EntryKind::Edit
                | EntryKind::Delete
                | EntryKind::React
                | EntryKind::Unreact
        )
    }

    /// Whether entries of this kind are shown as messages of their own
    /// (chat messages, replies, file offers); the others change what is
    /// shown.
    pub fn is_shown(self) -> bool {
        matches!(self, EntryKind::Chat | EntryKind::Reply | EntryKind::File)
    }
}

/// The entry another entry answers, changes or reacts to: its author and
/// the author's number for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryRef {
    /// The author's peer id.
    pub author: String,
    /// The author's number for it.
    pub seq: u64,
}

/// A data-channel envelope.
// A chat entry is by far the largest variant and by far the most common
// one; an envelope is parsed, handled and dropped at once, so boxing it
// would only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage<'a> {
    /// A log entry (a chat message or a file offer), from the author of the
    /// link it arrived on.
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
    /// An envelope of the private conversation between the two ends of the
    /// channel: the inner envelope, as JSON text.
    Private(String),
    /// An envelope of a type this implementation does not know: ignore it,
    /// unless it is a log entry (`seq` is set), which counts as received.
    Unknown {
        /// The envelope's `type`.
        kind: Cow<'a, str>,
        /// The author's number for it, when it carries a log entry's `id`,
        /// `seq`, `clock` and `ts`.
        seq: Option<u64>,
    },
}

/// A log entry as its author sends it: a chat message
/// `{"v":2,"type":"chat","id":…,"seq":…,"clock":…,"ts":…,"text":…,"sig":…}`, or a
/// file offer `{"v":2,"type":"file","id":…,"seq":…,"clock":…,"ts":…,"file":{…},"sig":…}`
/// (then `text` is empty and `file` is set).
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
    /// The text: 1 to [`MAX_TEXT_BYTES`] bytes of UTF-8 (empty in a file
    /// offer).
    #[serde(borrow, default, skip_serializing_if = "str::is_empty")]
    pub text: Cow<'a, str>,
    /// The offer, in a file offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileMeta>,
    /// The entry it answers, changes or reacts to (kinds with a target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<EntryRef>,
    /// The author's signature (protocol version 2), base64url: checked by
    /// the message log, against the author's identity key.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<Cow<'a, str>>,
    /// Its kind (the envelope's `type`); a file offer's is
    /// [`EntryKind::File`] whatever this says.
    #[serde(skip)]
    pub kind: EntryKind,
}

/// A message inside a `history` envelope: a log entry with its author. On
/// the wire a file offer says `"kind":"file"`; a chat message has no `kind`
/// (or `"kind":"chat"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
    #[serde(borrow, default)]
    pub text: Cow<'a, str>,
    /// As in [`Chat`].
    #[serde(default)]
    pub file: Option<FileMeta>,
    /// The algorithm of the author's identity key (`ed25519`, `p256`).
    #[serde(borrow, default)]
    pub alg: Option<Cow<'a, str>>,
    /// The author's identity key, base64url.
    #[serde(borrow, default)]
    pub key: Option<Cow<'a, str>>,
    /// As in [`Chat`].
    #[serde(borrow, default)]
    pub sig: Option<Cow<'a, str>>,
    /// As in [`Chat`].
    #[serde(default)]
    pub re: Option<EntryRef>,
    /// As in [`Chat`].
    #[serde(default)]
    pub kind: EntryKind,
}

/// How a [`Record`] is written: `kind` only for entries other than chat
/// messages, `text` for the kinds that have one (not for an empty room
/// name), the offer, the target, then the author's key and signature.
#[derive(Serialize)]
struct RecordOut<'r> {
    author: &'r str,
    nick: &'r str,
    id: &'r str,
    seq: u64,
    clock: u64,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'r FileMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    re: Option<&'r EntryRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alg: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sig: Option<&'r str>,
}

impl Serialize for Record<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RecordOut {
            author: &self.author,
            nick: &self.nick,
            id: &self.id,
            seq: self.seq,
            clock: self.clock,
            ts: self.ts,
            kind: (self.entry_kind() != EntryKind::Chat).then(|| self.entry_kind().name()),
            text: has_text(self.entry_kind(), &self.text).then_some(&*self.text),
            file: self.file.as_ref(),
            re: self.re.as_ref(),
            alg: self.alg.as_deref(),
            key: self.key.as_deref(),
            sig: self.sig.as_deref(),
        }
        .serialize(serializer)
    }
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

#[derive(Serialize)]
struct HistoryOut<'a, 'b> {
    messages: &'b [Record<'a>],
}

impl PeerMessage<'_> {
    /// Parses and validates an envelope (see [`read`] for what JSON means
    /// here).
    pub fn parse(text: &str) -> Result<PeerMessage<'static>, ProtocolError> {
        let obj = read(text)?;
        let kind = header(&obj)?;
        Ok(match kind.as_str() {
            "chat" => PeerMessage::Chat(chat_fields(&obj)?),
            "file" => PeerMessage::Chat(file_fields(&obj)?),
            kind @ ("reply" | "edit" | "delete" | "react" | "unreact" | "room_name") => {
                PeerMessage::Chat(kind_fields(&obj, kind)?)
            }
            "private" => match obj.get("body") {
                Some(body @ Value::Object(_)) => PeerMessage::Private(body.to_string()),
                Some(_) => return Err(bad("body", "must be an object")),
                None => return Err(ProtocolError::MissingField("body")),
            },
            "ack" => PeerMessage::Ack {
                upto: counter(&obj, "upto", 0)?,
            },
            "sync" => {
                let have = match obj.get("have") {
                    Some(Value::Object(have)) => have,
                    Some(_) => return Err(bad("have", "must be an object")),
                    None => return Err(ProtocolError::MissingField("have")),
                };
                if have.len() > MAX_SYNC_AUTHORS {
                    return Err(bad("have", "must name at most 1024 authors"));
                }
                let mut out = BTreeMap::new();
                for (author, upto) in have {
                    validate_author(author)?;
                    let upto = integer(upto).ok_or_else(|| bad("have", COUNTER_FROM_0))?;
                    check_counter("have", upto, 0)?;
                    out.insert(Cow::Owned(author.clone()), upto);
                }
                PeerMessage::Sync(Sync { have: out })
            }
            "history" => {
                let mut messages = Vec::new();
                for entry in history_entries(&obj)? {
                    messages.push(entry?);
                }
                PeerMessage::History(messages)
            }
            "typing" => PeerMessage::Typing,
            _ => PeerMessage::Unknown {
                seq: unknown_entry(&obj),
                kind: Cow::Owned(kind),
            },
        })
    }
}

/// A message that breaks a rule but names its author and number: not to be
/// shown, yet received (acknowledged, never asked for again), so that it
/// cannot hold back the author's later messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flawed {
    /// The author's peer id; `None` in a `chat` (its author is the peer at
    /// the other end of the channel).
    pub author: Option<String>,
    /// The author's number for it.
    pub seq: u64,
    /// The rule it breaks.
    pub error: ProtocolError,
}

/// What can still be read of a `chat` or `history` envelope that
/// [`PeerMessage::parse`] refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Salvaged {
    /// A `chat` that names its number.
    Chat(Flawed),
    /// A `history`'s messages in order, the valid ones and the [`Flawed`]
    /// ones (messages that name no valid author and number are left out).
    History(Vec<Result<Record<'static>, Flawed>>),
}

/// What can still be read of an envelope that [`PeerMessage::parse`]
/// refuses: `None` for envelopes other than `chat` and `history`, a `chat`
/// without a valid `seq`, or an envelope whose outer shape is wrong (not
/// JSON, no `v`, `messages` not a list, …).
pub fn salvage(text: &str) -> Option<Salvaged> {
    let obj = read(text).ok()?;
    match header(&obj).ok()?.as_str() {
        kind @ ("chat" | "file" | "reply" | "edit" | "delete" | "react" | "unreact"
        | "room_name") => {
            let error = kind_fields(&obj, kind).err()?;
            let seq = counter(&obj, "seq", 1).ok()?;
            Some(Salvaged::Chat(Flawed {
                author: None,
                seq,
                error,
            }))
        }
        "history" => {
            let entries = history_entries(&obj).ok()?;
            let entries = entries
                .into_iter()
                .zip(history_items(&obj))
                .filter_map(|(entry, item)| match entry {
                    Ok(record) => Some(Ok(record)),
                    Err(error) => {
                        let item = item.as_object()?;
                        let author = item.get("author")?.as_str()?;
                        validate_author(author).ok()?;
                        let seq = counter(item, "seq", 1).ok()?;
                        Some(Err(Flawed {
                            author: Some(author.to_owned()),
                            seq,
                            error,
                        }))
                    }
                })
                .collect();
            Some(Salvaged::History(entries))
        }
        _ => None,
    }
}

const COUNTER_FROM_0: &str = "must be an integer from 0 to 9007199254740991";
const COUNTER_FROM_1: &str = "must be an integer from 1 to 9007199254740991";

fn bad(field: &'static str, reason: &'static str) -> ProtocolError {
    ProtocolError::BadField { field, reason }
}

/// Reads an envelope's JSON object. What JSON means here:
///
/// * a number is worth its value as an IEEE 754 double, as JavaScript's
///   `JSON.parse` reads it: an integer field takes `1`, `1.0` or `1e0`
///   alike, not `1.5`;
/// * a string is Unicode text: an escaped surrogate that is not half of a
///   pair reads as U+FFFD, as when JavaScript encodes it;
/// * a member name given twice counts once, with its last value.
fn read(text: &str) -> Result<Map<String, Value>, ProtocolError> {
    match serde_json::from_str(&well_formed(text)) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(ProtocolError::BadMessage(
            "an envelope must be a JSON object".into(),
        )),
        Err(err) => Err(ProtocolError::from_json(&err)),
    }
}

/// Checks `v` and returns `type`.
fn header(obj: &Map<String, Value>) -> Result<String, ProtocolError> {
    match obj.get("v") {
        None => return Err(ProtocolError::MissingField("v")),
        Some(v) if integer(v).is_some_and(|v| v >= 1) => {}
        Some(_) => return Err(bad("v", "must be 1 or more")),
    }
    match obj.get("type") {
        Some(Value::String(kind)) => Ok(kind.clone()),
        Some(_) => Err(bad("type", "must be a string")),
        None => Err(ProtocolError::MissingField("type")),
    }
}

/// `text` with every escaped lone surrogate (a `\ud800` not followed by the
/// escape of its low half, or a lone `\udc00`) written `\ufffd`: JSON
/// allows them, Unicode strings cannot hold them, and JavaScript writes
/// each as U+FFFD when it encodes a string.
fn well_formed(text: &str) -> Cow<'_, str> {
    if !text.contains("\\u") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let unit = |at: usize| {
        let hex = bytes.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let escape_at = |at: usize| bytes.get(at) == Some(&b'\\') && bytes.get(at + 1) == Some(&b'u');
    let mut out = String::new();
    let (mut i, mut copied) = (0, 0);
    // A backslash only ever starts an escape (valid JSON has none outside
    // strings); each escape is `\` and one character, or `\u` and four hex
    // digits.
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(u) = escape_at(i).then(|| unit(i + 2)).flatten() else {
            i += 2;
            continue;
        };
        let high = (0xd800..0xdc00).contains(&u);
        let low = (0xdc00..0xe000).contains(&u);
        if high && escape_at(i + 6) && unit(i + 8).is_some_and(|n| (0xdc00..0xe000).contains(&n)) {
            i += 12;
        } else if high || low {
            out.push_str(&text[copied..i]);
            out.push_str("\\ufffd");
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// An integer by the value of a JSON number, as JavaScript reads it: `1`,
/// `1.0` and `1e0` are 1; `1.5`, negative numbers and numbers past 2^53 − 1
/// written with a fraction or exponent are none.
pub fn integer(value: &Value) -> Option<u64> {
    let Value::Number(n) = value else { return None };
    if let Some(n) = n.as_u64() {
        return Some(n);
    }
    let f = n.as_f64()?;
    // Whole, and small enough to be exact.
    (f.fract() == 0.0 && (0.0..=MAX_COUNTER as f64).contains(&f)).then_some(f as u64)
}

/// A field that must hold an integer (of any size: the range is checked
/// apart).
fn number(obj: &Map<String, Value>, field: &'static str) -> Result<u64, ProtocolError> {
    let n = obj.get(field).ok_or(ProtocolError::MissingField(field))?;
    integer(n).ok_or_else(|| bad(field, "must be an integer"))
}

fn counter(obj: &Map<String, Value>, field: &'static str, min: u64) -> Result<u64, ProtocolError> {
    let n = number(obj, field)?;
    check_counter(field, n, min)?;
    Ok(n)
}

fn check_counter(field: &'static str, n: u64, min: u64) -> Result<(), ProtocolError> {
    if n < min || n > MAX_COUNTER {
        return Err(bad(
            field,
            if min == 0 {
                COUNTER_FROM_0
            } else {
                COUNTER_FROM_1
            },
        ));
    }
    Ok(())
}

/// A field that may be left out, but is a string if given (`null` counts
/// as left out).
fn optional_string(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Cow<'static, str>>, ProtocolError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(Some(Cow::Owned(s.clone()))),
        Some(Value::Null) | None => Ok(None),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

fn string<'v>(obj: &'v Map<String, Value>, field: &'static str) -> Result<&'v str, ProtocolError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(field, "must be a string")),
        None => Err(ProtocolError::MissingField(field)),
    }
}

/// Whether an entry of `kind` writes its `text`: all but file offers and
/// deletions, and an empty room name leaves it out.
fn has_text(kind: EntryKind, text: &str) -> bool {
    match kind {
        EntryKind::File | EntryKind::Delete => false,
        EntryKind::RoomName => !text.is_empty(),
        _ => true,
    }
}

/// Checks the fields of a log entry: its numbers, then its kind's fields
/// (a chat message's text, a file offer, a target, a reaction, a room
/// name).
fn check_entry(entry: &Chat<'_>) -> Result<(), ProtocolError> {
    let (id, seq, clock, ts) = (&*entry.id, entry.seq, entry.clock, entry.ts);
    let (kind, text) = (entry.entry_kind(), &*entry.text);
    let (file, re) = (entry.file.as_ref(), entry.re.as_ref());
    if kind == EntryKind::File || file.is_some() {
        if re.is_some() {
            return Err(bad("re", "is only for entries about another one"));
        }
        return check_message(id, seq, clock, ts, text, file);
    }
    match (kind.has_target(), re) {
        (true, None) => return Err(ProtocolError::MissingField("re")),
        (false, Some(_)) => return Err(bad("re", "is only for entries about another one")),
        (true, Some(re)) => {
            validate_author(&re.author).map_err(|_| bad("re", RE_RULE))?;
            check_counter("re", re.seq, 1).map_err(|_| bad("re", RE_RULE))?;
        }
        (false, None) => {}
    }
    match kind {
        EntryKind::Chat | EntryKind::Reply | EntryKind::Edit | EntryKind::File => {
            check_message(id, seq, clock, ts, text, None)
        }
        EntryKind::Delete => {
            if !text.is_empty() {
                return Err(bad("text", "must be left out of a deletion"));
            }
            check_message(id, seq, clock, ts, "-", None)
        }
        EntryKind::React | EntryKind::Unreact => {
            if text.trim().is_empty()
                || text.len() > MAX_REACTION_BYTES
                || text.chars().any(char::is_control)
            {
                return Err(bad(
                    "text",
                    "must be a reaction: 1 to 32 bytes, not only white space, no control characters",
                ));
            }
            check_message(id, seq, clock, ts, text, None)
        }
        EntryKind::RoomName => {
            if text.len() > MAX_ROOM_NAME_BYTES || text.chars().any(char::is_control) {
                return Err(bad(
                    "text",
                    "must be a room name: at most 256 bytes, no control characters",
                ));
            }
            check_message(id, seq, clock, ts, "-", None)
        }
    }
}

const RE_RULE: &str = "must name an entry: {\"author\": a peer id, \"seq\": 1 to 9007199254740991}";

/// Checks the fields of a log entry: a chat message's text, or a file
/// offer.
fn check_message(
    id: &str,
    seq: u64,
    clock: u64,
    ts: u64,
    text: &str,
    file: Option<&FileMeta>,
) -> Result<(), ProtocolError> {
    validate_id(id)?;
    check_counter("seq", seq, 1)?;
    check_counter("clock", clock, 1)?;
    if ts > MAX_TS {
        return Err(bad(
            "ts",
            "must be at most 8640000000000000 (the last time a date can show)",
        ));
    }
    if let Some(file) = file {
        return file.validate();
    }
    if text.is_empty() {
        return Err(bad("text", "must not be empty"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(ProtocolError::TooLong {
            field: "text",
            max: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

/// The fields every log entry has: `id`, `seq`, `clock`, `ts` (their
/// ranges are checked with the rest, in [`check_message`]).
fn entry_fields(obj: &Map<String, Value>) -> Result<(&str, u64, u64, u64), ProtocolError> {
    Ok((
        string(obj, "id")?,
        number(obj, "seq")?,
        number(obj, "clock")?,
        number(obj, "ts")?,
    ))
}

/// The fields of a `chat`, checked.
fn chat_fields(obj: &Map<String, Value>) -> Result<Chat<'static>, ProtocolError> {
    let (id, seq, clock, ts) = entry_fields(obj)?;
    let text = string(obj, "text")?;
    check_message(id, seq, clock, ts, text, None)?;
    Ok(Chat {
        id: Cow::Owned(id.to_owned()),
        seq,
        clock,
        ts,
        text: Cow::Owned(text.to_owned()),
        file: None,
        re: None,
        sig: optional_string(obj, "sig")?,
        kind: EntryKind::Chat,
    })
}

/// The fields of a `file` entry, checked.
fn file_fields(obj: &Map<String, Value>) -> Result<Chat<'static>, ProtocolError> {
    let (id, seq, clock, ts) = entry_fields(obj)?;
    let file = FileMeta::from_value(obj.get("file").ok_or(ProtocolError::MissingField("file"))?)?;
    check_message(id, seq, clock, ts, "", Some(&file))?;
    Ok(Chat {
        id: Cow::Owned(id.to_owned()),
        seq,
        clock,
        ts,
        text: Cow::Borrowed(""),
        file: Some(file),
        re: None,
        sig: optional_string(obj, "sig")?,
        kind: EntryKind::File,
    })
}

/// The fields of an entry of `kind` (one of those [`EntryKind::from_name`]
/// knows), checked.
fn kind_fields(obj: &Map<String, Value>, kind: &str) -> Result<Chat<'static>, ProtocolError> {
    let kind = EntryKind::from_name(kind).unwrap_or_default();
    match kind {
        EntryKind::Chat => return chat_fields(obj),
        EntryKind::File => return file_fields(obj),
        _ => {}
    }
    let (id, seq, clock, ts) = entry_fields(obj)?;
    let text = match kind {
        EntryKind::Delete => match obj.get("text") {
            None => "",
            Some(_) => return Err(bad("text", "must be left out of a deletion")),
        },
        EntryKind::RoomName => match obj.get("text") {
            None => "",
            Some(_) => string(obj, "text")?,
        },
        _ => string(obj, "text")?,
    };
    let re = match obj.get("re") {
        None | Some(Value::Null) => None,
        Some(Value::Object(re)) => {
            let author = match re.get("author") {
                Some(Value::String(author)) => author.clone(),
                _ => return Err(bad("re", RE_RULE)),
            };
            let seq = re
                .get("seq")
                .and_then(integer)
                .ok_or_else(|| bad("re", RE_RULE))?;
            Some(EntryRef { author, seq })
        }
        Some(_) => return Err(bad("re", RE_RULE)),
    };
    let entry = Chat {
        id: Cow::Owned(id.to_owned()),
        seq,
        clock,
        ts,
        text: Cow::Owned(text.to_owned()),
        file: None,
        re,
        sig: optional_string(obj, "sig")?,
        kind,
    };
    check_entry(&entry)?;
    Ok(entry)
}

/// The number of a log entry of a kind this implementation does not know:
/// an envelope with a valid `id`, `seq`, `clock` and `ts`.
fn unknown_entry(obj: &Map<String, Value>) -> Option<u64> {
    validate_id(string(obj, "id").ok()?).ok()?;
    let seq = counter(obj, "seq", 1).ok()?;
    counter(obj, "clock", 1).ok()?;
    (number(obj, "ts").ok()? <= MAX_TS).then_some(seq)
}

fn history_items(obj: &Map<String, Value>) -> &[Value] {
    match obj.get("messages") {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// The messages of a `history`, each checked.
fn history_entries(
    obj: &Map<String, Value>,
) -> Result<Vec<Result<Record<'static>, ProtocolError>>, ProtocolError> {
    match obj.get("messages") {
        Some(Value::Array(items)) if items.len() > MAX_HISTORY_BATCH => {
            Err(bad("messages", "must hold at most 1000 messages"))
        }
        Some(Value::Array(items)) => Ok(items.iter().map(record).collect()),
        Some(_) => Err(bad("messages", "must be a list")),
        None => Err(ProtocolError::MissingField("messages")),
    }
}

fn record(value: &Value) -> Result<Record<'static>, ProtocolError> {
    let Value::Object(obj) = value else {
        return Err(bad("messages", "must hold objects"));
    };
    let author = string(obj, "author")?;
    validate_author(author)?;
    let nick = string(obj, "nick")?;
    validate_nick(nick).map_err(|_| bad("nick", "must follow the nickname rules"))?;
    let fields = match obj.get("kind") {
        None | Some(Value::Null) => chat_fields(obj)?,
        Some(Value::String(kind)) if EntryKind::from_name(kind).is_some() => {
            kind_fields(obj, kind)?
        }
        Some(_) => {
            return Err(bad(
                "kind",
                "names a kind of entry this client does not know",
            ));
        }
    };
    let mut record = Record::from_chat(author, nick, fields).into_owned();
    record.alg = optional_string(obj, "alg")?;
    record.key = optional_string(obj, "key")?;
    Ok(record)
}

impl Chat<'_> {
    /// Checks the id, counters, time and its kind's rules (text, offer,
    /// target).
    pub fn validate(&self) -> Result<(), ProtocolError> {
        check_entry(self)
    }

    /// Its kind: [`EntryKind::File`] for an offer, else [`Chat::kind`].
    pub fn entry_kind(&self) -> EntryKind {
        if self.file.is_some() {
            EntryKind::File
        } else {
            self.kind
        }
    }

    /// The envelope as JSON text: its `type` is its kind.
    pub fn to_json(&self) -> String {
        tagged(self.entry_kind().name(), self)
    }
}

impl<'a> Record<'a> {
    /// Checks the author, nickname and message rules.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        validate_author(&self.author)?;
        validate_nick(&self.nick).map_err(|_| bad("nick", "must follow the nickname rules"))?;
        self.chat().validate()
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
            file: chat.file,
            alg: None,
            key: None,
            sig: chat.sig,
            re: chat.re,
            kind: chat.kind,
        }
    }

    /// Its kind: [`EntryKind::File`] for an offer, else [`Record::kind`].
    pub fn entry_kind(&self) -> EntryKind {
        if self.file.is_some() {
            EntryKind::File
        } else {
            self.kind
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
            file: self.file.clone(),
            re: self.re.clone(),
            sig: self.sig.as_deref().map(Cow::Borrowed),
            kind: self.entry_kind(),
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
            file: self.file,
            alg: self.alg.map(|a| Cow::Owned(a.into_owned())),
            key: self.key.map(|k| Cow::Owned(k.into_owned())),
            sig: self.sig.map(|s| Cow::Owned(s.into_owned())),
            re: self.re,
            kind: self.kind,
        }
    }
}

impl Sync<'_> {
    /// Checks the authors and counters.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.have.len() > MAX_SYNC_AUTHORS {
            return Err(bad("have", "must name at most 1024 authors"));
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

/// A `private` envelope wrapping `inner`, the JSON text of an envelope of
/// the private conversation (as [`Chat::to_json`], [`ack_json`], … write
/// them).
pub fn private_json(inner: &str) -> String {
    format!("{{\"v\":{ENVELOPE_VERSION},\"type\":\"private\",\"body\":{inner}}}")
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
            file: None,
            re: None,
            sig: Some("c2ln".into()),
            kind: EntryKind::Chat,
        };
        let json = chat.to_json();
        assert_eq!(
            json,
            r#"{"v":2,"type":"chat","id":"abc","seq":1,"clock":3,"ts":5,"text":"hi \"there\"","sig":"c2ln"}"#
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
            file: None,
            alg: Some("ed25519".into()),
            key: Some("a2V5".into()),
            sig: Some("c2ln".into()),
            re: None,
            kind: EntryKind::Chat,
        };
        let json = history_json(std::slice::from_ref(&record));
        assert!(
            json.ends_with(r#""text":"x","alg":"ed25519","key":"a2V5","sig":"c2ln"}]}"#),
            "{json}"
        );
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
