//! A room's message log as one member holds it, as a sans-IO state machine.
//!
//! [`History`] takes what happens (this member sends a message, an envelope
//! arrives from a peer, a peer's data channel opens, this member types) with
//! the current time in milliseconds, and answers with [`Effect`]s: messages
//! to show, envelopes to send, acknowledgements and typing notices to
//! display. It never touches a socket or a clock, so the web client's
//! `history.js` and this crate are checked against the same JSON scenarios
//! (`tests/vectors/history.json`) and cannot drift apart.
//!
//! What it guarantees:
//!
//! * **One copy of each message.** A message is identified by its author and
//!   the author's sequence number; a second copy, live or from history, is
//!   dropped.
//! * **One order everywhere.** Messages are ordered by Lamport clock, then
//!   author, then sequence number. Each member's clock moves past every clock
//!   it sees, so a reply always sorts after what it answers, and members that
//!   hold the same messages show them in the same order.
//! * **Nothing lost to a closed channel.** When a channel opens, both sides
//!   send a `sync` naming what they hold and answer the other's with the
//!   messages it lacks, so a message sent while a peer was away reaches it
//!   when it is back, and a newcomer gets the recent conversation from
//!   everyone present.
//! * **Bounded.** At most [`Config::capacity`] messages are kept (the
//!   oldest go first); a peer's `sync` is answered at most once per
//!   [`Config::sync_interval_ms`], afresh on each new channel; history
//!   answers are split into envelopes of at most [`Config::batch_bytes`].
//! * **Signed.** Every message carries its author's signature (protocol
//!   version 2). The log asks its caller to check signatures
//!   ([`Effect::Verify`], answered with [`History::verified`]): the
//!   browser's WebCrypto is asynchronous, and the log does no I/O. It
//!   checks a message against its author's key as confirmed by the
//!   author's own hello ([`History::key_confirmed`]) or kept from earlier;
//!   a relayed message whose author's key is not known yet is checked with
//!   the key it carries and kept marked "relayed by X, not yet verified"
//!   until the author's hello confirms that key (another key removes it as
//!   forged). A message whose signature does not verify, or that claims to
//!   be ours without our signature, is refused: never kept, never passed
//!   on, never counted as received.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use peerchat_e2e::{Context, IdentityKey, KIND_CHAT, PublicKey, SignedMessage, base64url};
use peerchat_protocol::file::FileMeta;
use peerchat_protocol::peer::{
    self, MAX_COUNTER, MAX_HISTORY_BATCH, MAX_JUMP, MAX_SYNC_AUTHORS, PeerMessage, Record,
    Salvaged, Sync,
};
pub use peerchat_protocol::peer::{EntryKind, EntryRef};
use peerchat_protocol::{MAX_TEXT_BYTES, ProtocolError};
use serde::{Deserialize, Serialize};

/// An entry of the log: a chat message, a file offer (`file` is set and
/// `text` is empty), or an entry of another [`EntryKind`] (a reply, an
/// edit, a deletion, a reaction, a room name: `kind` says which, `re`
/// names the entry it is about, `text` holds the reply's or the edit's
/// text, the reaction or the room name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The author's peer id.
    pub author: String,
    /// The author's nickname when they sent it.
    pub nick: String,
    /// The author's id for it.
    pub id: String,
    /// The author's sequence number for it (1, 2, 3, …).
    pub seq: u64,
    /// The author's Lamport clock when sending it.
    pub clock: u64,
    /// When it was sent, in ms since the Unix epoch, by the author's clock.
    pub ts: u64,
    /// The text (empty in a file offer).
    pub text: String,
    /// The offer, in a file offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<FileMeta>>,
    /// Its kind: [`EntryKind::Chat`] for chat messages (and file offers,
    /// which have `file`; [`Message::entry_kind`] says [`EntryKind::File`]).
    #[serde(default, skip_serializing_if = "is_plain")]
    pub kind: EntryKind,
    /// The entry it answers, changes or reacts to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<EntryRef>,
    /// The algorithm of the author's identity key (`ed25519`, `p256`);
    /// empty for a message kept from before messages were signed.
    #[serde(default)]
    pub alg: String,
    /// The author's identity key, base64url.
    #[serde(default)]
    pub key: String,
    /// The author's signature, base64url; empty for a message kept from
    /// before messages were signed (such a message is never passed on).
    #[serde(default)]
    pub sig: String,
    /// Relayed by this member, and its author's key not confirmed by the
    /// author's own hello yet: "relayed by X, not yet verified".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayed_by: Option<String>,
}

fn is_plain(kind: &EntryKind) -> bool {
    matches!(kind, EntryKind::Chat | EntryKind::File)
}

impl Message {
    /// Its kind: [`EntryKind::File`] for a file offer, else `kind`.
    pub fn entry_kind(&self) -> EntryKind {
        if self.file.is_some() {
            EntryKind::File
        } else {
            self.kind
        }
    }

    /// Where it sorts: by clock, then author, then sequence number.
    pub fn key(&self) -> Key {
        Key {
            clock: self.clock,
            author: self.author.clone(),
            seq: self.seq,
        }
    }

    fn record(&self) -> Record<'_> {
        fn some(s: &str) -> Option<Cow<'_, str>> {
            (!s.is_empty()).then_some(Cow::Borrowed(s))
        }
        Record {
            author: Cow::Borrowed(&self.author),
            nick: Cow::Borrowed(&self.nick),
            id: Cow::Borrowed(&self.id),
            seq: self.seq,
            clock: self.clock,
            ts: self.ts,
            text: Cow::Borrowed(&self.text),
            file: self.file.as_deref().cloned(),
            alg: some(&self.alg),
            key: some(&self.key),
            sig: some(&self.sig),
            re: self.re.clone(),
            kind: self.entry_kind(),
        }
    }

    fn from_record(record: Record<'_>) -> Self {
        let owned = |s: Option<Cow<'_, str>>| s.map(Cow::into_owned).unwrap_or_default();
        Self {
            author: record.author.into_owned(),
            nick: record.nick.into_owned(),
            id: record.id.into_owned(),
            seq: record.seq,
            clock: record.clock,
            ts: record.ts,
            text: record.text.into_owned(),
            kind: match record.kind {
                EntryKind::File => EntryKind::Chat,
                kind => kind,
            },
            re: record.re,
            file: record.file.map(Box::new),
            alg: owned(record.alg),
            key: owned(record.key),
            sig: owned(record.sig),
            relayed_by: None,
        }
    }

    /// The bytes its author signs, in `context`: a chat message's kind is
    /// `chat` and its body the text; a file offer's kind is `file` and its
    /// body [`file_body`]; other kinds' are [`entry_body`].
    pub fn signed_bytes(&self, context: &Context) -> Option<Vec<u8>> {
        self.signed_bytes_to(context, None)
    }

    /// The bytes its author signs, in `context`, for an entry of a private
    /// conversation with recipient `to` (the other party): its kind is
    /// `private` and its body `TO`, the kind and the body it would have in
    /// the room, one a line ([`KIND_PRIVATE`]); with `to` `None`, as
    /// [`Message::signed_bytes`].
    pub fn signed_bytes_to(&self, context: &Context, to: Option<&str>) -> Option<Vec<u8>> {
        let (kind, body) = match (&self.file, self.kind) {
            (Some(file), _) => (KIND_FILE, Cow::Owned(file_body(file))),
            (None, EntryKind::Chat) => (KIND_CHAT, Cow::Borrowed(self.text.as_str())),
            (None, kind) => (
                kind.name(),
                Cow::Owned(entry_body(kind, self.re.as_ref(), &self.text)?),
            ),
        };
        let (kind, body) = match to {
            Some(to) => (KIND_PRIVATE, Cow::Owned(format!("{to}\n{kind}\n{body}"))),
            None => (kind, body),
        };
        SignedMessage {
            context,
            author: &self.author,
            nick: &self.nick,
            seq: self.seq,
            clock: self.clock,
            ts: self.ts,
            id: &self.id,
            kind,
            body: &body,
        }
        .signed_bytes()
        .ok()
    }
}

