//! Private conversations in the engine: the driver of
//! [`peerchat_history::private::Conversations`] (one log per other member,
//! its envelopes wrapped in `private` and sent only over the link to that
//! member), kept in the history file apart from the room's log.

use peerchat_history::private::Conversations;
use peerchat_history::{Effect, Message, SendError};

use super::{ChatMessage, Event, Kept, Peer, State, now_ms};
use crate::store::Store;

/// Why a private message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivateError {
    /// No member has that nickname.
    #[error("nobody called {0:?} is here")]
    NoSuchMember(String),
    /// That is us.
    #[error("that is you")]
    ToSelf,
    /// The message cannot be sent (empty, too long, not in the room yet).
    #[error(transparent)]
    Send(#[from] SendError),
}

impl State {
    /// Our peer id is known: the conversations start, with those the
    /// history file kept of this room.
    pub(super) fn new_conversations(&mut self, me: &str) {
        // Our peer id comes from our member key: it stays for the run.
        if self.private.is_some() {
            return;
        }
        let mut conversations = Conversations::new(me.to_owned(), self.options.history)
            .with_identity(self.context.clone(), &self.options.identity.public_key());
        let mut restored: Vec<(String, Vec<Message>)> = Vec::new();
        if let Some(Kept { file, room }) = &mut self.store {
            let peers = file.conversations(room).unwrap_or_else(|err| {
                tracing::warn!(%err, "could not read the private conversations");
                Vec::new()
            });
            for peer in peers {
                match file.load(&Store::conversation(room, &peer)) {
                    Ok(saved) => {
                        let messages = conversations.restore(&peer, saved, now_ms());
                        restored.push((peer, messages));
                    }
                    Err(err) => tracing::warn!(%err, "could not read a private conversation"),
                }
            }
        }
        self.private = Some(conversations);
        for (peer, messages) in restored {
            let with = self.peer_of(&peer);
            for message in messages {
                if let Some(file) = &message.file {
                    self.file_offered(&message.author, file, Some(&peer), true);
                    continue;
                }
                let message = ChatMessage {
                    stored: true,
                    ..self.view(message)
                };
                self.emit(Event::PrivateMessage {
                    with: with.clone(),
                    message,
                });
            }
        }
    }

    /// `/msg NICK TEXT`.
    pub(super) fn send_private(&mut self, nick: &str, text: &str) -> Result<Peer, PrivateError> {
        let to = self
            .mesh
            .members()
            .find(|m| m.nick() == nick)
            .or_else(|| {
                let wanted = peerchat_e2e::pin_name(nick);
                self.mesh
                    .members()
                    .find(|m| peerchat_e2e::pin_name(m.nick()) == wanted)
            })
            .map(|m| m.id().to_owned());
        let Some(to) = to else {
            if nick == self.nick {
                return Err(PrivateError::ToSelf);
            }
            return Err(PrivateError::NoSuchMember(nick.to_owned()));
        };
        let identity = self.options.identity.clone();
        let private = self.private.as_mut().ok_or(SendError::Stopped)?;
        let (message, envelope) = private.send(
            &identity,
            &to,
            &crate::random_id(),
            &self.nick,
            text,
            now_ms(),
        )?;
        self.persist_private(&to, std::slice::from_ref(&message), true);
        if let Some(current) = self.links.get(&to).filter(|c| c.usable()) {
            current.link.send(envelope);
        }
        let with = self.peer_of(&to);
        let message = self.view(message);
        self.emit(Event::PrivateMessage {
            with: with.clone(),
            message,
        });
        Ok(with)
    }

    /// A `private` envelope arrived from `from`.
    pub(super) fn on_private(&mut self, from: &str, nick: &str, body: &str) {
        let Some(private) = &mut self.private else {
            return;
        };
        let acked_before = private.get(from).map_or(0, |log| log.acked_by(from));
        match private.handle(from, nick, body, now_ms()) {
            Ok(effects) => self.apply_private(from, effects, acked_before),
            Err(err) => tracing::warn!(%err, from = %nick, "ignoring a malformed private message"),
        }
    }

