//! The peer engine: a room as seen by one member. It keeps the signaling
//! connection, the members and one [`Link`] per member (full mesh), and turns
//! all that into [`Event`]s for whatever shows them (the terminal UI, line
//! mode, tests). It behaves like the web client's `room.js`.
//!
//! The engine is one task; [`Engine`] is a handle that sends it commands.
//! The message log (ordering, acknowledgements, history sync, typing) is
//! [`peerchat_history::History`], the same state machine the web client
//! runs in `history.js`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerchat_history::{Config as HistoryConfig, Effect, History, Message};
use peerchat_protocol::signaling::{ClientMessage, IceServer, Member};
use peerchat_protocol::{ErrorCode, MAX_TEXT_BYTES};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::pair::{Blob, CodeKind, Pairing};
use crate::peer::{Link, LinkEvent, LinkHandle, LinkOptions, LinkState, LinkStats, SignalPayload};
use crate::session::Session;
use crate::signaling::{ServerEvent, Signaling, SignalingEvent};

/// How long a member the server does not list (yet) and whose connection
/// is down is kept as reconnecting: about as long as the server holds a
/// member's place after losing its connection.
const GONE_AFTER: Duration = Duration::from_secs(20);
const RELINK_MIN: Duration = Duration::from_secs(1);
const RELINK_MAX: Duration = Duration::from_secs(30);
/// Before retrying a join refused because our previous session still
/// holds the nickname.
const REJOIN_DELAY: Duration = Duration::from_secs(2);

/// Settings of an engine: [`EngineOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// What to join: a room, or one other peer.
    pub session: Session,
    /// The nickname to join under.
    pub nick: String,
    /// STUN/TURN servers used besides those the server hands out.
    pub extra_ice_servers: Vec<IceServer>,
    /// Connect through TURN relays only, revealing no address of ours.
    pub relay_only: bool,
    /// Resolve `.local` (mDNS) host candidates of other peers.
    pub mdns: bool,
    /// The message log's limits.
    pub history: HistoryConfig,
    /// Where a room's history is kept between runs (SQLite); none: kept
    /// only while running. Pairs keep none.
    pub history_file: Option<std::path::PathBuf>,
}

impl EngineOptions {
    /// Joins `session` as `nick`, with the defaults: no STUN/TURN servers
    /// besides the server's, direct connections allowed, mDNS resolution
    /// on, the message log's default limits, no history file.
    pub fn new(session: Session, nick: impl Into<String>) -> Self {
        Self {
            session,
            nick: nick.into(),
            extra_ice_servers: Vec::new(),
            relay_only: false,
            mdns: true,
            history: HistoryConfig::default(),
            history_file: None,
        }
    }
}

/// A member as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// The peer id.
    pub id: String,
    /// The nickname.
    pub nick: String,
}

/// A chat message, sent or received, live or from history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// The message id.
    pub id: String,
    /// The author's number for it.
    pub seq: u64,
    /// Its Lamport clock: messages are shown ordered by clock, then author
    /// id, then number.
    pub clock: u64,
    /// When the author sent it (ms since the Unix epoch, author's clock).
    pub ts: u64,
    /// The text.
    pub text: String,
    /// The author.
    pub from: Peer,
    /// Whether we wrote it.
    pub own: bool,
    /// Whether it comes from this device's history file (shown before, in
    /// an earlier run), rather than from the room now.
    pub stored: bool,
}

/// The signaling connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// Connecting.
    Connecting,
    /// Connected.
    Online,
    /// Not connected; retrying.
    Offline,
}

