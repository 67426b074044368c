//! The PeerJS server protocol as a sans-IO state machine.
//!
//! PeerJS's browser client (`peerjs` on npm) finds other peers through a
//! server of its own kind (`peer` on npm, "PeerJS server"): each client
//! registers an id over a WebSocket, and the server relays the WebRTC
//! offers, answers and ICE candidates that clients address to each other's
//! ids. [`Server`] is that server's logic: the transport feeds it events (a
//! WebSocket opened with these query parameters, a text frame arrived, a
//! connection closed, time passed) together with the current time, and it
//! appends what to do to an output list: frames to send and connections to
//! close. It never touches a socket, a clock or a task; randomness (the ids
//! it hands out) comes from a seed.
//!
//! What it does, as `peer` 1.0.2 does:
//!
//! - A WebSocket opened with `key`, `id` and `token` registers `id` and is
//!   answered `OPEN`; a missing parameter or a wrong key is answered
//!   `ERROR`, an id in use under another token `ID-TAKEN`, and the
//!   connection is closed.
//! - `OFFER`, `ANSWER`, `CANDIDATE`, `LEAVE` and `EXPIRE` are relayed to
//!   the client registered as `dst`, with `src` set to the sender's id.
//!   `OFFER`, `ANSWER` and `CANDIDATE` for an id nobody holds are queued;
//!   the client that registers it gets them at once; if nobody does within
//!   [`Config::expire_timeout`], each sender is told `EXPIRE` (the client
//!   reports `peer-unavailable`).
//! - Only `HEARTBEAT` counts as a sign of life: a client that sends none
//!   for [`Config::alive_timeout`] is disconnected. Other types are ignored.
//!
//! Where it deliberately differs (see `docs/peerjs.md`): a client that
//! reconnects with its id and token gets `OPEN` again, and its old
//! connection is closed (`peer` 1.0.2 sends nothing, which leaves the
//! client's `reconnect()` waiting forever); every queue is bounded in bytes
//! (a full one answers `EXPIRE` at once); ids and tokens are bounded; each
//! connection is rate-limited; a client whose outgoing queue is backed up
//! (it does not read) is not sent more signals: their senders are told
//! `EXPIRE` instead, as for an id nobody holds (`peer` 1.0.2 keeps
//! everything for it in memory); a message that is not JSON with a `type`, a
//! relayed message without `dst`, or one whose `src` names another client
//! is answered `ERROR` and the connection closed (`peer` 1.0.2 ignores the
//! first two and overwrites `src`); `LEAVE` without `dst` closes the
//! sender's connection (`peer` 1.0.2 forgets the id but leaves the
//! connection open).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerchat_rooms::{Backlog, TokenBucket, frame_cost};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// Identifies a connection; chosen by the transport, unique while it is open.
pub type ConnId = u64;

/// Longest id a client may register or address, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Longest token, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;

/// What a queued message costs besides its bytes (its slot, its sender's
/// id), counted against the queue limits so that they bound memory.
const MESSAGE_OVERHEAD: usize = 64;

/// What a queue for one id costs besides its messages.
const QUEUE_OVERHEAD: usize = 160;

/// Settings of a [`Server`]; the first five are `peer` 1.0.2's options.
#[derive(Debug, Clone)]
pub struct Config {
    /// The key clients must connect with (`key=` in the WebSocket URL).
    pub key: String,
    /// How long messages for an id nobody holds wait for it before their
    /// senders are told `EXPIRE`.
    pub expire_timeout: Duration,
    /// A client that sends no `HEARTBEAT` for this long is disconnected.
    pub alive_timeout: Duration,
    /// Most ids registered at once; more are refused.
    pub concurrent_limit: usize,
    /// Whether [`Server::discover`] lists the registered ids.
    pub discovery: bool,
    /// Messages a connection may send per second, on average.
    pub rate_per_sec: u32,
    /// Messages a connection may send in a burst.
    pub rate_burst: u32,
    /// Bytes a connection may send per second, on average.
    pub byte_rate_per_sec: u32,
    /// Bytes a connection may send in a burst.
    pub byte_burst: u32,
    /// Bytes (as [`frame_cost`] counts them) a connection's outgoing queue
    /// may hold before signals to it are refused, their senders told
    /// `EXPIRE`; one sender may hold a quarter of it. A signal to an empty
    /// queue always goes. It also bounds what waits for one id nobody
    /// holds yet, so that all of it fits that id's queue when it comes.
    pub send_queue_bytes: usize,
    /// Most bytes queued for all such ids together.
    pub queue_bytes_total: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key: "peerjs".to_owned(),
            expire_timeout: Duration::from_secs(5),
            alive_timeout: Duration::from_secs(60),
            concurrent_limit: 5000,
            discovery: false,
            rate_per_sec: 100,
            rate_burst: 1000,
            byte_rate_per_sec: 256 * 1024,
            byte_burst: 1024 * 1024,
            send_queue_bytes: peerchat_rooms::HubConfig::DEFAULT_SEND_QUEUE_BYTES as usize,
            queue_bytes_total: 16 * 1024 * 1024,
        }
    }
}

