//! The peer engine: a room as seen by one member. It keeps the signaling
//! connection and one [`Link`] per member (full mesh), and turns all that
//! into [`Event`]s for whatever shows them (the terminal UI, line mode,
//! tests). It behaves like the web client's `room.js`.
//!
//! The engine is a driver with no rules of its own: the mesh (who starts a
//! link, glare, repairs, presence without the server, rejoining) is
//! [`peerchat_mesh::Mesh`], and the message log (ordering,
//! acknowledgements, history sync, typing) is [`peerchat_history::History`]:
//! the same state machines the web client runs in `mesh.js` and
//! `history.js`. The engine feeds them what the server, the links and the
//! front end say, with the time, and carries out what they answer.
//!
//! The engine is one task; [`Engine`] is a handle that sends it commands.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use peerchat_e2e::{
    Fingerprint, Hello, IdentityKey, PublicKey, Refusal, RoomCrypto, SafetyNumber, pin_name,
};
use peerchat_history::{Config as HistoryConfig, Effect, EntryKind, History, Message};
use peerchat_mesh::{Config as MeshConfig, Input, Mesh, Output, SignalKind};
use peerchat_protocol::ErrorCode;
use peerchat_protocol::signaling::{ClientMessage, IceServer};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::about::{AboutError, Quote, Shown};
use crate::pair::{BlobError, Code, CodeKind, Pairing};
use crate::peer::{
    Channel, Link, LinkEvent, LinkHandle, LinkOptions, LinkState, LinkStats, SignalPayload,
};
use crate::session::Session;
use crate::signaling::{ServerEvent, Signaling, SignalingEvent};
use webrtc::peer_connection::RTCSdpType;

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
    /// Whom to trust on `wss://` and `https://` (see [`crate::tls`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// How to speak to the signaling server.
    pub transport: crate::signaling::Transport,
    /// Our long-term identity key: it signs our hello on every connection.
    /// Keep it in a file ([`crate::identity`]) so that others recognise us.
    pub identity: Arc<IdentityKey>,
    /// Where files received are saved (created if missing); none: offers
    /// are shown but not fetched.
    pub download_dir: Option<std::path::PathBuf>,
    /// Offers up to this many bytes are fetched without asking; larger
    /// ones wait for [`Engine::accept_files`]. 0: none.
    pub accept_files: u64,
}

impl EngineOptions {
    /// Joins `session` as `nick`, with the defaults: no STUN/TURN servers
    /// besides the server's, direct connections allowed, mDNS resolution
    /// on, the message log's default limits, no history file, and a new
    /// identity key that lasts as long as the engine.
    pub fn new(session: Session, nick: impl Into<String>) -> Self {
        Self {
            session,
            nick: nick.into(),
            extra_ice_servers: Vec::new(),
            relay_only: false,
            mdns: true,
            history: HistoryConfig::default(),
            history_file: None,
            tls: crate::tls::default_config(),
            transport: crate::signaling::Transport::Auto,
            identity: Arc::new(IdentityKey::from_seed(rand::random())),
            download_dir: default_download_dir(),
            accept_files: files::DEFAULT_ACCEPT,
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
    /// Relayed by this member, and its author's key not confirmed yet:
    /// "relayed by X, not yet verified".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relayed_by: Option<Peer>,
    /// For a reply: what it answers, as that shows now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<Quote>,
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
    /// A member took a new nickname ("alice is now ally").
    MemberRenamed {
        /// Who, under the new nickname.
        member: Peer,
        /// The nickname it had.
        old: String,
    },
    /// Our rename went through: we are known by a new nickname.
    Renamed {
        /// Ourselves, under the new nickname.
        you: Peer,
        /// The nickname we had.
        old: String,
    },
    /// The server refused our rename; the nickname stays as it was.
    RenameRefused {
        /// Why, as a stable code.
        code: ErrorCode,
        /// Why, for people.
        message: String,
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
    /// What a message shows changed: it was edited or deleted, or its
    /// reactions changed (also told for messages from this device's
    /// history that were, after their `message` events).
    Changed {
        /// Its author.
        author: Peer,
        /// The author's number for it.
        seq: u64,
        /// What it shows now.
        shown: Shown,
    },
    /// The room's name changed (`name` empty: it has none now).
    RoomName {
        /// The name.
        name: String,
        /// Who set it.
        by: Peer,
    },
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
    /// Pairing by hand: the code pasted cannot be used (it is wanted
    /// again).
    CodeRefused {
        /// Why, for people.
        message: String,
    },
    /// Pairing failed (a mailbox refused, or nobody answered); nothing more
    /// will happen.
    PairingFailed {
        /// Why, for people.
        message: String,
    },
    /// A member's identity: its hello verified (and its key was checked
    /// against the one pinned for its nickname), or it was marked
    /// verified.
    MemberIdentity {
        /// Who.
        member: Peer,
        /// What we know of its key.
        identity: Identity,
    },
    /// A member's key is not the one pinned for its nickname earlier: its
    /// safety number has changed (an earlier verification is reset). Show
    /// it prominently.
    KeyChanged {
        /// Who.
        member: Peer,
    },
    /// A member's hello did not verify (or never came first): the
    /// connection to it was closed, and it shows as not verified.
    NotVerified {
        /// Who.
        member: Peer,
        /// What went wrong, for people.
        reason: String,
    },
    /// Messages attributed to `author`, from `by` (the author itself, or the
    /// member relaying them), were refused: their signatures do not verify.
    Forged {
        /// Whom they claimed as their author.
        author: Peer,
        /// Who sent them to us.
        by: Peer,
        /// How many, in one envelope.
        count: usize,
    },
    /// A message shown as relayed and not yet verified is verified now: its
    /// author's own hello confirmed the key it was signed with.
    MessageVerified {
        /// Its author.
        author: Peer,
        /// Its number.
        seq: u64,
    },
    /// A message shown as relayed and not yet verified was forged (its
    /// author's hello showed another key): take it off the screen.
    MessageRemoved {
        /// Whom it claimed as its author.
        author: Peer,
        /// Its number.
        seq: u64,
        /// Who relayed it.
        by: Peer,
    },
    /// A private message new to us, ours as sent or the other party's, live
    /// or kept from an earlier run: an entry of the private conversation
    /// with `with`, never part of the room's log. Show it marked private.
    PrivateMessage {
        /// The other party of the conversation.
        with: Peer,
        /// The message.
        message: ChatMessage,
    },
    /// A file was offered, in the room or privately (ours, as offered, or
    /// someone else's). Unless `waiting`, or it is ours, it is being
    /// fetched; `waiting` ones are fetched once accepted
    /// ([`Engine::accept_files`]).
    FileOffered {
        /// The offer.
        file: FileInfo,
        /// Larger than the auto-accept limit: waiting to be accepted.
        waiting: bool,
    },
    /// How far fetching a file is (told a few times a second at most).
    FileProgress {
        /// The file's id.
        fid: String,
        /// Its plain name.
        name: String,
        /// Bytes held.
        bytes: u64,
        /// Its size.
        size: u64,
        /// Nothing arrived for a while; it keeps trying.
        stalled: bool,
    },
    /// A file arrived whole, matched its offer's SHA-256, and was saved.
    FileSaved {
        /// The file's id.
        fid: String,
        /// Its plain name.
        name: String,
        /// Where it was saved.
        path: std::path::PathBuf,
        /// Its SHA-256, in lower-case hex.
        sha256: String,
        /// Bytes of it that arrived over the network in this run: less than
        /// its size when it resumed from pieces kept by an earlier run.
        received: u64,
    },
    /// Fetching a file ended without it: cancelled (by us or its author),
    /// it did not match its offer, or it could not be written. Nothing was
    /// saved.
    FileFailed {
        /// The file's id.
        fid: String,
        /// Its plain name.
        name: String,
        /// Why, for people.
        reason: String,
    },
    /// We withdrew our offer of a file (`/cancel`): the transfers serving
    /// it were cancelled (their receivers see it cancelled by its author),
    /// and it is not served any more.
    FileWithdrawn {
        /// The offer.
        file: FileInfo,
    },
    /// The other party of a private conversation now holds our message
    /// number `seq` of that conversation.
    PrivateDelivery {
        /// The other party.
        with: Peer,
        /// Our message's number in the conversation.
        seq: u64,
    },
    /// A signal was refused (it did not authenticate, was replayed, or came
    /// from a clock too far off): it changed nothing. Told at most once a
    /// minute per member and kind.
    SignalRefused {
        /// The sender, as the server named it.
        member: Peer,
        /// Why, as a stable code: `tampered`, `malformed`, `replayed`,
        /// `stale`, `clock_skew`.
        code: String,
        /// What happened, for people.
        message: String,
    },
}

mod files;
mod private;
pub use files::{FileError, FileInfo, default_download_dir};
pub use private::PrivateError;

/// How often a refused signal of one kind from one member is told.
const REFUSAL_NOTICE: std::time::Duration = std::time::Duration::from_secs(60);

/// What a refused signal means, for people.
pub fn refusal_text(nick: &str, refusal: &Refusal) -> String {
    match refusal {
        Refusal::Tampered => format!(
            "a signal from {nick} was altered in transit and refused (or {nick}'s room link has another secret)"
        ),
        Refusal::Malformed(_) => format!("a signal from {nick} was malformed and refused"),
        Refusal::ClockSkew { offset_ms } => {
            let minutes = offset_ms.unsigned_abs().div_ceil(60_000);
            format!("{nick}'s clock is {minutes} minutes off; signals from {nick} are refused")
        }
        Refusal::Replayed | Refusal::Stale => {
            format!("an earlier signal from {nick} was replayed and refused")
        }
    }
}

pub use peerchat_history::SendError;

/// A member's route, for the connection-details view.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStats {
    /// Who.
    pub member: Peer,
    /// The link state.
    pub state: LinkState,
    /// The route, when connected.
    pub stats: Option<LinkStats>,
    /// What we know of its identity, once its hello verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
}

/// What we know of a member's identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The user marked it verified, after comparing safety numbers.
    pub verified: bool,
    /// Its key is not the one pinned for its nickname earlier: its safety
    /// number changed.
    pub changed: bool,
}

/// A member's safety number with us, for `/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Safety {
    /// Who.
    pub member: Peer,
    /// 60 digits, in 12 groups of 5.
    pub safety_number: String,
    /// Whether it is marked verified.
    pub verified: bool,
}