/// What the engine reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The signaling connection changed state.
    Server {
        /// The new state.
        state: ServerState,
        /// When offline: milliseconds until the next attempt.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
    },
    /// We are in the room (sent once).
    Joined {
        /// Ourselves.
        you: Peer,
        /// Everyone else.
        members: Vec<Peer>,
    },
    /// The server refused the join; try another nickname.
    JoinRefused {
        /// Why, as a stable code.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
    /// Someone joined.
    MemberJoined {
        /// Who.
        member: Peer,
    },
    /// Someone left.
    MemberLeft {
        /// Who.
        member: Peer,
    },
    /// Our connection to a member changed state.
    MemberState {
        /// Who.
        member: Peer,
        /// The new state.
        state: LinkState,
    },
    /// A chat message new to us: ours as sent, or someone else's, live or
    /// from history. Show it at its place in the order (clock, author id,
    /// number).
    Message(ChatMessage),
    /// Who holds one of our messages changed.
    Delivery {
        /// Our message's number.
        seq: u64,
        /// Members who have it.
        delivered: Vec<Peer>,
        /// Members in the room when it was sent who do not yet.
        waiting: Vec<Peer>,
    },
    /// A member is typing (show it for a few seconds, or until their next
    /// message).
    Typing {
        /// Who.
        member: Peer,
    },
    /// Pairing by hand: give this connection code to the other side.
    ConnectionCode {
        /// Our offer, or our answer.
        kind: CodeKind,
        /// The code, one line.
        code: String,
    },
    /// Pairing by hand: the other side's code is needed; hand it over with
    /// [`Engine::paste_code`].
    CodeWanted {
        /// Their offer, or their answer.
        kind: CodeKind,
    },
    /// Pairing failed (a mailbox refused, or nobody answered); nothing more
    /// will happen.
    PairingFailed {
        /// Why, for people.
        message: String,
    },
}

/// Why a message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Nothing to send.
    #[error("the message is empty")]
    Empty,
    /// Over the size limit.
    #[error("this message is {size} bytes; messages may be at most 16 KiB (16384 bytes)")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// The engine has stopped.
    #[error("not connected to the room")]
    Stopped,
}

/// A member's route, for the connection-details view.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStats {
    /// Who.
    pub member: Peer,
    /// The link state.
    pub state: LinkState,
    /// The route, when connected.
    pub stats: Option<LinkStats>,
}

enum Command {
    Send(String),
    ClearHistory,
    Typed,
    Gone(String),
    Join(String),
    Drain(oneshot::Sender<()>),
    Undelivered(oneshot::Sender<Vec<(Peer, usize)>>),
    Stats(oneshot::Sender<Vec<(Peer, LinkState, Option<LinkHandle>)>>),
    Relink(String),
    Code(Blob),
    Leave(oneshot::Sender<()>),
}

