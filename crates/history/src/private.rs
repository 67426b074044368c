//! Private conversations: one log per other member, apart from the room's.
//!
//! A private conversation between this member and another is a [`History`]
//! of its own ([`History::between`]): its own numbering, clock,
//! acknowledgements, delivery states and `sync`, holding only the two
//! parties' entries. Its envelopes travel wrapped in a `private` envelope,
//! only over the channel to the other party, so they never reach a third
//! member and are never part of the room's history; clients that do not
//! know `private` ignore it. [`Conversations`] keeps the conversations of
//! one member (at most [`MAX_CONVERSATIONS`]), wraps and unwraps their
//! envelopes, and counts unread entries.
//!
//! Entries are signed as in the room, bound to their recipient as well
//! ([`crate::KIND_PRIVATE`]): a private message cannot be shown as one in
//! the room or in a conversation with someone else. The other party's key
//! is the one its hello confirmed ([`Conversations::key_confirmed`]).

use std::collections::BTreeMap;

use peerchat_e2e::{Context, IdentityKey, PublicKey};
use peerchat_protocol::ProtocolError;
use peerchat_protocol::file::FileMeta;
use peerchat_protocol::peer::{self, PeerMessage};

use crate::{Config, Draft, Effect, History, Message, Saved, SendError};

/// Most conversations kept at once; past it, the one quiet for longest is
/// forgotten (its saved copy stays with the caller).
pub const MAX_CONVERSATIONS: usize = 64;

#[derive(Debug, Clone)]
struct Conversation {
    log: History,
    unread: usize,
    /// When it last changed (ms), to forget the quietest first.
    active: u64,
}

/// One member's private conversations, by the other party's peer id.
#[derive(Debug, Clone)]
pub struct Conversations {
    me: String,
    config: Config,
    limit: usize,
    logs: BTreeMap<String, Conversation>,
    /// What signatures are bound to, and our own key, once known.
    identity: Option<(Context, PublicKey)>,
    /// The other members' keys, as their hellos confirmed them.
    keys: BTreeMap<String, PublicKey>,
}

/// The inner envelope of a `private` one, as JSON text; `None` for any other
/// envelope (including one that is not JSON).
pub fn unwrap(text: &str) -> Option<String> {
    match PeerMessage::parse(text) {
        Ok(PeerMessage::Private(body)) => Some(body),
        _ => None,
    }
}

impl Conversations {
    /// No conversations yet, for the member with peer id `me`; each log has
    /// the limits of `config`.
    pub fn new(me: impl Into<String>, config: Config) -> Self {
        Self {
            me: me.into(),
            config,
            limit: MAX_CONVERSATIONS,
            logs: BTreeMap::new(),
            identity: None,
            keys: BTreeMap::new(),
        }
    }

    /// Conversations of a member signing with `own_key` in `context` (as
    /// [`History::with_identity`]).
    pub fn with_identity(mut self, context: Context, own_key: &PublicKey) -> Self {
        self.identity = Some((context, own_key.clone()));
        self
    }

    /// `peer`'s own hello verified with `key`: its entries are checked
    /// against it (the effects are those of [`History::key_confirmed`]).
    pub fn key_confirmed(&mut self, peer: &str, key: &PublicKey) -> Vec<Effect> {
        self.keys.insert(peer.to_owned(), key.clone());
        match self.logs.get_mut(peer) {
            Some(c) => c.log.key_confirmed(peer, key),
            None => Vec::new(),
        }
    }