/// Why a member's safety number cannot be shown or marked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No member has that nickname.
    #[error("nobody called {0:?} is here")]
    NoSuchMember(String),
    /// The member's hello has not verified yet: we do not know its key.
    #[error("{0}'s identity is not known yet: wait until you are connected")]
    NotYet(String),
    /// The engine stopped.
    #[error("not connected to the room")]
    Stopped,
}

enum Command {
    OfferFile(
        Option<String>,
        std::path::PathBuf,
        Box<peerchat_transfer::Digests>,
        files::OfferReply,
    ),
    AcceptFiles(Option<String>, oneshot::Sender<Vec<FileInfo>>),
    CancelFiles(Option<String>, oneshot::Sender<Vec<FileInfo>>),
    MemberNamed(String, oneshot::Sender<Option<Peer>>),
    Rename(String),
    SendPrivate(String, String, oneshot::Sender<Result<Peer, PrivateError>>),
    Safety(String, oneshot::Sender<Result<Safety, VerifyError>>),
    MarkVerified(String, oneshot::Sender<Result<Peer, VerifyError>>),
    Send(String),
    About(
        EntryKind,
        String,
        Option<String>,
        oneshot::Sender<Result<(), AboutError>>,
    ),
    ClearHistory,
    Typed,
    Join(String),
    Drain(oneshot::Sender<()>),
    Undelivered(oneshot::Sender<Vec<(Peer, usize)>>),
    Stats(oneshot::Sender<Vec<MemberLink>>),
    Messages(oneshot::Sender<Vec<ChatMessage>>),
    Code(Code),
    Leave(oneshot::Sender<()>),
}