/// A handle to a running engine.
#[derive(Debug, Clone)]
pub struct Engine {
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Engine {
    /// Starts an engine: it connects and joins right away, and reports on
    /// the returned channel until it stops.
    pub fn start(options: EngineOptions) -> (Engine, mpsc::UnboundedReceiver<Event>) {
        let (events, events_rx) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (signaling_tx, signaling_rx) = mpsc::unbounded_channel();
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        let (pasted, pasted_rx) = mpsc::unbounded_channel();
        let signaling = match &options.session {
            Session::Room { ws_url, .. } => Signaling::spawn(ws_url.clone(), signaling_tx),
            Session::Manual(role) => crate::pair::spawn(
                crate::pair::Channel::Manual(*role),
                options.nick.clone(),
                signaling_tx,
                pasted_rx,
            ),
            Session::Mailbox { ws_url, id } => crate::pair::spawn(
                crate::pair::Channel::Mailbox {
                    server: ws_url.clone(),
                    id: id.clone(),
                },
                options.nick.clone(),
                signaling_tx,
                pasted_rx,
            ),
        };
        let (store, saved, key) = open_store(&options);
        let state = State {
            store,
            saved,
            key,
            history: None,
            joined_now: false,
            nick: options.nick.clone(),
            options,
            signaling,
            self_id: None,
            ever_joined: false,
            ice_servers: Vec::new(),
            members: Vec::new(),
            events,
            link_events: link_tx,
            commands: commands.clone(),
            next_link: 0,
            drains: Vec::new(),
            join_refused: false,
            pasted,
        };
        tokio::spawn(state.run(commands_rx, signaling_rx, link_rx));
        (Engine { commands }, events_rx)
    }

    /// Sends a chat message to every member whose channel is open; the
    /// others get it when their channel opens (the history sync). The
    /// message comes back as an [`Event::Message`] with `own` set, with its
    /// number and clock.
    pub fn send(&self, text: &str) -> Result<(), SendError> {
        if text.trim().is_empty() {
            return Err(SendError::Empty);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(SendError::TooLarge { size: text.len() });
        }
        self.commands
            .send(Command::Send(text.to_owned()))
            .map_err(|_| SendError::Stopped)
    }

    /// Forgets the room's history here (and in the history file); messages
    /// sent so far do not come back from the others.
    pub fn clear_history(&self) {
        let _ = self.commands.send(Command::ClearHistory);
    }

    /// Tells the others that we are typing (at most every few seconds).
    pub fn typed(&self) {
        let _ = self.commands.send(Command::Typed);
    }

    /// Hands over the other side's connection code (after
    /// [`Event::CodeWanted`]); read it with [`Blob::decode`] and
    /// [`Blob::expect`].
    pub fn paste_code(&self, code: Blob) {
        let _ = self.commands.send(Command::Code(code));
    }

    /// Joins again under another nickname (after [`Event::JoinRefused`]).
    pub fn join(&self, nick: &str) {
        let _ = self.commands.send(Command::Join(nick.to_owned()));
    }

    /// Resolves once every member in the room has acknowledged every message
    /// of ours sent while they were here. Bound it with a timeout: a member
    /// whose connection never opens never acknowledges.
    pub async fn drain(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Drain(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Our messages not acknowledged yet, per member still in the room.
    pub async fn undelivered(&self) -> Vec<(Peer, usize)> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Undelivered(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Each member's connection state and route.
    pub async fn stats(&self) -> Vec<MemberStats> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stats(tx)).is_err() {
            return Vec::new();
        }
        let Ok(links) = rx.await else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (member, state, probe) in links {
            let stats = match probe {
                Some(link) => link.stats().await,
                None => None,
            };
            out.push(MemberStats {
                member,
                state,
                stats,
            });
        }
        out
    }

    /// Leaves the room for good: tells the server (so the others learn at
    /// once), closes every connection and the signaling connection.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Leave(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The history file, and the room it keeps.
struct Kept {
    file: crate::store::Store,
    room: String,
}

/// Opens the history file, picks our member key and reads our history of
/// the room, if the options name a file and this is a room; a file that
/// cannot be used is reported and left alone. With a history file, the same
/// nickname in the same room comes back as the same member (same key, so
/// same peer id).
fn open_store(options: &EngineOptions) -> (Option<Kept>, Option<peerchat_history::Saved>, String) {
    let (Some(path), Some(room)) = (&options.history_file, options.session.room()) else {
        return (None, None, crate::random_id());
    };
    let opened = crate::store::Store::open(path).and_then(|mut file| {
        let key = file.key(room, &options.nick, crate::random_id)?;
        file.set_member(&peerchat_protocol::peer_id_from_key(room, &key));
        let saved = file.load(room)?;
        Ok((file, saved, key))
    });
    match opened {
        Ok((file, saved, key)) => (
            Some(Kept {
                file,
                room: room.to_owned(),
            }),
            Some(saved),
            key,
        ),
        Err(err) => {
            tracing::warn!(%err, "history will not be kept");
            (None, None, crate::random_id())
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct MemberEntry {
    id: String,
    nick: String,
    /// The server knows this member by this id (false for a member kept
    /// only because its connection outlived a server restart).
    listed: bool,
    state: LinkState,
    link: Option<(u64, Link)>,
    relink_attempt: u32,
}

impl MemberEntry {
    fn peer(&self) -> Peer {
        Peer {
            id: self.id.clone(),
            nick: self.nick.clone(),
        }
    }

    fn is_open(&self) -> bool {
        self.link.as_ref().is_some_and(|(_, l)| l.is_open())
    }
}

struct State {
    /// The history file, if any.
    store: Option<Kept>,
    /// What the history file held, until the log takes it.
    saved: Option<peerchat_history::Saved>,
    /// Our member key: the server derives our peer id from it, so a
    /// reconnect comes back as the same member.
    key: String,
    /// The message log, once we know our peer id.
    history: Option<History>,
    /// Whether the server has us in the room right now.
    joined_now: bool,
    options: EngineOptions,
    nick: String,
    signaling: Signaling,
    self_id: Option<String>,
    ever_joined: bool,
    ice_servers: Vec<IceServer>,
    members: Vec<MemberEntry>,
    events: mpsc::UnboundedSender<Event>,
    link_events: mpsc::UnboundedSender<(u64, LinkEvent)>,
    commands: mpsc::UnboundedSender<Command>,
    next_link: u64,
    drains: Vec<oneshot::Sender<()>>,
    /// The last join was refused: wait for another nickname before joining
    /// again, even after a reconnect.
    join_refused: bool,
    /// Connection codes pasted by hand, to the pair transport.
    pasted: mpsc::UnboundedSender<Blob>,
}

impl State {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut signaling: mpsc::UnboundedReceiver<SignalingEvent>,
        mut links: mpsc::UnboundedReceiver<(u64, LinkEvent)>,
    ) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Leave(done)) => {
                        self.signaling.send(ClientMessage::Leave.to_json());
                        self.close_links().await;
                        let _ = done.send(());
                        return;
                    }
                    None => break,
                    Some(command) => self.on_command(command).await,
                },
                Some(event) = signaling.recv() => self.on_signaling(event).await,
                Some((tag, event)) = links.recv() => self.on_link(tag, event).await,
            }
            self.check_drains();
        }
        self.close_links().await;
    }