    pub(super) fn private_link_opened(&mut self, peer: &str) {
        if let Some(private) = &mut self.private {
            let effects = private.link_opened(peer);
            self.apply_private(peer, effects, 0);
        }
    }

    pub(super) fn private_link_closed(&mut self, peer: &str) {
        if let Some(private) = &mut self.private {
            private.link_closed(peer);
        }
    }

    /// Carries out what the conversation with `peer` asks for.
    pub(super) fn apply_private(&mut self, peer: &str, effects: Vec<Effect>, acked_before: u64) {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        let mut resolved = Vec::new();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Verify(check) => {
                    let results: Vec<bool> = check.items.iter().map(|i| i.verify()).collect();
                    if let Some(private) = &mut self.private {
                        for (i, e) in private
                            .verified(peer, check.id, &results)
                            .into_iter()
                            .enumerate()
                        {
                            queue.insert(i, e);
                        }
                    }
                }
                other => resolved.push(other),
            }
        }
        let added: Vec<Message> = resolved
            .iter()
            .filter_map(|e| match e {
                Effect::Added(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        let acked = resolved.iter().any(|e| matches!(e, Effect::Acked { .. }));
        if !added.is_empty() || acked {
            self.persist_private(peer, &added, acked);
        }
        let with = self.peer_of(peer);
        for effect in resolved {
            match effect {
                Effect::Added(message) => {
                    if let Some(file) = &message.file {
                        self.file_offered(&message.author, file, Some(peer), false);
                        continue;
                    }
                    let message = self.view(message);
                    self.emit(Event::PrivateMessage {
                        with: with.clone(),
                        message,
                    });
                }
                Effect::Send { to, text } => {
                    if let Some(current) = self.links.get(&to).filter(|c| c.usable()) {
                        current.link.send(text);
                    }
                }
                Effect::Acked { by, upto } if by == peer => {
                    for seq in acked_before + 1..=upto {
                        self.emit(Event::PrivateDelivery {
                            with: with.clone(),
                            seq,
                        });
                    }
                }
                Effect::Forged { author, .. } => {
                    tracing::warn!(%author, "refused a private message whose signature does not verify");
                    self.emit(Event::Forged {
                        author: self.peer_of(&author),
                        by: with.clone(),
                        count: 1,
                    });
                }
                Effect::Removed { author, seq, .. } => {
                    if let Some(Kept { file, room }) = &mut self.store {
                        let name = Store::conversation(room, peer);
                        if let Err(err) = file.remove(&name, &author, seq) {
                            tracing::warn!(%err, "could not remove a forged private message");
                        }
                    }
                }
                Effect::Confirmed { author, seq } => {
                    let message = self
                        .private
                        .as_ref()
                        .and_then(|p| p.get(peer)?.get(&author, seq).cloned());
                    if let (Some(message), Some(Kept { file, room })) = (message, &mut self.store) {
                        let name = Store::conversation(room, peer);
                        if let Err(err) = file.update(&name, &message) {
                            tracing::warn!(%err, "could not save a private message");
                        }
                    }
                }
                Effect::Acked { .. }
                | Effect::Refused { .. }
                | Effect::Typing { .. }
                | Effect::Verify(_) => {}
            }
        }
    }

    /// Writes entries of the conversation with `peer` (and, with `state`,
    /// its delivery state) to the history file.
    pub(super) fn persist_private(&mut self, peer: &str, messages: &[Message], state: bool) {
        let Some(Kept { file, room }) = &mut self.store else {
            return;
        };
        let name = Store::conversation(room, peer);
        let mut result = file.add(&name, messages);
        if state {
            if let Some(log) = self.private.as_ref().and_then(|p| p.get(peer)) {
                result = result.and_then(|()| file.save_state(&name, &log.save_state()));
            }
        }
        if let Err(err) = result {
            tracing::warn!(%err, "could not save a private conversation");
        }
    }
}