/// The kind a file offer is signed under.
pub const KIND_FILE: &str = "file";

/// The kind an entry of a private conversation is signed under, so that it
/// cannot be passed off as one in the room's log or in a conversation with
/// someone else.
pub const KIND_PRIVATE: &str = "private";

/// The body a file offer is signed with: its id, size, media type, piece
/// size, SHA-256 and root (in lower-case hex), and name, one a line, the
/// name last (it may hold any character).
pub fn file_body(file: &FileMeta) -> String {
    use peerchat_protocol::file::hex;
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}",
        file.fid,
        file.size,
        file.mime,
        file.piece,
        hex(&file.sha256),
        hex(&file.root),
        file.name
    )
}

/// The body an entry of a kind other than `chat` and `file` is signed
/// with: for kinds with a target, the target's author and number, then
/// (but for a deletion) the text, one a line; for a room name, the name.
/// `None` for a kind with a target and none given.
pub fn entry_body(kind: EntryKind, re: Option<&EntryRef>, text: &str) -> Option<String> {
    if !kind.has_target() {
        return Some(text.to_owned());
    }
    let re = re?;
    Some(if kind == EntryKind::Delete {
        format!("{}\n{}", re.author, re.seq)
    } else {
        format!("{}\n{}\n{}", re.author, re.seq, text)
    })
}

/// What an entry shown in the log looks like now, after the entries about
/// it ([`History::entry_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EntryState {
    /// The text to show: the last edit's, if it was edited (`None` if not,
    /// or if it is deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether its author edited it.
    pub edited: bool,
    /// Whether its author deleted it for everyone: show a tombstone.
    pub deleted: bool,
    /// Its reactions, each emoji once, in the order each was first given
    /// (none for a deleted entry).
    pub reactions: Vec<Reaction>,
}

/// One emoji given to an entry, and who gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reaction {
    /// The emoji.
    pub emoji: String,
    /// Who gave it (peer id and nickname), in the order they did.
    pub by: Vec<(String, String)>,
}

/// The room's name, as the last `room_name` entry in the log's order set
/// it ([`History::room_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomName {
    /// The name; empty when it was cleared.
    pub text: String,
    /// Who set it (peer id).
    pub author: String,
    /// Their nickname then.
    pub nick: String,
}

/// A message's place in the order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The Lamport clock.
    pub clock: u64,
    /// The author's peer id.
    pub author: String,
    /// The author's sequence number.
    pub seq: u64,
}

/// Limits of a [`History`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most messages kept; the oldest (by order) are dropped first.
    pub capacity: usize,
    /// Largest `history` envelope sent, in bytes (about; one message of the
    /// largest size always fits).
    pub batch_bytes: usize,
    /// A peer's `sync` is answered at most once in this many milliseconds
    /// (afresh on each new channel to it).
    pub sync_interval_ms: u64,
    /// How long a typing notice shows, in ms.
    pub typing_ttl_ms: u64,
    /// Least time between two typing notices sent, in ms.
    pub typing_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            capacity: 1000,
            batch_bytes: 60 * 1024,
            sync_interval_ms: 2000,
            typing_ttl_ms: 6000,
            typing_interval_ms: 3000,
        }
    }
}

/// What the caller must do after an event.
// Most effects are messages added: boxing them would cost an allocation
// each to save bytes on the rarer others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A message new to this member: show it at its place in the order
    /// ([`History::position`]) and store it.
    Added(Message),
    /// Send `text` over the data channel to peer `to`, if its channel is
    /// open (otherwise drop it: the next `sync` makes up for it).
    Send {
        /// The peer.
        to: String,
        /// The envelope.
        text: String,
    },
    /// `by` now holds all of our messages up to `upto`: delivery states
    /// changed.
    Acked {
        /// The member.
        by: String,
        /// Their new acknowledgement.
        upto: u64,
    },
    /// A message of `author`'s broke a rule: it is not shown, but counts as
    /// received (it is acknowledged like the others).
    Refused {
        /// The author.
        author: String,
        /// The author's number for it.
        seq: u64,
    },
    /// `author` is typing.
    Typing {
        /// The member.
        author: String,
    },
    /// Check these signatures, and hand the results to
    /// [`History::verified`]: what arrived waits until then.
    Verify(Check),
    /// A message attributed to `author`, from `by` (the author itself on a
    /// live chat, or the member relaying it), was refused: its signature
    /// does not verify. Nothing was kept; tell the user.
    Forged {
        /// Whom it claimed as its author.
        author: String,
        /// Its number.
        seq: u64,
        /// Who sent it to us.
        by: String,
    },
    /// A message kept as "relayed, not yet verified" is verified now: its
    /// author's own hello confirmed the key it was signed with.
    Confirmed {
        /// The author.
        author: String,
        /// The number.
        seq: u64,
    },
    /// A message kept as "relayed, not yet verified" was signed with
    /// another key than its author's, as the author's own hello showed: it
    /// was forged, and is removed (from the screen and the device too).
    Removed {
        /// Whom it claimed as its author.
        author: String,
        /// Its number.
        seq: u64,
        /// Who relayed it.
        by: String,
    },
}

/// Signatures to check ([`Effect::Verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Names the check in [`History::verified`].
    pub id: u64,
    /// One per signature, in order.
    pub items: Vec<CheckItem>,
}

/// One signature to check: `sig` by the key (`alg`, `key`) over `bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// The key's algorithm (`ed25519`, `p256`).
    pub alg: String,
    /// The key, base64url.
    pub key: String,
    /// The signed bytes.
    pub bytes: Vec<u8>,
    /// The signature, base64url.
    pub sig: String,
}

impl CheckItem {
    /// Checks it (where signatures can be checked at once, as in Rust).
    pub fn verify(&self) -> bool {
        let Ok(key) = PublicKey::from_wire(&self.alg, &self.key) else {
            return false;
        };
        base64url::decode(&self.sig).is_some_and(|sig| key.verify(&self.bytes, &sig).is_ok())
    }
}