    async fn close_links(&mut self) {
        let links: Vec<Link> = self
            .members
            .iter_mut()
            .filter_map(|m| m.link.take().map(|(_, l)| l))
            .collect();
        futures_util::future::join_all(links.into_iter().map(Link::close)).await;
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Send(text) => self.send_message(&text),
            Command::ClearHistory => {
                if let Some(history) = &mut self.history {
                    history.clear();
                    let state = history.save_state();
                    if let Some(Kept { file, room }) = &self.store {
                        if let Err(err) = file
                            .clear(room)
                            .and_then(|()| file.save_state(room, &state))
                        {
                            tracing::warn!(%err, "could not clear the history file");
                        }
                    }
                }
            }
            Command::Typed => {
                if let Some(envelope) = self.history.as_mut().and_then(|h| h.typed(now_ms())) {
                    for m in &self.members {
                        if let Some((_, link)) = m.link.as_ref().filter(|(_, l)| l.is_open()) {
                            link.send(envelope.clone());
                        }
                    }
                }
            }
            Command::Gone(id) => {
                if let Some(i) = self.index(&id) {
                    if !self.members[i].listed && !self.members[i].is_open() {
                        self.remove_member(&id);
                    }
                }
            }
            Command::Join(nick) => {
                self.nick = nick;
                self.join_refused = false;
                self.send_join();
            }
            Command::Drain(reply) => self.drains.push(reply),
            Command::Undelivered(reply) => {
                let _ = reply.send(self.undelivered());
            }
            Command::Stats(reply) => {
                // Hand out handles, so stats are gathered without holding
                // up the engine.
                let _ = reply.send(
                    self.members
                        .iter()
                        .map(|m| (m.peer(), m.state, m.link.as_ref().map(|(_, l)| l.handle())))
                        .collect(),
                );
            }
            Command::Relink(id) => {
                if let Some(i) = self.index(&id) {
                    if self.members[i].link.is_none() && self.self_id.is_some() {
                        self.start_link(i, None).await;
                    }
                }
            }
            Command::Code(blob) => {
                let _ = self.pasted.send(blob);
            }
            Command::Leave(_) => {}
        }
    }

    fn send_join(&self) {
        // A pair has no room to join: its transport was given our nickname.
        if let Some(room) = self.options.session.room() {
            let join = ClientMessage::join_with_key(room, &self.nick, &self.key);
            self.signaling.send(join.to_json());
        }
    }

    /// Our messages not acknowledged yet, per member still in the room.
    fn undelivered(&self) -> Vec<(Peer, usize)> {
        let Some(history) = &self.history else {
            return Vec::new();
        };
        let mut counts = vec![0usize; self.members.len()];
        for m in history.messages().filter(|m| m.author == history.me()) {
            for id in history.delivery(m.seq).waiting {
                if let Some(i) = self.index(&id) {
                    counts[i] += 1;
                }
            }
        }
        self.members
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(m, n)| (m.peer(), n))
            .collect()
    }

    fn send_message(&mut self, text: &str) {
        let recipients: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
        let Some(history) = self.history.as_mut() else {
            tracing::warn!("not in the room yet; message dropped");
            return;
        };
        match history.send(&crate::random_id(), &self.nick, text, now_ms(), recipients) {
            Ok((message, envelope)) => {
                self.persist(std::slice::from_ref(&message), true);
                for m in &self.members {
                    if let Some((_, link)) = m.link.as_ref().filter(|(_, l)| l.is_open()) {
                        link.send(envelope.clone());
                    }
                }
                let view = self.view(message);
                self.emit(Event::Message(view));
            }
            Err(err) => tracing::warn!(%err, "message not sent"),
        }
    }

    /// Writes messages (and, with `state`, delivery state) to the history
    /// file.
    fn persist(&mut self, messages: &[Message], state: bool) {
        let Some(Kept { file, room }) = &mut self.store else {
            return;
        };
        let mut result = file.add(room, messages);
        if state {
            if let Some(history) = &self.history {
                result = result.and_then(|()| file.save_state(room, &history.save_state()));
            }
        }
        if let Err(err) = result {
            tracing::warn!(%err, "could not save history");
        }
    }

    fn view(&self, m: Message) -> ChatMessage {
        let own = self.history.as_ref().is_some_and(|h| h.me() == m.author);
        ChatMessage {
            from: Peer {
                id: m.author,
                nick: m.nick,
            },
            id: m.id,
            seq: m.seq,
            clock: m.clock,
            ts: m.ts,
            text: m.text,
            own,
            stored: false,
        }
    }

    fn peer_of(&self, id: &str) -> Peer {
        match self.index(id) {
            Some(i) => self.members[i].peer(),
            None => Peer {
                id: id.to_owned(),
                nick: self
                    .history
                    .as_ref()
                    .and_then(|h| h.messages().rev().find(|m| m.author == id))
                    .map_or_else(|| id.chars().take(6).collect(), |m| m.nick.clone()),
            },
        }
    }

    /// Carries out what the message log asks for, after an envelope from
    /// member `i` (whose acknowledgement was `acked_before`).
    fn apply(&mut self, i: usize, effects: Vec<Effect>, acked_before: u64) {
        let added: Vec<Message> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Added(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        let acked = effects.iter().any(|e| matches!(e, Effect::Acked { .. }));
        if !added.is_empty() || acked {
            self.persist(&added, acked);
        }
        for effect in effects {
            match effect {
                Effect::Added(message) => {
                    let view = self.view(message);
                    self.emit(Event::Message(view));
                }
                Effect::Send { to, text } => {
                    if let Some(j) = self.index(&to) {
                        if let Some((_, link)) =
                            self.members[j].link.as_ref().filter(|(_, l)| l.is_open())
                        {
                            link.send(text);
                        }
                    }
                }
                Effect::Acked { by, upto } => {
                    let Some(history) = &self.history else {
                        continue;
                    };
                    let changed: Vec<(u64, peerchat_history::Delivery)> = history
                        .messages()
                        .filter(|m| {
                            m.author == history.me() && m.seq > acked_before && m.seq <= upto
                        })
                        .map(|m| (m.seq, history.delivery(m.seq)))
                        .filter(|(_, d)| d.acked.contains(&by))
                        .collect();
                    for (seq, delivery) in changed {
                        let event = Event::Delivery {
                            seq,
                            delivered: delivery.acked.iter().map(|id| self.peer_of(id)).collect(),
                            waiting: delivery.waiting.iter().map(|id| self.peer_of(id)).collect(),
                        };
                        self.emit(event);
                    }
                }
                Effect::Typing { author } => {
                    if self.members.get(i).is_some_and(|m| m.id == author) {
                        self.emit(Event::Typing {
                            member: self.members[i].peer(),
                        });
                    }
                }
            }
        }
    }

    async fn on_signaling(&mut self, event: SignalingEvent) {
        match event {
            SignalingEvent::Connecting => self.emit(Event::Server {
                state: ServerState::Connecting,
                retry_in_ms: None,
            }),
            SignalingEvent::Open => {
                self.emit(Event::Server {
                    state: ServerState::Online,
                    retry_in_ms: None,
                });
                if !self.join_refused {
                    self.send_join();
                }
            }
            SignalingEvent::Offline { retry_in } => {
                self.joined_now = false;
                self.emit(Event::Server {
                    state: ServerState::Offline,
                    retry_in_ms: Some(retry_in.as_millis() as u64),
                });
            }
            SignalingEvent::Message(message) => self.on_server(message).await,
            SignalingEvent::Pairing(Pairing::Show { kind, code }) => {
                self.emit(Event::ConnectionCode { kind, code });
            }
            SignalingEvent::Pairing(Pairing::Wanted(kind)) => {
                self.emit(Event::CodeWanted { kind });
            }
            SignalingEvent::Pairing(Pairing::Failed(err)) => {
                self.emit(Event::PairingFailed {
                    message: err.to_string(),
                });
            }
        }
    }

    async fn on_server(&mut self, message: ServerEvent) {
        match message {
            ServerEvent::Joined {
                you,
                members,
                ice_servers,
            } => {
                if self.self_id.as_deref() != Some(you.id.as_str()) {
                    // Our id (derived from our key) is known at the first
                    // join; a server that gives another one numbers our
                    // messages under it.
                    let mut history = History::new(you.id.clone(), self.options.history);
                    if let Some(old) = &self.history {
                        history.restore(old.save());
                    }
                    let restored = self
                        .saved
                        .take()
                        .map(|saved| {
                            let kept = saved.messages.len();
                            let restored = history.restore(saved);
                            if restored.len() < kept {
                                if let Some(Kept { file, room }) = &mut self.store {
                                    let keep: Vec<Message> = history.messages().cloned().collect();
                                    if let Err(err) = file.trim(room, &keep) {
                                        tracing::warn!(%err, "could not trim the history file");
                                    }
                                }
                            }
                            restored
                        })
                        .unwrap_or_default();
                    self.history = Some(history);
                    for message in restored {
                        let view = ChatMessage {
                            stored: true,
                            ..self.view(message)
                        };
                        self.emit(Event::Message(view));
                    }
                    // Connections made under another id are of no use.
                    for m in &mut self.members {
                        m.link = None;
                    }
                }
                self.self_id = Some(you.id.clone());
                self.joined_now = true;
                self.nick = you.nick.clone();
                self.ice_servers = ice_servers;
                self.ice_servers
                    .extend(self.options.extra_ice_servers.iter().cloned());
                // Members who have not come back to the server yet keep
                // their connection while it stays open, or a while to come
                // back.
                for m in &mut self.members {
                    if members.iter().any(|l| l.id == m.id) {
                        continue;
                    }
                    m.listed = false;
                    if !m.is_open() {
                        let commands = self.commands.clone();
                        let id = m.id.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(GONE_AFTER).await;
                            let _ = commands.send(Command::Gone(id));
                        });
                    }
                }
                // An open connection survives the server going away and
                // coming back; we (re)join, so we start any that is missing.
                for m in &members {
                    let i = self.add_member(m, self.ever_joined);
                    self.members[i].listed = true;
                    if self.members[i].link.is_none() {
                        self.start_link(i, None).await;
                    }
                }
                if !self.ever_joined {
                    self.ever_joined = true;
                    self.emit(Event::Joined {
                        you: Peer {
                            id: you.id,
                            nick: you.nick,
                        },
                        members: members
                            .into_iter()
                            .map(|m| Peer {
                                id: m.id,
                                nick: m.nick,
                            })
                            .collect(),
                    });
                }
            }
            ServerEvent::PeerJoined(peer) => {
                self.add_member(&peer, true);
            }
            ServerEvent::PeerLeft(id) => self.remove_member(&id),
            ServerEvent::Signal { from, payload } => {
                match serde_json::from_str::<SignalPayload>(payload.get()) {
                    Ok(signal) => self.on_signal(&from, signal).await,
                    Err(err) => tracing::debug!(%err, %from, "ignoring a malformed signal"),
                }
            }
            ServerEvent::Error { code, message } => {
                let joining = matches!(
                    code,
                    ErrorCode::NickTaken
                        | ErrorCode::BadNick
                        | ErrorCode::RoomFull
                        | ErrorCode::BadRoom
                        | ErrorCode::BadKey
                );
                if joining && !self.ever_joined {
                    self.join_refused = true;
                    self.emit(Event::JoinRefused { code, message });
                } else if code == ErrorCode::PeerAway {
                    // Signals to a member who lost its connection; it starts
                    // anew when it is back.
                } else if code == ErrorCode::ShuttingDown {
                    // The server is stopping: an outage, as if it had
                    // crashed. Nobody left; the connections to the others
                    // stay up, and we rejoin when a server is back.
                    self.joined_now = false;
                    tracing::info!("the server is shutting down; rejoining when it is back");
                } else if joining && !self.joined_now {
                    // Our old session may hold the nickname until the server
                    // notices it is gone.
                    let commands = self.commands.clone();
                    let nick = self.nick.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(REJOIN_DELAY).await;
                        let _ = commands.send(Command::Join(nick));
                    });
                } else {
                    tracing::warn!(%code, %message, "server error");
                }
            }
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    /// Adds a member, or updates a known one.
    fn add_member(&mut self, peer: &Member, announce: bool) -> usize {
        if let Some(i) = self.index(&peer.id) {
            // A pair learns the other's nickname only from its answer.
            if self.members[i].nick != peer.nick {
                self.members[i].nick = peer.nick.clone();
                if announce {
                    self.emit(Event::MemberJoined {
                        member: self.members[i].peer(),
                    });
                }
            }
            self.members[i].listed = true;
            return i;
        }
        self.members.push(MemberEntry {
            id: peer.id.clone(),
            nick: peer.nick.clone(),
            listed: true,
            state: LinkState::Connecting,
            link: None,
            relink_attempt: 0,
        });
        let i = self.members.len() - 1;
        if announce {
            self.emit(Event::MemberJoined {
                member: self.members[i].peer(),
            });
        }
        i
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(i) = self.index(id) {
            let member = self.members.remove(i);
            if let Some(history) = &mut self.history {
                history.link_closed(id);
            }
            self.emit(Event::MemberLeft {
                member: member.peer(),
            });
        }
    }

    async fn start_link(&mut self, i: usize, sid: Option<String>) {
        let Some(self_id) = self.self_id.clone() else {
            return;
        };
        self.next_link += 1;
        let tag = self.next_link;
        let options = LinkOptions {
            self_id,
            peer_id: self.members[i].id.clone(),
            ice_servers: self.ice_servers.clone(),
            sid,
            relay_only: self.options.relay_only,
            mdns: self.options.mdns,
            trickle: self.options.session.relays_signals(),
            can_renegotiate: self.options.session.relays_signals(),
        };
        match Link::start(options, tag, self.link_events.clone()).await {
            Ok(link) => self.members[i].link = Some((tag, link)),
            Err(err) => tracing::warn!(%err, "could not start a peer connection"),
        }
    }

    async fn on_signal(&mut self, from: &str, signal: SignalPayload) {
        let Some(i) = self.index(from) else { return };
        let current = self.members[i].link.as_ref().map(|(_, l)| l.sid.clone());
        if current.as_deref() == Some(signal.sid.as_str()) {
            if let Some((_, link)) = &self.members[i].link {
                link.signal(signal);
            }
        } else if signal
            .description
            .as_ref()
            .is_some_and(|d| d.sdp_type == webrtc::peer_connection::RTCSdpType::Offer)
        {
            // Both sides started a connection at once: the one we started
            // wins if our id is the smaller; otherwise theirs replaces ours.
            let ours_wins = self.members[i]
                .link
                .as_ref()
                .is_some_and(|(_, l)| l.initiator() && !l.is_open())
                && self.self_id.as_deref().is_some_and(|me| me < from);
            if ours_wins {
                return;
            }
            // A new connection from them replaces whatever we had.
            self.members[i].link = None;
            self.start_link(i, Some(signal.sid.clone())).await;
            if let Some((_, link)) = &self.members[i].link {
                link.signal(signal);
            }
        }
    }

    async fn on_link(&mut self, tag: u64, event: LinkEvent) {
        let Some(i) = self
            .members
            .iter()
            .position(|m| m.link.as_ref().is_some_and(|(t, _)| *t == tag))
        else {
            return; // a link we replaced or dropped
        };
        match event {
            LinkEvent::Signal(payload) => {
                let Ok(raw) = serde_json::value::to_raw_value(&payload) else {
                    return;
                };
                let msg = ClientMessage::Signal {
                    to: self.members[i].id.as_str().into(),
                    payload: &raw,
                };
                self.signaling.send(msg.to_json());
            }
            LinkEvent::State(state) => {
                if self.members[i].state != state {
                    self.members[i].state = state;
                    self.emit(Event::MemberState {
                        member: self.members[i].peer(),
                        state,
                    });
                }
            }
            LinkEvent::Open => {
                self.members[i].relink_attempt = 0;
                let id = self.members[i].id.clone();
                if let Some(history) = &mut self.history {
                    let effects = history.link_opened(&id);
                    self.apply(i, effects, 0);
                }
            }
            LinkEvent::Message(text) => self.on_peer_message(i, &text),
            LinkEvent::Closed => self.on_link_closed(i),
        }
    }

    /// A member's connection ended. While the server still lists them, the
    /// side with the smaller peer id starts a new one after a backoff.
    fn on_link_closed(&mut self, i: usize) {
        self.members[i].link = None;
        let id = self.members[i].id.clone();
        if let Some(history) = &mut self.history {
            history.link_closed(&id);
        }
        // A pair has no server to find each other again: the member is gone.
        if !self.options.session.relays_signals() {
            self.remove_member(&id);
            return;
        }
        let Some(self_id) = self.self_id.clone() else {
            return;
        };
        let member = &mut self.members[i];
        if member.state != LinkState::Reconnecting {
            member.state = LinkState::Reconnecting;
            let peer = member.peer();
            self.emit(Event::MemberState {
                member: peer,
                state: LinkState::Reconnecting,
            });
        }
        // Without the server, wait: once we are back, the member list says
        // whom to reconnect to. A member it does not list is gone unless it
        // comes back soon.
        if !self.joined_now {
            return;
        }
        let member = &mut self.members[i];
        if !member.listed {
            let commands = self.commands.clone();
            let id = member.id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(GONE_AFTER).await;
                let _ = commands.send(Command::Gone(id));
            });
            return;
        }
        if self_id < member.id {
            let base = RELINK_MIN
                .saturating_mul(2u32.saturating_pow(member.relink_attempt))
                .min(RELINK_MAX);
            member.relink_attempt = member.relink_attempt.saturating_add(1);
            let delay = base / 2 + base.mul_f64(rand::random::<f64>() / 2.0);
            let commands = self.commands.clone();
            let id = member.id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = commands.send(Command::Relink(id));
            });
        }
    }

    fn on_peer_message(&mut self, i: usize, text: &str) {
        let (id, nick) = (self.members[i].id.clone(), self.members[i].nick.clone());
        let Some(history) = &mut self.history else {
            return;
        };
        let acked_before = history.acked_by(&id);
        match history.handle(&id, &nick, text, now_ms()) {
            Ok(effects) => self.apply(i, effects, acked_before),
            Err(err) => tracing::warn!(%err, from = %nick, "ignoring a malformed message"),
        }
    }

    /// Answers drain requests once no outbox holds anything, after the open
    /// links have flushed their send buffers.
    fn check_drains(&mut self) {
        if self.drains.is_empty() || !self.undelivered().is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.drains);
        let flushes: Vec<_> = self
            .members
            .iter()
            .filter_map(|m| m.link.as_ref().map(|(_, l)| l.handle()))
            .collect();
        tokio::spawn(async move {
            for flush in flushes {
                flush.drain().await;
            }
            for waiter in waiters {
                let _ = waiter.send(());
            }
        });
    }
}