pub use peerchat_rooms::Frame;

/// A frame of `message` as JSON.
fn frame_of<T: Serialize>(message: &T) -> Frame {
    Frame::new(serde_json::to_string(message).unwrap_or_default())
}

/// What the transport must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Queue `frame` on connection `to`.
    Send {
        /// The recipient.
        to: ConnId,
        /// The frame.
        frame: Frame,
        /// The connection whose signal this is, when it is a signal relayed
        /// at once (for the queue's count of each sender's bytes, which
        /// comes back through [`Backlog`]).
        from: Option<ConnId>,
    },
    /// Close connection `conn` after the frames queued before this; the
    /// server has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: Close,
    },
}

/// Why the server closes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// It was refused or broke a rule; the client was told so in an
    /// `ERROR` (or `ID-TAKEN`) message just before.
    Error(PeerjsError),
    /// The same id and token connected again, on another connection.
    Replaced,
    /// No `HEARTBEAT` within [`Config::alive_timeout`].
    AliveTimeout,
    /// The client sent `LEAVE` without `dst`: it is done.
    Left,
    /// The server is shutting down.
    ShuttingDown,
}

impl Close {
    /// A short name for the reason, for a WebSocket close frame and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Close::Error(err) => err.code(),
            Close::Replaced => "replaced",
            Close::AliveTimeout => "alive_timeout",
            Close::Left => "left",
            Close::ShuttingDown => "shutting_down",
        }
    }
}

/// Why a connection is refused or cut off. The text is what the client is
/// told, in an `ERROR` message's `payload.msg` (the first four are
/// `peer` 1.0.2's own words, so that apps matching on them still do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerjsError {
    /// `key`, `id` or `token` missing from the WebSocket URL.
    #[error("No id, token, or key supplied to websocket server")]
    MissingParameters,
    /// `key` is not the server's.
    #[error("Invalid key provided")]
    InvalidKey,
    /// `token` is longer than [`MAX_TOKEN_LEN`].
    #[error("Invalid token provided")]
    InvalidToken,
    /// `concurrent_limit` ids are registered.
    #[error("Server has reached its concurrent user limit")]
    ConcurrentLimit,
    /// Another client holds the id, under another token (sent as an
    /// `ID-TAKEN` message, not `ERROR`).
    #[error("ID is taken")]
    IdTaken,
    /// The id is empty, longer than [`MAX_ID_LEN`] or has control
    /// characters.
    #[error("Invalid id provided: an id is 1 to {MAX_ID_LEN} bytes, without control characters")]
    InvalidId,
    /// The message is not what the protocol allows.
    #[error("Invalid message: {0}")]
    BadMessage(String),
    /// The message's `src` names someone else.
    #[error("Invalid message: src must be your own id or left out (the server sets it)")]
    ForgedSource,
    /// More messages or bytes than the rate limit allows.
    #[error("Too many messages: the connection sent more than its rate limit allows")]
    RateLimited,
    /// The client does not read: the server's queue for it is full.
    #[error("Too slow: you did not read your messages, and the server's queue for you is full")]
    SlowConsumer,
    /// A message larger than the transport accepts.
    #[error("Message too large: at most {max} bytes")]
    TooLarge {
        /// The largest message, in bytes.
        max: usize,
    },
}