/// A message of ours, numbered and ready to be signed
/// ([`History::draft`], then [`History::commit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The message, without its signature.
    pub message: Message,
    /// The bytes to sign.
    pub bytes: Vec<u8>,
}

/// Bytes of messages waiting for their signatures to be checked; more are
/// refused (`busy`) until the checks come back.
pub const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

/// What waits for a [`Check`].
#[derive(Debug, Clone)]
struct Pending {
    from: String,
    entries: Vec<Pend>,
    bytes: usize,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Pend {
    /// A message whose signature is item `usize` of the check.
    Check(Message, usize),
    /// A message that breaks a rule, sent by its author: counts as
    /// received.
    Flawed(String, u64),
    /// A message refused before any check (no key, no signature).
    Forged(String, u64),
}

/// Who has one of our messages, and who not yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Members who acknowledged it.
    pub acked: Vec<String>,
    /// Members in the room when it was sent who have not.
    pub waiting: Vec<String>,
}

/// Why a message cannot be sent: from [`History::send`] and
/// [`check_text`], and from a client that sends through a log (the native
/// engine), which adds [`SendError::Stopped`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The text is empty or only white space.
    #[error("the message is empty")]
    Empty,
    /// The text is over [`MAX_TEXT_BYTES`].
    #[error(
        "this message is {size} bytes; messages may be at most {} KiB ({MAX_TEXT_BYTES} bytes)",
        MAX_TEXT_BYTES / 1024
    )]
    TooLarge {
        /// Its size in bytes of UTF-8.
        size: usize,
    },
    /// The message would break a protocol rule (a bad id or nickname).
    #[error(transparent)]
    Invalid(#[from] ProtocolError),
    /// Whoever keeps the log has stopped (a client that left the room): the
    /// log itself never says this.
    #[error("not connected to the room")]
    Stopped,
    /// The log has no identity key to sign with ([`History::with_identity`]).
    #[error("no identity key to sign the message with")]
    Unsigned,
    /// Another message of ours was numbered since the draft: draft again.
    #[error("the message's number was taken meanwhile; draft it again")]
    Stale,
    /// Only a message's author can edit or delete it.
    #[error("only its author can edit or delete a message")]
    NotYours,
}

/// Whether `text` can be sent as a message: not empty nor only white space
/// (Unicode `White_Space`), and at most [`MAX_TEXT_BYTES`] bytes of UTF-8.
pub fn check_text(text: &str) -> Result<(), SendError> {
    if text.trim().is_empty() {
        return Err(SendError::Empty);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(SendError::TooLarge { size: text.len() });
    }
    Ok(())
}

/// What is saved of a [`History`] and given back to [`History::restore`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The messages, in any order.
    pub messages: Vec<Message>,
    /// For each of our messages (by sequence number), the members it was
    /// meant for.
    pub recipients: Vec<(u64, Vec<String>)>,
    /// Each member's acknowledgement of our messages.
    pub acks: Vec<(String, u64)>,
    /// Messages with a clock up to this one were cleared and stay away.
    #[serde(default)]
    pub cleared: u64,
}

/// One member's log of a room.
#[derive(Debug, Clone)]
pub struct History {
    me: String,
    config: Config,
    clock: u64,
    last_seq: u64,
    /// The highest sequence number we used ourselves (in a message we sent,
    /// or one kept in our storage); others may move `last_seq` at most
    /// [`MAX_JUMP`] past it.
    own_seq: u64,
    /// The clock of our newest message (sent or kept), or our clear mark;
    /// others may move `clock` at most [`MAX_JUMP`] past it.
    own_clock: u64,
    log: BTreeMap<Key, Message>,
    /// (author, seq) → clock, for the messages in `log`.
    index: HashMap<(String, u64), u64>,
    /// Per author: every message with a sequence number up to this one has
    /// been seen (it is in the log or was dropped as too old).
    floor: HashMap<String, u64>,
    acks: HashMap<String, u64>,
    recipients: BTreeMap<u64, Vec<String>>,
    /// Per peer, when its `sync` was last answered on its current channel.
    answered: HashMap<String, u64>,
    typing: HashMap<String, u64>,
    typing_sent: Option<u64>,
    /// Messages with a clock up to this one were cleared by this member.
    cleared: u64,
    /// What signatures are bound to.
    context: Context,
    /// Our own identity key (`alg`, `key`), once known.
    own_key: Option<(String, String)>,
    /// Authors' keys as their own hellos confirmed them (or as kept from
    /// earlier), by author.
    keys: HashMap<String, (String, String)>,
    /// Checks asked for and not answered yet.
    pending: BTreeMap<u64, Pending>,
    pending_bytes: usize,
    next_check: u64,
    /// In a private conversation, the other party: only its entries and
    /// ours are taken.
    party: Option<String>,
    /// For each entry named in another's `re` (by author and number), the
    /// entries in `log` about it.
    refs: HashMap<(String, u64), BTreeSet<Key>>,
    /// The `room_name` entries in `log`.
    names: BTreeSet<Key>,
}

impl History {
    /// An empty log for the member with peer id `me` (in the `code`
    /// context, with no identity key until [`History::with_identity`]).
    pub fn new(me: impl Into<String>, config: Config) -> Self {
        Self {
            me: me.into(),
            config,
            clock: 0,
            last_seq: 0,
            own_seq: 0,
            own_clock: 0,
            log: BTreeMap::new(),
            index: HashMap::new(),
            floor: HashMap::new(),
            acks: HashMap::new(),
            recipients: BTreeMap::new(),
            answered: HashMap::new(),
            typing: HashMap::new(),
            typing_sent: None,
            cleared: 0,
            context: Context::Code,
            own_key: None,
            keys: HashMap::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            next_check: 1,
            party: None,
            refs: HashMap::new(),
            names: BTreeSet::new(),
        }
    }

    /// The log of a member signing with `own_key` in `context` (a room, a
    /// pairing): what its messages and the signatures it checks are bound
    /// to.
    pub fn with_identity(mut self, context: Context, own_key: &PublicKey) -> Self {
        self.context = context;
        let key = (own_key.alg().name().to_owned(), own_key.key_b64());
        self.keys.insert(self.me.clone(), key.clone());
        self.own_key = Some(key);
        self
    }

    /// The context signatures are bound to.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// An empty log of the private conversation between `me` and `peer`:
    /// it takes only entries authored by one of the two, whoever relays
    /// them.
    pub fn between(me: impl Into<String>, peer: impl Into<String>, config: Config) -> Self {
        Self {
            party: Some(peer.into()),
            ..Self::new(me, config)
        }
    }

    /// The bytes `message`'s author signs in this log: bound to its
    /// recipient in a private conversation.
    fn signed_bytes(&self, message: &Message) -> Option<Vec<u8>> {
        let to = self.party.as_deref().map(|party| {
            if message.author == self.me {
                party
            } else {
                self.me.as_str()
            }
        });
        message.signed_bytes_to(&self.context, to)
    }

    /// The other party, in the log of a private conversation.
    pub fn party(&self) -> Option<&str> {
        self.party.as_deref()
    }

