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
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use peerchat_protocol::file::FileMeta;
use peerchat_protocol::peer::{
    self, MAX_COUNTER, MAX_HISTORY_BATCH, MAX_JUMP, MAX_SYNC_AUTHORS, PeerMessage, Record,
    Salvaged, Sync,
};
use peerchat_protocol::{MAX_TEXT_BYTES, ProtocolError};
use serde::{Deserialize, Serialize};

/// An entry of the log: a chat message, or a file offer (`file` is set and
/// `text` is empty).
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
}

impl Message {
    /// Where it sorts: by clock, then author, then sequence number.
    pub fn key(&self) -> Key {
        Key {
            clock: self.clock,
            author: self.author.clone(),
            seq: self.seq,
        }
    }

    fn record(&self) -> Record<'_> {
        Record {
            author: Cow::Borrowed(&self.author),
            nick: Cow::Borrowed(&self.nick),
            id: Cow::Borrowed(&self.id),
            seq: self.seq,
            clock: self.clock,
            ts: self.ts,
            text: Cow::Borrowed(&self.text),
            file: self.file.as_deref().cloned(),
        }
    }

    fn from_record(record: Record<'_>) -> Self {
        Self {
            author: record.author.into_owned(),
            nick: record.nick.into_owned(),
            id: record.id.into_owned(),
            seq: record.seq,
            clock: record.clock,
            ts: record.ts,
            text: record.text.into_owned(),
            file: record.file.map(Box::new),
        }
    }
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
    /// In a private conversation, the other party: only its entries and
    /// ours are taken.
    party: Option<String>,
}

impl History {
    /// An empty log for the member with peer id `me`.
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
            party: None,
        }
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

    /// Records a message we send, meant for `recipients` (the other members
    /// in the room now), and returns it with its `chat` envelope: send that
    /// to every peer whose channel is open. Peers whose channel is not open
    /// get it from the `sync` when it opens.
    pub fn send(
        &mut self,
        id: &str,
        nick: &str,
        text: &str,
        ts: u64,
        recipients: Vec<String>,
    ) -> Result<(Message, String), SendError> {
        check_text(text)?;
        self.send_entry(id, nick, text, None, ts, recipients)
    }

    /// Records a file offer we make, as [`History::send`] records a message,
    /// and returns it with its `file` envelope.
    pub fn send_file(
        &mut self,
        id: &str,
        nick: &str,
        file: FileMeta,
        ts: u64,
        recipients: Vec<String>,
    ) -> Result<(Message, String), SendError> {
        self.send_entry(id, nick, "", Some(file), ts, recipients)
    }

    fn send_entry(
        &mut self,
        id: &str,
        nick: &str,
        text: &str,
        file: Option<FileMeta>,
        ts: u64,
        recipients: Vec<String>,
    ) -> Result<(Message, String), SendError> {
        let message = Message {
            author: self.me.clone(),
            nick: nick.to_owned(),
            id: id.to_owned(),
            seq: (self.last_seq + 1).min(MAX_COUNTER),
            clock: (self.clock + 1).min(MAX_COUNTER),
            ts: ts.min(peer::MAX_TS),
            text: text.to_owned(),
            file: file.map(Box::new),
        };
        let record = message.record();
        record.validate()?;
        let envelope = record.chat().to_json();
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
    /// arriving on its data channel at `now` (ms).
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
                // author's later ones back.
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
                        self.take(entries, &mut out);
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
                let message = Message::from_record(Record::from_chat(from, nick, chat));
                self.typing.remove(from);
                self.take([Ok(message)], &mut out);
            }
            PeerMessage::Ack { upto } => self.acked(from, upto, &mut out),
            PeerMessage::Sync(sync) => self.answer(from, &sync, now, &mut out),
            PeerMessage::History(records) => {
                self.take(
                    records.into_iter().map(|r| Ok(Message::from_record(r))),
                    &mut out,
                );
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
        let missing: Vec<&Message> = self
            .log
            .values()
            .filter(|m| m.seq > sync.have.get(m.author.as_str()).copied().unwrap_or(0))
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
        self.log.insert(key, message);
        let mut floor = self.floor_of(&author);
        while self.index.contains_key(&(author.clone(), floor + 1)) {
            floor += 1;
        }
        self.floor.insert(author, floor);
        while self.log.len() > self.config.capacity {
            if let Some((_, old)) = self.log.pop_first() {
                self.index.remove(&(old.author.clone(), old.seq));
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
    120 + record.author.len()
        + record.nick.len()
        + record.id.len()
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