/// A member, its link state, a handle to its link and its identity, for
/// [`Engine::stats`].
type MemberLink = (Peer, LinkState, Option<LinkHandle>, Option<Identity>);

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
        let turn_bridges = crate::turn_bridge::TurnBridges::new(options.tls.clone());
        let (pasted, pasted_rx) = mpsc::unbounded_channel();
        let signaling = match &options.session {
            Session::Room { ws_url, .. } => Signaling::spawn(
                ws_url.clone(),
                options.tls.clone(),
                options.transport,
                signaling_tx,
            ),
            Session::Manual(role, secret) => crate::pair::spawn(
                crate::pair::Channel::Manual(*role, secret.clone()),
                options.nick.clone(),
                signaling_tx,
                pasted_rx,
            ),
            Session::Mailbox {
                ws_url,
                id,
                secret,
                made,
            } => crate::pair::spawn(
                crate::pair::Channel::Mailbox {
                    server: ws_url.clone(),
                    id: id.clone(),
                    secret: secret.clone(),
                    made: *made,
                },
                options.nick.clone(),
                signaling_tx,
                pasted_rx,
            ),
        };
        let (store, saved, key) = open_store(&options);
        // The room's signals are sealed with its secret; a pair's go by
        // other ways (connection codes, the mailbox).
        let context = match &options.session {
            Session::Room { room, .. } => peerchat_e2e::Context::room(room).ok(),
            Session::Mailbox { id, .. } => peerchat_e2e::Context::mailbox(id).ok(),
            Session::Manual(..) => None,
        }
        .unwrap_or(peerchat_e2e::Context::Code);
        let crypto = match &options.session {
            Session::Room { room, secret, .. } => {
                peerchat_e2e::Context::room(room).ok().map(|context| {
                    let me = peerchat_protocol::peer_id_from_key(room, &key);
                    RoomCrypto::new(secret, context, me, rand::random())
                })
            }
            _ => None,
        };
        let mesh_config = if options.session.relays_signals() {
            MeshConfig::default()
        } else {
            MeshConfig::pair()
        };
        let state = State {
            store,
            saved,
            key,
            crypto,
            context,
            known: HashMap::new(),
            pins: HashMap::new(),
            deferred: Vec::new(),
            refusals_told: HashMap::new(),
            history: None,
            private: None,
            files: files::Files::new(options.download_dir.clone(), options.accept_files),
            nick: options.nick.clone(),
            options,
            signaling,
            mesh: Mesh::new(mesh_config, rand::random()),
            clock: Instant::now(),
            ice_servers: Vec::new(),
            turn_bridges,
            links: HashMap::new(),
            nicks: HashMap::new(),
            renaming: false,
            events,
            link_events: link_tx,
            next_link: 0,
            drains: Vec::new(),
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
        peerchat_history::check_text(text)?;
        self.commands
            .send(Command::Send(text.to_owned()))
            .map_err(|_| SendError::Stopped)
    }

    /// Sends `text` privately to the member called `nick`: only over the
    /// link to that member, kept here in the conversation with it, never in
    /// the room's history. It comes back as an [`Event::PrivateMessage`];
    /// if the link is not open, it goes when it opens.
    pub async fn send_private(&self, nick: &str, text: &str) -> Result<Peer, PrivateError> {
        peerchat_history::check_text(text)?;
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::SendPrivate(nick.to_owned(), text.to_owned(), tx))
            .map_err(|_| PrivateError::Send(SendError::Stopped))?;
        rx.await
            .map_err(|_| PrivateError::Send(SendError::Stopped))?
    }

    /// Offers the file at `path` to the room, or privately to the member
    /// called `to`: it is hashed here (read from disk piece by piece), its
    /// offer goes into the log, and it is served to whoever fetches it
    /// while the engine runs.
    pub async fn offer_file(
        &self,
        to: Option<&str>,
        path: &std::path::Path,
    ) -> Result<FileInfo, FileError> {
        let (path, digests) = files::hash_off_engine(path.to_owned()).await?;
        let (tx, rx) = oneshot::channel();
        let stopped = || FileError::Send(SendError::Stopped);
        self.commands
            .send(Command::OfferFile(
                to.map(str::to_owned),
                path,
                Box::new(digests),
                tx,
            ))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Fetches the offers waiting to be accepted (over the auto-accept
    /// limit) whose plain name (or id) is `name`, or all of them.
    pub async fn accept_files(&self, name: Option<&str>) -> Vec<FileInfo> {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::AcceptFiles(name.map(str::to_owned), tx));
        rx.await.unwrap_or_default()
    }

    /// Stops fetching the files whose plain name (or id) is `name`, or all
    /// of them (what arrived of them is deleted), and withdraws our offers
    /// of that name, or all those being served (told as
    /// [`Event::FileWithdrawn`]): what was stopped or withdrawn.
    pub async fn cancel_files(&self, name: Option<&str>) -> Vec<FileInfo> {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::CancelFiles(name.map(str::to_owned), tx));
        rx.await.unwrap_or_default()
    }

    /// The member called `nick`, if one is in the room.
    pub async fn member(&self, nick: &str) -> Option<Peer> {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::MemberNamed(nick.to_owned(), tx));
        rx.await.ok().flatten()
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
    /// [`Event::CodeWanted`]); read it with [`Code::parse`]. A code that
    /// cannot be used is told ([`Event::CodeRefused`]) and wanted again.
    pub fn paste_code(&self, code: Code) {
        let _ = self.commands.send(Command::Code(code));
    }

    /// Asks the server for a new nickname in the room: answered by
    /// [`Event::Renamed`] or [`Event::RenameRefused`].
    pub fn rename(&self, nick: &str) {
        let _ = self.commands.send(Command::Rename(nick.to_owned()));
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

    /// Our safety number with the member called `nick`, to compare out of
    /// band (`/verify`).
    pub async fn safety_number(&self, nick: &str) -> Result<Safety, VerifyError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Safety(nick.to_owned(), tx))
            .map_err(|_| VerifyError::Stopped)?;
        rx.await.map_err(|_| VerifyError::Stopped)?
    }

    /// Marks the member called `nick` verified: its safety number was
    /// compared out of band (`/verified`). The mark is kept with its pinned
    /// key, and reset if the key changes.
    pub async fn mark_verified(&self, nick: &str) -> Result<Peer, VerifyError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::MarkVerified(nick.to_owned(), tx))
            .map_err(|_| VerifyError::Stopped)?;
        rx.await.map_err(|_| VerifyError::Stopped)?
    }

    /// Adds an entry of `kind` to the room's log: a reply (`text`) to,
    /// a reaction (`text`, the emoji) to or its withdrawal from the latest
    /// message of the member called `nick` (of anyone, without a nick); an
    /// edit (`text`) or the deletion of our own latest message; the room's
    /// name (`text`, empty to clear it).
    pub async fn about(
        &self,
        kind: EntryKind,
        text: &str,
        nick: Option<&str>,
    ) -> Result<(), AboutError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || AboutError::Send(SendError::Stopped);
        self.commands
            .send(Command::About(
                kind,
                text.to_owned(),
                nick.map(str::to_owned),
                tx,
            ))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
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
        for (member, state, probe, identity) in links {
            let stats = match probe {
                Some(link) => link.stats().await,
                None => None,
            };
            out.push(MemberStats {
                member,
                state,
                stats,
                identity,
            });
        }
        out
    }

    /// The room's history as this device keeps it (what the history file
    /// holds), in the room's order.
    pub async fn messages(&self) -> Vec<ChatMessage> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Messages(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
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

/// The current link to a member.
struct Current {
    /// Tags its events.
    tag: u64,
    link: Link,
    /// Ours and theirs, once its channel opened.
    fingerprints: Option<(Fingerprint, Fingerprint)>,
    /// Their identity key, once their hello verified: only then does chat
    /// flow.
    verified: Option<PublicKey>,
    /// `file` channels they opened before their hello verified (they may
    /// have verified ours first and asked at once): served once it does, at
    /// most [`files::MAX_FILE_CHANNELS_BEFORE_HELLO`]; they close with the
    /// link otherwise.
    early_files: Vec<Channel>,
}

impl Current {
    /// Whether chat may be sent over it: open, and their hello verified.
    fn usable(&self) -> bool {
        self.verified.is_some() && self.link.is_open()
    }
}

/// What an input to the mesh came with: the signal's payload, the error's
/// message.
#[derive(Default)]
struct Context {
    payload: Option<SignalPayload>,
    message: Option<String>,
}

struct State {
    /// The history file, if any.
    store: Option<Kept>,
    /// What the history file held, until the log takes it.
    saved: Option<peerchat_history::Saved>,
    /// Our member key: the server derives our peer id from it, so a
    /// reconnect comes back as the same member.
    key: String,
    /// Seals and opens the room's signals (none for a pair).
    crypto: Option<RoomCrypto>,
    /// What hellos (and messages) are bound to: the room, the mailbox, or
    /// connection codes.
    context: peerchat_e2e::Context,
    /// The identity key each member's hello verified with in this session
    /// (a later hello from the same peer id with another key is refused),
    /// and what we know of it.
    known: HashMap<String, Known>,
    /// Pins kept only while running, when there is no history file.
    pins: HashMap<(String, String), (PublicKey, bool)>,
    /// Inputs for the mesh that carrying out its outputs gave rise to.
    deferred: Vec<Input>,
    /// When a refused signal was last told, by sender and kind.
    refusals_told: HashMap<(String, &'static str), Instant>,
    /// The message log, once we know our peer id.
    history: Option<History>,
    /// The private conversations, once we know our peer id.
    private: Option<peerchat_history::private::Conversations>,
    /// Files offered, held and fetched.
    files: files::Files,
    options: EngineOptions,
    nick: String,
    signaling: Signaling,
    /// The mesh rules.
    mesh: Mesh,
    /// The mesh's time is milliseconds since then.
    clock: Instant,
    ice_servers: Vec<IceServer>,
    /// Bridges to relays reached over TCP or TLS (webrtc-rs speaks TURN
    /// over UDP only).
    turn_bridges: crate::turn_bridge::TurnBridges,
    /// By peer id.
    links: HashMap<String, Current>,
    /// The last known nickname of every member seen.
    nicks: HashMap<String, String>,
    /// A `rename` of ours is waiting for its answer: an error that may
    /// answer it is told as [`Event::RenameRefused`].
    renaming: bool,
    events: mpsc::UnboundedSender<Event>,
    link_events: mpsc::UnboundedSender<(u64, LinkEvent)>,
    next_link: u64,
    drains: Vec<oneshot::Sender<()>>,
    /// Connection codes pasted by hand, to the pair transport.
    pasted: mpsc::UnboundedSender<Code>,
}

impl State {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut signaling: mpsc::UnboundedReceiver<SignalingEvent>,
        mut links: mpsc::UnboundedReceiver<(u64, LinkEvent)>,
    ) {
        // The engine joins right away.
        self.feed(Input::Join {}, Context::default()).await;
        loop {
            let deadline = self
                .mesh
                .next_deadline()
                .map(|ms| self.clock + std::time::Duration::from_millis(ms));
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
                () = sleep_until(deadline), if deadline.is_some() => {
                    let outputs = self.mesh.handle_timeout(self.now());
                    self.carry_out(outputs, Context::default()).await;
                    self.settle().await;
                }
            }
            self.check_drains();
        }
        self.close_links().await;
    }

    /// Milliseconds since the engine started: the mesh's time.
    fn now(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn close_links(&mut self) {
        let links: Vec<Link> = self.links.drain().map(|(_, c)| c.link).collect();
        futures_util::future::join_all(links.into_iter().map(Link::close)).await;
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Hands the mesh an input, and carries out what it answers (and what
    /// the inputs that this gave rise to answer).
    async fn feed(&mut self, input: Input, context: Context) {
        let outputs = self.mesh.handle(self.now(), input);
        self.carry_out(outputs, context).await;
        self.settle().await;
    }

    /// Feeds the mesh the inputs that carrying out its outputs gave rise to
    /// (a hello that could not be made), until there are none.
    async fn settle(&mut self) {
        while !self.deferred.is_empty() {
            let input = self.deferred.remove(0);
            let outputs = self.mesh.handle(self.now(), input);
            self.carry_out(outputs, Context::default()).await;
        }
    }

    async fn carry_out(&mut self, outputs: Vec<Output>, mut context: Context) {
        for output in outputs {
            match output {
                Output::Join {} => self.send_join(),
                Output::JoinRefused { code } => {
                    if code == ErrorCode::Replaced {
                        // Another connection holds our place: stop here.
                        self.signaling = Signaling::stopped();
                    }
                    let message = context.message.take().unwrap_or_default();
                    self.emit(Event::JoinRefused { code, message });
                }
                Output::Entered { first } => {
                    if first {
                        let you = Peer {
                            id: self.mesh.me().unwrap_or_default().to_owned(),
                            nick: self.nick.clone(),
                        };
                        let members = self.mesh.members().map(peer).collect();
                        self.emit(Event::Joined { you, members });
                    }
                }
                Output::Added {
                    peer,
                    nick,
                    announce,
                } => {
                    self.nicks.insert(peer.clone(), nick.clone());
                    if announce {
                        self.emit(Event::MemberJoined {
                            member: Peer { id: peer, nick },
                        });
                    }
                }
                Output::Renamed { peer, nick } => {
                    let old = self.nicks.insert(peer.clone(), nick.clone());
                    match old {
                        Some(old) if self.options.session.room().is_some() => {
                            self.carry_pin(&peer, &nick);
                            self.emit(Event::MemberRenamed {
                                member: Peer { id: peer, nick },
                                old,
                            });
                        }
                        // A pair learns the other's nickname only from its
                        // answer.
                        _ => self.emit(Event::MemberJoined {
                            member: Peer { id: peer, nick },
                        }),
                    }
                }
                Output::Removed { peer, .. } => {
                    self.links.remove(&peer);
                    if let Some(history) = &mut self.history {
                        history.link_closed(&peer);
                    }
                    self.private_link_closed(&peer);
                    self.files_peer_down(&peer);
                    let member = self.peer_of(&peer);
                    self.emit(Event::MemberLeft { member });
                }
                Output::State { peer, state } => {
                    let member = self.peer_of(&peer);
                    self.emit(Event::MemberState { member, state });
                }
                Output::Start { peer, sid } => self.start_link(peer, sid, true).await,
                Output::Accept { peer, sid } => {
                    self.start_link(peer.clone(), sid, false).await;
                    if let (Some(current), Some(payload)) =
                        (self.links.get(&peer), context.payload.take())
                    {
                        current.link.signal(payload);
                    }
                }
                Output::Forward { peer, sid } => {
                    if let (Some(current), Some(payload)) = (
                        self.links.get(&peer).filter(|c| c.link.sid == sid),
                        context.payload.take(),
                    ) {
                        current.link.signal(payload);
                    }
                }
                Output::Drop { peer, sid } => {
                    if self.links.get(&peer).is_some_and(|c| c.link.sid == sid) {
                        // Dropping the handle closes the link.
                        self.links.remove(&peer);
                    }
                }
                Output::RestartIce { peer, sid } => {
                    if let Some(current) = self.links.get(&peer).filter(|c| c.link.sid == sid) {
                        current.link.restart_ice();
                    }
                }
                Output::Hello { peer, sid } => self.send_hello(&peer, &sid),
                Output::Up { peer, .. } => {
                    if let Some(history) = &mut self.history {
                        let effects = history.link_opened(&peer);
                        self.apply(&peer, effects, 0);
                    }
                    self.private_link_opened(&peer);
                    self.files_peer_up(&peer);
                }
                Output::Down { peer } => {
                    // Channels that waited for a hello on a link now down.
                    let early = self
                        .links
                        .get_mut(&peer)
                        .map(|c| std::mem::take(&mut c.early_files))
                        .unwrap_or_default();
                    for Channel(dc) in early {
                        files::close_in_background(dc);
                    }
                    if let Some(history) = &mut self.history {
                        history.link_closed(&peer);
                    }
                    self.private_link_closed(&peer);
                    self.files_peer_down(&peer);
                }
            }
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Send(text) => self.send_message(&text),
            Command::OfferFile(to, path, digests, reply) => {
                let _ = reply.send(self.offer_file(to.as_deref(), path, *digests));
            }
            Command::AcceptFiles(name, reply) => {
                let _ = reply.send(self.accept_files(name.as_deref()));
            }
            Command::CancelFiles(name, reply) => {
                let _ = reply.send(self.cancel_files(name.as_deref()));
            }
            Command::MemberNamed(nick, reply) => {
                let _ = reply.send(self.member_named(&nick).map(|id| self.peer_of(&id)));
            }
            Command::SendPrivate(nick, text, reply) => {
                let _ = reply.send(self.send_private(&nick, &text));
            }
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
                    for current in self.links.values().filter(|c| c.usable()) {
                        current.link.send(envelope.clone());
                    }
                }
            }
            Command::Rename(nick) => {
                if let Err(err) = peerchat_protocol::validate_nick(&nick) {
                    self.emit(Event::RenameRefused {
                        code: err.code(),
                        message: err.to_string(),
                    });
                } else if self.options.session.room().is_none() || self.mesh.me().is_none() {
                    self.emit(Event::RenameRefused {
                        code: ErrorCode::NotJoined,
                        message: "you can rename yourself once you are in a room".to_owned(),
                    });
                } else {
                    self.signaling.send(ClientMessage::rename(&nick).to_json());
                    self.renaming = true;
                }
            }
            Command::Join(nick) => {
                self.nick = nick;
                self.feed(Input::Join {}, Context::default()).await;
            }
            Command::Drain(reply) => self.drains.push(reply),
            Command::Undelivered(reply) => {
                let _ = reply.send(self.undelivered());
            }
            Command::Stats(reply) => {
                // Hand out handles, so stats are gathered without holding
                // up the engine.
                let _ = reply.send(
                    self.mesh
                        .members()
                        .map(|m| {
                            let handle = self.links.get(m.id()).map(|c| c.link.handle());
                            let identity = self.known.get(m.id()).map(|k| k.identity);
                            (peer(m), m.state(), handle, identity)
                        })
                        .collect(),
                );
            }
            Command::Messages(reply) => {
                let messages = self.history.as_ref().map_or_else(Vec::new, |h| {
                    // What is shown as a message of its own, as it shows
                    // now: the last edit's text; deleted ones and file
                    // offers (told as such) left out.
                    h.messages()
                        .filter(|m| m.file.is_none() && m.entry_kind().is_shown())
                        .filter_map(|m| {
                            let now = crate::about::shown(h, m);
                            (!now.deleted).then(|| Message {
                                text: now.text,
                                ..m.clone()
                            })
                        })
                        .collect::<Vec<_>>()
                });
                let _ = reply.send(messages.into_iter().map(|m| self.view(m)).collect());
            }
            Command::Code(blob) => {
                let _ = self.pasted.send(blob);
            }
            Command::Safety(nick, reply) => {
                let _ = reply.send(self.safety(&nick));
            }
            Command::MarkVerified(nick, reply) => {
                let _ = reply.send(self.mark_verified(&nick));
            }
            Command::About(kind, text, nick, reply) => {
                let _ = reply.send(self.send_about(kind, &text, nick.as_deref()));
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
        let mut counts: HashMap<String, usize> = HashMap::new();
        for m in history.messages().filter(|m| m.author == history.me()) {
            for id in history.delivery(m.seq).waiting {
                *counts.entry(id).or_default() += 1;
            }
        }
        self.mesh
            .members()
            .filter_map(|m| counts.get(m.id()).map(|n| (peer(m), *n)))
            .collect()
    }

    fn send_about(
        &mut self,
        kind: EntryKind,
        text: &str,
        nick: Option<&str>,
    ) -> Result<(), AboutError> {
        let recipients: Vec<String> = self.mesh.members().map(|m| m.id().to_owned()).collect();
        let identity = self.options.identity.clone();
        let Some(history) = self.history.as_mut() else {
            return Err(AboutError::Send(SendError::Stopped));
        };
        let re = match kind {
            EntryKind::RoomName => None,
            _ => Some(crate::about::target(history, kind, nick)?),
        };
        let id = crate::random_id();
        let (message, envelope) = history.send_about(
            &identity,
            &id,
            &self.nick,
            kind,
            text,
            re,
            now_ms(),
            recipients,
        )?;
        self.persist(std::slice::from_ref(&message), true);
        for current in self.links.values().filter(|c| c.usable()) {
            current.link.send(envelope.clone());
        }
        if message.entry_kind().is_shown() {
            let view = self.view(message);
            self.emit(Event::Message(view));
        } else {
            self.applied(&message);
        }
        Ok(())
    }

    /// Tells what an entry about another one (or a room name) changed.
    fn applied(&self, m: &Message) {
        let Some(history) = &self.history else {
            return;
        };
        if m.kind == EntryKind::RoomName {
            if let Some(name) = history.room_name() {
                let by = self.peer_of(&name.author);
                self.emit(Event::RoomName {
                    name: name.text,
                    by,
                });
            }
        } else if let Some(target) = m.re.as_ref().and_then(|re| history.get(&re.author, re.seq)) {
            self.emit(Event::Changed {
                author: self.peer_of(&target.author),
                seq: target.seq,
                shown: crate::about::shown(history, target),
            });
        }
    }

    fn send_message(&mut self, text: &str) {
        let recipients: Vec<String> = self.mesh.members().map(|m| m.id().to_owned()).collect();
        let Some(history) = self.history.as_mut() else {
            tracing::warn!("not in the room yet; message dropped");
            return;
        };
        let identity = self.options.identity.clone();
        match history.send(
            &identity,
            &crate::random_id(),
            &self.nick,
            text,
            now_ms(),
            recipients,
        ) {
            Ok((message, envelope)) => {
                self.persist(std::slice::from_ref(&message), true);
                for current in self.links.values().filter(|c| c.usable()) {
                    current.link.send(envelope.clone());
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
        let relayed_by = m.relayed_by.as_deref().map(|by| self.peer_of(by));
        let quote = self
            .history
            .as_ref()
            .and_then(|h| crate::about::quote(h, &m));
        ChatMessage {
            quote,
            relayed_by,
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

    /// A member, or someone who was one, by peer id.
    fn peer_of(&self, id: &str) -> Peer {
        let nick = self
            .mesh
            .member(id)
            .map(|m| m.nick().to_owned())
            .or_else(|| self.nicks.get(id).cloned())
            .or_else(|| {
                let history = self.history.as_ref()?;
                let mut theirs = history.messages().rev().filter(|m| m.author == id);
                theirs.next().map(|m| m.nick.clone())
            })
            .unwrap_or_else(|| id.chars().take(6).collect());
        Peer {
            id: id.to_owned(),
            nick,
        }
    }

    /// Carries out what the message log asks for, after an envelope from
    /// `from` (whose acknowledgement was `acked_before`).
    fn apply(&mut self, from: &str, effects: Vec<Effect>, acked_before: u64) {
        // Signatures are checked here and now: what the log answers takes
        // the place of its request.
        let mut resolved = Vec::with_capacity(effects.len());
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Verify(check) => {
                    let results: Vec<bool> = check.items.iter().map(|i| i.verify()).collect();
                    if let Some(history) = &mut self.history {
                        for (i, e) in history.verified(check.id, &results).into_iter().enumerate() {
                            queue.insert(i, e);
                        }
                    }
                }
                other => resolved.push(other),
            }
        }
        let effects = resolved;
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
        let mut forged: Vec<(String, String)> = Vec::new();
        for effect in effects {
            match effect {
                // Edits, deletions, reactions and room names are not
                // messages of their own: not shown as such.
                Effect::Added(message) if message.entry_kind().is_shown() => {
                    if let Some(file) = &message.file {
                        self.file_offered(&message.author, file, None, false);
                        continue;
                    }
                    let view = self.view(message);
                    self.emit(Event::Message(view));
                }
                Effect::Added(message) => self.applied(&message),
                Effect::Send { to, text } => {
                    if let Some(current) = self.links.get(&to).filter(|c| c.usable()) {
                        current.link.send(text);
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
                Effect::Refused { author, seq } => {
                    tracing::debug!(%author, seq, "a message that breaks a rule counts as received");
                }
                Effect::Forged { author, seq, by } => {
                    tracing::warn!(%author, seq, %by, "refused a message whose signature does not verify");
                    forged.push((author, by));
                }
                Effect::Confirmed { author, seq } => {
                    let message = self
                        .history
                        .as_ref()
                        .and_then(|h| h.get(&author, seq).cloned());
                    if let Some(message) = message {
                        self.persist_update(&message);
                    }
                    let author = self.peer_of(&author);
                    self.emit(Event::MessageVerified { author, seq });
                }
                Effect::Removed { author, seq, by } => {
                    tracing::warn!(%author, seq, %by, "removed a relayed message found forged");
                    if let Some(Kept { file, room }) = &mut self.store {
                        if let Err(err) = file.remove(room, &author, seq) {
                            tracing::warn!(%err, "could not remove a forged message");
                        }
                    }
                    let (author, by) = (self.peer_of(&author), self.peer_of(&by));
                    self.emit(Event::MessageRemoved { author, seq, by });
                }
                Effect::Verify(_) => {}
                Effect::Typing { author } => {
                    if author == from {
                        let member = self.peer_of(from);
                        self.emit(Event::Typing { member });
                    }
                }
            }
        }
        // Told once per author and sender, however many there were.
        let mut told: Vec<(String, String)> = Vec::new();
        for pair in &forged {
            if told.contains(pair) {
                continue;
            }
            told.push(pair.clone());
            let count = forged.iter().filter(|p| *p == pair).count();
            let (author, by) = (self.peer_of(&pair.0), self.peer_of(&pair.1));
            self.emit(Event::Forged { author, by, count });
        }
    }

    /// Rewrites a kept message (one verified since it was kept).
    fn persist_update(&mut self, message: &Message) {
        if let Some(Kept { file, room }) = &mut self.store {
            if let Err(err) = file.update(room, message) {
                tracing::warn!(%err, "could not save history");
            }
        }
    }

    async fn on_signaling(&mut self, event: SignalingEvent) {
        match event {
            SignalingEvent::Connecting => {
                self.emit(Event::Server {
                    state: ServerState::Connecting,
                    retry_in_ms: None,
                });
                let input = Input::Server(peerchat_mesh::ServerState::Connecting);
                self.feed(input, Context::default()).await;
            }
            SignalingEvent::Open => {
                self.emit(Event::Server {
                    state: ServerState::Online,
                    retry_in_ms: None,
                });
                let input = Input::Server(peerchat_mesh::ServerState::Open);
                self.feed(input, Context::default()).await;
            }
            SignalingEvent::Offline { retry_in } => {
                self.emit(Event::Server {
                    state: ServerState::Offline,
                    retry_in_ms: Some(retry_in.as_millis() as u64),
                });
                let input = Input::Server(peerchat_mesh::ServerState::Offline);
                self.feed(input, Context::default()).await;
            }
            SignalingEvent::Message(message) => self.on_server(message).await,
            SignalingEvent::Pairing(Pairing::Show { kind, code }) => {
                self.emit(Event::ConnectionCode { kind, code });
            }
            SignalingEvent::Pairing(Pairing::Wanted(kind)) => {
                self.emit(Event::CodeWanted { kind });
            }
            SignalingEvent::Pairing(Pairing::Refused(err)) => {
                self.emit(Event::CodeRefused {
                    message: BlobError::to_string(&err),
                });
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
                if self.mesh.me() != Some(you.id.as_str()) {
                    self.new_history(&you.id);
                }
                if let Some(crypto) = &mut self.crypto {
                    if crypto.me() != you.id {
                        crypto.set_me(you.id.clone());
                    }
                }
                self.nick = you.nick.clone();
                let mut servers = ice_servers;
                servers.extend(self.options.extra_ice_servers.iter().cloned());
                self.ice_servers = self.turn_bridges.rewrite(servers).await;
                let members = members
                    .into_iter()
                    .map(|m| peerchat_mesh::Peer {
                        id: m.id,
                        nick: m.nick,
                    })
                    .collect();
                let input = Input::Joined {
                    you: you.id,
                    members,
                    resumed: false,
                };
                self.feed(input, Context::default()).await;
            }
            ServerEvent::PeerJoined(peer) => {
                let input = Input::PeerJoined(peerchat_mesh::Peer {
                    id: peer.id,
                    nick: peer.nick,
                });
                self.feed(input, Context::default()).await;
            }
            ServerEvent::Renamed(you) => {
                self.renaming = false;
                let old = std::mem::replace(&mut self.nick, you.nick.clone());
                // Started again under the new nickname, this device takes
                // the same membership back.
                if let (Some(Kept { file, .. }), Some(room)) =
                    (&self.store, self.options.session.room())
                {
                    let key = self.key.clone();
                    if let Err(err) = file.key(room, &you.nick, || key) {
                        tracing::warn!(%err, "could not keep the member key under the new nickname");
                    }
                }
                if old != you.nick {
                    self.emit(Event::Renamed {
                        you: Peer {
                            id: you.id,
                            nick: you.nick,
                        },
                        old,
                    });
                }
            }
            ServerEvent::PeerRenamed(peer) => {
                let input = Input::PeerRenamed(peerchat_mesh::Peer {
                    id: peer.id,
                    nick: peer.nick,
                });
                self.feed(input, Context::default()).await;
            }
            ServerEvent::PeerLeft(id) => {
                self.feed(Input::PeerLeft { id }, Context::default()).await
            }
            ServerEvent::IceServers(ice_servers) => {
                // New TURN credentials, for the links started from now on.
                let mut servers = ice_servers;
                servers.extend(self.options.extra_ice_servers.iter().cloned());
                self.ice_servers = self.turn_bridges.rewrite(servers).await;
            }
            ServerEvent::Signal { from, payload } => {
                let Ok(mut value) = serde_json::from_str::<serde_json::Value>(payload.get()) else {
                    return;
                };
                if let Some(crypto) = &mut self.crypto {
                    match crypto.open(&from, &value, now_ms()) {
                        Ok(plain) => value = serde_json::Value::Object(plain.payload),
                        Err(refusal) => {
                            self.refused(&from, &refusal);
                            return;
                        }
                    }
                }
                let signal = match serde_json::from_value::<SignalPayload>(value) {
                    Ok(signal) => signal,
                    Err(err) => {
                        tracing::debug!(%err, %from, "ignoring a malformed signal");
                        return;
                    }
                };
                let kind = match (&signal.description, &signal.candidate) {
                    (Some(d), _) if d.sdp_type == RTCSdpType::Offer => SignalKind::Offer,
                    (Some(d), _) if d.sdp_type == RTCSdpType::Answer => SignalKind::Answer,
                    (None, Some(_)) => SignalKind::Candidate,
                    _ => return,
                };
                let input = Input::Signal {
                    from,
                    sid: signal.sid.clone(),
                    kind,
                };
                let context = Context {
                    payload: Some(signal),
                    message: None,
                };
                self.feed(input, context).await;
            }
            ServerEvent::Error { code, message, to } => {
                let answers_rename = matches!(
                    code,
                    ErrorCode::NickTaken
                        | ErrorCode::BadNick
                        | ErrorCode::BadMessage
                        | ErrorCode::UnknownType
                        | ErrorCode::NotJoined
                        | ErrorCode::RateLimited
                );
                if self.renaming && answers_rename && self.mesh.me().is_some() {
                    self.renaming = false;
                    let message = if code == ErrorCode::UnknownType {
                        "this server cannot rename members yet; leave and join again under the new nickname"
                            .to_owned()
                    } else {
                        message
                    };
                    self.emit(Event::RenameRefused { code, message });
                    return;
                }
                match code {
                    ErrorCode::PeerAway => {}
                    ErrorCode::ShuttingDown => {
                        tracing::info!("the server is shutting down; rejoining when it is back");
                    }
                    _ => tracing::debug!(%code, %message, "server error"),
                }
                let context = Context {
                    payload: None,
                    message: Some(message),
                };
                self.feed(Input::Error { code, to }, context).await;
            }
        }
    }

    /// Our id (derived from our key) is known at the first join; a server
    /// that gives another one numbers our messages under it.
    fn new_history(&mut self, me: &str) {
        let mut history = History::new(me.to_owned(), self.options.history)
            .with_identity(self.context.clone(), &self.options.identity.public_key());
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
        self.new_conversations(me);
        let mut changed = Vec::new();
        for message in restored.into_iter().filter(|m| m.entry_kind().is_shown()) {
            if let Some(file) = &message.file {
                self.file_offered(&message.author, file, None, true);
                continue;
            }
            if let Some(history) = &self.history {
                let shown = crate::about::shown(history, &message);
                if shown.edited || shown.deleted || !shown.reactions.is_empty() {
                    changed.push((message.author.clone(), message.seq, shown));
                }
            }
            let view = ChatMessage {
                stored: true,
                ..self.view(message)
            };
            self.emit(Event::Message(view));
        }
        for (author, seq, shown) in changed {
            let author = self.peer_of(&author);
            self.emit(Event::Changed { author, seq, shown });
        }
        if let Some(name) = self.history.as_ref().and_then(History::room_name) {
            let by = self.peer_of(&name.author);
            self.emit(Event::RoomName {
                name: name.text,
                by,
            });
        }
    }

    async fn start_link(&mut self, peer: String, sid: String, initiator: bool) {
        let Some(self_id) = self.mesh.me().map(str::to_owned) else {
            return;
        };
        self.next_link += 1;
        let tag = self.next_link;
        let options = LinkOptions {
            self_id,
            peer_id: peer.clone(),
            ice_servers: self.ice_servers.clone(),
            sid,
            initiator,
            relay_only: self.options.relay_only,
            mdns: self.options.mdns,
            trickle: self.options.session.relays_signals(),
        };
        match Link::start(options, tag, self.link_events.clone()).await {
            Ok(link) => {
                let current = Current {
                    tag,
                    link,
                    fingerprints: None,
                    verified: None,
                    early_files: Vec::new(),
                };
                self.links.insert(peer, current);
            }
            Err(err) => tracing::warn!(%err, "could not start a peer connection"),
        }
    }

    async fn on_link(&mut self, tag: u64, event: LinkEvent) {
        let Some((peer, sid)) = self
            .links
            .iter()
            .find(|(_, c)| c.tag == tag)
            .map(|(peer, c)| (peer.clone(), c.link.sid.clone()))
        else {
            return; // a link we replaced or dropped
        };
        match event {
            LinkEvent::Signal(payload) => {
                let Ok(serde_json::Value::Object(plain)) = serde_json::to_value(&payload) else {
                    return;
                };
                let sealed = match &mut self.crypto {
                    Some(crypto) => match crypto.seal(&peer, &plain, now_ms()) {
                        Ok(sealed) => sealed,
                        Err(err) => {
                            tracing::warn!(%err, "could not seal a signal");
                            return;
                        }
                    },
                    None => serde_json::Value::Object(plain),
                };
                let Ok(raw) = serde_json::value::to_raw_value(&sealed) else {
                    return;
                };
                let msg = ClientMessage::Signal {
                    to: peer.as_str().into(),
                    payload: &raw,
                };
                self.signaling.send(msg.to_json());
            }
            LinkEvent::Transport(state) => {
                self.feed(Input::Transport { sid, state }, Context::default())
                    .await;
            }
            LinkEvent::Open { local, remote } => {
                if let Some(current) = self.links.get_mut(&peer) {
                    current.fingerprints = Some((local, remote));
                }
                self.feed(Input::LinkOpened { sid }, Context::default())
                    .await
            }
            LinkEvent::Message(text) => self.on_peer_message(&peer, &sid, &text).await,
            LinkEvent::FileChannel(channel) => self.file_channel(&peer, channel),
            LinkEvent::Closed => {
                // Its task has ended: the handle is of no more use.
                self.links.remove(&peer);
                self.feed(Input::LinkClosed { sid }, Context::default())
                    .await;
            }
        }
    }

    /// A signal was refused: logged, and told (rate-limited).
    fn refused(&mut self, from: &str, refusal: &Refusal) {
        let member = self.peer_of(from);
        tracing::debug!(from = %member.nick, code = refusal.code(), "refused a signal");
        let key = (from.to_owned(), refusal.code());
        let now = Instant::now();
        if self
            .refusals_told
            .get(&key)
            .is_some_and(|told| now.duration_since(*told) < REFUSAL_NOTICE)
        {
            return;
        }
        if self.refusals_told.len() >= 1024 {
            self.refusals_told.clear();
        }
        self.refusals_told.insert(key, now);
        let message = refusal_text(&member.nick, refusal);
        self.emit(Event::SignalRefused {
            member,
            code: refusal.code().to_owned(),
            message,
        });
    }

    /// The link `sid` to `peer` as this side sees it, for its hellos.
    fn hello_view(&self, peer: &str, sid: &str) -> Option<HelloView> {
        let current = self.links.get(peer).filter(|c| c.link.sid == sid)?;
        let (local, remote) = current.fingerprints.clone()?;
        Some(HelloView {
            sid: sid.to_owned(),
            me: self.mesh.me()?.to_owned(),
            my_nick: self.nick.clone(),
            peer: peer.to_owned(),
            peer_nick: self.mesh.member(peer)?.nick().to_owned(),
            local,
            remote,
        })
    }

    /// The channel of link `sid` opened: our hello goes first.
    fn send_hello(&mut self, peer: &str, sid: &str) {
        let hello = self.hello_view(peer, sid).map(|view| {
            let link = view.link(&self.context);
            Hello::build(&self.options.identity, &link)
        });
        match hello {
            Some(Ok(hello)) => {
                if let Some(current) = self.links.get(peer) {
                    current.link.send(hello.to_envelope());
                }
            }
            Some(Err(err)) => {
                let reason = format!("our hello could not be made: {err}");
                self.not_verified(peer, sid, reason);
            }
            None => {
                let reason = "the connection's fingerprints are unknown".to_owned();
                self.not_verified(peer, sid, reason);
            }
        }
    }

    /// The first envelope on a link must be the other side's hello, and it
    /// must verify against our view of the link.
    async fn check_hello(&mut self, peer: &str, sid: &str, text: &str) {
        let envelope: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let hello = match Hello::from_envelope(&envelope) {
            Ok(hello) => hello,
            Err(err) => {
                let reason = format!(
                    "its first message was not a valid hello ({}): it may not speak protocol version 2",
                    err.code()
                );
                return self.not_verified(peer, sid, reason);
            }
        };
        let Some(view) = self.hello_view(peer, sid) else {
            let reason = "the connection's fingerprints are unknown".to_owned();
            return self.not_verified(peer, sid, reason);
        };
        if hello.verify(&view.link(&self.context)).is_err() {
            let reason = "its hello does not match this connection: someone may be in the middle, \
                          or the server announced it under another name"
                .to_owned();
            return self.not_verified(peer, sid, reason);
        }
        if self
            .known
            .get(peer)
            .is_some_and(|known| known.key != hello.key)
        {
            let reason = "it presented another identity key than earlier on".to_owned();
            return self.not_verified(peer, sid, reason);
        }
        if !self.known.contains_key(peer) {
            let identity = self.check_pin(peer, &view.peer_nick, &hello.key);
            let known = Known {
                key: hello.key.clone(),
                nick: view.peer_nick.clone(),
                identity,
            };
            self.known.insert(peer.to_owned(), known);
        }
        if let Some(known) = self.known.get(peer) {
            let event = Event::MemberIdentity {
                member: self.peer_of(peer),
                identity: known.identity,
            };
            self.emit(event);
        }
        // Its messages (live, or relayed by others before) verify with
        // this key.
        if let Some(history) = &mut self.history {
            let effects = history.key_confirmed(peer, &hello.key);
            self.apply(peer, effects, 0);
        }
        if let Some(private) = &mut self.private {
            let effects = private.key_confirmed(peer, &hello.key);
            self.apply_private(peer, effects, 0);
        }
        let early = match self.links.get_mut(peer) {
            Some(current) => {
                current.verified = Some(hello.key);
                std::mem::take(&mut current.early_files)
            }
            None => Vec::new(),
        };
        for channel in early {
            self.file_channel(peer, channel);
        }
        let sid = sid.to_owned();
        self.feed(Input::Verified { sid }, Context::default()).await;
    }

    /// Checks a member's key against the pin of its nickname in this room
    /// (trust on first use): a changed one is told prominently and
    /// replaces the pin, and an earlier verification goes. Pairs have no
    /// room to pin in.
    fn check_pin(&mut self, peer: &str, nick: &str, key: &PublicKey) -> Identity {
        use crate::store::PinCheck;
        let Some(room) = self.options.session.room().map(str::to_owned) else {
            return Identity {
                verified: false,
                changed: false,
            };
        };
        let name = (room.clone(), pin_name(nick));
        let check = match &self.store {
            Some(Kept { file, .. }) => file.check_pin(&room, nick, key).unwrap_or_else(|err| {
                tracing::warn!(%err, "could not read the pinned keys");
                PinCheck::New
            }),
            None => match self.pins.get(&name) {
                Some((pinned, verified)) if pinned == key => PinCheck::Same {
                    verified: *verified,
                },
                Some(_) => PinCheck::Changed,
                None => {
                    self.pins.insert(name.clone(), (key.clone(), false));
                    PinCheck::New
                }
            },
        };
        match check {
            PinCheck::New => Identity {
                verified: false,
                changed: false,
            },
            PinCheck::Same { verified } => Identity {
                verified,
                changed: false,
            },
            PinCheck::Changed => {
                let member = self.peer_of(peer);
                tracing::warn!(member = %member.nick, "safety number changed");
                self.emit(Event::KeyChanged { member });
                // Shown: the new key is the pin from now on.
                match &self.store {
                    Some(Kept { file, .. }) => {
                        if let Err(err) = file.replace_pin(&room, nick, key) {
                            tracing::warn!(%err, "could not keep the new key");
                        }
                    }
                    None => {
                        self.pins.insert(name, (key.clone(), false));
                    }
                }
                Identity {
                    verified: false,
                    changed: true,
                }
            }
        }
    }

    /// A member whose hello verified took the nickname `nick`: its pin
    /// (and a verification) goes with it, so that its next connection
    /// does not show a changed safety number. The pin of its old nickname
    /// stays, as for a member who left.
    fn carry_pin(&mut self, peer: &str, nick: &str) {
        let Some(room) = self.options.session.room().map(str::to_owned) else {
            return;
        };
        let Some(known) = self.known.get_mut(peer) else {
            return;
        };
        let old = std::mem::replace(&mut known.nick, nick.to_owned());
        match &self.store {
            Some(Kept { file, .. }) => {
                if let Err(err) = file.carry_pin(&room, &old, nick, &known.key) {
                    tracing::warn!(%err, "could not keep the pin under the new nickname");
                }
            }
            None => {
                let pinned = self.pins.get(&(room.clone(), pin_name(&old))).cloned();
                if let Some((key, verified)) = pinned.filter(|(key, _)| *key == known.key) {
                    self.pins.insert((room, pin_name(nick)), (key, verified));
                }
            }
        }
    }

    /// The member called `nick` whose hello verified.
    fn known_by_nick(&self, nick: &str) -> Result<(String, &Known), VerifyError> {
        let wanted = pin_name(nick);
        let member = self
            .mesh
            .members()
            .find(|m| m.nick() == nick)
            .or_else(|| self.mesh.members().find(|m| pin_name(m.nick()) == wanted))
            .ok_or_else(|| VerifyError::NoSuchMember(nick.to_owned()))?;
        let known = self
            .known
            .get(member.id())
            .ok_or_else(|| VerifyError::NotYet(member.nick().to_owned()))?;
        Ok((member.id().to_owned(), known))
    }

    fn safety(&self, nick: &str) -> Result<Safety, VerifyError> {
        let (id, known) = self.known_by_nick(nick)?;
        let ours = self.options.identity.public_key();
        Ok(Safety {
            member: self.peer_of(&id),
            safety_number: SafetyNumber::new(&ours, &known.key).grouped(),
            verified: known.identity.verified,
        })
    }

    fn mark_verified(&mut self, nick: &str) -> Result<Peer, VerifyError> {
        let (id, known) = self.known_by_nick(nick)?;
        let (key, pinned_as) = (known.key.clone(), known.nick.clone());
        if let Some(room) = self.options.session.room() {
            match &self.store {
                Some(Kept { file, .. }) => {
                    if let Err(err) = file.set_verified(room, &pinned_as, &key, true) {
                        tracing::warn!(%err, "could not keep the verification");
                    }
                }
                None => {
                    if let Some(pin) = self.pins.get_mut(&(room.to_owned(), pin_name(&pinned_as))) {
                        pin.1 = pin.0 == key;
                    }
                }
            }
        }
        let member = self.peer_of(&id);
        if let Some(known) = self.known.get_mut(&id) {
            known.identity.verified = true;
            let event = Event::MemberIdentity {
                member: member.clone(),
                identity: known.identity,
            };
            self.emit(event);
        }
        Ok(member)
    }

    /// A hello failed: the link is closed (the mesh is told next) and the
    /// member shows as not verified; the conversation says why.
    fn not_verified(&mut self, peer: &str, sid: &str, reason: String) {
        let member = self.peer_of(peer);
        tracing::warn!(member = %member.nick, %reason, "not verified");
        self.emit(Event::NotVerified { member, reason });
        self.deferred.push(Input::Rejected {
            sid: sid.to_owned(),
        });
    }

    async fn on_peer_message(&mut self, from: &str, sid: &str, text: &str) {
        let Some(current) = self.links.get(from) else {
            return;
        };
        let Some(key) = current.verified.clone() else {
            self.check_hello(from, sid, text).await;
            return self.settle().await;
        };
        // Another hello on a verified link: the same key again is nothing;
        // another one ends the link.
        if text.contains("\"hello\"") {
            if let Ok(hello) = serde_json::from_str(text)
                .map_err(drop)
                .and_then(|v| Hello::from_envelope(&v).map_err(drop))
            {
                if hello.key != key {
                    let reason = "it sent a second hello with another identity key".to_owned();
                    self.not_verified(from, sid, reason);
                    self.settle().await;
                }
                return;
            }
        }
        let nick = self.peer_of(from).nick;
        if let Some(body) = peerchat_history::private::unwrap(text) {
            return self.on_private(from, &nick, &body);
        }
        let Some(history) = &mut self.history else {
            return;
        };
        let acked_before = history.acked_by(from);
        match history.handle(from, &nick, text, now_ms()) {
            Ok(effects) => self.apply(from, effects, acked_before),
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
        let flushes: Vec<_> = self.links.values().map(|c| c.link.handle()).collect();
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

/// A member whose hello verified, this session.
struct Known {
    /// Its identity key.
    key: PublicKey,
    /// The nickname it was pinned under.
    nick: String,
    /// What we know of it.
    identity: Identity,
}

/// One link as this side sees it, for its hellos.
struct HelloView {
    sid: String,
    me: String,
    my_nick: String,
    peer: String,
    peer_nick: String,
    local: Fingerprint,
    remote: Fingerprint,
}

impl HelloView {
    fn link<'a>(&'a self, context: &'a peerchat_e2e::Context) -> peerchat_e2e::Link<'a> {
        peerchat_e2e::Link {
            context,
            sid: &self.sid,
            me: &self.me,
            my_nick: &self.my_nick,
            peer: &self.peer,
            peer_nick: &self.peer_nick,
            my_fingerprint: &self.local,
            peer_fingerprint: &self.remote,
        }
    }
}

/// A member as the engine reports it.
fn peer(m: &peerchat_mesh::Member) -> Peer {
    Peer {
        id: m.id().to_owned(),
        nick: m.nick().to_owned(),
    }
}

/// Sleeps until `deadline` (never, without one).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