    /// Whether `author`'s entries belong in this log: any member's in a
    /// room, only the two parties' in a private conversation.
    fn admits(&self, author: &str) -> bool {
        self.party
            .as_deref()
            .is_none_or(|party| author == party || author == self.me)
    }

    /// This member's peer id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The limits.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The messages, in order.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = &Message> + ExactSizeIterator {
        self.log.values()
    }

    /// How many messages are kept.
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether no message is kept.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// The message by `author` with number `seq`, if kept.
    pub fn get(&self, author: &str, seq: u64) -> Option<&Message> {
        let clock = *self.index.get(&(author.to_owned(), seq))?;
        self.log.get(&Key {
            clock,
            author: author.to_owned(),
            seq,
        })
    }

    /// The index of `key` in [`History::messages`], if kept.
    pub fn position(&self, key: &Key) -> Option<usize> {
        self.log
            .contains_key(key)
            .then(|| self.log.range(..key).count())
    }

    /// The Lamport clock.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Our last sequence number.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Numbers a message we are about to send and says what to sign: sign
    /// [`Draft::bytes`] with our identity key and hand the signature to
    /// [`History::commit`] (nothing is recorded before).
    pub fn draft(&self, id: &str, nick: &str, text: &str, ts: u64) -> Result<Draft, SendError> {
        check_text(text)?;
        self.draft_entry(id, nick, text, None, ts)
    }

    /// Numbers a file offer we are about to make and says what to sign, as
    /// [`History::draft`] does for a message.
    pub fn draft_file(
        &self,
        id: &str,
        nick: &str,
        file: FileMeta,
        ts: u64,
    ) -> Result<Draft, SendError> {
        self.draft_entry(id, nick, "", Some(file), ts)
    }

    /// Numbers an entry of `kind` we are about to add (a reply, an edit,
    /// a deletion, a reaction or its withdrawal, about entry `re`; a room
    /// name) and says what to sign, as [`History::draft`] does for a
    /// message. `text` is the reply's or edit's text (not blank), the
    /// reaction, or the room name (empty clears it; white space around it
    /// is trimmed); a deletion has none. Only our own messages can be
    /// edited or deleted ([`SendError::NotYours`]).
    pub fn draft_about(
        &self,
        id: &str,
        nick: &str,
        kind: EntryKind,
        text: &str,
        re: Option<EntryRef>,
        ts: u64,
    ) -> Result<Draft, SendError> {
        let text = match kind {
            EntryKind::Chat | EntryKind::Reply | EntryKind::Edit => {
                check_text(text)?;
                text
            }
            EntryKind::RoomName => text.trim(),
            _ => text,
        };
        if matches!(kind, EntryKind::Edit | EntryKind::Delete)
            && re.as_ref().is_some_and(|re| re.author != self.me)
        {
            return Err(SendError::NotYours);
        }
        let mut message = self.numbered(id, nick, text, None, ts)?;
        message.kind = kind;
        message.re = re;
        self.signed(message)
    }

    fn draft_entry(
        &self,
        id: &str,
        nick: &str,
        text: &str,
        file: Option<FileMeta>,
        ts: u64,
    ) -> Result<Draft, SendError> {
        self.signed(self.numbered(id, nick, text, file, ts)?)
    }

    /// Our next entry, without its kind, target or signature.
    fn numbered(
        &self,
        id: &str,
        nick: &str,
        text: &str,
        file: Option<FileMeta>,
        ts: u64,
    ) -> Result<Message, SendError> {
        let (alg, key) = self.own_key.clone().ok_or(SendError::Unsigned)?;
        Ok(Message {
            author: self.me.clone(),
            nick: nick.to_owned(),
            id: id.to_owned(),
            seq: (self.last_seq + 1).min(MAX_COUNTER),
            clock: (self.clock + 1).min(MAX_COUNTER),
            ts: ts.min(peer::MAX_TS),
            text: text.to_owned(),
            file: file.map(Box::new),
            kind: EntryKind::Chat,
            re: None,
            alg,
            key,
            sig: String::new(),
            relayed_by: None,
        })
    }

    /// A draft of `message`, checked.
    fn signed(&self, message: Message) -> Result<Draft, SendError> {
        message.record().validate()?;
        let bytes = self.signed_bytes(&message).ok_or(SendError::Unsigned)?;
        Ok(Draft { message, bytes })
    }

    /// Records a message (or file offer) we send, drafted with
    /// [`History::draft`] (or [`History::draft_file`]) and signed (`sig`,
    /// base64url), meant for `recipients` (the other members in the room
    /// now), and returns it with its envelope: send that to every peer
    /// whose channel is up. Peers whose channel is not up get it from the
    /// `sync` when it is. A draft whose number another message took
    /// meanwhile is [`SendError::Stale`].
    pub fn commit(
        &mut self,
        draft: Draft,
        sig: &str,
        recipients: Vec<String>,
    ) -> Result<(Message, String), SendError> {
        let mut message = draft.message;
        if message.seq != (self.last_seq + 1).min(MAX_COUNTER) {
            return Err(SendError::Stale);
        }
        message.sig = sig.to_owned();
        let envelope = message.record().chat().to_json();
        self.typing_sent = None;
        let mut recipients = recipients;
        recipients.retain(|r| r != &self.me);
        recipients.sort();
        recipients.dedup();
        self.recipients.insert(message.seq, recipients);
        self.own_seq = self.own_seq.max(message.seq);
        self.own_clock = self.own_clock.max(message.clock);
        self.insert(message.clone());
        Ok((message, envelope))
    }

    /// [`History::draft_file`], signed with `identity`, then
    /// [`History::commit`]: where signing takes no waiting (Rust).
    pub fn send_file(
        &mut self,
        identity: &IdentityKey,
        id: &str,
        nick: &str,
        file: FileMeta,
        ts: u64,
        recipients: Vec<String>,
    ) -> Result<(Message, String), SendError> {
        self.sign_with(identity);
        let draft = self.draft_file(id, nick, file, ts)?;
        let sig = base64url::encode(&identity.sign(&draft.bytes));
        self.commit(draft, &sig, recipients)
    }

    /// [`History::draft_about`], signed with `identity`, then
    /// [`History::commit`]: where signing takes no waiting (Rust).
    #[allow(clippy::too_many_arguments)]
    pub fn send_about(
        &mut self,
        identity: &IdentityKey,
        id: &str,
        nick: &str,
        kind: EntryKind,
        text: &str,
        re: Option<EntryRef>,
        ts: u64,
        recipients: Vec<String>,
    ) -> Result<(Message, String), SendError> {
        self.sign_with(identity);
        let draft = self.draft_about(id, nick, kind, text, re, ts)?;
        let sig = base64url::encode(&identity.sign(&draft.bytes));
        self.commit(draft, &sig, recipients)
    }

    /// What entry `author`/`seq` looks like now, after the entries about
    /// it kept in the log, in the log's order: its author's last edit
    /// gives its text (a file offer cannot be edited), its author's
    /// deletion makes it a tombstone (for good: later edits change
    /// nothing, reactions are dropped), and each member's last reaction or
    /// withdrawal per emoji says whether that member gives it. Entries
    /// about it by anyone else than its author cannot edit or delete it,
    /// and entries not verified yet ("relayed by X") change nothing until
    /// they are.
    pub fn entry_state(&self, author: &str, seq: u64) -> EntryState {
        let mut state = EntryState::default();
        let Some(keys) = self.refs.get(&(author.to_owned(), seq)) else {
            return state;
        };
        let editable = self
            .get(author, seq)
            .is_none_or(|m| m.entry_kind() != EntryKind::File);
        // (emoji, giver) → given, in the order first seen.
        let mut given: Vec<(String, String, String, bool)> = Vec::new();
        for key in keys {
            let Some(m) = self.log.get(key) else { continue };
            if m.relayed_by.is_some() {
                continue;
            }
            match m.kind {
                EntryKind::Edit if m.author == author && editable && !state.deleted => {
                    state.text = Some(m.text.clone());
                    state.edited = true;
                }
                EntryKind::Delete if m.author == author => state.deleted = true,
                EntryKind::React | EntryKind::Unreact => {
                    let on = m.kind == EntryKind::React;
                    match given
                        .iter_mut()
                        .find(|(e, a, _, _)| *e == m.text && *a == m.author)
                    {
                        Some(entry) => {
                            entry.2.clone_from(&m.nick);
                            entry.3 = on;
                        }
                        None => given.push((m.text.clone(), m.author.clone(), m.nick.clone(), on)),
                    }
                }
                _ => {}
            }
        }
        if state.deleted {
            state.text = None;
            state.edited = false;
            return state;
        }
        for (emoji, giver, nick, on) in given {
            let at = state.reactions.iter().position(|r| r.emoji == emoji);
            let reaction = match at {
                Some(at) => &mut state.reactions[at],
                None => {
                    state.reactions.push(Reaction {
                        emoji,
                        by: Vec::new(),
                    });
                    let last = state.reactions.len() - 1;
                    &mut state.reactions[last]
                }
            };
            if on {
                reaction.by.push((giver, nick));
            }
        }
        state.reactions.retain(|r| !r.by.is_empty());
        state
    }

    /// The room's name: the text of the last `room_name` entry kept, in
    /// the log's order, that is verified (empty if it cleared the name);
    /// `None` if there is none.
    pub fn room_name(&self) -> Option<RoomName> {
        self.names
            .iter()
            .rev()
            .filter_map(|key| self.log.get(key))
            .find(|m| m.relayed_by.is_none())
            .map(|m| RoomName {
                text: m.text.clone(),
                author: m.author.clone(),
                nick: m.nick.clone(),
            })
    }

    /// Notes `message` (now in the log under `key`) in the indexes of
    /// entries about others and of room names.
    fn index_about(&mut self, key: &Key, message: &Message) {
        if let Some(re) = &message.re {
            self.refs
                .entry((re.author.clone(), re.seq))
                .or_default()
                .insert(key.clone());
        }
        if message.kind == EntryKind::RoomName && message.file.is_none() {
            self.names.insert(key.clone());
        }
    }

    /// Takes `message` (no longer in the log) out of those indexes.
    fn unindex_about(&mut self, key: &Key, message: &Message) {
        if let Some(re) = &message.re {
            let target = (re.author.clone(), re.seq);
            if let Some(keys) = self.refs.get_mut(&target) {
                keys.remove(key);
                if keys.is_empty() {
                    self.refs.remove(&target);
                }
            }
        }
        self.names.remove(key);
    }

    /// Signs with `identity` from now on, if no key was set
    /// ([`History::with_identity`]).
    fn sign_with(&mut self, identity: &IdentityKey) {
        if self.own_key.is_none() {
            let public = identity.public_key();
            let key = (public.alg().name().to_owned(), public.key_b64());
            self.keys.insert(self.me.clone(), key.clone());
            self.own_key = Some(key);
        }
    }

    /// [`History::draft`], signed with `identity`, then
    /// [`History::commit`]: where signing takes no waiting (Rust).
    pub fn send(
        &mut self,
        identity: &IdentityKey,
        id: &str,
        nick: &str,
        text: &str,
        ts: u64,
        recipients: Vec<String>,
    ) -> Result<(Message, String), SendError> {
        self.sign_with(identity);
        let draft = self.draft(id, nick, text, ts)?;
        let sig = base64url::encode(&identity.sign(&draft.bytes));
        self.commit(draft, &sig, recipients)
    }

    /// A peer's channel opened: returns the `sync` to send it, and a
    /// `history` with our messages meant for it that it has not
    /// acknowledged.
    pub fn link_opened(&mut self, peer: &str) -> Vec<Effect> {
        self.answered.remove(peer);
        let mut out = vec![Effect::Send {
            to: peer.to_owned(),
            text: self.sync().to_json(),
        }];
        // Our messages meant for this peer and not acknowledged (sent
        // while its channel was not open) go at once, without waiting for
        // its sync: a round trip sooner.
        let acked = self.acked_by(peer);
        let unacked: Vec<&Message> = self
            .log
            .values()
            .filter(|m| {
                m.author == self.me
                    && !m.sig.is_empty()
                    && m.seq > acked
                    && self
                        .recipients
                        .get(&m.seq)
                        .is_some_and(|r| r.iter().any(|p| p == peer))
            })
            .collect();
        out.extend(self.batches(peer, unacked));
        out
    }

    /// A peer's channel closed.
    pub fn link_closed(&mut self, peer: &str) {
        self.answered.remove(peer);
        self.typing.remove(peer);
    }

    /// What we hold, per author.
    pub fn sync(&self) -> Sync<'static> {
        let mut have: BTreeMap<Cow<'static, str>, u64> = BTreeMap::new();
        if self.last_seq > 0 {
            have.insert(Cow::Owned(self.me.clone()), self.last_seq);
        }
        // Authors with messages in the log first: others only add repeats.
        let mut authors: Vec<(&String, &u64)> = self.floor.iter().collect();
        authors.sort();
        for (author, &upto) in authors {
            if have.len() >= MAX_SYNC_AUTHORS {
                break;
            }
            if upto > 0 && author != &self.me {
                have.insert(Cow::Owned(author.clone()), upto);
            }
        }
        Sync { have }
    }

    /// Handles an envelope `text` from peer `from` (nickname `nick`),
    /// arriving on its data channel at `now` (ms). Messages come back as an
    /// [`Effect::Verify`]: they are taken once their signatures are checked
    /// ([`History::verified`]).
    pub fn handle(
        &mut self,
        from: &str,
        nick: &str,
        text: &str,
        now: u64,
    ) -> Result<Vec<Effect>, ProtocolError> {
        let mut out = Vec::new();
        let message = match PeerMessage::parse(text) {
            Ok(message) => message,
            Err(err) => {
                // Messages that break a rule but name their author and
                // number count as received, so that they cannot hold the
                // author's later ones back: when they come from their
                // author (anyone else could name any author and number).
                match peer::salvage(text).ok_or(err)? {
                    Salvaged::Chat(flawed) => {
                        if from != self.me {
                            self.typing.remove(from);
                            self.take([Err((from.to_owned(), flawed.seq))], &mut out);
                        }
                    }
                    Salvaged::History(entries) => {
                        let entries = entries.into_iter().map(|entry| match entry {
                            Ok(record) => Ok(Message::from_record(record)),
                            Err(flawed) => Err((flawed.author.unwrap_or_default(), flawed.seq)),
                        });
                        self.check(from, entries.collect(), text.len(), &mut out)?;
                    }
                }
                return Ok(out);
            }
        };
        match message {
            PeerMessage::Chat(chat) => {
                if from == self.me {
                    return Ok(out);
                }
                let mut message = Message::from_record(Record::from_chat(from, nick, chat));
                // A live chat is signed with the key of the peer at the
                // other end, as its hello confirmed it.
                let (alg, key) = self.keys.get(from).cloned().unwrap_or_default();
                message.alg = alg;
                message.key = key;
                self.typing.remove(from);
                self.check(from, vec![Ok(message)], text.len(), &mut out)?;
            }
            PeerMessage::Ack { upto } => self.acked(from, upto, &mut out),
            PeerMessage::Sync(sync) => self.answer(from, &sync, now, &mut out),
            PeerMessage::History(records) => {
                let entries = records.into_iter().map(|r| Ok(Message::from_record(r)));
                self.check(from, entries.collect(), text.len(), &mut out)?;
            }
            PeerMessage::Typing => {
                if from != self.me {
                    self.typing.insert(
                        from.to_owned(),
                        now.saturating_add(self.config.typing_ttl_ms),
                    );
                    out.push(Effect::Typing {
                        author: from.to_owned(),
                    });
                }
            }
            // A log entry of a kind we do not know counts as received, so
            // that it cannot hold its author's later messages back.
            PeerMessage::Unknown { seq: Some(seq), .. } => {
                if from != self.me {
                    self.take([Err((from.to_owned(), seq))], &mut out);
                }
            }
            // Private envelopes belong to the conversation with `from`
            // ([`private::Conversations`]), never to the room's log.
            PeerMessage::Unknown { seq: None, .. } | PeerMessage::Private(_) => {}
        }
        Ok(out)
    }

    /// Asks for the signatures of messages from `from` to be checked (or,
    /// if there is nothing to check, takes them at once).
    fn check(
        &mut self,
        from: &str,
        entries: Vec<Result<Message, (String, u64)>>,
        bytes: usize,
        out: &mut Vec<Effect>,
    ) -> Result<(), ProtocolError> {
        let mut items = Vec::new();
        let mut pends = Vec::new();
        for entry in entries {
            // Entries that do not belong in this log are left out before
            // anything is checked (in a private conversation, a third
            // member's).
            let author = match &entry {
                Ok(message) => &message.author,
                Err((author, _)) => author,
            };
            if !self.admits(author) {
                continue;
            }
            let mut message = match entry {
                Err((author, seq)) => {
                    if author == from {
                        pends.push(Pend::Flawed(author, seq));
                    }
                    continue;
                }
                Ok(message) => message,
            };
            // The key it must verify with: ours for our own; the author's
            // as confirmed; or, relayed with its author's key not known
            // yet, the key it carries (and it is marked as such).
            let known = self.keys.get(&message.author).cloned();
            let key = match known {
                Some(key) => Some(key),
                None if message.author == self.me => None,
                None if message.author == from => None,
                None => {
                    message.relayed_by = Some(from.to_owned());
                    (!message.alg.is_empty() && !message.key.is_empty())
                        .then(|| (message.alg.clone(), message.key.clone()))
                }
            };
            let bytes = self.signed_bytes(&message);
            match (key, bytes) {
                (Some((alg, key)), Some(bytes)) if !message.sig.is_empty() => {
                    message.alg.clone_from(&alg);
                    message.key.clone_from(&key);
                    items.push(CheckItem {
                        alg,
                        key,
                        bytes,
                        sig: message.sig.clone(),
                    });
                    pends.push(Pend::Check(message, items.len() - 1));
                }
                _ => pends.push(Pend::Forged(message.author, message.seq)),
            }
        }
        if items.is_empty() {
            self.finish(from, pends, &[], out);
            return Ok(());
        }
        if self.pending_bytes.saturating_add(bytes) > MAX_PENDING_BYTES {
            return Err(ProtocolError::BadMessage(
                "too many messages are waiting for their signatures to be checked".into(),
            ));
        }
        let id = self.next_check;
        self.next_check += 1;
        self.pending_bytes += bytes;
        self.pending.insert(
            id,
            Pending {
                from: from.to_owned(),
                entries: pends,
                bytes,
            },
        );
        out.push(Effect::Verify(Check { id, items }));
        Ok(())
    }

    /// The signatures of check `id` were checked: `results` has one answer
    /// per item, in order (missing ones count as failed). Takes the
    /// messages that verified; the others are refused ([`Effect::Forged`]).
    pub fn verified(&mut self, id: u64, results: &[bool]) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Some(pending) = self.pending.remove(&id) {
            self.pending_bytes = self.pending_bytes.saturating_sub(pending.bytes);
            self.finish(&pending.from, pending.entries, results, &mut out);
        }
        out
    }

    /// How many checks are waiting for [`History::verified`].
    pub fn checks_waiting(&self) -> usize {
        self.pending.len()
    }

    fn finish(&mut self, from: &str, entries: Vec<Pend>, results: &[bool], out: &mut Vec<Effect>) {
        let mut taken = Vec::new();
        let forged = |author: String, seq: u64, out: &mut Vec<Effect>| {
            out.push(Effect::Forged {
                author,
                seq,
                by: from.to_owned(),
            });
        };
        for entry in entries {
            match entry {
                Pend::Check(mut message, i) => {
                    if !results.get(i).copied().unwrap_or(false) {
                        forged(message.author, message.seq, out);
                        continue;
                    }
                    // Its author's key may have been confirmed meanwhile.
                    if message.relayed_by.is_some() {
                        match self.keys.get(&message.author) {
                            Some((alg, key)) if *alg == message.alg && *key == message.key => {
                                message.relayed_by = None;
                            }
                            Some(_) => {
                                forged(message.author, message.seq, out);
                                continue;
                            }
                            None => {}
                        }
                    }
                    taken.push(Ok(message));
                }
                Pend::Flawed(author, seq) => taken.push(Err((author, seq))),
                Pend::Forged(author, seq) => forged(author, seq, out),
            }
        }
        self.take(taken, out);
    }

    /// `author`'s own hello verified with this key: messages of theirs kept
    /// as "relayed, not yet verified" are verified if they were signed with
    /// it ([`Effect::Confirmed`]), and removed as forged if not
    /// ([`Effect::Removed`]); later ones are checked against it.
    pub fn key_confirmed(&mut self, author: &str, key: &PublicKey) -> Vec<Effect> {
        let key = (key.alg().name().to_owned(), key.key_b64());
        self.keys.insert(author.to_owned(), key.clone());
        let marked: Vec<Key> = self
            .log
            .iter()
            .filter(|(_, m)| m.author == author && m.relayed_by.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        let mut lowest_removed = None;
        for k in marked {
            let Some(m) = self.log.get_mut(&k) else {
                continue;
            };
            if m.alg == key.0 && m.key == key.1 {
                m.relayed_by = None;
                out.push(Effect::Confirmed {
                    author: author.to_owned(),
                    seq: k.seq,
                });
            } else if let Some(m) = self.log.remove(&k) {
                self.index.remove(&(m.author.clone(), m.seq));
                self.unindex_about(&k, &m);
                lowest_removed = Some(lowest_removed.map_or(m.seq, |l: u64| l.min(m.seq)));
                out.push(Effect::Removed {
                    author: author.to_owned(),
                    seq: m.seq,
                    by: m.relayed_by.unwrap_or_default(),
                });
            }
        }
        if let Some(lowest) = lowest_removed {
            // The real messages with those numbers are still to come.
            let floor = self.floor_of(author).min(lowest - 1);
            self.floor.insert(author.to_owned(), floor);
            self.seen_to(author);
        }
        out
    }

    /// This member typed at `now`: returns the `typing` envelope to send to
    /// every open channel, unless one was sent less than
    /// [`Config::typing_interval_ms`] ago.
    pub fn typed(&mut self, now: u64) -> Option<String> {
        if let Some(sent) = self.typing_sent {
            if now < sent.saturating_add(self.config.typing_interval_ms) {
                return None;
            }
        }
        self.typing_sent = Some(now);
        Some(peer::typing_json())
    }

    /// The members typing at `now`, sorted.
    pub fn typing(&mut self, now: u64) -> Vec<String> {
        self.typing.retain(|_, until| *until > now);
        let mut authors: Vec<String> = self.typing.keys().cloned().collect();
        authors.sort();
        authors
    }

    /// When the earliest typing notice shown at `now` runs out.
    pub fn typing_deadline(&self, now: u64) -> Option<u64> {
        self.typing.values().copied().filter(|&t| t > now).min()
    }

    /// Up to which of our messages `member` has acknowledged.
    pub fn acked_by(&self, member: &str) -> u64 {
        self.acks.get(member).copied().unwrap_or(0)
    }

    /// Who has our message number `seq`.
    pub fn delivery(&self, seq: u64) -> Delivery {
        let mut delivery = Delivery::default();
        for member in self.recipients.get(&seq).into_iter().flatten() {
            if self.acks.get(member).is_some_and(|&upto| upto >= seq) {
                delivery.acked.push(member.clone());
            } else {
                delivery.waiting.push(member.clone());
            }
        }
        delivery
    }

    /// Everything worth saving.
    pub fn save(&self) -> Saved {
        Saved {
            messages: self.log.values().cloned().collect(),
            ..self.save_state()
        }
    }

    /// What [`History::save`] gives, without the messages: for saving
    /// after an acknowledgement.
    pub fn save_state(&self) -> Saved {
        let mut acks: Vec<(String, u64)> = self.acks.iter().map(|(m, &u)| (m.clone(), u)).collect();
        acks.sort();
        Saved {
            messages: Vec::new(),
            recipients: self
                .recipients
                .iter()
                .map(|(&seq, r)| (seq, r.clone()))
                .collect(),
            acks,
            cleared: self.cleared,
        }
    }

    /// Puts back what [`History::save`] gave (messages already known are
    /// skipped). Returns the messages added, in order.
    pub fn restore(&mut self, saved: Saved) -> Vec<Message> {
        self.cleared = self.cleared.max(saved.cleared);
        self.clock = self.clock.max(saved.cleared);
        let own = saved.messages.iter().filter(|m| m.author == self.me);
        self.own_clock = own
            .map(|m| m.clock)
            .fold(self.own_clock.max(saved.cleared), u64::max);
        let mut added = Vec::new();
        for message in saved.messages {
            // Keys of verified messages are known from earlier.
            if message.relayed_by.is_none() && !message.sig.is_empty() && message.author != self.me
            {
                self.keys
                    .entry(message.author.clone())
                    .or_insert_with(|| (message.alg.clone(), message.key.clone()));
            }
            if self.admits(&message.author)
                && message.record().validate().is_ok()
                && self.insert(message.clone())
            {
                added.push(message);
            }
        }
        for (seq, recipients) in saved.recipients {
            if self.get(&self.me.clone(), seq).is_some() {
                self.recipients.entry(seq).or_insert(recipients);
            }
        }
        for (member, upto) in saved.acks {
            let upto = upto.min(self.last_seq);
            let entry = self.acks.entry(member).or_insert(0);
            *entry = (*entry).max(upto);
        }
        self.own_seq = self.own_seq.max(self.last_seq);
        added.sort_by_key(Message::key);
        added.retain(|m| self.index.contains_key(&(m.author.clone(), m.seq)));
        added
    }

    /// Whether a message from the network could be what it says: one that
    /// claims to be ours may not be numbered more than [`MAX_JUMP`] past the
    /// numbers we used ourselves.
    fn plausible(&self, message: &Message) -> bool {
        message.author != self.me || message.seq <= self.own_seq.saturating_add(MAX_JUMP)
    }

    /// Forgets every message (and acknowledgement), and keeps them from
    /// coming back from other members' history: messages with a clock up
    /// to the current one are refused from now on. Our sequence numbers and
    /// clock go on from where they were, so nothing we send later repeats
    /// one that others hold.
    pub fn clear(&mut self) {
        self.cleared = self.clock;
        self.own_clock = self.own_clock.max(self.cleared);
        self.log.clear();
        self.index.clear();
        self.refs.clear();
        self.names.clear();
        self.acks.clear();
        self.recipients.clear();
    }

    fn floor_of(&self, author: &str) -> u64 {
        self.floor.get(author).copied().unwrap_or(0)
    }

    /// Takes messages, and messages refused for breaking a rule (by author
    /// and number), in order; then acknowledges each author whose
    /// contiguous count grew.
    fn take(
        &mut self,
        entries: impl IntoIterator<Item = Result<Message, (String, u64)>>,
        out: &mut Vec<Effect>,
    ) {
        let mut authors: Vec<(String, u64)> = Vec::new();
        for entry in entries {
            let author = match &entry {
                Ok(message) => message.author.as_str(),
                Err((author, _)) => author.as_str(),
            };
            if !self.admits(author) {
                continue;
            }
            if !authors.iter().any(|(a, _)| a == author) {
                authors.push((author.to_owned(), self.floor_of(author)));
            }
            match entry {
                Ok(message) => {
                    if self.plausible(&message) && self.insert(message.clone()) {
                        out.push(Effect::Added(message));
                    }
                }
                Err((author, seq)) if author != self.me => {
                    self.seen(&author, seq);
                    out.push(Effect::Refused { author, seq });
                }
                Err(_) => {}
            }
        }
        for (author, before) in authors {
            let after = self.floor_of(&author);
            if after > before && author != self.me {
                out.push(Effect::Send {
                    to: author,
                    text: peer::ack_json(after),
                });
            }
        }
    }

    /// Counts `author`'s message `seq` as seen without keeping it: it
    /// extends the author's contiguous count when it is the next one (an
    /// author's messages come in order).
    fn seen(&mut self, author: &str, seq: u64) {
        let mut floor = self.floor_of(author);
        if seq != floor + 1 {
            return;
        }
        floor = seq;
        while self.index.contains_key(&(author.to_owned(), floor + 1)) {
            floor += 1;
        }
        self.floor.insert(author.to_owned(), floor);
    }

    /// Extends `author`'s contiguous count over the messages kept.
    fn seen_to(&mut self, author: &str) {
        let mut floor = self.floor_of(author);
        while self.index.contains_key(&(author.to_owned(), floor + 1)) {
            floor += 1;
        }
        self.floor.insert(author.to_owned(), floor);
    }

    fn acked(&mut self, by: &str, upto: u64, out: &mut Vec<Effect>) {
        let upto = upto.min(self.last_seq);
        let entry = self.acks.entry(by.to_owned()).or_insert(0);
        if upto > *entry {
            *entry = upto;
            out.push(Effect::Acked {
                by: by.to_owned(),
                upto,
            });
        }
    }

    fn answer(&mut self, from: &str, sync: &Sync<'_>, now: u64, out: &mut Vec<Effect>) {
        if let Some(&upto) = sync.have.get(self.me.as_str()) {
            // A peer that holds more of ours than we remember sending (we
            // lost our storage): never reuse those numbers. A claim too far
            // past what we know ourselves is not believed.
            if upto > self.last_seq && upto <= self.own_seq.saturating_add(MAX_JUMP) {
                self.last_seq = upto;
                self.clock = self.clock.max(upto.min(MAX_COUNTER));
            }
            self.acked(from, upto, out);
        }
        let interval = self.config.sync_interval_ms;
        if let Some(&last) = self.answered.get(from) {
            if now < last.saturating_add(interval) {
                return;
            }
        }
        self.answered.insert(from.to_owned(), now);
        // Messages kept from before signing are never passed on.
        let missing: Vec<&Message> = self
            .log
            .values()
            .filter(|m| {
                !m.sig.is_empty() && m.seq > sync.have.get(m.author.as_str()).copied().unwrap_or(0)
            })
            .collect();
        out.extend(self.batches(from, missing));
    }

    /// `history` envelopes to `to` holding `messages`, in order, each
    /// within the size limit.
    fn batches(&self, to: &str, messages: Vec<&Message>) -> Vec<Effect> {
        let mut batch: Vec<Record<'_>> = Vec::new();
        let mut size = 0;
        let mut batches = Vec::new();
        for message in messages {
            let record = message.record();
            let record_size = record_size(&record);
            if !batch.is_empty()
                && (size + record_size > self.config.batch_bytes
                    || batch.len() >= MAX_HISTORY_BATCH)
            {
                batches.push(peer::history_json(&batch));
                batch.clear();
                size = 0;
            }
            size += record_size;
            batch.push(record);
        }
        if !batch.is_empty() {
            batches.push(peer::history_json(&batch));
        }
        batches
            .into_iter()
            .map(|text| Effect::Send {
                to: to.to_owned(),
                text,
            })
            .collect()
    }

    /// Adds a message unless it is known or older than everything kept in a
    /// full log. Returns whether it was added.
    fn insert(&mut self, message: Message) -> bool {
        let id = (message.author.clone(), message.seq);
        let floor = self.floor_of(&message.author);
        if message.seq <= floor || self.index.contains_key(&id) {
            return false;
        }
        if message.clock <= self.cleared {
            // Cleared here: kept away, but seen, so that the author's later
            // messages are acknowledged. (An author's cleared messages are
            // the first ones by number, and arrive in order.)
            self.seen(&message.author, message.seq);
            return false;
        }
        let key = message.key();
        if self.log.len() >= self.config.capacity {
            match self.log.first_key_value() {
                Some((oldest, _)) if key < *oldest => return false,
                _ => {}
            }
        }
        // Lamport: at least the message's clock, but never more than
        // MAX_JUMP past our own newest, so that no one can push it to the
        // ceiling.
        let bound = self.own_clock.saturating_add(MAX_JUMP);
        self.clock = self.clock.max(message.clock.min(bound));
        if message.author == self.me {
            self.last_seq = self.last_seq.max(message.seq);
        }
        self.index.insert(id, message.clock);
        let author = message.author.clone();
        self.index_about(&key, &message);
        self.log.insert(key, message);
        let mut floor = self.floor_of(&author);
        while self.index.contains_key(&(author.clone(), floor + 1)) {
            floor += 1;
        }
        self.floor.insert(author, floor);
        while self.log.len() > self.config.capacity {
            if let Some((old_key, old)) = self.log.pop_first() {
                self.index.remove(&(old.author.clone(), old.seq));
                self.unindex_about(&old_key, &old);
                if old.author == self.me {
                    self.recipients.remove(&old.seq);
                }
                // Authors with nothing left in the log keep their floor: a
                // late copy of an old message must not come back.
            }
        }
        self.prune_floors();
        true
    }

    /// Keeps the per-author bookkeeping bounded by the authors in the log.
    fn prune_floors(&mut self) {
        if self.floor.len() <= 2 * MAX_SYNC_AUTHORS {
            return;
        }
        let present: HashSet<&String> = self.log.values().map(|m| &m.author).collect();
        let keep: HashSet<String> = present.into_iter().cloned().collect();
        self.floor.retain(|a, _| keep.contains(a));
    }
}