impl PeerjsError {
    /// A short name for the error, for a WebSocket close frame and logs.
    pub fn code(&self) -> &'static str {
        match self {
            PeerjsError::MissingParameters => "missing_parameters",
            PeerjsError::InvalidKey => "invalid_key",
            PeerjsError::InvalidToken => "invalid_token",
            PeerjsError::ConcurrentLimit => "concurrent_limit",
            PeerjsError::IdTaken => "id_taken",
            PeerjsError::InvalidId => "invalid_id",
            PeerjsError::BadMessage(_) => "bad_message",
            PeerjsError::ForgedSource => "forged_source",
            PeerjsError::RateLimited => "rate_limited",
            PeerjsError::SlowConsumer => "slow_consumer",
            PeerjsError::TooLarge { .. } => "too_large",
        }
    }
}

/// The query parameters of the WebSocket URL
/// (`/peerjs?key=…&id=…&token=…&version=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `key`.
    pub key: Option<String>,
    /// `id`.
    pub id: Option<String>,
    /// `token`.
    pub token: Option<String>,
    /// `version`: the client's version, for logs only.
    pub version: Option<String>,
}

impl Params {
    /// Parses a query string (without the `?`) as browsers'
    /// `URLSearchParams` do: percent-escapes and `+` decoded, and the last
    /// of repeated parameters counts.
    pub fn from_query(query: &str) -> Self {
        let mut params = Params::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*name {
                "key" => &mut params.key,
                "id" => &mut params.id,
                "token" => &mut params.token,
                "version" => &mut params.version,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        params
    }
}

/// Counts for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Registered ids (each with one connection).
    pub clients: usize,
    /// Ids with messages waiting for them.
    pub queues: usize,
    /// Messages waiting.
    pub queued_messages: usize,
    /// What the waiting messages and their queues cost, in bytes.
    pub queued_bytes: usize,
}

#[derive(Debug)]
struct Client {
    token: Box<str>,
    conn: ConnId,
    last_heartbeat: Instant,
    /// The instant under which the client's connection is filed in
    /// [`Server::alive`].
    alive_at: Instant,
}

#[derive(Debug)]
struct Conn {
    id: Arc<str>,
    messages: TokenBucket,
    bytes: TokenBucket,
    /// Connections whose backed-up queue refused this one's signals since
    /// it was last told `EXPIRE` for them: it is told once, not for every
    /// signal refused.
    busy: Vec<ConnId>,
}

#[derive(Debug)]
struct Pending {
    deadline: Deadline,
    /// What the queue costs, overheads included.
    bytes: usize,
    messages: VecDeque<Queued>,
}

#[derive(Debug)]
struct Queued {
    src: Arc<str>,
    frame: Frame,
}

type Deadline = (Instant, u64);

/// The PeerJS server: every registered id, its connection, and the
/// messages waiting for ids nobody holds yet.
#[derive(Debug)]
pub struct Server {
    config: Config,
    rng: StdRng,
    clients: HashMap<Arc<str>, Client>,
    conns: HashMap<ConnId, Conn>,
    queues: HashMap<Arc<str>, Pending>,
    /// When each queue expires, soonest first.
    expiries: BTreeMap<Deadline, Arc<str>>,
    /// When each client's connection is next checked for a heartbeat,
    /// soonest first. A heartbeat only updates the client's
    /// `last_heartbeat`; the check files the connection again if one came.
    alive: BTreeMap<(Instant, ConnId), ()>,
    queued_bytes: usize,
    queued_messages: usize,
    seq: u64,
}

/// A message from a client. Fields other than these are ignored.
#[derive(Debug, Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    dst: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    src: Option<std::borrow::Cow<'a, str>>,
    /// Present (`null` included) or not.
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A relayed message, as the server sends it: `peer` 1.0.2's field order.
#[derive(Serialize)]
struct Relayed<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    src: &'a str,
    dst: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a RawValue>,
}

/// `ERROR` and `ID-TAKEN`.
#[derive(Serialize)]
struct Notice<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    payload: Msg<'a>,
}

#[derive(Serialize)]
struct Msg<'a> {
    msg: &'a str,
}

/// The messages the server relays; any other type but `HEARTBEAT` is
/// ignored.
const RELAYED: [&str; 5] = ["OFFER", "ANSWER", "CANDIDATE", "LEAVE", "EXPIRE"];

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && !id.chars().any(char::is_control)
}

fn expire_frame(unavailable: &str, to: &str) -> Frame {
    frame_of(&Relayed {
        kind: "EXPIRE",
        src: unavailable,
        dst: to,
        payload: None,
    })
}