    /// Keeps at most `limit` conversations (at least one).
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// The other parties of the conversations kept, sorted.
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.logs.keys().map(String::as_str)
    }

    /// The log of the conversation with `peer`, if there is one.
    pub fn get(&self, peer: &str) -> Option<&History> {
        self.logs.get(peer).map(|c| &c.log)
    }

    /// Entries from `peer` taken since [`Conversations::mark_read`].
    pub fn unread(&self, peer: &str) -> usize {
        self.logs.get(peer).map_or(0, |c| c.unread)
    }

    /// The user has seen the conversation with `peer`.
    pub fn mark_read(&mut self, peer: &str) {
        if let Some(c) = self.logs.get_mut(peer) {
            c.unread = 0;
        }
    }

    /// Forgets the conversation with `peer`.
    pub fn remove(&mut self, peer: &str) {
        self.logs.remove(peer);
    }

    fn open(&mut self, peer: &str, now: u64) -> &mut Conversation {
        if !self.logs.contains_key(peer) && self.logs.len() >= self.limit {
            let quietest = self
                .logs
                .iter()
                .min_by_key(|(p, c)| (c.active, (*p).clone()))
                .map(|(p, _)| p.clone());
            if let Some(quietest) = quietest {
                self.logs.remove(&quietest);
            }
        }
        let (me, config) = (self.me.clone(), self.config);
        let (identity, key) = (&self.identity, self.keys.get(peer));
        let conversation = self.logs.entry(peer.to_owned()).or_insert_with(|| {
            let mut log = History::between(me, peer, config);
            if let Some((context, own_key)) = identity {
                log = log.with_identity(context.clone(), own_key);
            }
            if let Some(key) = key {
                log.key_confirmed(peer, key);
            }
            Conversation {
                log,
                unread: 0,
                active: now,
            }
        });
        conversation.active = conversation.active.max(now);
        conversation
    }

    /// Numbers a message to `peer` and says what to sign, as
    /// [`History::draft`]; hand the signature to [`Conversations::commit`].
    pub fn draft(
        &mut self,
        peer: &str,
        id: &str,
        nick: &str,
        text: &str,
        ts: u64,
    ) -> Result<Draft, SendError> {
        self.check_peer(peer)?;
        crate::check_text(text)?;
        self.open(peer, ts).log.draft(id, nick, text, ts)
    }

    /// Numbers a file offer to `peer` and says what to sign, as
    /// [`History::draft_file`].
    pub fn draft_file(
        &mut self,
        peer: &str,
        id: &str,
        nick: &str,
        file: FileMeta,
        ts: u64,
    ) -> Result<Draft, SendError> {
        self.check_peer(peer)?;
        self.open(peer, ts).log.draft_file(id, nick, file, ts)
    }

    /// Records a message (or offer) to `peer`, drafted and signed (`sig`,
    /// base64url): returns it and the `private` envelope to send over the
    /// channel to `peer` (if it is not open, the conversation's `sync`
    /// brings it when it opens).
    pub fn commit(
        &mut self,
        peer: &str,
        draft: Draft,
        sig: &str,
    ) -> Result<(Message, String), SendError> {
        self.check_peer(peer)?;
        let log = &mut self.open(peer, draft.message.ts).log;
        let (message, envelope) = log.commit(draft, sig, vec![peer.to_owned()])?;
        Ok((message, peer::private_json(&envelope)))
    }

    /// Sends `text` to `peer` privately, signed with `identity` (draft,
    /// sign, commit).
    pub fn send(
        &mut self,
        identity: &IdentityKey,
        peer: &str,
        id: &str,
        nick: &str,
        text: &str,
        ts: u64,
    ) -> Result<(Message, String), SendError> {
        let draft = self.draft(peer, id, nick, text, ts)?;
        let sig = peerchat_e2e::base64url::encode(&identity.sign(&draft.bytes));
        self.commit(peer, draft, &sig)
    }

    /// Offers a file to `peer` privately, as [`Conversations::send`] sends a
    /// message.
    pub fn send_file(
        &mut self,
        identity: &IdentityKey,
        peer: &str,
        id: &str,
        nick: &str,
        file: FileMeta,
        ts: u64,
    ) -> Result<(Message, String), SendError> {
        let draft = self.draft_file(peer, id, nick, file, ts)?;
        let sig = peerchat_e2e::base64url::encode(&identity.sign(&draft.bytes));
        self.commit(peer, draft, &sig)
    }

    fn check_peer(&self, peer: &str) -> Result<(), SendError> {
        peer::validate_author(peer)?;
        if peer == self.me {
            return Err(SendError::Invalid(ProtocolError::BadField {
                field: "to",
                reason: "must be another member",
            }));
        }
        Ok(())
    }

    /// Handles `body`, the inner envelope of a `private` envelope (see
    /// [`unwrap`]) that arrived from `from` (nickname `nick`) at `now`: the
    /// effects concern the conversation with `from`, and every envelope to
    /// send is wrapped already.
    pub fn handle(
        &mut self,
        from: &str,
        nick: &str,
        body: &str,
        now: u64,
    ) -> Result<Vec<Effect>, ProtocolError> {
        peer::validate_author(from)?;
        if from == self.me {
            return Ok(Vec::new());
        }
        if matches!(PeerMessage::parse(body), Ok(PeerMessage::Private(_))) {
            return Err(ProtocolError::BadField {
                field: "body",
                reason: "must not be another private envelope",
            });
        }
        let conversation = self.open(from, now);
        let effects = conversation.log.handle(from, nick, body, now)?;
        Ok(conversation.effects(from, effects))
    }

    /// The signatures of check `id` of the conversation with `peer` (an
    /// [`Effect::Verify`] it returned) were checked, as
    /// [`History::verified`].
    pub fn verified(&mut self, peer: &str, id: u64, results: &[bool]) -> Vec<Effect> {
        match self.logs.get_mut(peer) {
            Some(c) => {
                let effects = c.log.verified(id, results);
                c.effects(peer, effects)
            }
            None => Vec::new(),
        }
    }

    /// The channel to `peer` opened: the conversation's `sync` and our
    /// unacknowledged entries, wrapped; nothing when there is no
    /// conversation with `peer`.
    pub fn link_opened(&mut self, peer: &str) -> Vec<Effect> {
        match self.logs.get_mut(peer) {
            Some(c) => c.log.link_opened(peer).into_iter().map(wrap).collect(),
            None => Vec::new(),
        }
    }

    /// The channel to `peer` closed.
    pub fn link_closed(&mut self, peer: &str) {
        if let Some(c) = self.logs.get_mut(peer) {
            c.log.link_closed(peer);
        }
    }

    /// This member typed in the conversation with `peer` at `now`: the
    /// wrapped `typing` envelope to send to `peer`, or `None` (as
    /// [`History::typed`]).
    pub fn typed(&mut self, peer: &str, now: u64) -> Option<String> {
        let c = self.logs.get_mut(peer)?;
        c.log.typed(now).map(|t| peer::private_json(&t))
    }

    /// What to keep on the device of the conversation with `peer`.
    pub fn save(&self, peer: &str) -> Option<Saved> {
        self.logs.get(peer).map(|c| c.log.save())
    }

    /// Puts back a saved conversation with `peer` (entries by anyone but
    /// the two parties are left out); returns the entries added, in order.
    pub fn restore(&mut self, peer: &str, saved: Saved, now: u64) -> Vec<Message> {
        if self.check_peer(peer).is_err() {
            return Vec::new();
        }
        self.open(peer, now).log.restore(saved)
    }
}

impl Conversation {
    /// Effects of the log, wrapped, counting the entries from `peer` taken.
    fn effects(&mut self, peer: &str, effects: Vec<Effect>) -> Vec<Effect> {
        let effects: Vec<Effect> = effects.into_iter().map(wrap).collect();
        self.unread += effects
            .iter()
            .filter(|e| matches!(e, Effect::Added(m) if m.author == peer))
            .count();
        effects
    }
}

/// An effect of a conversation's log, its envelope wrapped.
fn wrap(effect: Effect) -> Effect {
    match effect {
        Effect::Send { to, text } => Effect::Send {
            to,
            text: peer::private_json(&text),
        },
        other => other,
    }
}