/// About how many bytes `record` takes in a `history` envelope.
fn record_size(record: &Record<'_>) -> usize {
    // Field names, punctuation and numbers: under 120 bytes (220 more for
    // an offer's); strings may grow when escaped, by up to 6 bytes a byte
    // for control characters.
    let file = record.file.as_ref().map_or(0, |f| {
        220 + f.fid.len() + f.mime.len() + string_size(&f.name)
    });
    let optional = |s: &Option<Cow<'_, str>>| s.as_ref().map_or(0, |s| s.len());
    // Other kinds name themselves (20) and their target (40 and its
    // author).
    let about = match record.entry_kind() {
        EntryKind::Chat | EntryKind::File => 0,
        _ => 20,
    } + record.re.as_ref().map_or(0, |re| 40 + re.author.len());
    120 + about
        + record.author.len()
        + record.nick.len()
        + record.id.len()
        + optional(&record.alg)
        + optional(&record.key)
        + optional(&record.sig)
        + string_size(&record.text)
        + file
}

/// About how many bytes `text` takes in JSON: its UTF-8, and 5 more for each
/// character written as a `\u` escape.
fn string_size(text: &str) -> usize {
    text.len()
        + text
            .bytes()
            .filter(|&b| b < 0x20 || b == b'"' || b == b'\\')
            .count()
            * 5
}

pub mod private;

#[cfg(test)]
mod tests;