impl Server {
    /// A server whose ids come from a generator seeded with `seed`; pass
    /// fresh randomness in production and a constant in tests.
    pub fn new(config: Config, seed: [u8; 32]) -> Self {
        Self {
            config,
            rng: StdRng::from_seed(seed),
            clients: HashMap::new(),
            conns: HashMap::new(),
            queues: HashMap::new(),
            expiries: BTreeMap::new(),
            alive: BTreeMap::new(),
            queued_bytes: 0,
            queued_messages: 0,
            seq: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        Stats {
            clients: self.clients.len(),
            queues: self.queues.len(),
            queued_messages: self.queued_messages,
            queued_bytes: self.queued_bytes,
        }
    }

    /// A fresh id for `GET …/id`: a random UUID (version 4) that no client
    /// holds now.
    pub fn generate_id(&mut self) -> String {
        loop {
            let mut b = [0u8; 16];
            self.rng.fill_bytes(&mut b);
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            let id = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            if !self.clients.contains_key(id.as_str()) {
                return id;
            }
        }
    }

    /// The registered ids for `GET …/peers`, or `None` when discovery is
    /// off.
    pub fn discover(&self) -> Option<Vec<String>> {
        self.config
            .discovery
            .then(|| self.clients.keys().map(|id| id.to_string()).collect())
    }

    /// The earliest instant at which [`Server::handle_timeout`] has work to
    /// do, if any. It only moves earlier when an event adds a deadline; the
    /// transport should check it after every event.
    pub fn next_deadline(&self) -> Option<Instant> {
        let expiry = self.expiries.first_key_value().map(|(&(at, _), _)| at);
        let alive = self.alive.first_key_value().map(|(&(at, _), _)| at);
        match (expiry, alive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A WebSocket opened on `conn` with these query parameters: register
    /// its id and answer `OPEN`, then hand it what was queued for the id; or
    /// refuse it (`ERROR` or `ID-TAKEN`, then close).
    pub fn open(&mut self, conn: ConnId, params: &Params, now: Instant, out: &mut Vec<Output>) {
        let given = |p: &Option<String>| p.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
        let (Some(key), Some(id), Some(token)) =
            (given(&params.key), given(&params.id), given(&params.token))
        else {
            return self.refuse(conn, PeerjsError::MissingParameters, out);
        };
        if key != self.config.key {
            return self.refuse(conn, PeerjsError::InvalidKey, out);
        }
        if !valid_id(&id) {
            return self.refuse(conn, PeerjsError::InvalidId, out);
        }
        if token.len() > MAX_TOKEN_LEN {
            return self.refuse(conn, PeerjsError::InvalidToken, out);
        }
        let alive_at = now + self.config.alive_timeout;
        let existing = self
            .clients
            .get_key_value(id.as_str())
            .map(|(id, client)| (id.clone(), *client.token == *token));
        let id: Arc<str> = match existing {
            Some((_, false)) => return self.refuse(conn, PeerjsError::IdTaken, out),
            Some((id, true)) => {
                // Its id and token again: the client reconnected before its
                // old connection was noticed gone. The new one takes over.
                if let Some(client) = self.clients.get_mut(&id) {
                    let old = std::mem::replace(&mut client.conn, conn);
                    self.alive.remove(&(client.alive_at, old));
                    client.last_heartbeat = now;
                    client.alive_at = alive_at;
                    if self.conns.remove(&old).is_some() {
                        out.push(Output::Close {
                            conn: old,
                            reason: Close::Replaced,
                        });
                    }
                }
                id
            }
            None => {
                if self.clients.len() >= self.config.concurrent_limit {
                    return self.refuse(conn, PeerjsError::ConcurrentLimit, out);
                }
                let id: Arc<str> = Arc::from(id);
                self.clients.insert(
                    id.clone(),
                    Client {
                        token: token.into_boxed_str(),
                        conn,
                        last_heartbeat: now,
                        alive_at,
                    },
                );
                id
            }
        };
        self.alive.insert((alive_at, conn), ());
        let c = &self.config;
        self.conns.insert(
            conn,
            Conn {
                id: id.clone(),
                messages: TokenBucket::new(c.rate_per_sec, c.rate_burst, now),
                bytes: TokenBucket::new(c.byte_rate_per_sec, c.byte_burst, now),
                busy: Vec::new(),
            },
        );
        out.push(Output::Send {
            to: conn,
            frame: Frame::new(r#"{"type":"OPEN"}"#.to_owned()),
            from: None,
        });
        if let Some(pending) = self.queues.remove(&*id) {
            self.expiries.remove(&pending.deadline);
            self.queued_bytes -= pending.bytes;
            self.queued_messages -= pending.messages.len();
            // They fit the empty queue: they were bounded by its limit.
            for queued in pending.messages {
                out.push(Output::Send {
                    to: conn,
                    frame: queued.frame,
                    from: None,
                });
            }
        }
    }

    /// A text frame arrived on `conn`; `backlog` tells what waits in the
    /// connections' outgoing queues.
    pub fn handle_text(
        &mut self,
        conn: ConnId,
        text: &str,
        backlog: &dyn Backlog,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let size = u32::try_from(text.len()).unwrap_or(u32::MAX);
        if !(state.messages.take(now, 1) && state.bytes.take(now, size)) {
            return self.refuse(conn, PeerjsError::RateLimited, out);
        }
        let id = state.id.clone();
        let message: Incoming<'_> = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(_) => {
                let why = "expected a JSON object with a string \"type\"".to_owned();
                return self.refuse(conn, PeerjsError::BadMessage(why), out);
            }
        };
        if message.kind == "HEARTBEAT" {
            if let Some(client) = self.clients.get_mut(&*id) {
                client.last_heartbeat = now;
            }
            return;
        }
        let Some(kind) = RELAYED.into_iter().find(|k| *k == message.kind) else {
            // Unknown types are ignored, as by peer 1.0.2, so that a newer
            // client's additions do not cost it its connection.
            return;
        };
        if message.src.as_deref().is_some_and(|src| src != &*id) {
            return self.refuse(conn, PeerjsError::ForgedSource, out);
        }
        let dst = match message.dst.as_deref().filter(|d| !d.is_empty()) {
            None if kind == "LEAVE" => {
                self.forget(conn);
                out.push(Output::Close {
                    conn,
                    reason: Close::Left,
                });
                return;
            }
            None => {
                let why = format!("{kind} needs a \"dst\": the id to send it to");
                return self.refuse(conn, PeerjsError::BadMessage(why), out);
            }
            Some(dst) if !valid_id(dst) => {
                let why = format!("\"dst\" is not an id (1 to {MAX_ID_LEN} bytes)");
                return self.refuse(conn, PeerjsError::BadMessage(why), out);
            }
            Some(dst) => dst,
        };
        let frame = frame_of(&Relayed {
            kind,
            src: &id,
            dst,
            payload: message.payload,
        });
        if let Some(target) = self.clients.get(dst) {
            let target = target.conn;
            self.relay(conn, target, frame, dst, &id, backlog, out);
        } else if kind != "LEAVE" && kind != "EXPIRE" {
            self.enqueue(conn, dst, id, frame, now, out);
        }
    }

    /// Relays `frame` from `conn` (holding `src`) to `target` (holding
    /// `dst`), unless `target`'s queue is backed up: then the signal is
    /// dropped and the sender told `EXPIRE`, once until a signal of its
    /// reaches `target` again. Each sender may fill a quarter of a queue,
    /// so that one that floods a client cannot keep others from it.
    #[allow(clippy::too_many_arguments)]
    fn relay(
        &mut self,
        conn: ConnId,
        target: ConnId,
        frame: Frame,
        dst: &str,
        src: &str,
        backlog: &dyn Backlog,
        out: &mut Vec<Output>,
    ) {
        let queued = backlog.queued(target, conn);
        let cost = frame_cost(frame.len());
        let fits = |used: usize, limit: usize| used == 0 || used + cost <= limit;
        let limit = self.config.send_queue_bytes;
        let room_for_it = fits(queued.total, limit) && fits(queued.from_sender, limit / 4);
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if room_for_it {
            state.busy.retain(|c| *c != target);
            out.push(Output::Send {
                to: target,
                frame,
                from: Some(conn),
            });
        } else if !state.busy.contains(&target) {
            state.busy.push(target);
            out.push(Output::Send {
                to: conn,
                frame: expire_frame(dst, src),
                from: None,
            });
        }
    }

    /// Queues `frame` from `src` (on `conn`) for `dst`, which nobody holds;
    /// when there is no room, tells the sender `EXPIRE` at once.
    fn enqueue(
        &mut self,
        conn: ConnId,
        dst: &str,
        src: Arc<str>,
        frame: Frame,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let cost = frame.len() + MESSAGE_OVERHEAD + src.len();
        let (queue, extra) = match self.queues.get(dst) {
            Some(pending) => (pending.bytes, 0),
            None => (0, QUEUE_OVERHEAD + dst.len()),
        };
        if queue + extra + cost > self.config.send_queue_bytes
            || self.queued_bytes + extra + cost > self.config.queue_bytes_total
        {
            // Nobody would read it: say so now, as the timeout would.
            out.push(Output::Send {
                to: conn,
                frame: expire_frame(dst, &src),
                from: None,
            });
            return;
        }
        let pending = match self.queues.get_mut(dst) {
            Some(pending) => pending,
            None => {
                self.seq += 1;
                let deadline = (now + self.config.expire_timeout, self.seq);
                let dst: Arc<str> = Arc::from(dst);
                self.expiries.insert(deadline, dst.clone());
                self.queues.entry(dst).or_insert(Pending {
                    deadline,
                    bytes: 0,
                    messages: VecDeque::new(),
                })
            }
        };
        pending.bytes += extra + cost;
        pending.messages.push_back(Queued { src, frame });
        self.queued_bytes += extra + cost;
        self.queued_messages += 1;
    }

    /// The transport refused a frame itself (too large, not UTF-8), or
    /// cannot queue more for the client (it does not read): tell the client
    /// why and close the connection.
    pub fn reject(&mut self, conn: ConnId, error: PeerjsError, out: &mut Vec<Output>) {
        if self.conns.contains_key(&conn) {
            self.refuse(conn, error, out);
        }
    }

    /// `conn` closed (or must be dropped): its id is free again, unless
    /// another connection took it over.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.forget(conn);
    }

    /// Time passed: queues whose time ran out are dropped and their senders
    /// told `EXPIRE` (once per sender and id); clients without a heartbeat
    /// for [`Config::alive_timeout`] are disconnected.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Output>) {
        while let Some(entry) = self.expiries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let dst = entry.remove();
            let Some(pending) = self.queues.remove(&dst) else {
                continue;
            };
            self.queued_bytes -= pending.bytes;
            self.queued_messages -= pending.messages.len();
            let mut told = HashSet::new();
            for queued in &pending.messages {
                if !told.insert(&*queued.src) {
                    continue;
                }
                if let Some(sender) = self.clients.get(&*queued.src) {
                    out.push(Output::Send {
                        to: sender.conn,
                        frame: expire_frame(&dst, &queued.src),
                        from: None,
                    });
                }
            }
        }
        while let Some(entry) = self.alive.first_entry() {
            let (at, conn) = *entry.key();
            if at > now {
                break;
            }
            entry.remove();
            let client = self
                .conns
                .get(&conn)
                .and_then(|c| self.clients.get_mut(&c.id))
                .filter(|client| client.conn == conn);
            let Some(client) = client else {
                continue;
            };
            let due = client.last_heartbeat + self.config.alive_timeout;
            if due <= now {
                self.forget(conn);
                out.push(Output::Close {
                    conn,
                    reason: Close::AliveTimeout,
                });
            } else {
                client.alive_at = due;
                self.alive.insert((due, conn), ());
            }
        }
    }

    /// Closes every connection and forgets everything.
    pub fn shutdown(&mut self, out: &mut Vec<Output>) {
        for conn in self.conns.keys() {
            out.push(Output::Close {
                conn: *conn,
                reason: Close::ShuttingDown,
            });
        }
        self.conns.clear();
        self.clients.clear();
        self.queues.clear();
        self.expiries.clear();
        self.alive.clear();
        self.queued_bytes = 0;
        self.queued_messages = 0;
    }

    /// Tells `conn` why it is refused or cut off, forgets it, and closes it.
    fn refuse(&mut self, conn: ConnId, error: PeerjsError, out: &mut Vec<Output>) {
        let msg = error.to_string();
        let kind = if error == PeerjsError::IdTaken {
            "ID-TAKEN"
        } else {
            "ERROR"
        };
        out.push(Output::Send {
            to: conn,
            frame: frame_of(&Notice {
                kind,
                payload: Msg { msg: &msg },
            }),
            from: None,
        });
        self.forget(conn);
        out.push(Output::Close {
            conn,
            reason: Close::Error(error),
        });
    }

    /// Forgets `conn`, and its client unless another connection took it
    /// over.
    fn forget(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(client) = self.clients.get(&state.id) {
            if client.conn == conn {
                self.alive.remove(&(client.alive_at, conn));
                self.clients.remove(&state.id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
